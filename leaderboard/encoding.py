"""Sorted-set score encoding of (score, duration): higher score first, then shorter duration.

``score * 2**32 + (2**32 - 1 - duration_ms)`` is an integer below 2**53 for scores under
2**21, so it is exact in a double (the type of a sorted-set score).
"""

from __future__ import annotations

__all__ = ["DURATION_MAX", "SCORE_MAX", "decode", "encode"]

_SHIFT = 1 << 32
DURATION_MAX = _SHIFT - 1
SCORE_MAX = (1 << 21) - 1


def encode(score: int, duration_ms: int) -> int:
    """Pack a score and a duration into one sortable integer (durations clamp to 49 days)."""
    if not 0 <= score <= SCORE_MAX:
        raise ValueError(f"score {score} outside 0..{SCORE_MAX}")
    duration = min(max(int(duration_ms), 0), DURATION_MAX)
    return score * _SHIFT + (DURATION_MAX - duration)


def decode(value: float | int | str | bytes) -> tuple[int, int]:
    """Inverse of ``encode``: returns (score, duration_ms)."""
    if isinstance(value, bytes | str):
        value = float(value)
    packed = int(value)
    score, rest = divmod(packed, _SHIFT)
    return score, DURATION_MAX - rest
