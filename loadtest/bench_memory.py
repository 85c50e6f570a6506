"""Redis memory per registrant and per participant, with the 5-level org path, per key family.

    python loadtest/bench_memory.py                        # 20,000 participants on a Valkey started here
    python loadtest/bench_memory.py --participants 50000 --days 2 --json out.json
    python loadtest/bench_memory.py --redis redis://127.0.0.1:6379/0   # an existing, EMPTY server

Registers the participants (REGISTER), plays one attempt each per day (START with the review
evidence, 10 ANSWERs, FINISH: the service's own scripts and arguments) spread over a generated
province scaled to the sample (the members per village, town and county of a 1 M-participant
campaign on the 130,000-unit tree of contest/orggen.py), then brings Redis to its steady state:
the streams flushed (deleted) and the attempt hashes expired (deleted).  Reported: INFO
used_memory per registrant and per participant, and the MEMORY USAGE of every key family
divided by the participants, so one can see where the bytes go.

The server is flushed before and after: point --redis only at a throwaway server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from contest.embedded_redis import EmbeddedValkey  # noqa: E402
from contest.orggen import generate_orgs  # noqa: E402
from contest.play import evidence_token  # noqa: E402
from contest.redis_client import PipelinedScripts  # noqa: E402
from leaderboard import keys  # noqa: E402
from leaderboard.scripts import ANSWER, FINISH, REGISTER, START  # noqa: E402

__all__ = ["FAMILIES", "drop_expiring", "measure", "scaled_fanout"]

CONTEST = "mem"
QUESTIONS = 10
FIELDS = [f"s|B|10|Q{i}|4" for i in range(QUESTIONS)]
_FAR = 4_102_444_800_000  # 2100-01-01: always open
_DAY_MS = 86_400_000
_KEEP_MS = 2 * _DAY_MS  # QUIZ_DAILY_BOARD_KEEP_S's default
_CAMPAIGN = 1_000_000  # the participants the tree's density is taken from (the rehearsal's default)

# key family -> pattern of the part after the contest prefix (or of a global key); first match wins
FAMILIES: tuple[tuple[str, str], ...] = (
    ("total board", r"lb:t$"),
    ("total org boards", r"lb:t:o:"),
    ("daily boards", r"lb:d:[^:]+$"),
    ("daily org boards", r"lb:d:[^:]+:o:"),
    ("names hash", r"names$"),
    ("per-user hashes", r"u:"),
    ("evidence sets (before issue 18)", r"seen:"),
    ("daily boards' expiry", r"lb:x$"),
    ("org stats + org rankings", r"os:|or:"),
    ("attempt hashes", r"a:"),
    ("streams", r"events$"),
    ("contest counters", r"stats$|qstats$|tl:|deadlines$|meta$"),
    ("registrants (phones, seq, per org)", r"\{quiz\}:(phones|user_seq|registrants|ext|profiles)$"),
    ("users stream", r"\{quiz\}:events$"),
)


def scaled_fanout(participants: int) -> tuple[int, ...]:
    """Units per level so each village, town and county board holds what it would with
    ``_CAMPAIGN`` participants on the full 130,000-unit province (counties and cities at least 2)."""
    share = participants / _CAMPAIGN
    full = (1, 14, 110, 1_500, 128_375)
    out = [1]
    for level, units in enumerate(full[1:], start=2):
        out.append(max(out[-1], 2 if level < 4 else 1, round(units * share)))
    return tuple(out)


def _province(participants: int) -> tuple[list[tuple[str, ...]], dict[str, int]]:
    """The villages' paths (root first) and the members of every unit (sums over its subtree)."""
    rows = generate_orgs(fanout=scaled_fanout(participants), seed=18)
    parent = {str(r["org_id"]): str(r["parent_id"]) for r in rows}
    members: dict[str, int] = defaultdict(int)
    paths = []
    for r in rows:
        if r["level"] != 5:
            continue
        path = [str(r["org_id"])]
        while parent[path[-1]]:
            path.append(parent[path[-1]])
        path.reverse()
        paths.append(tuple(path))
        for org in path:
            members[org] += int(str(r["members"]))
    return paths, dict(members)


async def drop_expiring(runner: Any, contest_id: str) -> int:
    """Delete every key of the contest that has an expiry (attempt hashes, daily boards), as time
    would: what a steady-state measure must not count.  ``runner``: anything with ``execute``
    (PipelinedScripts) on a single server.  Returns the keys deleted."""
    pattern = keys.every_key_under(keys.contest_prefix(contest_id))
    cursor: Any = b"0"
    doomed: list[bytes] = []
    while True:
        cursor, batch = await runner.execute("SCAN", cursor, "MATCH", pattern, "COUNT", 5000)
        ttls = await asyncio.gather(*(runner.execute("PTTL", k) for k in batch))
        doomed += [k for k, ttl in zip(batch, ttls, strict=True) if int(ttl) > 0]
        if cursor in (b"0", 0, "0"):
            break
    for i in range(0, len(doomed), 1000):
        await runner.execute("DEL", *doomed[i:i + 1000])
    return len(doomed)


async def _batched(calls: list[Any], width: int = 256) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(calls), width):
        out += await asyncio.gather(*(c() for c in calls[i:i + width]))
    return out


async def _used(runner: PipelinedScripts) -> int:
    """used_memory once the deletes' background frees are done (DEL frees lazily by default)."""
    for _ in range(200):
        info = dict(line.split(":", 1) for line in (await runner.execute("INFO", "memory")).decode().splitlines()
                    if ":" in line)
        if int(info.get("lazyfree_pending_objects", "0")) == 0:
            break
        await asyncio.sleep(0.05)
    return int(info["used_memory"])


async def _usec(runner: PipelinedScripts) -> float:
    """Server-side µs per EVALSHA since the last CONFIG RESETSTAT."""
    text = (await runner.execute("INFO", "commandstats")).decode()
    line = next((x for x in text.splitlines() if x.startswith("cmdstat_evalsha:")), "")
    return float(dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))["usec_per_call"]) if line else 0.0


async def _scan(runner: PipelinedScripts) -> list[bytes]:
    cursor: Any = b"0"
    names: list[bytes] = []
    while True:
        cursor, batch = await runner.execute("SCAN", cursor, "COUNT", 5000)
        names += batch
        if cursor in (b"0", 0, "0"):
            return names


async def _families(runner: PipelinedScripts) -> dict[str, dict[str, int]]:
    """MEMORY USAGE (exact: SAMPLES 0) and key count of every family."""
    patterns = [(name, re.compile(rx)) for name, rx in FAMILIES]
    out: dict[str, dict[str, int]] = {name: {"bytes": 0, "keys": 0} for name, _ in FAMILIES}
    out["other"] = {"bytes": 0, "keys": 0}
    names = await _scan(runner)
    sizes = await _batched([lambda k=k: runner.execute("MEMORY", "USAGE", k, "SAMPLES", 0) for k in names], 512)
    for key, size in zip(names, sizes, strict=True):
        text = key.decode()
        tail = text.split("}:", 1)[1] if text.startswith("{c:") else text
        family = next((name for name, rx in patterns if rx.search(tail if text.startswith("{c:") else text)), "other")
        out[family]["bytes"] += int(size or 0)
        out[family]["keys"] += 1
    return {k: v for k, v in out.items() if v["keys"]}


async def measure(url: str, participants: int = 20_000, days: int = 1) -> dict[str, Any]:
    """Bytes per registrant and per participant in steady state, and the breakdown per family."""
    runner = PipelinedScripts(url)
    await runner.execute("FLUSHALL")
    await runner.load_scripts()
    await runner.execute("SCRIPT", "LOAD", REGISTER.source)
    paths, members = _province(participants)
    base = await _used(runner)

    # registrants: phone sign-up, a name of 2-3 Chinese characters, a village of the tree
    users = [(f"139{i:08d}", "张王李赵刘陈"[i % 6] + "小明华"[: 1 + i % 2], paths[i % len(paths)])
             for i in range(participants)]
    replies = await _batched([lambda u=u: runner.run(
        REGISTER, (keys.user_phones(), keys.user_seq(), keys.user_events(), keys.user_registrations()),
        ("phone", u[0], u[1], u[2][-1], ",".join(u[2]), u[0])) for u in users])
    uids = [r[1].decode() for r in replies]
    await runner.execute("DEL", keys.user_events())
    registered = await _used(runner)

    prefix = keys.contest_prefix(CONTEST)
    aids: list[str] = []
    usec: dict[str, list[float]] = {"start": [], "answer": [], "finish": []}
    for day in range(days):
        # each day's attempts run with the clock of that day (FINISH's replay time sets the day's board)
        day_aids = [f"{CONTEST}.{secrets.token_urlsafe(12)}" for _ in uids]  # as contest.play makes them
        aids += day_aids
        await runner.execute("CONFIG", "RESETSTAT")
        await _batched([lambda uid=uid, aid=aid, u=u, day=day: runner.run(
            START,
            (keys.user_contest(CONTEST, uid), keys.attempt(CONTEST, aid), keys.deadlines(CONTEST),
             keys.events(CONTEST), keys.stats(CONTEST), keys.names(CONTEST)),
            (uid, aid, 0, _FAR, 0, 0, 0, day * _DAY_MS, prefix + keys.SUFFIX_ATTEMPT, 3600, CONTEST, u[2][-1],
             ",".join(u[2]), ",".join(str(members[o]) for o in u[2]), f"{u[1]}\t{u[2][-1]}", "[]", QUESTIONS,
             *FIELDS, "", evidence_token("s", "ip", f"10.{int(uid) % 250}.{int(uid) // 250 % 250}.7"),
             evidence_token("s", "ua", f"ua{int(uid) % 40}"), _KEEP_MS, "1"))
            for uid, aid, u in zip(uids, day_aids, users, strict=True)])
        usec["start"].append(await _usec(runner))
        await runner.execute("CONFIG", "RESETSTAT")
        await _batched([lambda uid=uid, aid=aid, i=i: runner.run(
            ANSWER, (keys.attempt(CONTEST, aid), keys.stats(CONTEST), keys.qstats(CONTEST), keys.events(CONTEST),
                     keys.timeline(CONTEST, "")),
            (uid, i, "B" if (int(uid) + i) % 3 else "C", 0, 0, 0, 0, 0, 0, 0, 0, CONTEST, aid, "0", 0))
            for uid, aid in zip(uids, day_aids, strict=True) for i in range(QUESTIONS)], 1024)
        usec["answer"].append(await _usec(runner))
        await runner.execute("CONFIG", "RESETSTAT")
        await _batched([lambda uid=uid, aid=aid: runner.run(
            FINISH, (keys.attempt(CONTEST, aid), keys.user_contest(CONTEST, uid), keys.stats(CONTEST),
                     keys.events(CONTEST), keys.deadlines(CONTEST), keys.timeline(CONTEST, ""), keys.board(CONTEST),
                     keys.names(CONTEST)),
            (uid, prefix, "best", 0, 0, CONTEST, aid, "", 0)) for uid, aid in zip(uids, day_aids, strict=True)])
        usec["finish"].append(await _usec(runner))
    playing = await _used(runner)
    # the day after: the flusher has drained the stream, the attempt hashes have expired
    await runner.execute("DEL", keys.events(CONTEST))
    for i in range(0, len(aids), 1000):
        await runner.execute("DEL", *(keys.attempt(CONTEST, a) for a in aids[i:i + 1000]))
    on_day = await _used(runner)
    families_on_day = await _families(runner)
    # steady state: the daily boards have expired too (the only contest keys left with a TTL)
    await drop_expiring(runner, CONTEST)
    steady = await _used(runner)
    families = await _families(runner)
    await runner.execute("FLUSHALL")
    await runner.aclose()
    return {
        "participants": participants, "days": days, "villages": len(paths),
        "fanout": scaled_fanout(participants),
        "bytes_per_registrant": (registered - base) / participants,
        "bytes_per_participant": (steady - registered) / participants,
        "bytes_per_participant_daily_boards_live": (on_day - registered) / participants,
        "bytes_per_participant_playing": (playing - registered) / participants,
        "usec_per_call": {k: sum(v) / len(v) for k, v in usec.items()},
        "families": _per_participant(families, participants),
        "families_daily_boards_live": _per_participant(families_on_day, participants),
    }


def _per_participant(families: dict[str, dict[str, int]], participants: int) -> dict[str, dict[str, float]]:
    return {name: {"keys": v["keys"], "bytes_per_participant": v["bytes"] / participants}
            for name, v in sorted(families.items(), key=lambda kv: -kv[1]["bytes"])}


def report(result: dict[str, Any]) -> str:
    lines = [f"{result['participants']:,} participants, {result['days']} day(s), "
             f"{result['villages']:,} villages (units per level {result['fanout']})",
             f"Redis memory per registrant: {result['bytes_per_registrant']:.0f} B (users stream flushed)",
             f"Redis memory per participant: {result['bytes_per_participant']:.0f} B steady "
             "(streams flushed, attempt hashes and past days' daily boards expired); "
             f"{result['bytes_per_participant_daily_boards_live']:.0f} B while the day's daily boards live; "
             f"{result['bytes_per_participant_playing']:.0f} B before the attempt hashes expire",
             "Redis µs per call: " + ", ".join(f"{k} {v:.1f}" for k, v in result["usec_per_call"].items()),
             "MEMORY USAGE per participant, by key family (steady; daily boards live):"]
    live = result["families_daily_boards_live"]
    for name in live:
        v = result["families"].get(name, {"bytes_per_participant": 0.0, "keys": 0})
        lines.append(f"  {name:<36} {v['bytes_per_participant']:>8.1f} B {live[name]['bytes_per_participant']:>8.1f} B"
                     f"  ({live[name]['keys']:,} keys)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=1, help="contest days, one attempt per participant each")
    parser.add_argument("--redis", help="redis:// URL of an empty throwaway server (default: start one)")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--valkey-args", default="", help="extra valkey-server arguments of the server started here")
    args = parser.parse_args(argv)
    if args.redis:
        result = asyncio.run(measure(args.redis, args.participants, args.days))
    else:
        with EmbeddedValkey(Path(tempfile.mkdtemp(prefix="bench-memory-")), appendonly=False,
                            extra_args=tuple(args.valkey_args.split())) as valkey:
            result = asyncio.run(measure(valkey.url, args.participants, args.days))
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
