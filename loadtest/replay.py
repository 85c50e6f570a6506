"""Replay a recorded contest night (an answers export) against a new deployment, sped up.

    python loadtest/replay.py answers.csv --host http://127.0.0.1:8080 --admin-token T --speed 10
    python loadtest/replay.py answers.csv --results results.csv --contest-id night2 --speed 60 --json out.json

Input is API.md's answers export (``GET /api/v1/admin/contests/{cid}/export?what=answers``:
``attempt_id,user_id,index,question_id,choice,correct,points_awarded,answered_at``), optionally
with the results export of the same night (``--results``: ``started_at``/``finished_at`` of each
attempt and each user's name and org).  Every recorded user becomes a new registration (at the
time of that user's first attempt), every recorded attempt a new attempt started through the
API, every recorded answer an answer posted at its recorded time, and every attempt is finished
(at its recorded ``finished_at``, else ``--finish-after-s`` after its last answer).  Recorded
times are replayed relative to the first event, divided by ``--speed``; one user's attempts stay
in order.  Without ``--contest-id`` the sample org tree, bank and a contest ``replay`` are set up.

What a replay cannot reproduce, by design of the data:
- papers are drawn per attempt, so the new attempt's question at index i is (in general) another
  question, with its options in another order: the same *key letter* is replayed per index, so
  which option it picks, whether it is correct, and all scores and ranks differ from the night;
  the load (who answers how many questions, when) is what is replayed;
- a letter the new question does not have (a "D" on a judge question) becomes "A"; a multiple
  choice keeps the letters that exist; a single question given several letters takes the first;
  an answer for an index past the new paper's length is skipped (counted); a recorded timeout
  (empty choice) sends nothing;
- registrations, leaderboard views and page loads are not in an answers export: only the
  registration of each user, the start, answers and finish of each attempt are sent;
- with a large ``--speed`` one user's answers come faster than the per-user limit allows
  (``QUIZ_RL_ANSWER_USER``, default 60 per 10 s): raise it, as well as the per-IP limits
  (all replayed users come from this machine's address), or answers are refused with 429.

The report (stdout, and ``--json``): requests and failures per route, latency p50/p99, how late
the sends were against the schedule, and the achieved answer rate against the recorded one.
Exit status 1 if any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import heapq
import itertools
import json
import random
import secrets
import sys
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kit import leaf_orgs, setup_contest

__all__ = ["Attempt", "Recording", "load_recording", "main", "map_choice"]


@dataclass
class Attempt:
    attempt_id: str
    user_id: str
    answers: list[tuple[int, int, str]] = field(default_factory=list)  # (answered_at, index, choice)
    started_at: int | None = None
    finished_at: int | None = None

    @property
    def start(self) -> int:
        if self.started_at is not None:
            return self.started_at
        return (self.answers[0][0] - 1_000) if self.answers else 0

    def finish(self, after_ms: int) -> int:
        if self.finished_at is not None:
            return self.finished_at
        return (self.answers[-1][0] if self.answers else self.start) + after_ms


@dataclass
class Recording:
    attempts: dict[str, Attempt]
    users: dict[str, dict[str, str]]  # recorded user id -> {"name", "org_id"} when the results file has them

    @property
    def t0(self) -> int:
        return min((a.start for a in self.attempts.values()), default=0)

    def answer_count(self) -> int:
        return sum(len(a.answers) for a in self.attempts.values())

    def span_ms(self, finish_after_ms: int) -> int:
        return max((a.finish(finish_after_ms) for a in self.attempts.values()), default=0) - self.t0


def _rows(path: Path) -> Iterable[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        yield from csv.DictReader(fh)


def load_recording(answers: Path, results: Path | None = None, limit_attempts: int = 0) -> Recording:
    attempts: dict[str, Attempt] = {}
    for row in _rows(answers):
        aid = row["attempt_id"]
        attempt = attempts.get(aid)
        if attempt is None:
            if limit_attempts and len(attempts) >= limit_attempts:
                continue
            attempt = attempts[aid] = Attempt(aid, row["user_id"])
        attempt.answers.append((int(row["answered_at"]), int(row["index"]), row.get("choice") or ""))
    users: dict[str, dict[str, str]] = {}
    if results is not None:
        for row in _rows(results):
            users[row["user_id"]] = {"name": row.get("name") or "", "org_id": row.get("org_id") or ""}
            attempt = attempts.get(row["attempt_id"])
            if attempt is not None:
                attempt.started_at = int(row["started_at"]) if row.get("started_at") else None
                attempt.finished_at = int(row["finished_at"]) if row.get("finished_at") else None
    for attempt in attempts.values():
        attempt.answers.sort()
    return Recording(attempts, users)


def map_choice(recorded: str, question: dict[str, Any]) -> str | list[str]:
    """The recorded key letters, fitted to the new question's options and type."""
    have = [o["key"] for o in question["options"]]
    letters = [c for c in recorded.upper() if c.isalpha()]
    valid = [c for c in dict.fromkeys(letters) if c in have]
    if question["type"] == "multiple":
        return sorted(valid) or [have[0]]
    return valid[0] if valid else have[0]


class Report:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.failures: dict[str, list[str]] = defaultdict(list)
        self.lag_ms: list[float] = []
        self.skipped = 0
        self.started = time.monotonic()

    def record(self, name: str, status: int, seconds: float, ok: bool, detail: str = "") -> None:
        self.latency[name].append(seconds * 1000)
        self.statuses[name][status] += 1
        if not ok and len(self.failures[name]) < 5:
            self.failures[name].append(f"{status}: {detail[:200]}")

    def failed(self) -> int:
        return sum(n for name, by in self.statuses.items() for s, n in by.items() if not _ok(name, s))

    def summary(self, recording: Recording, speed: float, finish_after_ms: int) -> dict[str, Any]:
        def pct(values: list[float], q: float) -> float:
            if not values:
                return 0.0
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)

        elapsed = time.monotonic() - self.started
        answers = sum(self.statuses["answer"].values())
        recorded_s = recording.span_ms(finish_after_ms) / 1000
        return {
            "speed": speed, "elapsed_s": round(elapsed, 1), "recorded_span_s": round(recorded_s, 1),
            "attempts": len(recording.attempts), "recorded_answers": recording.answer_count(),
            "answers_sent": answers, "answers_skipped": self.skipped,
            "answer_rate_per_s": round(answers / elapsed, 1) if elapsed else 0,
            "recorded_rate_x_speed_per_s": round(recording.answer_count() / recorded_s * speed, 1) if recorded_s else 0,
            "schedule_lag_ms": {"p50": pct(self.lag_ms, 0.5), "p99": pct(self.lag_ms, 0.99),
                                "max": round(max(self.lag_ms, default=0), 1)},
            "routes": {name: {"requests": len(v), "p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99),
                              "statuses": dict(self.statuses[name]), "failures": self.failures.get(name, [])}
                       for name, v in sorted(self.latency.items())},
            "failed": self.failed(),
        }


def _ok(name: str, status: int) -> bool:
    return status in ({201} if name == "register" else {200, 201})


class Replayer:
    """Runs the recording: one coroutine per recorded user, started when its first attempt is due."""

    def __init__(self, host: str, contest_id: str, recording: Recording, speed: float, finish_after_ms: int,
                 orgs: list[str], session: aiohttp.ClientSession) -> None:
        self.host = host.rstrip("/")
        self.contest_id = contest_id
        self.recording = recording
        self.speed = speed
        self.finish_after_ms = finish_after_ms
        self.orgs = orgs
        self.session = session
        self.report = Report()
        self.salt = secrets.randbelow(10_000)
        self.phones = itertools.count(1)
        self.t0 = recording.t0
        self.wall0 = 0.0

    def due(self, recorded_ms: int) -> float:
        return self.wall0 + (recorded_ms - self.t0) / 1000 / self.speed

    async def wait_until(self, recorded_ms: int) -> None:
        at = self.due(recorded_ms)
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        self.report.lag_ms.append(max(0.0, (time.monotonic() - at) * 1000))

    async def call(self, name: str, method: str, path: str, token: str | None = None,
                   body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.perf_counter()
        try:
            async with self.session.request(method, self.host + path, json=body, headers=headers) as resp:
                status = resp.status
                payload = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.report.record(name, 0, time.perf_counter() - started, False, repr(exc))
            return 0, None
        self.report.record(name, status, time.perf_counter() - started, _ok(name, status), json.dumps(payload)[:200])
        return status, payload

    async def register(self, recorded_uid: str) -> str | None:
        known = self.recording.users.get(recorded_uid, {})
        org = known.get("org_id") if known.get("org_id") in self.orgs else random.choice(self.orgs)
        name = (known.get("name") or f"回放{recorded_uid}")[:32]
        for _ in range(3):
            # a mainland mobile (1, 3-9, then 9 digits), as the service requires
            phone = f"1{3 + self.salt % 7}{self.salt // 7 % 100:02d}{next(self.phones) % 10**7:07d}"
            status, body = await self.call("register", "POST", "/api/v1/auth/register", None,
                                           {"name": name, "phone": phone, "org_id": org})
            if status == 201:
                return str(body["token"])
            if status != 409:
                return None
            self.salt = secrets.randbelow(10_000)
        return None

    async def play_user(self, recorded_uid: str, attempts: list[Attempt]) -> None:
        await self.wait_until(attempts[0].start)
        token = await self.register(recorded_uid)
        if token is None:
            return
        for attempt in attempts:
            await self.play_attempt(token, attempt)

    async def play_attempt(self, token: str, attempt: Attempt) -> None:
        await self.wait_until(attempt.start)
        status, body = await self.call("start", "POST", f"/api/v1/contests/{self.contest_id}/attempts", token)
        if status not in (200, 201):
            return
        aid = body["attempt_id"]
        questions = {q["index"]: q for q in body["questions"]}
        for answered_at, index, choice in attempt.answers:
            if not choice or index not in questions:
                self.report.skipped += 1
                continue
            await self.wait_until(answered_at)
            await self.call("answer", "POST", f"/api/v1/attempts/{aid}/answers", token,
                            {"index": index, "choice": map_choice(choice, questions[index])})
        await self.wait_until(attempt.finish(self.finish_after_ms))
        await self.call("finish", "POST", f"/api/v1/attempts/{aid}/finish", token)

    async def run(self) -> Report:
        by_user: dict[str, list[Attempt]] = defaultdict(list)
        for attempt in self.recording.attempts.values():
            by_user[attempt.user_id].append(attempt)
        for attempts in by_user.values():
            attempts.sort(key=lambda a: a.start)
        queue = [(attempts[0].start, uid) for uid, attempts in by_user.items()]
        heapq.heapify(queue)
        self.wall0 = time.monotonic() + 0.5
        tasks: set[asyncio.Task[None]] = set()
        while queue:  # create each user's coroutine shortly before it is due: memory stays bounded
            start, uid = heapq.heappop(queue)
            delay = self.due(start) - time.monotonic() - 0.5
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.play_user(uid, by_user[uid]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        while tasks:
            await asyncio.gather(*list(tasks))
        return self.report


async def replay(args: argparse.Namespace) -> dict[str, Any]:
    recording = load_recording(args.answers, args.results, args.limit_attempts)
    if not recording.attempts:
        raise SystemExit(f"{args.answers}: no answers to replay")
    contest_id = args.contest_id
    if not contest_id:
        if not args.admin_token:
            raise SystemExit("pass --contest-id, or --admin-token (QUIZ_ADMIN_TOKEN) to set up a contest")
        contest_id = await asyncio.to_thread(setup_contest, args.host, args.admin_token, "replay")
    orgs = await asyncio.to_thread(leaf_orgs, args.host)
    finish_after_ms = int(args.finish_after_s * 1000)
    span = recording.span_ms(finish_after_ms) / 1000
    print(f"replaying {len(recording.attempts)} attempts, {recording.answer_count()} answers of "
          f"{len({a.user_id for a in recording.attempts.values()})} users: {span:.0f} s recorded, "
          f"about {span / args.speed:.0f} s at x{args.speed:g}", file=sys.stderr)
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        replayer = Replayer(args.host, contest_id, recording, args.speed, finish_after_ms, orgs, session)
        report = await replayer.run()
    return report.summary(recording, args.speed, finish_after_ms)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("answers", type=Path, help="answers export CSV")
    p.add_argument("--results", type=Path, help="results export CSV of the same contest (start/finish times, names)")
    p.add_argument("--host", required=True, help="the deployment to replay against, e.g. http://127.0.0.1:8080")
    p.add_argument("--admin-token", default=None, help="admin token (default QUIZ_ADMIN_TOKEN) to set up a contest")
    p.add_argument("--contest-id", help="replay into this published contest instead of setting one up")
    p.add_argument("--speed", type=float, default=10.0, help="time compression factor (default 10)")
    p.add_argument("--finish-after-s", type=float, default=5.0,
                   help="recorded seconds between an attempt's last answer and its finish, without --results")
    p.add_argument("--concurrency", type=int, default=500, help="HTTP connections at most (default 500)")
    p.add_argument("--limit-attempts", type=int, default=0, help="replay only the first N attempts of the file")
    p.add_argument("--json", type=Path, help="write the report here too")
    return p


def main(argv: list[str] | None = None) -> int:
    import os

    args = build_parser().parse_args(argv)
    args.admin_token = args.admin_token or os.environ.get("QUIZ_ADMIN_TOKEN", "")
    if args.speed <= 0:
        raise SystemExit("--speed must be positive")
    summary = asyncio.run(replay(args))
    text = json.dumps(summary, indent=2, ensure_ascii=False)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
