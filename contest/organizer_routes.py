"""Routes of the organizers' campaign tools (issue 16): import templates, the question editor,
lotteries.  Kept apart from contest/routes.py, which appends them to ROUTES, so that the route
table, the handlers and /api/openapi.json stay one list."""

from __future__ import annotations

from contest.routes import ADM, Route, _obj
from contest.views import admin, review

__all__ = ["ORGANIZER_ROUTES"]

S, I = {"type": "string"}, {"type": "integer"}  # noqa: E741

QUESTION_BODY = _obj({"id": S, "type": {"enum": ["single", "multiple", "judge"]}, "stem": S,
                      "options": {"type": "array", "items": S}, "answer": {"oneOf": [S, {"type": "array"}]},
                      "category": {"type": ["string", "null"]}, "difficulty": {"type": ["integer", "string", "null"]},
                      "points": I, "explanation": S}, ("type", "stem", "answer"))
QUESTION_OUT = _obj({"question": {"type": "object"}, "previous_id": S, "versioned": {"type": "boolean"}},
                    ("question",))

ORGANIZER_ROUTES: list[Route] = [
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
