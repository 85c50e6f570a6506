"""Registration, gateway tickets, who-am-I and the public org picker."""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Any

import orjson
from aiohttp import web

from contest.appkeys import CATALOG, LIMITER, RUNNER, SETTINGS, SMS_CODES
from contest.auth import issue_token, verify_ticket
from contest.orgsearch import MAX_QUERY_CHARS
from contest.orgtree import OrgTree
from contest.otp import CODE_RE
from contest.phones import normalize_phone
from contest.validation import Fields
from contest.web.access import require
from contest.web.errors import ApiError
from contest.web.jsonio import json_response, read_json
from leaderboard import keys
from leaderboard.scripts import REGISTER, RegisterReply
from leaderboard.signin_scripts import USER_PROFILE

__all__ = ["me", "orgs_public", "register", "ticket"]

SEARCH_LIMIT = 20
PHONE_MESSAGE = "must be a mainland mobile number (11 digits: 1, then 3-9, then 9 more)"


def takes_members(orgs: OrgTree, org_id: str) -> bool:
    """Participants join units that take members: leaf units, or rows imported with
    ``accepts_members: true`` (a town's own office, say); a county is not a unit to join."""
    org = orgs.get(org_id)
    return org is not None and (getattr(org, "accepts_members", False) or not orgs.has_children(org_id))


def check_member_org(f: Fields, orgs: OrgTree, org_id: str | None, name: str = "org_id") -> None:
    if not org_id:
        return
    if org_id not in orgs:
        f.fail(name, "is not a known org")
    elif not takes_members(orgs, org_id):
        f.fail(name, "is not a unit that takes members (choose a unit at the lowest level)", "not_a_member_unit")


async def _register(request: web.Request, mode: str, ident: str, name: str, org_id: str,
                    phone: str) -> tuple[str, bool]:
    catalog = request.config_dict[CATALOG]
    path = catalog.orgs.path(org_id)
    index = keys.user_phones() if mode == "phone" else keys.user_ext()
    runner = request.config_dict[RUNNER]
    registering = runner.run(
        REGISTER,
        (index, keys.user_seq(), keys.user_events(), keys.user_registrations()),
        (mode, ident, name, org_id, ",".join(path), phone),
    )
    if mode == "phone":
        # the profile an SMS sign-in on another phone reads, sent in the same write right after
        # REGISTER (USER_PROFILE only writes for the user the phone now belongs to)
        raw, _ = await asyncio.gather(registering, runner.run(USER_PROFILE, (keys.user_phones(),
                                                                            keys.user_profiles()),
                                                              (phone, name, org_id)))
    else:
        raw = await registering
    reply = RegisterReply.from_reply(raw)
    if reply.status == "dup":
        raise ApiError(409, "already_registered", "this phone number is already registered")
    return reply.user_id, reply.status == "new"


def _token_response(request: web.Request, user_id: str, name: str, org_id: str, status: int) -> web.Response:
    settings = request.config_dict[SETTINGS]
    token, expires_at = issue_token(settings.signing_secret, user_id=user_id, role="participant",
                                    org_id=org_id, name=name, ttl_s=settings.token_ttl_s)
    return json_response({"user_id": user_id, "token": token, "expires_at": expires_at, "name": name,
                          "org_id": org_id}, status=status)


async def register(request: web.Request) -> web.Response:
    body = await read_json(request)
    f = Fields(body)
    name = f.text("name", max_len=32)
    raw_phone = f.text("phone", max_len=32, fold=True)
    org_id = f.text("org_id", max_len=64)
    settings = request.config_dict[SETTINGS]
    phone = normalize_phone(raw_phone, settings.phone_pattern) if raw_phone else None
    if raw_phone and phone is None:
        f.fail("phone", PHONE_MESSAGE, "not_a_phone")
    if name and any(unicodedata.category(ch).startswith("C") for ch in name):
        f.fail("name", "must not contain control characters")
    check_member_org(f, request.config_dict[CATALOG].orgs, org_id)
    code = f.text("code", required=settings.register_requires_sms, max_len=16)
    if code is not None and not CODE_RE.match(code):
        f.fail("code", "must be the 6-digit code sent by SMS", "bad_format")
    f.done()
    assert name and phone and org_id
    limiter = request.config_dict[LIMITER]
    await limiter.check(("register_ip", limiter.ip_of(request)), ("register_phone", phone))
    if settings.register_requires_sms:
        assert code is not None
        await request.config_dict[SMS_CODES].check(phone, "register", code)
    user_id, _ = await _register(request, "phone", phone, name, org_id, phone)
    return _token_response(request, user_id, name, org_id, 201)


async def ticket(request: web.Request) -> web.Response:
    body = await read_json(request)
    f = Fields(body)
    raw = f.text("ticket", max_len=4096)
    f.done()
    assert raw is not None
    settings = request.config_dict[SETTINGS]
    claims = verify_ticket(settings.ticket_secret.encode(), raw)
    limiter = request.config_dict[LIMITER]
    await limiter.check(("register_ip", limiter.ip_of(request)))
    name = unicodedata.normalize("NFC", claims.name).strip()[:32]  # kept as written (issue 16)
    f = Fields({})
    check_member_org(f, request.config_dict[CATALOG].orgs, claims.org_id)
    f.done()
    user_id, _ = await _register(request, "ext", claims.subject, name, claims.org_id, "")
    return _token_response(request, user_id, name, claims.org_id, 200)


async def me(request: web.Request) -> web.Response:
    claims = require(request)
    orgs = request.config_dict[CATALOG].orgs
    org = orgs.get(claims.org_id) if claims.org_id else None
    return json_response({"user_id": claims.user_id, "name": claims.name, "role": claims.role,
                          "org_id": claims.org_id, "org_name": org.name if org else None,
                          "expires_at": claims.expires_at * 1000})


async def orgs_public(request: web.Request) -> web.Response:
    """The org picker: children of an org (``parent_id``; the roots without it), a search by name or
    pinyin initials (``q``, at most 20 results, within ``parent_id``'s subtree when given), or every
    org with its path (``all=1``, kept for old clients: megabytes for a province)."""
    orgs = request.config_dict[CATALOG].orgs
    if request.query.get("all") in ("1", "true"):
        return web.Response(body=await _all_orgs(orgs), content_type="application/json")
    parent = request.query.get("parent_id") or None
    if parent is not None and parent not in orgs:
        raise ApiError(404, "not_found", f"no org {parent!r}")
    if "q" in request.query:
        return _search(request, orgs, parent)
    return json_response({"orgs": [
        {"org_id": o.org_id, "name": o.name, "level": o.level, "has_children": orgs.has_children(o.org_id),
         **_ACCEPTS[o.accepts_members]}
        for o in orgs.children(parent)
    ]})


def _search(request: web.Request, orgs: OrgTree, within: str | None) -> web.Response:
    f = Fields(request.query)
    q = f.text("q", required=False, max_len=MAX_QUERY_CHARS, default="")
    limit = f.integer("limit", required=False, minimum=1, maximum=SEARCH_LIMIT, default=SEARCH_LIMIT)
    f.done()
    assert q is not None and limit is not None
    found = orgs.search(q, within=within, limit=limit) if q else []
    return json_response({"orgs": [
        {"org_id": o.org_id, "name": o.name, "level": o.level, "has_children": orgs.has_children(o.org_id),
         "path": [orgs[p].name for p in orgs.path(o.org_id)], "path_ids": list(orgs.path(o.org_id)),
         **_ACCEPTS[o.accepts_members]}
        for o in found
    ]})


# only units with children that take members say so (the picker's lists stay as small as they were)
_ACCEPTS: dict[bool, dict[str, bool]] = {False: {}, True: {"accepts_members": True}}
_all_cache: tuple[OrgTree, bytes] | None = None


async def _all_orgs(orgs: OrgTree) -> bytes:
    """``?all=1`` for a tree, encoded once and off the event loop (megabytes for a province's tree:
    loadtest/README.md, "Figures behind the code")."""
    global _all_cache
    if _all_cache is None or _all_cache[0] is not orgs:
        _all_cache = (orgs, await asyncio.to_thread(_encode_all, orgs))
    return _all_cache[1]


def _encode_all(orgs: OrgTree) -> bytes:
    out: list[dict[str, Any]] = []
    for org in orgs:
        path = [orgs[p].name for p in orgs.path(org.org_id)]
        out.append({"org_id": org.org_id, "name": org.name, "level": org.level, "path": path,
                    "has_children": orgs.has_children(org.org_id)})
    out.sort(key=lambda o: "/".join(o["path"]))
    return orjson.dumps({"orgs": out})
