"""Routes of the organizers' campaign tools (issue 16): import templates, the question editor,
lotteries.  Kept apart from contest/web/routes.py, which ends ROUTES with them, so that the route
table, the handlers and /api/openapi.json stay one list."""

from __future__ import annotations

from contest.web.schema import ADMIN, INT, STR, STR_OR_NULL, Route, obj
from contest.web.views import admin, lottery, review, screen

__all__ = ["ORGANIZER_ROUTES"]

QUESTION_BODY = obj({"id": STR, "type": {"enum": ["single", "multiple", "judge"]}, "stem": STR,
                     "options": {"type": "array", "items": STR}, "answer": {"oneOf": [STR, {"type": "array"}]},
                     "category": {"type": ["string", "null"]}, "difficulty": {"type": ["integer", "string", "null"]},
                     "points": INT, "explanation": STR}, ("type", "stem", "answer"))
QUESTION_OUT = obj({"question": {"type": "object"}, "previous_id": STR, "versioned": {"type": "boolean"}},
                   ("question",))

# a lottery keeps the eligibility as given: the optional ends and org are null when not given
ELIGIBILITY = obj({"min_score": INT, "board": {"enum": ["total", "daily"]}, "date_from": STR_OR_NULL,
                   "date_to": STR_OR_NULL, "exclude_flagged": {"type": "boolean"}, "org_id": STR_OR_NULL})
LOTTERY = obj({"lottery_id": STR, "contest_id": STR, "name": STR, "winners_count": INT, "eligibility": ELIGIBILITY,
               "commitment": STR, "status": {"enum": ["committed", "drawn"]}, "seed": STR, "eligible_count": INT,
               "eligible_hash": STR, "drawn_at": INT, "winners": {"type": "array", "items": {"type": "object"}}},
              ("lottery_id", "commitment", "status"))

ORGANIZER_ROUTES: list[Route] = [
    Route("GET", "/api/v1/contests/{cid}/join-qr.svg", screen.join_qr,
          "QR code (SVG) of the H5 address that opens this contest, for the big screen (origin: the screen's own)",
          query=("origin",), errors=(400, 404), content="image/svg+xml", tag="participants"),
    Route("POST", "/api/v1/admin/contests/{cid}/lotteries", lottery.lottery_create,
          "Create a lottery among qualifying members: the SHA-256 commitment of its secret seed is published"
          " before the draw", auth=ADMIN,
          body=obj({"name": STR, "winners": INT, "eligibility": ELIGIBILITY}, ("name", "winners")),
          response=obj({"lottery_id": STR, "commitment": STR}, ("lottery_id", "commitment")), status=201,
          errors=(400, 401, 403, 404, 413), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/lotteries", lottery.lotteries_list,
          "A contest's lotteries, newest first (full names; the seed once drawn)", auth=ADMIN,
          response=obj({"contest_id": STR, "lotteries": {"type": "array", "items": LOTTERY}}, ("lotteries",)),
          errors=(401, 403, 404), tag="admin"),
    Route("POST", "/api/v1/admin/contests/{cid}/lotteries/{lid}/draw", lottery.lottery_draw,
          "Draw: freeze the sorted eligible list, draw the winners from the seed, publish seed, count, list hash"
          " and winners (a second draw is 409)", auth=ADMIN, response=LOTTERY, errors=(401, 403, 404, 409, 503),
          tag="admin"),
    Route("GET", "/api/v1/contests/{cid}/lotteries/{lid}", lottery.lottery_public,
          "A lottery as published (winners' names masked); verify it with quiz lottery verify", response=LOTTERY,
          errors=(404,), tag="participants"),
    Route("POST", "/api/v1/admin/questions", admin.question_create,
          "Add a question (the import's checks)", auth=ADMIN, body=QUESTION_BODY, response=QUESTION_OUT, status=201,
          errors=(400, 401, 403, 409, 413), tag="admin"),
    Route("PUT", "/api/v1/admin/questions/{qid}", admin.question_update,
          "Change a question; one already drawn into an attempt gets a new version and the served one is retired",
          auth=ADMIN, body=QUESTION_BODY, response=QUESTION_OUT, errors=(400, 401, 403, 404, 413), tag="admin"),
    Route("DELETE", "/api/v1/admin/questions/{qid}", admin.question_delete,
          "Delete a question; one already drawn into an attempt is retired (kept, never drawn again)", auth=ADMIN,
          response=obj({"question_id": STR, "result": {"enum": ["deleted", "retired"]}}, ("question_id", "result")),
          errors=(401, 403, 404), tag="admin"),
    Route("GET", "/api/v1/admin/templates/{name}", admin.template,
          "Import template with Chinese headers and two example rows: questions.xlsx, questions.csv, orgs.xlsx,"
          " orgs.csv", auth=ADMIN, errors=(401, 403, 404), content="application/octet-stream", tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/attempts/{aid}/evidence", review.evidence,
          "A flagged attempt's evidence: per-answer times against the minimum, answers per second, IP and device"
          " counts", auth=ADMIN, response=obj({"attempt_id": STR, "user_id": STR, "min_answer_ms": INT,
                                               "fast_answers": INT, "ip_count": INT, "device_count": INT,
                                               "answers": {"type": "array", "items": {"type": "object"}}},
                                               ("attempt_id", "answers")), errors=(401, 403, 404, 503), tag="admin"),
]
