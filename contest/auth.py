"""Bearer tokens (HMAC-signed, with role, org scope and expiry) and gateway tickets.

No HTTP here: reading them from a request is the web layer's part (contest/web/access.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass

import orjson

from contest.errors import Forbidden, Unauthenticated
from contest.settings import Settings

__all__ = [
    "ROLES",
    "Claims",
    "TicketClaims",
    "b64d",
    "b64e",
    "claims_of_header",
    "issue_token",
    "require_role",
    "sign_ticket",
    "verify_ticket",
    "verify_token",
]

ROLES = ("participant", "organizer", "admin")
_ROLE_CODES = {"participant": "p", "organizer": "o", "admin": "a"}
_CODE_ROLES = {v: k for k, v in _ROLE_CODES.items()}
_CACHE_MAX = 50_000


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Claims:
    """Who the bearer is: user id (participants), role, org scope, display name, expiry (s)."""

    user_id: str
    role: str
    org_id: str | None
    name: str
    expires_at: int  # unix seconds
    version: int = 0  # staff accounts' token version (contest/staff.py); 0: not a staff account


def _sign(secret: bytes, payload: str) -> str:
    return b64e(hmac.new(secret, payload.encode(), hashlib.sha256).digest())


def issue_token(secret: bytes, *, user_id: str, role: str, org_id: str | None, name: str,
                ttl_s: int, now: float | None = None, version: int = 0) -> tuple[str, int]:
    """A signed token and its expiry in ms (``version``: a staff account's, checked by StaffGate)."""
    if role not in _ROLE_CODES:
        raise ValueError(f"unknown role {role!r}")
    exp = int((now if now is not None else time.time()) + ttl_s)
    body: dict[str, object] = {"u": user_id, "r": _ROLE_CODES[role], "o": org_id, "n": name, "e": exp}
    if version:
        body["v"] = version
    payload = b64e(orjson.dumps(body))
    return f"{payload}.{_sign(secret, payload)}", exp * 1000


def verify_token(secret: bytes, token: str, now: float | None = None) -> Claims:
    payload, _, signature = token.partition(".")
    if not payload or not signature or not hmac.compare_digest(_sign(secret, payload), signature):
        raise Unauthenticated("the token is invalid")
    try:
        body = orjson.loads(b64d(payload))
        claims = Claims(str(body["u"]), _CODE_ROLES[body["r"]], body.get("o"), str(body.get("n", "")),
                        int(body["e"]), int(body.get("v", 0)))
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise Unauthenticated("the token is invalid") from None
    if claims.expires_at <= (now if now is not None else time.time()):
        raise Unauthenticated("the token has expired; sign in again", code="token_expired")
    return claims


_ADMIN = Claims("admin", "admin", None, "admin", 2**31)
# token -> the Claims' fields as a plain tuple.  Up to _CACHE_MAX entries live for minutes: as
# Claims objects they were most of what each full GC collection scanned under load (long pauses:
# loadtest/README.md, "Figures behind the code"); the GC untracks an exact tuple of strings and ints at
# its first collection, so a full cache costs the collector nothing.  A hit rebuilds the Claims.
_cache: dict[str, tuple[str, str, str | None, str, int, int]] = {}


def claims_of_header(header: str, settings: Settings) -> Claims | None:
    """The claims of an ``Authorization`` header value (None when empty); 401 when it is bad."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("use Authorization: Bearer <token>")
    # The cache holds verified participant/organizer tokens only (never the admin token), so a hit
    # can skip the admin comparison: the answer path's common case is a cached participant.
    fields = _cache.get(token)
    if fields is None:
        if settings.admin_token and hmac.compare_digest(token.encode(), settings.admin_token.encode()):
            return _ADMIN
        claims = verify_token(settings.signing_secret, token)
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()
        _cache[token] = (claims.user_id, claims.role, claims.org_id, claims.name, claims.expires_at,
                         claims.version)
        return claims
    if fields[4] <= time.time():  # expires_at
        _cache.pop(token, None)
        raise Unauthenticated("the token has expired; sign in again", code="token_expired")
    return Claims(*fields)


def require_role(claims: Claims | None, roles: tuple[str, ...]) -> Claims:
    """401 without claims, 403 when the role is not among ``roles`` (any role when empty)."""
    if claims is None:
        raise Unauthenticated("this endpoint needs Authorization: Bearer <token>")
    if roles and claims.role not in roles:
        raise Forbidden(f"this endpoint is for: {', '.join(roles)}")
    return claims


@dataclass(frozen=True, slots=True)
class TicketClaims:
    subject: str
    name: str
    org_id: str


def sign_ticket(secret: bytes, payload: dict[str, object]) -> str:
    """What an upstream gateway does (used by tests, the demo and the load generator)."""
    body = b64e(orjson.dumps(payload))
    return f"{body}.{_sign(secret, body)}"


def verify_ticket(secret: bytes, ticket: str, now: float | None = None) -> TicketClaims:
    if not secret:
        raise Unauthenticated("gateway tickets are not enabled (QUIZ_TICKET_SECRET unset)")
    body, _, signature = ticket.partition(".")
    if not body or not signature or not hmac.compare_digest(_sign(secret, body), signature):
        raise Unauthenticated("the ticket signature is invalid")
    try:
        payload = orjson.loads(b64d(body))
        subject, name, org_id, exp = payload["sub"], payload["name"], payload["org_id"], payload["exp"]
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise Unauthenticated("the ticket is malformed") from None
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise Unauthenticated("the ticket is malformed")
    if exp <= (now if now is not None else time.time()):
        raise Unauthenticated("the ticket has expired", code="token_expired")
    if not all(isinstance(v, str) and v for v in (subject, name, org_id)):
        raise Unauthenticated("the ticket is malformed")
    return TicketClaims(str(subject), str(name), str(org_id))
