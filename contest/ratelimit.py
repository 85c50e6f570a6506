"""Rate limits in Redis (GCRA, one key per subject) and the client address behind trusted proxies.

Which request pays what, in Redis round trips:

- registration and attempt start: one limiter call per subject (IP and phone, or IP and user),
  started together so ``PipelinedScripts`` writes them in one turn: one round trip, then the
  real script.  Neither is the hot path, and a 429 there must mean nothing was created, so the
  check has to come first.
- answers (the hot path): the per-user limit is folded into the ANSWER script itself (GCRA state
  in the attempt hash; see ``leaderboard.scripts.ANSWER``), so it costs nothing extra.  The
  per-IP limit cannot join that script on a Redis Cluster (the IP key lives in another slot), so
  its call rides in the same pipeline write as the ANSWER call (``asyncio.gather``: still one
  round trip) and is enforced one request late: an IP found over its limit is refused in this
  worker's memory, without touching Redis, until its Retry-After has passed.  Per-IP limits are
  a flood guard (a campus NAT legitimately sends thousands of users from one address), so that
  one-request lag buys a lot for what it costs.  (``submit`` rides the same way; its answers go
  out a turn later, as their own write: one request per attempt, not the hot path.)
  When the per-IP answer limit is a flood guard (``_BATCH_FROM`` or more per period), a worker
  counts each IP's answers in memory and sends them in batches of ``_BATCH`` (one GCRA call of
  cost 16): at most 15 answers per IP and worker go uncounted, and the hot path pays the extra
  EVALSHA once per 16 answers instead of on every one (measured: limits on cost about what limits
  off do, where per-answer counting did not; loadtest/README.md, "Figures behind the code").
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from contest.errors import RateLimited
from contest.redis_client import ScriptRunner
from contest.settings import Settings
from leaderboard import keys
from leaderboard.ratelimit_scripts import RATE_LIMIT, RateVerdict

__all__ = ["RateLimiter", "answer_rate_args", "client_ip", "rate_limited"]

_BLOCKED_MAX = 100_000
_PENDING_MAX = 200_000
_BATCH = 16  # answers of one IP a worker counts in one call...
_BATCH_FROM = 1_000  # ...when the limit allows at least this many per period (exact below it)


class PeerRequest(Protocol):
    """What ``RateLimiter.ip_of`` reads of a request (an aiohttp Request is one)."""

    @property
    def remote(self) -> str | None: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


def rate_limited(retry_after_ms: int, scope: str) -> RateLimited:
    """The contract's 429 (the web layer adds a whole-second ``Retry-After``, at least 1)."""
    return RateLimited("too many requests; slow down", scope, retry_after_ms)


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(entries: Sequence[str]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _trusted(address: str, networks: Sequence[_Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(peer: str | None, forwarded_for: str | None, networks: Sequence[_Network]) -> str:
    """The client's address: the peer, unless the peer is a trusted proxy.

    Behind trusted proxies, ``X-Forwarded-For`` is read right to left and the first address that
    is not itself a trusted proxy is the client; anything left of it was written by the client
    and is ignored (a client cannot choose its own rate-limit subject).
    """
    peer = peer or "unknown"
    if not networks or not forwarded_for or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a garbled header: do not trust any of it
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


def answer_rate_args(settings: Settings) -> tuple[str, int]:
    """ARGV 14-15 of the ANSWER script: the per-user answer limit as GCRA interval ms and burst."""
    count, period_s = settings.rl_answer_user
    if not settings.rate_limits or count <= 0 or period_s <= 0:
        return ("0", 0)
    return (repr(period_s * 1000 / count), count)


@dataclass(slots=True)
class RateLimiter:
    """The limits of one process: Redis for the counting, memory for IPs already found over."""

    runner: ScriptRunner
    settings: Settings
    networks: tuple[_Network, ...] = ()
    blocked: dict[str, float] = field(default_factory=dict)  # "scope:ip" -> monotonic time it frees
    pending: dict[str, int] = field(default_factory=dict)  # "scope:ip" -> answers not yet counted

    def __post_init__(self) -> None:
        self.networks = _networks(self.settings.trusted_proxies)

    @property
    def enabled(self) -> bool:
        return self.settings.rate_limits

    def ip_of(self, request: PeerRequest) -> str:
        return client_ip(request.remote, request.headers.get("X-Forwarded-For"), self.networks)

    def _rule(self, scope: str) -> tuple[int, int]:
        rule: tuple[int, int] = getattr(self.settings, f"rl_{scope}")
        return rule

    def _limit_call(self, scope: str, subject: str, cost: int = 1) -> tuple[tuple[str, ...], tuple[Any, ...]] | None:
        """The RATE_LIMIT script's (keys, args) counting ``cost`` requests; None with the limit off."""
        count, period_s = self._rule(scope)
        if not self.enabled or count <= 0 or period_s <= 0:
            return None
        return (keys.rate_limit(scope, subject),), (repr(period_s * 1000 / count), count, cost)

    def _call(self, scope: str, subject: str, cost: int = 1) -> Awaitable[Any] | None:
        call = self._limit_call(scope, subject, cost)
        return None if call is None else self.runner.run(RATE_LIMIT, *call)

    def _batched_cost(self, scope: str, ip: str) -> int:
        """How many of this IP's requests to count now: 0 while a batch fills, else the batch."""
        if self._rule(scope)[0] < _BATCH_FROM:
            return 1
        slot = f"{scope}:{ip}"
        n = self.pending.get(slot, 0) + 1
        if n < _BATCH:
            if n == 1 and len(self.pending) >= _PENDING_MAX:
                self.pending.clear()
            self.pending[slot] = n
            return 0
        self.pending.pop(slot, None)
        return n

    async def check(self, *limits: tuple[str, str]) -> None:
        """Count one request against each (scope, subject); 429 when any is over. One round trip."""
        calls = [(scope, c) for scope, subject in limits if (c := self._call(scope, subject)) is not None]
        if not calls:
            return
        verdicts = [RateVerdict.from_reply(r) for r in await asyncio.gather(*(c for _, c in calls))]
        worst = max(((v.retry_after_ms, scope) for (scope, _), v in zip(calls, verdicts, strict=True) if not v.allowed),
                    default=None)
        if worst is not None:
            raise rate_limited(worst[0], worst[1])

    # ---- per-IP limits that ride along with the hot path's own call -------------------------------
    def refuse_if_blocked(self, scope: str, ip: str) -> None:
        until = self.blocked.get(f"{scope}:{ip}")
        if until is None:
            return
        left = until - time.monotonic()
        if left > 0:
            raise rate_limited(int(left * 1000), scope)
        self.blocked.pop(f"{scope}:{ip}", None)

    def ride_call(self, scope: str, ip: str) -> tuple[tuple[str, ...], tuple[Any, ...]] | None:
        """The RATE_LIMIT call (keys, args) counting this request of ``ip``, when one is due now
        (None while a batch fills, or with the limit off)."""
        cost = self._batched_cost(scope, ip)
        return self._limit_call(scope, ip, cost) if cost else None

    def note_verdict(self, scope: str, ip: str, reply: Any) -> None:
        """Remember an IP found over its limit (refused in memory until its Retry-After); ``reply``
        is RATE_LIMIT's, as Redis sent it (None when the call failed)."""
        if reply is None:
            return
        verdict = RateVerdict.from_reply(reply)
        if not verdict.allowed:
            if len(self.blocked) >= _BLOCKED_MAX:
                self.blocked.clear()
            self.blocked[f"{scope}:{ip}"] = time.monotonic() + verdict.retry_after_ms / 1000

    async def ride_along(self, scope: str, ip: str, work: Awaitable[Any]) -> Any:
        """Run ``work`` (which sends its Redis call at once) and count ``ip`` in the same write."""
        try:
            self.refuse_if_blocked(scope, ip)
        except RateLimited:
            if inspect.iscoroutine(work):
                work.close()  # never started: nothing was sent, nothing changed
            raise
        call = self.ride_call(scope, ip)
        if call is None:
            return await work
        # The counting call is scheduled first and starts on the loop's next step, after ``work``
        # has queued its own EVALSHA but before the runner's flush: one write carries both, and
        # only one task is created (cheaper than gathering two).
        counting = asyncio.ensure_future(self.runner.run(RATE_LIMIT, *call))
        try:
            return await work
        finally:
            try:
                verdict = await counting
            except Exception:  # Redis trouble shows in ``work``'s own outcome
                verdict = None
            self.note_verdict(scope, ip, verdict)

