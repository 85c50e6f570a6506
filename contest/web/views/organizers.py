"""Organizer accounts of the units: import, list, disable; admins of a subtree see only their subtree."""

from __future__ import annotations

import asyncio

from aiohttp import web

from contest.appkeys import CATALOG, SETTINGS, STAFF
from contest.auth import Claims
from contest.orgtree import OrgTree
from contest.staff import StaffAccount, parse_staff
from contest.validation import Fields
from contest.web.access import require
from contest.web.errors import ApiError
from contest.web.jsonio import json_response, read_json
from contest.web.views.admin import _row_errors, _upload
from question_bank import ImportFormatError
from question_bank.errors import RowError

__all__ = ["organizers_audit", "organizers_import", "organizers_list", "organizers_patch"]


def _admin_scope(request: web.Request, claims: Claims) -> str | None:
    """None for an admin of everything, else the org whose subtree this admin manages."""
    orgs = request.config_dict[CATALOG].orgs
    if not claims.org_id:
        return None
    org = orgs.get(claims.org_id)
    if org is None:
        raise ApiError(403, "forbidden", "该管理员账号的单位已不存在")
    return None if org.parent_id is None else org.org_id


def _within(orgs: OrgTree, scope: str | None, org_id: str) -> bool:
    return scope is None or (org_id in orgs and scope in orgs.path(org_id))


async def organizers_import(request: web.Request) -> web.Response:
    claims = require(request, "admin")
    data, filename, ctype = await _upload(request)
    catalog = request.config_dict[CATALOG]
    directory = request.config_dict[STAFF]
    scope = _admin_scope(request, claims)
    try:
        rows, errors = await asyncio.to_thread(parse_staff, data, filename=filename, content_type=ctype,
                                               orgs=catalog.orgs,
                                               phone_pattern=request.config_dict[SETTINGS].phone_pattern)
    except (ImportFormatError, ValueError) as exc:
        raise ApiError(400, "validation_failed", str(exc),
                       {"errors": [{"row": 0, "column": "", "message": str(exc), "code": "bad_file"}]}) from None
    if scope is not None:
        existing = {a.phone: a for a in await directory.all()}
        for number, row in enumerate(rows, start=2):
            if not _within(catalog.orgs, scope, row["org_id"]):
                errors.append(RowError(number, "org_id", "该单位不在您的管理范围内", "outside_scope"))
            old = existing.get(row["phone"])
            if old is not None and not _within(catalog.orgs, scope, old.org_id):
                errors.append(RowError(number, "phone", "该手机号已是其他单位的账号", "outside_scope"))
    if errors:
        raise _row_errors(sorted(errors, key=lambda e: e.row))
    imported, updated = await directory.upsert(rows)
    await directory.audit("import", by=claims.user_id, imported=imported, updated=updated)
    return json_response({"imported": imported, "updated": updated, "errors": []})


def _public(account: StaffAccount, orgs: OrgTree) -> dict[str, object]:
    org = orgs.get(account.org_id)
    return {**account.public(), "org_name": org.name if org else None}


async def organizers_list(request: web.Request) -> web.Response:
    claims = require(request, "admin")
    orgs = request.config_dict[CATALOG].orgs
    scope = _admin_scope(request, claims)
    f = Fields(request.query)
    org_id = f.text("org_id", required=False, max_len=64)
    q = f.text("q", required=False, max_len=32, default="")
    offset = f.integer("offset", required=False, minimum=0, default=0)
    limit = f.integer("limit", required=False, minimum=1, maximum=1000, default=100)
    f.done()
    assert q is not None and offset is not None and limit is not None
    if org_id is not None:
        if org_id not in orgs:
            raise ApiError(404, "not_found", f"no org {org_id!r}")
        if not _within(orgs, scope, org_id):
            raise ApiError(403, "forbidden", "该单位不在您的管理范围内")
    root = org_id or scope
    found = [a for a in await request.config_dict[STAFF].all()
             if _within(orgs, root, a.org_id) and (not q or q in a.name or q in a.phone)]
    return json_response({"total": len(found), "organizers": [_public(a, orgs) for a in found[offset:offset + limit]]})


async def organizers_patch(request: web.Request) -> web.Response:
    claims = require(request, "admin")
    orgs = request.config_dict[CATALOG].orgs
    body = await read_json(request)
    f = Fields(body)
    disabled = f.boolean("disabled", required=True)
    f.done()
    assert disabled is not None
    directory = request.config_dict[STAFF]
    account = await directory.get(request.match_info["sid"])
    if account is None or not _within(orgs, _admin_scope(request, claims), account.org_id):
        raise ApiError(404, "not_found", "没有这个组织者账号")
    if account.staff_id == claims.user_id and disabled:
        raise ApiError(409, "conflict", "不能停用自己的账号")
    changed = await directory.set_disabled(account, disabled)
    if changed is not account:
        await directory.audit("disabled" if disabled else "enabled", by=claims.user_id, staff_id=account.staff_id,
                              org_id=account.org_id)
    return json_response(_public(changed, orgs))


async def organizers_audit(request: web.Request) -> web.Response:
    claims = require(request, "admin")
    f = Fields(request.query)
    limit = f.integer("limit", required=False, minimum=1, maximum=1000, default=100)
    f.done()
    assert limit is not None
    orgs = request.config_dict[CATALOG].orgs
    scope = _admin_scope(request, claims)
    entries = await request.config_dict[STAFF].audit_log(limit if scope is None else 1000)
    if scope is not None:
        entries = [e for e in entries if e.get("org_id") and _within(orgs, scope, e["org_id"])][:limit]
    return json_response({"entries": entries})
