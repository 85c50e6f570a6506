"""Throughput of one hot contest on a local Valkey cluster with 1, 2 and 3 shards.

    python loadtest/bench_shards.py                       # 3-master cluster started here
    python loadtest/bench_shards.py --shards 1,2,3 --seconds 8 --procs 2 --concurrency 256
    python loadtest/bench_shards.py --cluster 127.0.0.1:7000 --json out.json

It drives the hot path's Lua scripts (START once per attempt, ANSWER x10, FINISH) directly, the
way the service does: one coalescing pipelined connection (``PipelinedScripts``) per cluster
master, the calls of every task in flight written once per event-loop turn.  A contest with N
shards keeps its users' attempts, boards and streams under N hash tags ``{c:<id>:<n>}``; the
cluster spreads those tags over its masters, so N shards can use N masters.  Reported: answers/s
(ANSWER calls that scored), total script calls/s, and each master's share of the calls.

The client is Python: on a small machine it competes with the Valkey processes for cores (the
report prints the core count), so the figures show the trend, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from redis.asyncio.cluster import ClusterNode, RedisCluster  # noqa: E402

from contest.redis_client import PipelinedScripts  # noqa: E402
from leaderboard import keys  # noqa: E402
from leaderboard.scripts import ANSWER, FINISH, START, AnswerReply  # noqa: E402

QUESTIONS = 10
FIELDS = [f"s|B|10|Q{i}|4" for i in range(QUESTIONS)]
_FAR = 4_102_444_800_000  # 2100-01-01: the bench contest is always open


def _shard(uid: str, shards: int) -> int:
    return zlib.crc32(uid.encode()) % shards if shards > 1 else 0


async def _masters_of(nodes: list[tuple[str, int]], base: str, shards: int) -> tuple[str, list[str]]:
    """A contest id whose shards sit on distinct masters (as far as there are masters), and the
    redis:// URL of the master holding each shard's hash tag.

    Hash tags land on slots at random: with as many shards as masters two shards often share a
    master.  An operator gets the same spread by choosing the shard count (2-4 x masters) or by
    moving a slot (CLUSTER SETSLOT / valkey-cli --cluster rebalance)."""
    client = RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in nodes])
    await client.initialize()
    n_masters = len(client.get_primaries())
    best: tuple[int, str, list[str]] = (0, base, [])
    for attempt in range(200):
        cid = f"{base}{attempt}"
        urls = []
        for shard in range(shards):
            node = client.get_node_from_key(keys.contest_prefix(cid, shard if shards > 1 else 0))
            if node is None:
                raise RuntimeError(f"the cluster has no node for the slot of {cid}'s shard {shard}")
            urls.append(f"redis://{node.host}:{node.port}/0")
        spread = len(set(urls))
        if spread > best[0]:
            best = (spread, cid, urls)
        if spread == min(shards, n_masters):
            break
    await client.aclose()
    return best[1], best[2]


async def _reset_stats(urls: list[str]) -> None:
    for url in set(urls):
        runner = PipelinedScripts(url)
        await runner.execute("CONFIG", "RESETSTAT")
        await runner.aclose()


async def _redis_usec(urls: list[str]) -> dict[str, dict[str, float]]:
    """Server-side EVALSHA calls and µs per call on each master used (INFO commandstats)."""
    out = {}
    for url in sorted(set(urls)):
        runner = PipelinedScripts(url)
        text = (await runner.execute("INFO", "commandstats")).decode()
        await runner.aclose()
        for line in text.splitlines():
            if line.startswith("cmdstat_evalsha:"):
                fields = dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))
                out[url.split("//")[1].split("/")[0]] = {"calls": int(fields["calls"]),
                                                          "usec_per_call": float(fields["usec_per_call"])}
    return out


async def _player(runners: list[PipelinedScripts], cid: str, shards: int, uids: list[str], stop_at: float,
                  counts: dict[str, int]) -> None:
    n = 0
    while time.monotonic() < stop_at:
        uid = uids[n % len(uids)]
        n += 1
        shard = _shard(uid, shards)
        s = shard if shards > 1 else 0
        runner = runners[shard]
        aid = f"{cid}.{s}.{uid}x{n}" if shards > 1 else f"{cid}.{uid}x{n}"
        prefix = keys.contest_prefix(cid, s)
        reply = await runner.run(
            START,
            (keys.user_contest(cid, uid, s), keys.attempt(cid, aid, s), keys.deadlines(cid, s), keys.events(cid, s),
             keys.stats(cid, s), keys.names(cid, s)),
            (uid, aid, 0, _FAR, 0, 0, 0, 0, prefix + keys.SUFFIX_ATTEMPT, 3600, cid, "", "", "", f"u{uid}\t",
             "[]", QUESTIONS, *FIELDS))
        counts["calls"] += 1
        for i in range(QUESTIONS):
            if time.monotonic() >= stop_at:
                return
            reply = await runner.run(
                ANSWER,
                (keys.attempt(cid, aid, s), keys.stats(cid, s), keys.qstats(cid, s), keys.events(cid, s),
                 keys.timeline(cid, "", s)),
                (uid, i, "B" if (n + i) % 3 else "C", 0, 0, 0, 0, 0, 0, 0, 0, cid, aid, "0", 0))
            counts["calls"] += 1
            if not AnswerReply.from_reply(reply).error:
                counts["answers"] += 1
        await runner.run(
            FINISH,
            (keys.attempt(cid, aid, s), keys.user_contest(cid, uid, s), keys.stats(cid, s), keys.events(cid, s),
             keys.deadlines(cid, s), keys.timeline(cid, "", s), keys.board(cid, shard=s), keys.names(cid, s)),
            (uid, prefix, "best", 0, 0, cid, aid, "", 0))
        counts["calls"] += 1
        counts["finishes"] += 1


async def _drive(urls: list[str], cid: str, shards: int, worker: int, concurrency: int, seconds: float,
                 start_at: float) -> dict[str, int]:
    runners = [PipelinedScripts(u) for u in urls]
    for runner in {id(r): r for r in runners}.values():
        await runner.load_scripts()
    counts = {"calls": 0, "answers": 0, "finishes": 0}
    users = [f"{worker}-{i}" for i in range(concurrency * 4)]
    groups = [users[i::concurrency] for i in range(concurrency)]
    await asyncio.sleep(max(0.0, start_at - time.time()))
    stop_at = time.monotonic() + seconds
    await asyncio.gather(*(_player(runners, cid, shards, g, stop_at, counts) for g in groups))
    for runner in runners:
        await runner.aclose()
    return counts


def _worker(args: tuple[list[str], str, int, int, int, float, float], out: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out.put(asyncio.run(_drive(*args)))


def run_one(nodes: list[tuple[str, int]], shards: int, procs: int, concurrency: int, seconds: float) -> dict[str, Any]:
    cid, urls = asyncio.run(_masters_of(nodes, f"b{shards}t{int(time.time()) % 100000}n", shards))
    asyncio.run(_reset_stats(urls))
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 1.5  # every process starts driving at the same moment
    workers = [ctx.Process(target=_worker, args=((urls, cid, shards, w, concurrency, seconds, start_at), queue))
               for w in range(procs)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=seconds + 60) for _ in workers]
    for w in workers:
        w.join(10)
    total = {k: sum(r[k] for r in results) for k in results[0]}
    masters = sorted(set(urls))
    usec = asyncio.run(_redis_usec(urls))
    return {"shards": shards, "masters_used": len(masters), "per_master": usec, "seconds": seconds,
            "procs": procs,
            "concurrency": concurrency, "answers_per_s": round(total["answers"] / seconds),
            "calls_per_s": round(total["calls"] / seconds), "finishes_per_s": round(total["finishes"] / seconds)}


async def script_costs(nodes: list[tuple[str, int]], attempts: int = 2000) -> dict[str, float]:
    """Server-side µs per call of START, ANSWER and FINISH (a 5-level org path, as in production),
    each phase measured alone with INFO commandstats, calls sent 64 at a time."""
    cid, urls = await _masters_of(nodes, f"cost{int(time.time()) % 100000}n", 1)
    runner = PipelinedScripts(urls[0])
    await runner.load_scripts()
    prefix = keys.contest_prefix(cid)
    path = "p,p.c,p.c.x,p.c.x.t,p.c.x.t.v"
    members = "6750000,500000,80000,6000,400"
    ids = [(str(i), f"{cid}.a{i}") for i in range(attempts)]
    out: dict[str, float] = {}

    async def used_memory() -> int:
        text = (await runner.execute("INFO", "memory")).decode()
        return int(next(x for x in text.splitlines() if x.startswith("used_memory:")).split(":")[1])

    before = await used_memory()

    async def phase(name: str, calls: list[Any]) -> None:
        await runner.execute("CONFIG", "RESETSTAT")
        for i in range(0, len(calls), 64):
            await asyncio.gather(*(c() for c in calls[i:i + 64]))
        text = (await runner.execute("INFO", "commandstats")).decode()
        line = next(x for x in text.splitlines() if x.startswith("cmdstat_evalsha:"))
        out[name] = float(dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))["usec_per_call"])

    await phase("start", [lambda u=u, a=a: runner.run(
        START, (keys.user_contest(cid, u), keys.attempt(cid, a), keys.deadlines(cid), keys.events(cid),
                keys.stats(cid), keys.names(cid)),
        (u, a, 0, _FAR, 0, 0, 0, 0, prefix + keys.SUFFIX_ATTEMPT, 3600, cid, "p.c.x.t.v", path, members,
         f"u{u}\tp.c.x.t.v", "[]", QUESTIONS, *FIELDS)) for u, a in ids])
    await phase("answer", [lambda u=u, a=a, i=i: runner.run(
        ANSWER, (keys.attempt(cid, a), keys.stats(cid), keys.qstats(cid), keys.events(cid), keys.timeline(cid, "")),
        (u, i, "B" if i % 3 else "C", 0, 0, 0, 0, 0, 0, 0, 0, cid, a, "0", 0))
        for u, a in ids for i in range(QUESTIONS)])
    await phase("finish", [lambda u=u, a=a: runner.run(
        FINISH, (keys.attempt(cid, a), keys.user_contest(cid, u), keys.stats(cid), keys.events(cid),
                 keys.deadlines(cid), keys.timeline(cid, ""), keys.board(cid), keys.names(cid)),
        (u, prefix, "best", 0, 0, cid, a, "", 0)) for u, a in ids])
    # what stays per participant once the streams are flushed and attempt hashes have expired:
    # boards (total + 5 org levels, and the same per day), names, the user's per-contest hash
    await runner.execute("DEL", keys.events(cid))
    for i in range(0, len(ids), 500):
        await runner.execute("DEL", *(keys.attempt(cid, a) for _, a in ids[i:i + 500]))
    out["bytes_per_participant"] = (await used_memory() - before) / len(ids)
    await runner.aclose()
    return out


class CpuCaps:
    """Cap each Valkey master of the bench's own cluster at ``share`` of one core (Linux cgroups).

    On a machine with fewer cores than masters + client processes, adding masters only adds
    processes competing for the same cores, so throughput cannot rise with shards.  Capping every
    master at the same small CPU budget emulates the production layout (each master its own core,
    the client side not the bottleneck) at a smaller scale: what one master can do is fixed, and
    the question is whether N shards get N masters' worth.  Needs root and a writable cgroup
    (v1 ``cpu`` controller or v2); only the bench's own processes are moved, and the groups are
    removed at the end.
    """

    def __init__(self, share: float) -> None:
        self.share = share
        self.dirs: list[Path] = []
        v1 = Path("/sys/fs/cgroup/cpu")
        self.v1 = (v1 / "cpu.cfs_quota_us").exists()
        self.root = v1 if self.v1 else Path("/sys/fs/cgroup")

    def cap(self, pid: int, name: str) -> None:
        group = self.root / f"bench-shards-{os.getpid()}-{name}"
        group.mkdir()
        self.dirs.append(group)
        period = 100_000
        if self.v1:
            (group / "cpu.cfs_period_us").write_text(str(period))
            (group / "cpu.cfs_quota_us").write_text(str(int(period * self.share)))
            (group / "cgroup.procs").write_text(str(pid))
        else:
            (group / "cpu.max").write_text(f"{int(period * self.share)} {period}")
            (group / "cgroup.procs").write_text(str(pid))

    def remove(self) -> None:
        for group in self.dirs:
            try:
                group.rmdir()
            except OSError as exc:  # still has a process: it is being killed
                print(f"could not remove {group}: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cluster", help="host:port of a node of an existing cluster (default: start one)")
    parser.add_argument("--shards", default="1,2,3")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--concurrency", type=int, default=128, help="players per client process")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--costs", action="store_true", help="also measure µs per START/ANSWER/FINISH")
    parser.add_argument("--master-cpu", type=float, default=0.0,
                        help="cap each master of the bench's own cluster at this share of a core (cgroups)")
    args = parser.parse_args(argv)
    cluster = None
    if args.cluster:
        host, _, port = args.cluster.rpartition(":")
        nodes = [(host, int(port))]
    else:
        from tests.fixtures.cluster import start_cluster

        cluster = start_cluster(Path(tempfile.mkdtemp(prefix="bench-cluster-")), masters=3, replicas_per_master=0)
        nodes = [("127.0.0.1", n.port) for n in cluster.masters]
    caps = CpuCaps(args.master_cpu) if args.master_cpu and cluster is not None else None
    try:
        if caps is not None and cluster is not None:
            for node in cluster.masters:
                caps.cap(node.process.pid, str(node.port))
            print(f"each master capped at {args.master_cpu:.2f} of a core")
        rows = []
        print(f"cores on this machine: {os.cpu_count()}; client processes: {args.procs} x {args.concurrency} players")
        if args.costs:
            costs = asyncio.run(script_costs(nodes))
            print("Redis µs per call (one master, alone): " + ", ".join(f"{k} {v:.1f}" for k, v in costs.items()
                                                                        if k != "bytes_per_participant")
                  + f"; Redis memory per participant after one attempt: {costs['bytes_per_participant']:.0f} B",
                  flush=True)
        for shards in (int(s) for s in args.shards.split(",")):
            row = run_one(nodes, shards, args.procs, args.concurrency, args.seconds)
            rows.append(row)
            print(f"shards={row['shards']} masters={row['masters_used']}: {row['answers_per_s']:>8,} answers/s  "
                  f"{row['calls_per_s']:>8,} script calls/s  {row['finishes_per_s']:>6,} finishes/s  "
                  "per master (share of calls, µs/call): " + ", ".join(
                      f"{100 * m['calls'] / max(1, sum(x['calls'] for x in row['per_master'].values())):.0f}% "
                      f"{m['usec_per_call']:.0f}" for m in row["per_master"].values()), flush=True)
        if args.json:
            args.json.write_text(json.dumps({"cores": os.cpu_count(), "load": os.getloadavg(),
                                             "master_cpu": args.master_cpu, "rows": rows}, indent=2))
    finally:
        if cluster is not None:
            cluster.stop()
        if caps is not None:
            caps.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
