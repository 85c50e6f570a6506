"""Admin and organizer endpoints: imports, the bank, contests, stats, exports, rebuild."""

from __future__ import annotations

import asyncio
import time
import unicodedata
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from contest.appkeys import CATALOG, PLAY, REDIS, RUNNER, SETTINGS, STORAGE
from contest.auth import Claims
from contest.contests import validate_contest
from contest.export import HEADERS, export_rows
from contest.orgtree import parse_orgs
from contest.review import FilteredResults
from contest.stats import read_counters, read_question_stats, read_subtree, read_timeline
from contest.storage.base import ResultRows
from contest.templates import TEMPLATES, render_template
from contest.validation import Fields
from contest.web.access import require
from contest.web.errors import ApiError
from contest.web.jsonio import json_response, read_body, read_json
from contest.workers.rebuild import rebuild_with
from leaderboard import keys
from leaderboard.orgs import org_counters
from question_bank import (
    DrawRule,
    ImportFormatError,
    PaperError,
    check_rules,
    draw_paper,
    parse_questions,
    render_question,
    shown_answer,
    validate_rows,
)
from question_bank.versions import base_id, latest_version, version_of

__all__ = [
    "contest_create", "contest_get", "contest_patch", "contest_preview", "contest_publish", "contests_admin_list",
    "export", "import_orgs", "import_questions", "paper_check", "question_create", "question_delete",
    "question_update", "questions_list", "questions_summary", "rebuild",
    "stats", "template", "timeline",
]


async def _upload(request: web.Request) -> tuple[bytes, str | None, str | None]:
    """The uploaded file: multipart field ``file``, or the raw body with its content type."""
    limit = request.config_dict[SETTINGS].import_max_bytes
    if request.content_type.startswith("multipart/"):
        try:
            return await _multipart_file(request, limit)
        except (ValueError, HttpProcessingError) as exc:  # no boundary, garbled part headers...
            raise ApiError(400, "validation_failed", f"malformed multipart body: {exc}",
                           {"fields": {"file": "send a well-formed multipart/form-data body"}}) from None
    data = await read_body(request, limit)
    return data, request.query.get("filename"), request.content_type


async def _multipart_file(request: web.Request, limit: int) -> tuple[bytes, str | None, str | None]:
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.name == "file":
            data = bytearray()
            while chunk := await part.read_chunk(1 << 16):
                data.extend(chunk)
                if len(data) > limit:
                    raise ApiError(413, "payload_too_large", f"the file is larger than {limit} bytes")
            return bytes(data), part.filename, part.headers.get("Content-Type")
    raise ApiError(400, "validation_failed", "multipart upload needs a field named file",
                   {"fields": {"file": "is required"}})


def _file_error(exc: Exception) -> ApiError:
    """A file that cannot be read at all: one row-0 error with a stable code."""
    code = getattr(exc, "code", "file_format")
    params = {**getattr(exc, "params", {}), "detail": str(exc)}
    return ApiError(400, "validation_failed", str(exc),
                    {"errors": [{"row": 0, "column": "", "message": str(exc), "code": code, "params": params}]})


def _row_errors(errors: list[Any]) -> ApiError:
    items = [e.to_dict() for e in errors]
    return ApiError(400, "validation_failed", f"{len(items)} row error(s); nothing was imported",
                    {"errors": items, "imported": 0})


async def import_orgs(request: web.Request) -> web.Response:
    require(request, "admin")
    data, filename, ctype = await _upload(request)
    catalog = request.config_dict[CATALOG]
    try:
        orgs, errors = await asyncio.to_thread(parse_orgs, data, filename=filename, content_type=ctype,
                                               existing=catalog.orgs)
    except (ImportFormatError, ValueError) as exc:
        raise _file_error(exc) from None
    if errors:
        raise _row_errors(errors)
    before = {o.org_id for o in orgs if o.org_id in catalog.orgs}
    tree = await catalog.install_orgs(orgs)
    return json_response({"imported": len(orgs) - len(before), "updated": len(before), "errors": [],
                          "total": len(tree)})


async def import_questions(request: web.Request) -> web.Response:
    require(request, "admin")
    data, filename, ctype = await _upload(request)
    try:
        result = await asyncio.to_thread(parse_questions, data, filename=filename, content_type=ctype)
    except ImportFormatError as exc:
        raise _file_error(exc) from None
    if result.errors:
        raise _row_errors(result.errors)
    imported, updated = await request.config_dict[CATALOG].install_questions(result.questions)
    return json_response({"imported": imported, "updated": updated, "errors": [],
                          "total": len(request.config_dict[CATALOG].bank)})


def _question_dict(q: Any) -> dict[str, Any]:
    return {"id": q.id, "type": q.type, "stem": q.stem, "options": list(q.options), "answer": q.answer,
            "category": q.category, "difficulty": q.difficulty, "points": q.points, "explanation": q.explanation,
            "retired": q.retired, "base_id": base_id(q.id), "version": version_of(q.id)}


async def _question_body(request: web.Request, qid: str | None) -> Any:
    """A question from the editor's JSON body, checked exactly as an import row is."""
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "validation_failed", "the body must be a question object",
                       {"fields": {"body": "must be an object"}})
    row = {k: v for k, v in body.items() if k not in ("retired", "version", "base_id")}
    if qid is not None:
        row["id"] = base_id(qid)  # "~N" is the editor's own version suffix; versions are resolved on save
    result = validate_rows([(1, row)])
    if result.errors:
        fields = Fields({})
        for e in result.errors:
            fields.fail(e.column or "body", e.message, e.code, **e.params)
        fields.done()
    return result.questions[0]


async def question_create(request: web.Request) -> web.Response:
    require(request, "admin")
    question = await _question_body(request, None)
    catalog = request.config_dict[CATALOG]
    if latest_version(catalog.bank, question.id) is not None:
        raise ApiError(409, "already_exists", f"question {question.id!r} exists; PUT it instead")
    current = await catalog.edit_question(question)
    return json_response({"question": _question_dict(current)}, status=201)


async def question_update(request: web.Request) -> web.Response:
    """Change a question; one already drawn into an attempt gets a new version instead (the served
    one is retired, so running attempts, reviews and exports keep the text they served)."""
    require(request, "admin")
    qid = request.match_info["qid"]
    catalog = request.config_dict[CATALOG]
    previous = latest_version(catalog.bank, qid)
    if previous is None:
        raise ApiError(404, "not_found", f"no question {qid!r}")
    question = await _question_body(request, previous.id)
    current = await catalog.edit_question(question)
    return json_response({"question": _question_dict(current), "previous_id": previous.id,
                          "versioned": current.id != previous.id})


async def question_delete(request: web.Request) -> web.Response:
    require(request, "admin")
    qid = request.match_info["qid"]
    catalog = request.config_dict[CATALOG]
    if catalog.bank.get(qid) is None:
        raise ApiError(404, "not_found", f"no question {qid!r}")
    result = await catalog.delete_question(qid)
    return json_response({"question_id": qid, "result": result})


def _fold(text: str) -> str:
    """For matching only (search): full-width and case differences compare equal."""
    return unicodedata.normalize("NFKC", text).casefold()


async def questions_list(request: web.Request) -> web.Response:
    require(request, "admin")
    f = Fields(request.query)
    text = _fold(f.text("q", required=False, max_len=200) or "")
    category = f.text("category", required=False, max_len=100)
    qtype = f.choice("type", ("single", "multiple", "judge"))
    offset = f.integer("offset", required=False, minimum=0, default=0) or 0
    limit = f.integer("limit", required=False, minimum=1, maximum=500, default=50) or 50
    f.done()
    found = [q for q in request.config_dict[CATALOG].bank.questions()
             if (not text or text in _fold(q.stem) or text in q.id.lower())
             and (not category or q.category == category) and (not qtype or q.type == qtype)]
    return json_response({"total": len(found), "questions": [_question_dict(q) for q in found[offset:offset + limit]]})


async def questions_summary(request: web.Request) -> web.Response:
    require(request, "admin")
    bank = request.config_dict[CATALOG].bank
    cells = [{"category": c[0], "difficulty": c[1], "count": n} for c, n in sorted(
        bank.cells().items(), key=lambda item: (str(item[0][0]), item[0][1] or 0))]
    return json_response({"total": len(bank), "version": bank.version, "cells": cells})


def _rules(body: dict[str, Any]) -> list[DrawRule]:
    raw = body.get("draw")
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "validation_failed", "draw must be a non-empty list",
                       {"fields": {"draw": "must be a non-empty list of {category, difficulty, count}"}})
    rules = []
    errors = Fields({})
    for i, item in enumerate(raw):
        f = Fields(item if isinstance(item, dict) else {}, prefix=f"draw[{i}].")
        category = f.text("category", required=False, max_len=100)
        difficulty = f.integer("difficulty", required=False, minimum=1, maximum=5)
        count = f.integer("count", minimum=1, maximum=200)
        errors.merge(f)
        rules.append(DrawRule(category or None, difficulty, count or 1))
    if errors.errors:
        raise ApiError(400, "validation_failed", "invalid draw rules",
                       {"fields": errors.errors, "field_errors": errors.codes})
    return rules


async def paper_check(request: web.Request) -> web.Response:
    require(request, "admin")
    rules = _rules(await read_json(request))
    errors = check_rules(request.config_dict[CATALOG].bank, rules)
    return json_response({"ok": not errors, "errors": errors, "questions": sum(r.count for r in rules)})


def _admin_view(contest_config: dict[str, Any]) -> dict[str, Any]:
    return dict(contest_config)


async def contests_admin_list(request: web.Request) -> web.Response:
    claims = require(request, "admin", "organizer")
    del claims
    contests = sorted(request.config_dict[CATALOG].contests.values(), key=lambda c: (c.starts_at, c.contest_id))
    return json_response({"contests": [_admin_view(c.config) for c in contests]})


async def contest_get(request: web.Request) -> web.Response:
    require(request, "admin", "organizer")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    return json_response(_admin_view(contest.config))


async def contest_create(request: web.Request) -> web.Response:
    require(request, "admin")
    body = await read_json(request)
    catalog = request.config_dict[CATALOG]
    config = validate_contest(body, catalog.bank,
                              default_min_answer_ms=request.config_dict[SETTINGS].min_answer_ms)
    if config["contest_id"] in catalog.contests:
        raise ApiError(409, "already_exists", f"contest {config['contest_id']!r} exists; PATCH it instead")
    await catalog.install_contest(config)
    return json_response({"contest_id": config["contest_id"], "status": config["status"],
                          "questions_per_attempt": config["questions_per_attempt"]}, status=201)


async def contest_patch(request: web.Request) -> web.Response:
    require(request, "admin")
    body = await read_json(request)
    catalog = request.config_dict[CATALOG]
    existing = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    config = validate_contest(body, catalog.bank, existing=existing.config)
    await catalog.install_contest(config)
    return json_response(_admin_view(config))


async def contest_publish(request: web.Request) -> web.Response:
    require(request, "admin")
    catalog = request.config_dict[CATALOG]
    existing = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    config = {**existing.config, "status": "published", "published_at": existing.config.get("published_at")
              or int(time.time() * 1000)}
    await catalog.install_contest(config)
    return json_response({"contest_id": config["contest_id"], "status": "published"})


async def contest_preview(request: web.Request) -> web.Response:
    require(request, "admin")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    bank = request.config_dict[CATALOG].bank
    seed = request.query.get("seed") or f"preview-{time.time_ns()}"
    try:
        items = draw_paper(bank, contest.rules, seed, shuffle_questions=contest.shuffle_questions,
                           shuffle_options=contest.shuffle_options)
    except PaperError as exc:
        raise ApiError(400, "validation_failed", str(exc), {"fields": {"paper.draw": str(exc)}}) from None
    questions = []
    for index, item in enumerate(items):
        q = bank[item.question_id]
        rendered = render_question(q, item.perm, index)
        rendered.update(question_id=q.id, answer=shown_answer(q, item.perm), explanation=q.explanation)
        questions.append(rendered)
    return json_response({"seed": seed, "questions": questions})


def _scope(request: web.Request, claims: Claims) -> str | None:
    """The org the caller asked about, checked against an organizer's subtree (404 outside it)."""
    org_id = request.query.get("org_id") or None
    orgs = request.config_dict[CATALOG].orgs
    if org_id is not None and org_id not in orgs:
        raise ApiError(404, "not_found", f"no org {org_id!r}")
    if claims.role == "organizer":
        if not claims.org_id or claims.org_id not in orgs:
            raise ApiError(403, "forbidden", "this organizer token has no valid org scope")
        if org_id is None:
            return claims.org_id
        if claims.org_id not in orgs.path(org_id):
            raise ApiError(403, "forbidden", "that org is outside your scope")
    return org_id


def _subtree_prefix(request: web.Request, org_id: str) -> str | None:
    """The org path prefix of ``org_id``'s subtree, or None when it is the whole tree (the lone
    root): the contest-wide Redis counters then answer without reading the database."""
    orgs = request.config_dict[CATALOG].orgs
    org = orgs.get(org_id)
    if org is not None and org.parent_id is None and len(orgs.children(None)) == 1:
        return None
    return orgs.path_string(org_id)


async def stats(request: web.Request) -> web.Response:
    claims = require(request, "admin", "organizer")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    org_id = _scope(request, claims)
    redis = request.config_dict[REDIS]
    counters = await read_counters(redis, contest.contest_id, contest.shards)
    questions = await read_question_stats(redis, contest.contest_id, contest.shards)
    body: dict[str, Any] = {"contest_id": contest.contest_id, "org_id": org_id, **counters,
                            "questions": questions}
    if org_id is None:
        body["registrants"] = int(await redis.hget(keys.user_registrations(), "") or 0)
    else:
        reg = await redis.hget(keys.user_registrations(), org_id)
        # summed over the contest's shards (a sharded contest keeps org counters per shard)
        ((part, att, _),) = await org_counters(redis, contest.contest_id, [org_id], contest.shards)
        body.update(registrants=int(reg or 0), participants=int(part or 0), attempts_finished=int(att or 0))
        # every figure for the subtree (issue 16 item 8): answers, accuracy and questions from the database
        prefix = _subtree_prefix(request, org_id)
        if prefix is not None:
            scoped = await read_subtree(request.config_dict[STORAGE], contest.contest_id, prefix)
            body.update({k: v for k, v in scoped.items() if k != "timeline"})
    orgs = request.config_dict[CATALOG].orgs
    members = orgs.members_total(org_id) if org_id else sum(orgs.members_total(o.org_id) for o in orgs.children(None))
    body["members"] = members
    body["participation_rate"] = round(body["participants"] / members, 6) if members else 0.0
    return json_response(body)


async def timeline(request: web.Request) -> web.Response:
    claims = require(request, "admin", "organizer")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    org_id = _scope(request, claims)
    if org_id is None:
        points = await read_timeline(request.config_dict[REDIS], contest.contest_id, contest.shards)
    elif (prefix := _subtree_prefix(request, org_id)) is None:
        points = await read_timeline(request.config_dict[REDIS], contest.contest_id, contest.shards)
    else:  # the subtree's own answers and finishes per minute
        points = (await read_subtree(request.config_dict[STORAGE], contest.contest_id, prefix))["timeline"]
    return json_response({"org_id": org_id, "points": points})


async def export(request: web.Request) -> web.StreamResponse:
    claims = require(request, "admin", "organizer")
    contest = request.config_dict[PLAY].contest(request.match_info["cid"], published=False)
    f = Fields(request.query)
    what = f.choice("what", ("results", "answers"), default="results") or "results"
    fmt = f.choice("format", ("csv", "xlsx"), default="csv") or "csv"
    # exclude_flagged=1: results without voided attempts nor flagged ones a review has not cleared
    exclude = f.choice("exclude_flagged", ("0", "1", "true", "false"), default="0") in ("1", "true")
    f.done()
    org_id = _scope(request, claims)
    prefix = request.config_dict[CATALOG].orgs.path_string(org_id) if org_id else None
    storage = request.config_dict[STORAGE]
    await storage.ping()
    source: ResultRows = storage
    if exclude:
        source = await FilteredResults.for_contest(storage, contest.contest_id)
    ctype = "text/csv; charset=utf-8" if fmt == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    filename = f"{contest.contest_id}-{what}{'-' + org_id if org_id else ''}.{fmt}"
    response = web.StreamResponse(headers={"Content-Type": ctype,
                                           "Content-Disposition": f'attachment; filename="{filename}"',
                                           "X-Columns": ",".join(HEADERS[what])})
    await response.prepare(request)
    async for chunk in export_rows(source, what, contest.contest_id, prefix, fmt):
        await response.write(chunk)
    await response.write_eof()
    return response


async def template(request: web.Request) -> web.Response:
    """An import template: questions or orgs, .xlsx or .csv, Chinese headers, two example rows."""
    require(request, "admin")  # imports are admin-only, so are their templates
    name, _, fmt = request.match_info["name"].partition(".")
    if name not in TEMPLATES or fmt not in ("csv", "xlsx"):
        raise ApiError(404, "not_found", "templates are questions.xlsx, questions.csv, orgs.xlsx and orgs.csv")
    data, filename = render_template(name, fmt)
    ctype = "text/csv; charset=utf-8" if fmt == "csv" else \
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    # an ASCII name for old clients, the Chinese one (RFC 6266 filename*) for browsers
    disposition = f"attachment; filename*=UTF-8''{quote(filename)}; filename=\"{name}-template.{fmt}\""
    return web.Response(body=data, headers={"Content-Type": ctype, "Content-Disposition": disposition})


async def rebuild(request: web.Request) -> web.Response:
    require(request, "admin")
    # Not looked up in this process's catalog first: after Redis lost its data the catalog has
    # forgotten every contest; the rebuild reloads it from the database (and 404s if still unknown).
    app = request.app
    report = await rebuild_with(app[REDIS], app[RUNNER], app[STORAGE], app[CATALOG], request.match_info["cid"],
                                daily_board_keep_s=app[SETTINGS].daily_board_keep_s)
    return json_response(report)
