"""The route table: one list that both registers the handlers and generates /api/openapi.json."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from contest.web.signin import setup_signin
from contest.web.views import admin, boards, campaign, identity, ops, organizers, participant, review, signin

__all__ = ["ROUTES", "Route", "setup_routes"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    auth: tuple[str, ...] = ()  # roles; empty = public
    body: dict[str, Any] | None = None  # JSON schema of the request body
    query: tuple[str, ...] = ()
    response: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    status: int = 200
    errors: tuple[int, ...] = ()
    content: str = "application/json"
    tag: str = "participants"


def _obj(props: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required)}


S, I, B, N = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "number"}  # noqa: E741
NS, NI, NB = {"type": ["string", "null"]}, {"type": ["integer", "null"]}, {"type": ["boolean", "null"]}
CHOICE = {"oneOf": [S, {"type": "array", "items": S}]}
TOKEN = _obj({"user_id": S, "token": S, "expires_at": I}, ("user_id", "token", "expires_at"))
QUESTION = _obj({"index": I, "type": S, "stem": S, "points": I,
                 "options": {"type": "array", "items": _obj({"key": S, "text": S})}})
ATTEMPT = _obj({"attempt_id": S, "contest_id": S, "started_at": I, "deadline_at": I,
                "questions": {"type": "array", "items": QUESTION},
                "answered": {"type": "array", "items": _obj({"index": I, "choice": CHOICE})},
                "score": NI, "finished": B, "mode": {"enum": ["paper", "challenge"]},
                "current": {**NI, "description": "challenge: the index being served (questions holds those served)"},
                "max_questions": {**I, "description": "challenge: the longest run"}},
               ("attempt_id", "contest_id", "started_at", "deadline_at", "questions"))
ANSWER_OUT = _obj({"index": I, "correct": NB, "points_awarded": NI, "score": NI, "correct_choice": CHOICE,
                   "next": {"oneOf": [QUESTION, {"type": "null"}],
                            "description": "challenge: the next question, null when the run is over"},
                   "finished": {**B, "description": "challenge: the run is over (the attempt is finished)"},
                   "result": {"type": "object", "description": "challenge, when finished: the finish result"}},
                  ("index", "correct", "points_awarded", "score"))
FINISH_OUT = _obj({"attempt_id": S, "score": I, "correct_count": I, "question_count": I, "duration_ms": I,
                   "rank": NI, "best_score": NI},
                  ("attempt_id", "score", "correct_count", "question_count", "duration_ms", "rank", "best_score"))
ENTRY = _obj({"rank": I, "user_id": S, "name": S, "org_id": S, "org_name": NS, "score": I, "duration_ms": I})
BOARD = _obj({"board": S, "total": I, "entries": {"type": "array", "items": ENTRY}}, ("board", "total", "entries"))
ME = _obj({"rank": NI, "score": NI, "duration_ms": NI, "total": I, "percentile": {"type": ["number", "null"]},
           "around": {"type": "array", "items": ENTRY}}, ("rank", "total", "around"))
ORG_ROW = _obj({"rank": I, "org_id": S, "name": S, "level": I, "members": I, "participants": I,
                "participation_rate": N, "attempts": I, "total_score": I, "avg_score": N})
ORGS = _obj({"entries": {"type": "array", "items": ORG_ROW}}, ("entries",))
ORG_PICK = _obj({"orgs": {"type": "array", "items": _obj(
    {"org_id": S, "name": S, "level": I, "has_children": B,
     "path": {"type": "array", "items": S, "description": "names from the root down to this org (q, all)"},
     "path_ids": {"type": "array", "items": S, "description": "ids from the root down to this org (q)"}},
    ("org_id", "name", "level", "has_children"))}}, ("orgs",))
CONTEST_SUMMARY = _obj({"contest_id": S, "title": S, "starts_at": I, "ends_at": I, "status": S})
IMPORT_OUT = _obj({"imported": I, "updated": I, "errors": {"type": "array"}}, ("imported", "updated", "errors"))
CONTEST_BODY = _obj({
    "contest_id": S, "title": S, "description": S, "starts_at": {"oneOf": [I, S]}, "ends_at": {"oneOf": [I, S]},
    "timezone": S, "time_limit_s": I, "question_time_limit_s": I, "attempts_per_day": I, "attempts_total": I,
    "counted_per_day": I, "ranking": {"enum": ["best", "sum"]}, "feedback": {"enum": ["immediate", "end", "none"]},
    "paper": _obj({"draw": {"type": "array", "items": _obj({"category": NS, "difficulty": NI, "count": I})},
                   "shuffle_questions": B, "shuffle_options": B}),
    "scoring": _obj({"partial_credit": B, "time_bonus": {"type": ["object", "null"]},
                     "streak_bonus": {"type": ["object", "null"]}}),
    "shards": I, "min_answer_ms": I,
    "mode": {"enum": ["paper", "challenge"], "description": "challenge: one question at a time to the first wrong"
             " answer; fixed once published"},
    "max_questions": {**I, "description": "challenge: the longest run (default and maximum: the draw's count)"},
    "review_after_end": {**B, "description": "feedback none: answers reviewable after the end (default true)"},
    "certificate": {"type": ["object", "null"], "properties": {"min_score": I, "title": S}},
})
REVIEW_OUT = _obj({"attempt_id": S, "contest_id": S, "mode": S, "score": I, "correct_count": I, "question_count": I,
                   "wrong_count": I, "items": {"type": "array", "description": "wrong and unanswered first",
                                               "items": _obj({
                       "index": I, "question_id": S, "type": S, "stem": S, "points": I,
                       "options": {"type": "array", "items": _obj({"key": S, "text": S})},
                       "choice": {"oneOf": [CHOICE, {"type": "null"}]}, "correct_choice": CHOICE, "correct": B,
                       "points_awarded": I, "explanation": S})}},
                  ("attempt_id", "items"))
CERTIFICATE = _obj({"valid": B, "serial": S, "contest_id": S, "contest": S, "title": S, "masked_name": S, "score": I,
                    "rank": NI, "issued_at": I, "reason": {**S, "description": "why it is not valid"}},
                   ("valid", "contest", "masked_name", "score", "issued_at"))
STATS = _obj({"registrants": I, "participants": I, "attempts_started": I, "attempts_finished": I, "answers": I,
              "answers_per_s": N, "accuracy": N, "flagged_answers": I, "voided_attempts": I,
              "questions": {"type": "array", "items": _obj({"question_id": S, "answers": I, "accuracy": N})}})
FILE = "multipart/form-data"
PHONE = {"type": "string", "description": "mainland mobile; spaces, dashes and +86/86 are stripped"}
CODE = {"type": "string", "pattern": "^[0-9]{6}$"}
STAFF_ACCOUNT = _obj({"staff_id": S, "phone": S, "name": S, "org_id": S, "org_name": NS,
                      "role": {"enum": ["organizer", "admin"]}, "disabled": B, "version": I, "created_at": I,
                      "updated_at": I}, ("staff_id", "phone", "name", "org_id", "role", "disabled"))

P, ADM, ORG = ("participant",), ("admin",), ("admin", "organizer")
BOARD_Q = ("board", "date", "org_id", "offset", "limit")

ROUTES: list[Route] = [
    Route("POST", "/api/v1/auth/register", identity.register, "Open registration",
          body=_obj({"name": S, "phone": PHONE, "org_id": {"type": "string", "description": "a unit that takes members"
                                                                     " (a leaf, or accepts_members in the import)"},
                     "code": {**CODE, "description": "SMS code of purpose register; required with"
                                                     " QUIZ_REGISTER_REQUIRES_SMS=1"}},
                    ("name", "phone", "org_id")), response=TOKEN, status=201,
          errors=(400, 401, 409, 413, 429), tag="identity"),
    Route("POST", "/api/v1/auth/ticket", identity.ticket, "Exchange a gateway ticket for a token",
          body=_obj({"ticket": S}, ("ticket",)), response=TOKEN, errors=(400, 401, 429), tag="identity"),
    Route("POST", "/api/v1/auth/sms/send", signin.sms_send,
          "Send a 6-digit sign-in code by SMS (one per phone per 60 s, a daily cap per phone, per-IP limits)",
          body=_obj({"phone": PHONE, "purpose": {"enum": ["login", "register", "staff"]}}, ("phone",)),
          response=_obj({"resend_after_s": I, "expires_in_s": I}, ("resend_after_s",)), status=202,
          errors=(400, 413, 429, 503), tag="identity"),
    Route("POST", "/api/v1/auth/sms/login", signin.sms_login,
          "Sign in with a code (purpose login): the phone's user, same user_id on every device",
          body=_obj({"phone": PHONE, "code": CODE}, ("phone", "code")), response=TOKEN,
          errors=(400, 401, 404, 429, 503), tag="identity"),
    Route("POST", "/api/v1/auth/refresh", signin.refresh, "A fresh token for a valid one", auth=P + ORG,
          response=_obj({"token": S, "expires_at": I, "user_id": S, "role": S}, ("token", "expires_at")),
          errors=(401, 403), tag="identity"),
    Route("POST", "/api/v1/auth/staff/login", signin.staff_login,
          "Staff sign-in with a code (purpose staff): a token with the account's role and org",
          body=_obj({"phone": PHONE, "code": CODE}, ("phone", "code")),
          response=_obj({"token": S, "role": S, "org_id": S, "org_name": NS, "name": S, "expires_at": I,
                         "staff_id": S}, ("token", "role", "org_id", "expires_at")),
          errors=(400, 401, 403, 429), tag="identity"),
    Route("GET", "/api/v1/me", identity.me, "Who the token belongs to", auth=P + ORG, errors=(401,), tag="identity"),
    Route("GET", "/api/v1/orgs", identity.orgs_public,
          "Org picker: children of an org (parent_id; roots without it), or a search by name or pinyin initials"
          " (q, at most 20, within parent_id when given), or every org with its path (all=1, for old clients)",
          query=("parent_id", "q", "limit", "all"), response=ORG_PICK, errors=(400, 404), tag="identity"),
    Route("GET", "/api/v1/contests", participant.contests_list, "Published contests",
          response=_obj({"contests": {"type": "array", "items": CONTEST_SUMMARY}}, ("contests",))),
    Route("GET", "/api/v1/contests/{cid}", participant.contest_detail,
          "Public settings of a contest; with a participant's token also what is left to them", errors=(404,),
          response=_obj({"contest_id": S, "title": S, "starts_at": I, "ends_at": I, "feedback": S, "ranking": S,
                         "attempts_per_day": I, "attempts_total": I, "phase": S,
                         "attempts_left_today": {**NI, "description": "participant only; null: unlimited"},
                         "attempts_left_total": {**NI, "description": "participant only; null: unlimited"},
                         "next_attempt_at": {**NI, "description": "participant only: the next contest day's start"
                                             " when today's attempts are used up"},
                         "best_score": {**NI, "description": "participant only; null before a first finish"}})),
    Route("POST", "/api/v1/contests/{cid}/attempts", participant.start_attempt, "Start (or resume) an attempt",
          auth=P, response=ATTEMPT, status=201, errors=(401, 403, 404, 409, 429)),
    Route("GET", "/api/v1/attempts/{aid}", participant.get_attempt, "An attempt with its answers", auth=P,
          response=ATTEMPT, errors=(401, 404)),
    Route("POST", "/api/v1/attempts/{aid}/answers", participant.answer, "Answer one question", auth=P,
          body=_obj({"index": I, "choice": CHOICE}, ("index", "choice")), response=ANSWER_OUT,
          errors=(400, 401, 404, 409, 410, 429)),
    Route("POST", "/api/v1/attempts/{aid}/finish", participant.finish, "Finish an attempt", auth=P,
          response=FINISH_OUT, errors=(401, 404, 410)),
    Route("POST", "/api/v1/attempts/{aid}/submit", participant.submit, "Answer all, then finish", auth=P,
          body=_obj({"answers": {"type": "array", "items": _obj({"index": I, "choice": CHOICE})}}, ("answers",)),
          response=FINISH_OUT, errors=(400, 401, 404, 410, 429)),
    Route("GET", "/api/v1/attempts/{aid}/review", campaign.attempt_review,
          "错题回顾: a finished attempt's questions with the choice, the answer and the explanation, wrong first"
          " (feedback none: 403 review_closed until the contest ends, or for good without review_after_end)",
          auth=P, response=REVIEW_OUT, errors=(401, 403, 404, 409)),
    Route("GET", "/api/v1/attempts/{aid}/certificate.png", campaign.certificate_png,
          "The certificate of a qualifying finished attempt (PNG, issued on first request; serial in"
          " X-Certificate-Serial)", auth=P, content="image/png", errors=(401, 403, 404, 409, 503)),
    Route("GET", "/api/v1/certificates/{serial}", campaign.certificate_verify,
          "Verify a certificate (public): valid false with the reason when its attempt was voided",
          response=CERTIFICATE, errors=(404,)),
    Route("GET", "/verify/{serial}", campaign.verify_page, "The public verify page the certificate's QR code opens",
          content="text/html", errors=(404,), tag="pages"),
    Route("GET", "/api/v1/contests/{cid}/leaderboard", boards.leaderboard, "A page of a leaderboard",
          query=BOARD_Q, response=BOARD, errors=(400, 404), tag="leaderboards"),
    Route("GET", "/api/v1/contests/{cid}/leaderboard/me", boards.leaderboard_me, "My rank and my neighbours",
          auth=P, query=("board", "date", "org_id", "around"), response=ME, errors=(400, 401, 404),
          tag="leaderboards"),
    Route("GET", "/api/v1/contests/{cid}/orgs", boards.org_ranking, "Org rankings",
          query=("parent_id", "level", "sort", "offset", "limit"), response=ORGS, errors=(400, 404),
          tag="leaderboards"),
    Route("GET", "/api/v1/contests/{cid}/live", boards.live, "Live feed (Server-Sent Events)", errors=(404,),
          content="text/event-stream", tag="leaderboards"),
    Route("POST", "/api/v1/admin/orgs/import", admin.import_orgs, "Import the org tree (CSV or JSON)", auth=ADM,
          body={"type": "string", "format": "binary"}, response=IMPORT_OUT, errors=(400, 401, 403, 413), tag="admin"),
    Route("POST", "/api/v1/admin/questions/import", admin.import_questions, "Import questions (json/csv/xlsx)",
          auth=ADM, body={"type": "string", "format": "binary"}, response=IMPORT_OUT, errors=(400, 401, 403, 413),
          tag="admin"),
    Route("POST", "/api/v1/admin/organizers/import", organizers.organizers_import,
          "Import organizer accounts (CSV/XLSX: phone, name, org_id, role; Chinese or English headers; all or"
          " nothing); an admin of a subtree imports only into it", auth=ADM,
          body={"type": "string", "format": "binary"}, response=IMPORT_OUT, errors=(400, 401, 403, 413),
          tag="admin"),
    Route("GET", "/api/v1/admin/organizers", organizers.organizers_list,
          "Organizer accounts within the caller's subtree", auth=ADM, query=("org_id", "q", "offset", "limit"),
          response=_obj({"total": I, "organizers": {"type": "array", "items": STAFF_ACCOUNT}},
                        ("total", "organizers")), errors=(400, 401, 403, 404), tag="admin"),
    Route("GET", "/api/v1/admin/organizers/audit", organizers.organizers_audit,
          "Audit log of staff sign-ins and account changes, newest first", auth=ADM, query=("limit",),
          response=_obj({"entries": {"type": "array", "items": {"type": "object"}}}, ("entries",)),
          errors=(400, 401, 403), tag="admin"),
    Route("PATCH", "/api/v1/admin/organizers/{sid}", organizers.organizers_patch,
          "Disable or enable an organizer account (its tokens stop working within a minute)", auth=ADM,
          body=_obj({"disabled": B}, ("disabled",)), response=STAFF_ACCOUNT, errors=(400, 401, 403, 404, 409),
          tag="admin"),
    Route("GET", "/api/v1/admin/questions", admin.questions_list, "Browse and search the bank", auth=ADM,
          query=("q", "category", "type", "offset", "limit"), errors=(400, 401, 403), tag="admin"),
    Route("GET", "/api/v1/admin/questions/summary", admin.questions_summary, "Bank counts by category/difficulty",
          auth=ADM, errors=(401, 403), tag="admin"),
    Route("POST", "/api/v1/admin/paper/check", admin.paper_check, "Check draw rules against the bank", auth=ADM,
          body=_obj({"draw": {"type": "array"}}, ("draw",)), errors=(400, 401, 403), tag="admin"),
    Route("GET", "/api/v1/admin/contests", admin.contests_admin_list, "All contests with full settings", auth=ORG,
          errors=(401, 403), tag="admin"),
    Route("POST", "/api/v1/admin/contests", admin.contest_create, "Create a contest (draft)", auth=ADM,
          body=CONTEST_BODY, response=_obj({"contest_id": S, "status": S}, ("contest_id", "status")), status=201,
          errors=(400, 401, 403, 409), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}", admin.contest_get, "A contest's full settings", auth=ORG,
          errors=(401, 403, 404), tag="admin"),
    Route("PATCH", "/api/v1/admin/contests/{cid}", admin.contest_patch, "Change a contest", auth=ADM,
          body=CONTEST_BODY, errors=(400, 401, 403, 404), tag="admin"),
    Route("POST", "/api/v1/admin/contests/{cid}/publish", admin.contest_publish, "Publish a contest", auth=ADM,
          response=_obj({"status": S}, ("status",)), errors=(401, 403, 404), tag="admin"),
    Route("POST", "/api/v1/admin/contests/{cid}/preview", admin.contest_preview, "Draw a paper with answers",
          auth=ADM, query=("seed",), errors=(400, 401, 403, 404), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/stats", admin.stats, "Contest statistics", auth=ORG,
          query=("org_id",), response=STATS, errors=(401, 403, 404), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/timeline", admin.timeline, "Answers and finishes per minute",
          auth=ORG, query=("org_id",), errors=(401, 403, 404), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/export", admin.export, "Export results or answers", auth=ORG,
          query=("what", "format", "org_id", "exclude_flagged"), errors=(400, 401, 403, 404, 503), content="text/csv",
          tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/flagged", review.flagged,
          "Finished attempts with answers faster than the human minimum, with their review", auth=ADM,
          query=("pending", "status"),
          response=_obj({"contest_id": S, "total": I, "entries": {"type": "array", "items": _obj(
              {"attempt_id": S, "user_id": S, "name": NS, "org_id": NS, "score": NI, "duration_ms": NI,
               "finished_at": NI, "voided": B, "flagged_answers": I, "review": {"type": ["object", "null"]}})}},
              ("contest_id", "total", "entries")), errors=(400, 401, 403, 404, 503), tag="admin"),
    Route("POST", "/api/v1/admin/contests/{cid}/attempts/{aid}/review", review.review,
          "Void, restore or clear an attempt (boards and org rollups move at once; audit-logged)", auth=ADM,
          body=_obj({"action": {"enum": ["void", "restore", "clear"]}, "reason": S}, ("action",)),
          response=_obj({"attempt_id": S, "user_id": S, "action": S, "changed": B, "board_score_before": NI,
                         "board_score_after": NI}, ("attempt_id", "action", "changed")),
          errors=(400, 401, 403, 404, 409), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/reviews", review.reviews_log, "The review audit log", auth=ADM,
          response=_obj({"contest_id": S, "entries": {"type": "array"}}, ("contest_id", "entries")),
          errors=(401, 403, 404, 503), tag="admin"),
    Route("POST", "/api/v1/admin/contests/{cid}/rebuild", admin.rebuild, "Rebuild Redis state from the database",
          auth=ADM, errors=(401, 403, 404, 503), tag="admin"),
    Route("GET", "/healthz", ops.healthz, "Process alive", tag="operations"),
    Route("GET", "/readyz", ops.readyz, "Redis and the database reachable; flusher backlog", errors=(503,),
          tag="operations"),
    Route("GET", "/metrics", ops.metrics, "Prometheus metrics", content="text/plain", tag="operations"),
    Route("GET", "/api/openapi.json", ops.openapi, "This document", tag="operations"),
]


# the organizers' campaign tools (issue 16) live in their own module, imported here once Route exists
from contest.web.organizer_routes import ORGANIZER_ROUTES  # noqa: E402

ROUTES.extend(ORGANIZER_ROUTES)


def setup_routes(app: web.Application) -> None:
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    ops.setup_pages(app)
    setup_signin(app)
