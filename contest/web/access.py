"""Who is calling: the claims of a request's bearer token (contest/auth.py verifies it), checked
against the staff accounts' current versions and the caller's place in the org tree."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from contest.appkeys import CATALOG, SETTINGS, STAFF_GATE
from contest.auth import Claims, claims_of_header, require_role
from contest.errors import Unauthenticated

__all__ = ["optional_claims", "require"]


def _claims_of(request: web.Request) -> Claims | None:
    claims = claims_of_header(request.headers.get("Authorization", ""), request.config_dict[SETTINGS])
    if claims is not None and claims.version:
        return _staff_claims(request, claims)
    return claims


# where an admin of a unit below the root is an admin (of its subtree's organizers; its own token)
_SUBTREE_ADMIN_PATHS = ("/api/v1/admin/organizers", "/api/v1/auth/refresh", "/api/v1/me")


def _staff_claims(request: web.Request, claims: Claims) -> Claims:
    """A staff account's token: refused once the account is disabled or changed (this process's
    copy of the versions, at most ``staff_check_s`` old); an admin of a unit below the root acts
    as an organizer of its subtree everywhere but in the management of its subtree's organizers."""
    gate = request.config_dict.get(STAFF_GATE)
    if gate is not None and not gate.allows(claims.user_id, claims.version):
        raise Unauthenticated("账号已停用或权限已变更，请重新登录", {"reason": "account_changed"})
    if claims.role == "admin" and claims.org_id and not request.path.startswith(_SUBTREE_ADMIN_PATHS):
        org = request.config_dict[CATALOG].orgs.get(claims.org_id)
        if org is None or org.parent_id is not None:
            return dataclasses.replace(claims, role="organizer")
    return claims


def optional_claims(request: web.Request) -> Claims | None:
    return _claims_of(request)


def require(request: web.Request, *roles: str) -> Claims:
    """The caller's claims; 401 without a valid token, 403 when the role is not among ``roles``."""
    return require_role(_claims_of(request), roles)
