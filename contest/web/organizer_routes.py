"""Routes of the organizers' campaign tools (issue 16): import templates, the question editor,
lotteries.  Kept apart from contest/web/routes.py, which appends them to ROUTES, so that the route
table, the handlers and /api/openapi.json stay one list."""

from __future__ import annotations

from contest.web.routes import ADM, Route, _obj
from contest.web.views import admin, lottery, review, screen

__all__ = ["ORGANIZER_ROUTES"]

S, I = {"type": "string"}, {"type": "integer"}  # noqa: E741

QUESTION_BODY = _obj({"id": S, "type": {"enum": ["single", "multiple", "judge"]}, "stem": S,
                      "options": {"type": "array", "items": S}, "answer": {"oneOf": [S, {"type": "array"}]},
                      "category": {"type": ["string", "null"]}, "difficulty": {"type": ["integer", "string", "null"]},
                      "points": I, "explanation": S}, ("type", "stem", "answer"))
QUESTION_OUT = _obj({"question": {"type": "object"}, "previous_id": S, "versioned": {"type": "boolean"}},
                    ("question",))

ELIGIBILITY = _obj({"min_score": I, "board": {"enum": ["total", "daily"]}, "date_from": S, "date_to": S,
                    "exclude_flagged": {"type": "boolean"}, "org_id": S})
LOTTERY = _obj({"lottery_id": S, "contest_id": S, "name": S, "winners_count": I, "eligibility": ELIGIBILITY,
                "commitment": S, "status": {"enum": ["committed", "drawn"]}, "seed": S, "eligible_count": I,
                "eligible_hash": S, "drawn_at": I, "winners": {"type": "array", "items": {"type": "object"}}},
               ("lottery_id", "commitment", "status"))

ORGANIZER_ROUTES: list[Route] = [
    Route("GET", "/api/v1/contests/{cid}/join-qr.svg", screen.join_qr,
          "QR code (SVG) of the H5 address that opens this contest, for the big screen (origin: the screen's own)",
          query=("origin",), errors=(400, 404), content="image/svg+xml", tag="participants"),
    Route("POST", "/api/v1/admin/contests/{cid}/lotteries", lottery.lottery_create,
          "Create a lottery among qualifying members: the SHA-256 commitment of its secret seed is published"
          " before the draw", auth=ADM,
          body=_obj({"name": S, "winners": I, "eligibility": ELIGIBILITY}, ("name", "winners")),
          response=_obj({"lottery_id": S, "commitment": S}, ("lottery_id", "commitment")), status=201,
          errors=(400, 401, 403, 404, 413), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/lotteries", lottery.lotteries_list,
          "A contest's lotteries, newest first (full names; the seed once drawn)", auth=ADM,
          response=_obj({"contest_id": S, "lotteries": {"type": "array", "items": LOTTERY}}, ("lotteries",)),
          errors=(401, 403, 404), tag="admin"),
    Route("POST", "/api/v1/admin/contests/{cid}/lotteries/{lid}/draw", lottery.lottery_draw,
          "Draw: freeze the sorted eligible list, draw the winners from the seed, publish seed, count, list hash"
          " and winners (a second draw is 409)", auth=ADM, response=LOTTERY, errors=(401, 403, 404, 409, 503),
          tag="admin"),
    Route("GET", "/api/v1/contests/{cid}/lotteries/{lid}", lottery.lottery_public,
          "A lottery as published (winners' names masked); verify it with quiz lottery verify", response=LOTTERY,
          errors=(404,), tag="participants"),
    Route("POST", "/api/v1/admin/questions", admin.question_create,
          "Add a question (the import's checks)", auth=ADM, body=QUESTION_BODY, response=QUESTION_OUT, status=201,
          errors=(400, 401, 403, 409, 413), tag="admin"),
    Route("PUT", "/api/v1/admin/questions/{qid}", admin.question_update,
          "Change a question; one already drawn into an attempt gets a new version and the served one is retired",
          auth=ADM, body=QUESTION_BODY, response=QUESTION_OUT, errors=(400, 401, 403, 404, 413), tag="admin"),
    Route("DELETE", "/api/v1/admin/questions/{qid}", admin.question_delete,
          "Delete a question; one already drawn into an attempt is retired (kept, never drawn again)", auth=ADM,
          response=_obj({"question_id": S, "result": {"enum": ["deleted", "retired"]}}, ("question_id", "result")),
          errors=(401, 403, 404), tag="admin"),
    Route("GET", "/api/v1/admin/templates/{name}", admin.template,
          "Import template with Chinese headers and two example rows: questions.xlsx, questions.csv, orgs.xlsx,"
          " orgs.csv", auth=ADM, errors=(401, 403, 404), content="application/octet-stream", tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/attempts/{aid}/evidence", review.evidence,
          "A flagged attempt's evidence: per-answer times against the minimum, answers per second, IP and device"
          " counts", auth=ADM, response=_obj({"attempt_id": S, "user_id": S, "min_answer_ms": I, "fast_answers": I,
                                               "ip_count": I, "device_count": I,
                                               "answers": {"type": "array", "items": {"type": "object"}}},
                                              ("attempt_id", "answers")), errors=(401, 403, 404, 503), tag="admin"),
]
