"""The domain's refusals: what went wrong in the contract's words, without HTTP.

``Play``, the catalog, contests, review, certificates, sign-in codes and storage raise these; the
web layer (contest/web/errors.py) maps each class to its status, once, for aiohttp's middleware
and the answer lane alike.  Each error carries the contract's stable ``code`` (the class's own,
or a more precise one such as ``already_answered``), an English message (contest/messages.py
words it in Chinese for pages that ask) and the ``details`` a client may act on.  No aiohttp here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = ["Conflict", "DeadlinePassed", "DomainError", "Forbidden", "Invalid", "NotFound", "RateLimited",
           "Unauthenticated", "Unavailable"]


class DomainError(Exception):
    """A refusal the client is told about: ``code``, ``message``, ``details``."""

    default_code: ClassVar[str] = "error"

    def __init__(self, message: str, details: Mapping[str, Any] | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code
        self.message = message
        self.details = dict(details or {})


class Invalid(DomainError):
    """The request's values are wrong (400): ``details.fields`` names them."""

    default_code = "validation_failed"


class Unauthenticated(DomainError):
    """No valid credential (401): a missing, bad or expired token or ticket, a wrong code."""

    default_code = "unauthenticated"


class Forbidden(DomainError):
    """The caller may not do this, now or at all (403): a role, a closed contest, a withheld review."""

    default_code = "forbidden"


class NotFound(DomainError):
    """No such thing, or not the caller's (404)."""

    default_code = "not_found"


class Conflict(DomainError):
    """The state does not allow it (409): already answered, finished, at the attempt limit..."""

    default_code = "conflict"


class DeadlinePassed(DomainError):
    """Too late (410): the attempt's or the question's time ran out."""

    default_code = "deadline_passed"


class RateLimited(DomainError):
    """Over a rate limit (429); the client may retry after ``retry_after_s`` (also in details)."""

    default_code = "rate_limited"

    def __init__(self, message: str, scope: str, retry_after_ms: int) -> None:
        self.retry_after_s = max(1, math.ceil(retry_after_ms / 1000))
        super().__init__(message, {"scope": scope, "retry_after_s": self.retry_after_s})


class Unavailable(DomainError):
    """A part the request needs is away or reloading (503); nothing was changed."""

    default_code = "unavailable"
