"""Sign-in by SMS code (participants and staff) and token refresh."""

from __future__ import annotations

import logging

from aiohttp import web

from contest.appkeys import CATALOG, LIMITER, REDIS, SETTINGS, SMS_CODES, STAFF, STORAGE
from contest.auth import issue_token
from contest.errors import DomainError
from contest.otp import CODE_RE, PURPOSES
from contest.phones import mask_phone, normalize_phone
from contest.validation import Fields
from contest.web.access import require
from contest.web.errors import ApiError
from contest.web.jsonio import json_response, read_json
from contest.web.views.identity import PHONE_MESSAGE
from leaderboard import keys

__all__ = ["read_phone", "refresh", "sms_login", "sms_send", "staff_login"]

log = logging.getLogger(__name__)


def read_phone(f: Fields, request: web.Request, name: str = "phone") -> str | None:
    """The field as a normalized mainland mobile; a bad one is reported on ``name``."""
    raw = f.text(name, max_len=32)
    if raw is None:
        return None
    phone = normalize_phone(raw, request.config_dict[SETTINGS].phone_pattern)
    if phone is None:
        f.fail(name, PHONE_MESSAGE, "not_a_phone")
    return phone


def _read_code(f: Fields) -> str | None:
    code = f.text("code", max_len=16)
    if code is not None and not CODE_RE.match(code):
        f.fail("code", "must be the 6-digit code sent by SMS", "bad_format")
    return code


async def sms_send(request: web.Request) -> web.Response:
    body = await read_json(request)
    f = Fields(body)
    phone = read_phone(f, request)
    purpose = f.text("purpose", required=False, max_len=16, default="login")
    if purpose not in PURPOSES:
        f.fail("purpose", "must be one of: " + ", ".join(PURPOSES))
    f.done()
    assert phone and purpose
    limiter = request.config_dict[LIMITER]
    await limiter.check(("sms_send_ip", limiter.ip_of(request)), ("sms_send_all", "all"))
    codes = request.config_dict[SMS_CODES]
    settings = request.config_dict[SETTINGS]
    deliver = True
    if purpose == "staff":
        account = await request.config_dict[STAFF].by_phone(phone)
        if account is None or account.disabled:
            # the same answers as a real send (caps included): the page cannot be used to find out
            # who is staff, and nobody pays for a message to a stranger
            log.info("staff code not sent to %s: no active account", mask_phone(phone))
            deliver = False
    resend_after = await codes.send(phone, purpose, deliver=deliver)
    return json_response({"resend_after_s": resend_after, "expires_in_s": settings.sms_code_ttl_s}, status=202)


async def _profile(request: web.Request, user_id: str) -> tuple[str, str]:
    """(name, org id) of a phone user: the profiles hash, else the database (users registered
    before the hash existed, or after a Redis loss before the rebuild)."""
    raw = await request.config_dict[REDIS].hget(keys.user_profiles(), user_id)
    if raw:
        name, _, org_id = raw.decode().partition("\t")
        return name, org_id
    # load_users pages by user_id > after: start just below this id (ids are decimal strings)
    after = user_id[:-1] + chr(ord(user_id[-1]) - 1) + "~"
    rows = await request.config_dict[STORAGE].load_users(after, 1)
    if rows and str(rows[0]["user_id"]) == user_id:
        return rows[0].get("name") or "", rows[0].get("org_id") or ""
    raise ApiError(503, "unavailable", "账号资料正在同步，请稍后再试", {"reason": "profile_pending"})


async def _login_request(request: web.Request) -> tuple[str, str, str]:
    """(phone, code, client IP) of a sign-in by code, the IP's sign-in limit checked."""
    f = Fields(await read_json(request))
    phone = read_phone(f, request)
    code = _read_code(f)
    f.done()
    assert phone and code
    limiter = request.config_dict[LIMITER]
    ip = limiter.ip_of(request)
    await limiter.check(("sms_login_ip", ip))
    return phone, code, ip


async def sms_login(request: web.Request) -> web.Response:
    phone, code, _ = await _login_request(request)
    # the code first: without it, the answer must not tell whether the phone is registered
    await request.config_dict[SMS_CODES].check(phone, "login", code)
    uid = await request.config_dict[REDIS].hget(keys.user_phones(), phone)
    if uid is None:
        raise ApiError(404, "not_registered", "该手机号尚未注册，请先注册", {"phone": phone})
    user_id = uid.decode()
    name, org_id = await _profile(request, user_id)
    settings = request.config_dict[SETTINGS]
    token, expires_at = issue_token(settings.signing_secret, user_id=user_id, role="participant", org_id=org_id,
                                    name=name, ttl_s=settings.token_ttl_s)
    return json_response({"user_id": user_id, "token": token, "expires_at": expires_at, "name": name,
                          "org_id": org_id, "phone": phone})


async def refresh(request: web.Request) -> web.Response:
    """A fresh token for the bearer of a valid one (participants; staff too, through their gate)."""
    claims = require(request, "participant", "organizer", "admin")
    settings = request.config_dict[SETTINGS]
    if claims.role != "participant" and not claims.version:
        raise ApiError(403, "forbidden", "only tokens of participants and staff accounts can be refreshed")
    ttl = settings.token_ttl_s if claims.role == "participant" else settings.staff_token_ttl_s
    token, expires_at = issue_token(settings.signing_secret, user_id=claims.user_id, role=claims.role,
                                    org_id=claims.org_id, name=claims.name, ttl_s=ttl, version=claims.version)
    body = {"token": token, "expires_at": expires_at, "user_id": claims.user_id, "role": claims.role}
    return json_response(body)


async def staff_login(request: web.Request) -> web.Response:
    phone, code, ip = await _login_request(request)
    directory = request.config_dict[STAFF]
    try:
        await request.config_dict[SMS_CODES].check(phone, "staff", code)
    except DomainError as exc:
        await directory.audit("login_failed", phone=mask_phone(phone), ip=ip, reason=exc.code)
        raise
    account = await directory.by_phone(phone)
    if account is None or account.disabled:
        await directory.audit("login_refused", phone=mask_phone(phone), ip=ip,
                              staff_id=account.staff_id if account else "")
        raise ApiError(403, "forbidden", "该账号已停用或不存在，请联系管理员", {"reason": "account_disabled"})
    settings = request.config_dict[SETTINGS]
    token, expires_at = issue_token(settings.signing_secret, user_id=account.staff_id, role=account.role,
                                    org_id=account.org_id, name=account.name, ttl_s=settings.staff_token_ttl_s,
                                    version=account.version)
    await directory.audit("login", staff_id=account.staff_id, phone=mask_phone(phone), ip=ip, role=account.role,
                          org_id=account.org_id)
    org = request.config_dict[CATALOG].orgs.get(account.org_id)
    return json_response({"token": token, "role": account.role, "org_id": account.org_id,
                          "org_name": org.name if org else None, "name": account.name, "expires_at": expires_at,
                          "staff_id": account.staff_id})
