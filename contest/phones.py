"""Mainland mobile numbers: one spelling for every way a person types one.

``+86 139-1234-5678``, ``86 13912345678`` and ``１３９１２３４５６７８`` are the same phone; the
registration index, the SMS code keys and the organizer directory all key on the 11 digits, so
they must be normalized the same way everywhere (a second spelling would be a second account).
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["DEFAULT_PHONE_PATTERN", "mask_phone", "normalize_phone"]

DEFAULT_PHONE_PATTERN = r"^1[3-9]\d{9}$"
_SEPARATORS = str.maketrans("", "", " -\u00a0\u3000()")


@functools.lru_cache(maxsize=8)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def normalize_phone(raw: str, pattern: str = DEFAULT_PHONE_PATTERN) -> str | None:
    """The number as stored (``13912345678``), or None when it is not a valid mobile.

    Full-width digits fold to ASCII (NFKC), spaces, dashes and brackets go, then a ``+86`` or
    ``86`` country prefix; what is left must match ``pattern`` (QUIZ_PHONE_PATTERN).
    """
    text = unicodedata.normalize("NFKC", raw).translate(_SEPARATORS)
    if text.startswith("+86"):
        text = text[3:]
    elif text.startswith("0086"):
        text = text[4:]
    elif text.startswith("86") and len(text) == 13:  # 86 + 11 digits; an 11-digit 86... is no prefix
        text = text[2:]
    return text if _compiled(pattern).fullmatch(text) else None


def mask_phone(phone: str) -> str:
    """``139****5678``: enough for a person to recognise their number in a log or a list."""
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"
