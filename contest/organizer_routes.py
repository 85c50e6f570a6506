"""Routes of the organizers' campaign tools (issue 16): import templates, the question editor,
lotteries.  Kept apart from contest/routes.py, which appends them to ROUTES, so that the route
table, the handlers and /api/openapi.json stay one list."""

from __future__ import annotations

from contest.routes import ADM, Route, _obj
from contest.views import admin, review

__all__ = ["ORGANIZER_ROUTES"]

S, I = {"type": "string"}, {"type": "integer"}  # noqa: E741

ORGANIZER_ROUTES: list[Route] = [
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
