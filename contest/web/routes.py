"""The route table: one list that both registers the handlers and generates /api/openapi.json."""

from __future__ import annotations

from aiohttp import web

from contest.web.openapi import OPENAPI_SPEC, build_spec
from contest.web.organizer_routes import ORGANIZER_ROUTES
from contest.web.schema import (
    ADMIN,
    BOOL,
    BOOL_OR_NULL,
    INT,
    INT_OR_NULL,
    NUM,
    PARTICIPANT,
    STAFF,
    STR,
    STR_OR_NULL,
    Route,
    obj,
)
from contest.web.signin import setup_signin
from contest.web.views import admin, boards, campaign, identity, ops, organizers, participant, review, signin

__all__ = ["ROUTES", "Route", "setup_routes"]

CHOICE = {"oneOf": [STR, {"type": "array", "items": STR}]}
TOKEN = obj({"user_id": STR, "token": STR, "expires_at": INT}, ("user_id", "token", "expires_at"))
QUESTION = obj({"index": INT, "type": STR, "stem": STR, "points": INT,
                "options": {"type": "array", "items": obj({"key": STR, "text": STR})}})
ATTEMPT = obj({"attempt_id": STR, "contest_id": STR, "started_at": INT, "deadline_at": INT,
               "questions": {"type": "array", "items": QUESTION},
               "answered": {"type": "array", "items": obj({"index": INT, "choice": CHOICE})},
               "score": INT_OR_NULL, "finished": BOOL, "mode": {"enum": ["paper", "challenge"]},
               "current": {**INT_OR_NULL,
                           "description": "challenge: the index being served (questions holds those served)"},
               "max_questions": {**INT, "description": "challenge: the longest run"}},
              ("attempt_id", "contest_id", "started_at", "deadline_at", "questions"))
ANSWER_OUT = obj({"index": INT, "correct": BOOL_OR_NULL, "points_awarded": INT_OR_NULL, "score": INT_OR_NULL,
                  "correct_choice": CHOICE,
                  "next": {"oneOf": [QUESTION, {"type": "null"}],
                           "description": "challenge: the next question, null when the run is over"},
                  "finished": {**BOOL, "description": "challenge: the run is over (the attempt is finished)"},
                  "result": {"type": "object", "description": "challenge, when finished: the finish result"}},
                 ("index", "correct", "points_awarded", "score"))
FINISH_OUT = obj({"attempt_id": STR, "score": INT, "correct_count": INT, "question_count": INT, "duration_ms": INT,
                  "rank": INT_OR_NULL, "best_score": INT_OR_NULL},
                 ("attempt_id", "score", "correct_count", "question_count", "duration_ms", "rank", "best_score"))
ENTRY = obj({"rank": INT, "user_id": STR, "name": STR, "org_id": STR, "org_name": STR_OR_NULL, "score": INT,
             "duration_ms": INT})
BOARD = obj({"board": STR, "total": INT, "entries": {"type": "array", "items": ENTRY}}, ("board", "total", "entries"))
ME = obj({"rank": INT_OR_NULL, "score": INT_OR_NULL, "duration_ms": INT_OR_NULL, "total": INT,
          "percentile": {"type": ["number", "null"]},
          "around": {"type": "array", "items": ENTRY}}, ("rank", "total", "around"))
ORG_ROW = obj({"rank": INT, "org_id": STR, "name": STR, "level": INT, "members": INT, "participants": INT,
               "participation_rate": NUM, "attempts": INT, "total_score": INT, "avg_score": NUM})
ORGS = obj({"entries": {"type": "array", "items": ORG_ROW}}, ("entries",))
ORG_PICK = obj({"orgs": {"type": "array", "items": obj(
    {"org_id": STR, "name": STR, "level": INT, "has_children": BOOL,
     "path": {"type": "array", "items": STR, "description": "names from the root down to this org (q, all)"},
     "path_ids": {"type": "array", "items": STR, "description": "ids from the root down to this org (q)"}},
    ("org_id", "name", "level", "has_children"))}}, ("orgs",))
CONTEST_SUMMARY = obj({"contest_id": STR, "title": STR, "starts_at": INT, "ends_at": INT, "status": STR})
IMPORT_OUT = obj({"imported": INT, "updated": INT, "errors": {"type": "array"}}, ("imported", "updated", "errors"))
CONTEST_BODY = obj({
    "contest_id": STR, "title": STR, "description": STR,
    "starts_at": {"oneOf": [INT, STR]}, "ends_at": {"oneOf": [INT, STR]},
    "timezone": STR, "time_limit_s": INT, "question_time_limit_s": INT, "attempts_per_day": INT, "attempts_total": INT,
    "counted_per_day": INT, "ranking": {"enum": ["best", "sum"]}, "feedback": {"enum": ["immediate", "end", "none"]},
    "paper": obj({"draw": {"type": "array",
                           "items": obj({"category": STR_OR_NULL, "difficulty": INT_OR_NULL, "count": INT})},
                  "shuffle_questions": BOOL, "shuffle_options": BOOL}),
    "scoring": obj({"partial_credit": BOOL, "time_bonus": {"type": ["object", "null"]},
                    "streak_bonus": {"type": ["object", "null"]}}),
    "shards": INT, "min_answer_ms": INT,
    "mode": {"enum": ["paper", "challenge"], "description": "challenge: one question at a time to the first wrong"
             " answer; fixed once published"},
    "max_questions": {**INT, "description": "challenge: the longest run (default and maximum: the draw's count)"},
    "review_after_end": {**BOOL, "description": "feedback none: answers reviewable after the end (default true)"},
    "certificate": {"type": ["object", "null"], "properties": {"min_score": INT, "title": STR}},
})
REVIEW_OUT = obj({"attempt_id": STR, "contest_id": STR, "mode": STR, "score": INT, "correct_count": INT,
                  "question_count": INT, "wrong_count": INT,
                  "items": {"type": "array", "description": "wrong and unanswered first", "items": obj({
                       "index": INT, "question_id": STR, "type": STR, "stem": STR, "points": INT,
                       "options": {"type": "array", "items": obj({"key": STR, "text": STR})},
                       "choice": {"oneOf": [CHOICE, {"type": "null"}]}, "correct_choice": CHOICE, "correct": BOOL,
                       "points_awarded": INT, "explanation": STR})}},
                 ("attempt_id", "items"))
CERTIFICATE = obj({"valid": BOOL, "serial": STR, "contest_id": STR, "contest": STR, "title": STR, "masked_name": STR,
                   "score": INT, "rank": INT_OR_NULL, "issued_at": INT,
                   "reason": {**STR, "description": "why it is not valid"}},
                  ("valid", "contest", "masked_name", "score", "issued_at"))
STATS = obj({"registrants": INT, "participants": INT, "attempts_started": INT, "attempts_finished": INT, "answers": INT,
             "answers_per_s": NUM, "accuracy": NUM, "flagged_answers": INT, "voided_attempts": INT,
             "questions": {"type": "array", "items": obj({"question_id": STR, "answers": INT, "accuracy": NUM})}})
PHONE = {"type": "string", "description": "mainland mobile; spaces, dashes and +86/86 are stripped"}
CODE = {"type": "string", "pattern": "^[0-9]{6}$"}
STAFF_ACCOUNT = obj({"staff_id": STR, "phone": STR, "name": STR, "org_id": STR, "org_name": STR_OR_NULL,
                     "role": {"enum": ["organizer", "admin"]}, "disabled": BOOL, "version": INT, "created_at": INT,
                     "updated_at": INT}, ("staff_id", "phone", "name", "org_id", "role", "disabled"))

BOARD_Q = ("board", "date", "org_id", "offset", "limit")

ROUTES: list[Route] = [
    Route("POST", "/api/v1/auth/register", identity.register, "Open registration",
          body=obj({"name": STR, "phone": PHONE, "org_id": {"type": "string", "description": "a unit that takes members"
                                                                     " (a leaf, or accepts_members in the import)"},
                    "code": {**CODE, "description": "SMS code of purpose register; required with"
                                                    " QUIZ_REGISTER_REQUIRES_SMS=1"}},
                   ("name", "phone", "org_id")), response=TOKEN, status=201,
          errors=(400, 401, 409, 413, 429), tag="identity"),
    Route("POST", "/api/v1/auth/ticket", identity.ticket, "Exchange a gateway ticket for a token",
          body=obj({"ticket": STR}, ("ticket",)), response=TOKEN, errors=(400, 401, 429), tag="identity"),
    Route("POST", "/api/v1/auth/sms/send", signin.sms_send,
          "Send a 6-digit sign-in code by SMS (one per phone per 60 s, a daily cap per phone, per-IP limits)",
          body=obj({"phone": PHONE, "purpose": {"enum": ["login", "register", "staff"]}}, ("phone",)),
          response=obj({"resend_after_s": INT, "expires_in_s": INT}, ("resend_after_s",)), status=202,
          errors=(400, 413, 429, 503), tag="identity"),
    Route("POST", "/api/v1/auth/sms/login", signin.sms_login,
          "Sign in with a code (purpose login): the phone's user, same user_id on every device",
          body=obj({"phone": PHONE, "code": CODE}, ("phone", "code")), response=TOKEN,
          errors=(400, 401, 404, 429, 503), tag="identity"),
    Route("POST", "/api/v1/auth/refresh", signin.refresh, "A fresh token for a valid one", auth=PARTICIPANT + STAFF,
          response=obj({"token": STR, "expires_at": INT, "user_id": STR, "role": STR}, ("token", "expires_at")),
          errors=(401, 403), tag="identity"),
    Route("POST", "/api/v1/auth/staff/login", signin.staff_login,
          "Staff sign-in with a code (purpose staff): a token with the account's role and org",
          body=obj({"phone": PHONE, "code": CODE}, ("phone", "code")),
          response=obj({"token": STR, "role": STR, "org_id": STR, "org_name": STR_OR_NULL, "name": STR,
                        "expires_at": INT, "staff_id": STR}, ("token", "role", "org_id", "expires_at")),
          errors=(400, 401, 403, 429), tag="identity"),
    Route("GET", "/api/v1/me", identity.me, "Who the token belongs to", auth=PARTICIPANT + STAFF, errors=(401,),
          tag="identity"),
    Route("GET", "/api/v1/orgs", identity.orgs_public,
          "Org picker: children of an org (parent_id; roots without it), or a search by name or pinyin initials"
          " (q, at most 20, within parent_id when given), or every org with its path (all=1, for old clients)",
          query=("parent_id", "q", "limit", "all"), response=ORG_PICK, errors=(400, 404), tag="identity"),
    Route("GET", "/api/v1/contests", participant.contests_list, "Published contests",
          response=obj({"contests": {"type": "array", "items": CONTEST_SUMMARY}}, ("contests",))),
    Route("GET", "/api/v1/contests/{cid}", participant.contest_detail,
          "Public settings of a contest; with a participant's token also what is left to them", errors=(404,),
          response=obj({"contest_id": STR, "title": STR, "starts_at": INT, "ends_at": INT, "feedback": STR,
                        "ranking": STR, "attempts_per_day": INT, "attempts_total": INT, "phase": STR,
                        "attempts_left_today": {**INT_OR_NULL, "description": "participant only; null: unlimited"},
                        "attempts_left_total": {**INT_OR_NULL, "description": "participant only; null: unlimited"},
                        "next_attempt_at": {**INT_OR_NULL,
                                            "description": "participant only: the next contest day's start"
                                            " when today's attempts are used up"},
                        "best_score": {**INT_OR_NULL, "description": "participant only; null before a first finish"}})),
    Route("POST", "/api/v1/contests/{cid}/attempts", participant.start_attempt, "Start (or resume) an attempt",
          auth=PARTICIPANT, response=ATTEMPT, status=201, errors=(401, 403, 404, 409, 429)),
    Route("GET", "/api/v1/attempts/{aid}", participant.get_attempt, "An attempt with its answers", auth=PARTICIPANT,
          response=ATTEMPT, errors=(401, 404)),
    Route("POST", "/api/v1/attempts/{aid}/answers", participant.answer, "Answer one question", auth=PARTICIPANT,
          body=obj({"index": INT, "choice": CHOICE}, ("index", "choice")), response=ANSWER_OUT,
          errors=(400, 401, 404, 409, 410, 429)),
    Route("POST", "/api/v1/attempts/{aid}/finish", participant.finish, "Finish an attempt", auth=PARTICIPANT,
          response=FINISH_OUT, errors=(401, 404, 410)),
    Route("POST", "/api/v1/attempts/{aid}/submit", participant.submit, "Answer all, then finish", auth=PARTICIPANT,
          body=obj({"answers": {"type": "array", "items": obj({"index": INT, "choice": CHOICE})}}, ("answers",)),
          response=FINISH_OUT, errors=(400, 401, 404, 410, 429)),
    Route("GET", "/api/v1/attempts/{aid}/review", campaign.attempt_review,
          "错题回顾: a finished attempt's questions with the choice, the answer and the explanation, wrong first"
          " (feedback none: 403 review_closed until the contest ends, or for good without review_after_end)",
          auth=PARTICIPANT, response=REVIEW_OUT, errors=(401, 403, 404, 409)),
    Route("GET", "/api/v1/attempts/{aid}/certificate.png", campaign.certificate_png,
          "The certificate of a qualifying finished attempt (PNG, issued on first request; serial in"
          " X-Certificate-Serial)", auth=PARTICIPANT, content="image/png", errors=(401, 403, 404, 409, 503)),
    Route("GET", "/api/v1/certificates/{serial}", campaign.certificate_verify,
          "Verify a certificate (public): valid false with the reason when its attempt was voided",
          response=CERTIFICATE, errors=(404,)),
    Route("GET", "/verify/{serial}", campaign.verify_page, "The public verify page the certificate's QR code opens",
          content="text/html", errors=(404,), tag="pages"),
    Route("GET", "/api/v1/contests/{cid}/leaderboard", boards.leaderboard, "A page of a leaderboard",
          query=BOARD_Q, response=BOARD, errors=(400, 404), tag="leaderboards"),
    Route("GET", "/api/v1/contests/{cid}/leaderboard/me", boards.leaderboard_me, "My rank and my neighbours",
          auth=PARTICIPANT, query=("board", "date", "org_id", "around"), response=ME, errors=(400, 401, 404),
          tag="leaderboards"),
    Route("GET", "/api/v1/contests/{cid}/orgs", boards.org_ranking, "Org rankings",
          query=("parent_id", "level", "sort", "offset", "limit"), response=ORGS, errors=(400, 404),
          tag="leaderboards"),
    Route("GET", "/api/v1/contests/{cid}/live", boards.live, "Live feed (Server-Sent Events)", errors=(404,),
          content="text/event-stream", tag="leaderboards"),
    Route("POST", "/api/v1/admin/orgs/import", admin.import_orgs, "Import the org tree (CSV or JSON)", auth=ADMIN,
          body={"type": "string", "format": "binary"}, response=IMPORT_OUT, errors=(400, 401, 403, 413), tag="admin"),
    Route("POST", "/api/v1/admin/questions/import", admin.import_questions, "Import questions (json/csv/xlsx)",
          auth=ADMIN, body={"type": "string", "format": "binary"}, response=IMPORT_OUT, errors=(400, 401, 403, 413),
          tag="admin"),
    Route("POST", "/api/v1/admin/organizers/import", organizers.organizers_import,
          "Import organizer accounts (CSV/XLSX: phone, name, org_id, role; Chinese or English headers; all or"
          " nothing); an admin of a subtree imports only into it", auth=ADMIN,
          body={"type": "string", "format": "binary"}, response=IMPORT_OUT, errors=(400, 401, 403, 413),
          tag="admin"),
    Route("GET", "/api/v1/admin/organizers", organizers.organizers_list,
          "Organizer accounts within the caller's subtree", auth=ADMIN, query=("org_id", "q", "offset", "limit"),
          response=obj({"total": INT, "organizers": {"type": "array", "items": STAFF_ACCOUNT}},
                       ("total", "organizers")), errors=(400, 401, 403, 404), tag="admin"),
    Route("GET", "/api/v1/admin/organizers/audit", organizers.organizers_audit,
          "Audit log of staff sign-ins and account changes, newest first", auth=ADMIN, query=("limit",),
          response=obj({"entries": {"type": "array", "items": {"type": "object"}}}, ("entries",)),
          errors=(400, 401, 403), tag="admin"),
    Route("PATCH", "/api/v1/admin/organizers/{sid}", organizers.organizers_patch,
          "Disable or enable an organizer account (its tokens stop working within a minute)", auth=ADMIN,
          body=obj({"disabled": BOOL}, ("disabled",)), response=STAFF_ACCOUNT, errors=(400, 401, 403, 404, 409),
          tag="admin"),
    Route("GET", "/api/v1/admin/questions", admin.questions_list, "Browse and search the bank", auth=ADMIN,
          query=("q", "category", "type", "offset", "limit"), errors=(400, 401, 403), tag="admin"),
    Route("GET", "/api/v1/admin/questions/summary", admin.questions_summary, "Bank counts by category/difficulty",
          auth=ADMIN, errors=(401, 403), tag="admin"),
    Route("POST", "/api/v1/admin/paper/check", admin.paper_check, "Check draw rules against the bank", auth=ADMIN,
          body=obj({"draw": {"type": "array"}}, ("draw",)), errors=(400, 401, 403), tag="admin"),
    Route("GET", "/api/v1/admin/contests", admin.contests_admin_list, "All contests with full settings", auth=STAFF,
          errors=(401, 403), tag="admin"),
    Route("POST", "/api/v1/admin/contests", admin.contest_create, "Create a contest (draft)", auth=ADMIN,
          body=CONTEST_BODY, response=obj({"contest_id": STR, "status": STR}, ("contest_id", "status")), status=201,
          errors=(400, 401, 403, 409), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}", admin.contest_get, "A contest's full settings", auth=STAFF,
          errors=(401, 403, 404), tag="admin"),
    Route("PATCH", "/api/v1/admin/contests/{cid}", admin.contest_patch, "Change a contest", auth=ADMIN,
          body=CONTEST_BODY, errors=(400, 401, 403, 404), tag="admin"),
    Route("POST", "/api/v1/admin/contests/{cid}/publish", admin.contest_publish, "Publish a contest", auth=ADMIN,
          response=obj({"status": STR}, ("status",)), errors=(401, 403, 404), tag="admin"),
    Route("POST", "/api/v1/admin/contests/{cid}/preview", admin.contest_preview, "Draw a paper with answers",
          auth=ADMIN, query=("seed",), errors=(400, 401, 403, 404), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/stats", admin.stats, "Contest statistics", auth=STAFF,
          query=("org_id",), response=STATS, errors=(401, 403, 404), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/timeline", admin.timeline, "Answers and finishes per minute",
          auth=STAFF, query=("org_id",), errors=(401, 403, 404), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/export", admin.export, "Export results or answers", auth=STAFF,
          query=("what", "format", "org_id", "exclude_flagged"), errors=(400, 401, 403, 404, 503), content="text/csv",
          tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/flagged", review.flagged,
          "Finished attempts with answers faster than the human minimum, with their review", auth=ADMIN,
          query=("pending", "status"),
          response=obj({"contest_id": STR, "total": INT, "entries": {"type": "array", "items": obj(
              {"attempt_id": STR, "user_id": STR, "name": STR_OR_NULL, "org_id": STR_OR_NULL, "score": INT_OR_NULL,
               "duration_ms": INT_OR_NULL, "finished_at": INT_OR_NULL, "voided": BOOL, "flagged_answers": INT,
               "review": {"type": ["object", "null"]}})}},
              ("contest_id", "total", "entries")), errors=(400, 401, 403, 404, 503), tag="admin"),
    Route("POST", "/api/v1/admin/contests/{cid}/attempts/{aid}/review", review.review,
          "Void, restore or clear an attempt (boards and org rollups move at once; audit-logged)", auth=ADMIN,
          body=obj({"action": {"enum": ["void", "restore", "clear"]}, "reason": STR}, ("action",)),
          response=obj({"attempt_id": STR, "user_id": STR, "action": STR, "changed": BOOL,
                        "board_score_before": INT_OR_NULL, "board_score_after": INT_OR_NULL},
                       ("attempt_id", "action", "changed")),
          errors=(400, 401, 403, 404, 409), tag="admin"),
    Route("GET", "/api/v1/admin/contests/{cid}/reviews", review.reviews_log, "The review audit log", auth=ADMIN,
          response=obj({"contest_id": STR, "entries": {"type": "array"}}, ("contest_id", "entries")),
          errors=(401, 403, 404, 503), tag="admin"),
    Route("POST", "/api/v1/admin/contests/{cid}/rebuild", admin.rebuild, "Rebuild Redis state from the database",
          auth=ADMIN, errors=(401, 403, 404, 503), tag="admin"),
    Route("GET", "/healthz", ops.healthz, "Process alive", tag="operations"),
    Route("GET", "/readyz", ops.readyz, "Redis and the database reachable; flusher backlog", errors=(503,),
          tag="operations"),
    Route("GET", "/metrics", ops.metrics, "Prometheus metrics", content="text/plain", tag="operations"),
    Route("GET", "/api/openapi.json", ops.openapi, "This document", tag="operations"),
    # the organizers' campaign tools (issue 16), kept in their own module
    *ORGANIZER_ROUTES,
]


def setup_routes(app: web.Application) -> None:
    app[OPENAPI_SPEC] = build_spec(ROUTES)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, route.handler)
    ops.setup_pages(app)
    setup_signin(app)
