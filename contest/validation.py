"""Field-level validation of JSON bodies and query strings; every bad field is reported at once."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from contest.errors import Invalid

__all__ = ["Fields", "ID_RE"]

ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MISSING = object()


class Fields:
    """Collects per-field errors while reading values; ``done()`` raises 400 validation_failed."""

    def __init__(self, source: Mapping[str, Any], *, prefix: str = "") -> None:
        self.source = source
        self.prefix = prefix
        self.errors: dict[str, str] = {}
        # field -> {"code", "params"}: stable codes the error middleware renders in the reader's
        # language (contest/messages.py); ``errors`` keeps the English text
        self.codes: dict[str, dict[str, Any]] = {}

    def fail(self, name: str, message: str, code: str = "invalid", **params: Any) -> None:
        key = self.prefix + name
        if key not in self.errors:
            self.errors[key] = message
            self.codes[key] = {"code": code, "params": params}

    def merge(self, other: Fields) -> None:
        """Take the errors (and their codes) of a Fields reading a nested object."""
        for key, message in other.errors.items():
            if key not in self.errors:
                self.errors[key] = message
                self.codes[key] = other.codes.get(key, {"code": "invalid", "params": {}})

    def _get(self, name: str, required: bool) -> Any:
        value = self.source.get(name, _MISSING)
        if value == "" and _is_query(self.source):
            value = _MISSING  # `?date=&org_id=` (API.md's own query templates) means "not given"
        if value is _MISSING or value is None:
            if required:
                self.fail(name, "is required", "required")
            return _MISSING
        return value

    def text(self, name: str, *, required: bool = True, max_len: int = 200, min_len: int = 1,
             pattern: re.Pattern[str] | None = None, default: str | None = None,
             fold: bool = False) -> str | None:
        """Text kept as written (NFC, trimmed).  Identifiers matched against something else
        (``pattern`` given, or ``fold=True`` as for phone numbers) are NFKC-folded instead, so a
        full-width "１３９" still matches; titles, names and descriptions never are."""
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self.fail(name, "must be a string", "not_text")
            return default
        value = unicodedata.normalize("NFKC" if fold or pattern is not None else "NFC", value).strip()
        if len(value) < min_len:
            if min_len == 1:
                self.fail(name, "must not be empty", "empty")
            else:
                self.fail(name, f"must be at least {min_len} characters", "too_short", min=min_len)
        elif len(value) > max_len:
            self.fail(name, f"must be at most {max_len} characters", "too_long", max=max_len)
        elif pattern is not None and not pattern.match(value):
            self.fail(name, f"has an invalid format (expected {pattern.pattern})", "bad_format")
        return value

    def integer(self, name: str, *, required: bool = True, minimum: int | None = None,
                maximum: int | None = None, default: int | None = None) -> int | None:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if isinstance(value, str) and self.source is not None and _is_query(self.source):
            try:
                value = int(value)
            except ValueError:
                self.fail(name, "must be an integer", "not_integer")
                return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(name, "must be an integer", "not_integer")
            return default
        if minimum is not None and value < minimum:
            self.fail(name, f"must be >= {minimum}", "too_small", min=minimum)
        elif maximum is not None and value > maximum:
            self.fail(name, f"must be <= {maximum}", "too_large", max=maximum)
        return value

    def boolean(self, name: str, *, required: bool = False, default: bool = False) -> bool:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.fail(name, "must be true or false", "not_boolean")
            return default
        return value

    def choice(self, name: str, options: tuple[str, ...], *, required: bool = False,
               default: str | None = None) -> str | None:
        value = self._get(name, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or value not in options:
            self.fail(name, f"must be one of {', '.join(options)}", "not_a_choice", options=" / ".join(options))
            return default
        return value

    def done(self) -> None:
        if self.errors:
            names = ", ".join(sorted(self.errors))
            raise Invalid(f"invalid fields: {names}",
                          {"fields": self.errors, "field_errors": self.codes})


def _is_query(source: Mapping[str, Any]) -> bool:
    # Query strings carry only strings; JSON bodies must be strict (no "5" for 5).
    return type(source).__name__ in ("MultiDictProxy", "MultiDict", "CIMultiDictProxy")
