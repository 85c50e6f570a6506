"""Contest-night traffic for locust: participants playing whole attempts, organizers watching.

    QUIZ_ADMIN_TOKEN=... locust -f loadtest/locustfile.py --headless -u 200 -r 50 --run-time 2m \\
        --host http://127.0.0.1:8080 --csv out/run --json-file out/run --only-summary
    QUIZ_LOCUST_SHAPE=spike QUIZ_LOCUST_PEAK=600 QUIZ_ADMIN_TOKEN=... locust -f loadtest/locustfile.py \\
        --headless --host http://127.0.0.1:8080 --json-file out/spike      # the 8 pm spike, ends by itself

Setup (``test_start``, on the master or the single local process): with ``QUIZ_CONTEST_ID`` unset it
imports the sample org tree and bank and creates/re-opens/publishes the contest ``loadtest``
(``QUIZ_LOCUST_CONTEST`` renames it); with ``QUIZ_CONTEST_ID`` it plays that contest as it is.
Organizer users use ``QUIZ_ADMIN_TOKEN`` for the stats endpoint (``QUIZ_ORGANIZER_TOKEN`` if set).

Environment knobs (all optional):
  QUIZ_LOCUST_PARTICIPANT_WEIGHT (20), QUIZ_LOCUST_ORGANIZER_WEIGHT (1)   user mix
  QUIZ_LOCUST_THINK ("1,4")     seconds a participant thinks before each answer (min,max)
  QUIZ_LOCUST_PAUSE ("2,10")    seconds between a participant's attempts
  QUIZ_LOCUST_ATTEMPTS (2)      attempts each participant plays, then it only checks its rank
  QUIZ_LOCUST_POLL ("1,3")      seconds between an organizer's requests
  QUIZ_LOCUST_SSE_S (10)        how long an organizer holds the live feed open
  QUIZ_LOCUST_PROVINCE (0)      1: set-up also imports the generated 130,000-org province (contest/orggen.py)
  QUIZ_LOCUST_SHAPE             "spike" selects SpikeShape below (then -u/-r/--run-time are ignored)
  QUIZ_LOCUST_PEAK (500), QUIZ_LOCUST_RAMP_S (60), QUIZ_LOCUST_HOLD_S (240), QUIZ_LOCUST_DECAY_S (60),
  QUIZ_LOCUST_BASE (0.1: the share of the peak that stays on after the decay, until the end)

Rate limits: all users come from one IP here, while the server's per-IP limits (settings
``rate_limits``) assume one client per person.  Run the server with ``QUIZ_RATE_LIMITS=0`` or
raised per-IP limits (``QUIZ_RL_REGISTER_IP``, ``QUIZ_RL_START_IP``, ``QUIZ_RL_ANSWER_IP``, e.g.
``1000000/60``) or the test measures the limiter: a 429 counts as a failure.

Request names are routes (``register``, ``start``, ``answer``, ``finish``, ``leaderboard/me``,
``leaderboard``, ``orgs``, ``stats``, ``live``; ``picker``: the registration page's org lists, one
level at a time as a person taps through them), never ids.  Any failure makes locust exit 1.
"""

from __future__ import annotations

import itertools
import os
import random
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, HttpUser, LoadTestShape, between, events, task
from locust.runners import WorkerRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kit import leaf_orgs, setup_contest

ADMIN_TOKEN = os.environ.get("QUIZ_ADMIN_TOKEN", "")
ORGANIZER_TOKEN = os.environ.get("QUIZ_ORGANIZER_TOKEN", "") or ADMIN_TOKEN


def _pair(name: str, default: str) -> tuple[float, float]:
    low, _, high = os.environ.get(name, default).partition(",")
    return float(low), float(high or low)


def _num(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


THINK = _pair("QUIZ_LOCUST_THINK", "1,4")
PAUSE = _pair("QUIZ_LOCUST_PAUSE", "2,10")
POLL = _pair("QUIZ_LOCUST_POLL", "1,3")
ATTEMPTS = int(_num("QUIZ_LOCUST_ATTEMPTS", 2))
SSE_S = _num("QUIZ_LOCUST_SSE_S", 10)


class Shared:
    """Set once per process by ``test_start``: the contest every user plays and the orgs to join."""

    contest_id: str = os.environ.get("QUIZ_CONTEST_ID", "")
    orgs: list[str] = []
    salt = secrets.randbelow(10_000)
    worker = 0
    phones = itertools.count(1)


def _setup(environment: Any, **_: Any) -> None:
    host = environment.host or ""
    if not host:
        raise SystemExit("pass --host http://HOST:PORT")
    if isinstance(environment.runner, WorkerRunner):
        Shared.worker = environment.runner.worker_index % 100
    if not Shared.contest_id:
        name = os.environ.get("QUIZ_LOCUST_CONTEST", "loadtest")
        if isinstance(environment.runner, WorkerRunner):
            Shared.contest_id = name  # the master set it up before it sent the spawn order
        else:
            if not ADMIN_TOKEN:
                raise SystemExit("QUIZ_ADMIN_TOKEN is needed to set up a contest (or pass QUIZ_CONTEST_ID)")
            Shared.contest_id = setup_contest(host, ADMIN_TOKEN, name,
                                              province=os.environ.get("QUIZ_LOCUST_PROVINCE") == "1")
    Shared.orgs = leaf_orgs(host)


events.test_start.add_listener(_setup)


def _phone() -> str:
    # a mainland mobile (1, 3-9, 9 digits: the service checks): salt (3 digits' worth), worker (2),
    # counter (5): unique across workers, and across runs but by chance
    salt = Shared.salt
    return f"1{3 + salt % 7}{salt // 7 % 100:02d}{Shared.worker:02d}{next(Shared.phones) % 10**5:05d}"


def _choice(question: dict[str, Any]) -> str | list[str]:
    keys = [o["key"] for o in question["options"]]
    if question["type"] == "multiple":
        return sorted(random.sample(keys, random.randint(1, len(keys))))
    key: str = random.choice(keys)
    return key


class Participant(FastHttpUser):
    """Registers, then plays attempts question by question and looks at its rank after each.

    FastHttpUser (geventhttpclient): the bulk of the users, so the generator's own CPU per
    request matters; organizers stay on HttpUser for its streaming (the SSE feed).
    """

    weight = int(_num("QUIZ_LOCUST_PARTICIPANT_WEIGHT", 20))
    wait_time = between(*PAUSE)

    def on_start(self) -> None:
        self.token = ""
        self.played = 0
        org_id = self.pick_org()
        for _ in range(5):  # a phone taken by an earlier run: draw another salt and try again
            with self.client.post("/api/v1/auth/register", name="register", catch_response=True,
                                  json={"name": f"压测{random.randint(1, 99999)}", "phone": _phone(),
                                        "org_id": org_id}) as resp:
                if resp.status_code == 201:
                    self.token = resp.json()["token"]
                    break
                if resp.status_code == 409:
                    resp.success()
                    Shared.salt = secrets.randbelow(10_000)
                    continue
                resp.failure(f"register: {resp.status_code} {resp.text[:200]}")
                return
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def pick_org(self) -> str:
        """What the registration page asks for: the roots, then one level at a time to a leaf."""
        org_id, parent = random.choice(Shared.orgs), ""
        for _ in range(8):
            path = f"/api/v1/orgs?parent_id={parent}" if parent else "/api/v1/orgs"  # ids need no quoting
            with self.client.get(path, name="picker", catch_response=True) as resp:
                if resp.status_code != 200:
                    resp.failure(f"picker: {resp.status_code} {resp.text[:200]}")
                    return org_id
                orgs = resp.json()["orgs"]
            if not orgs:
                return org_id
            chosen = random.choice(orgs)
            if not chosen["has_children"]:
                return str(chosen["org_id"])
            parent = chosen["org_id"]
        return org_id

    @task
    def play(self) -> None:
        if not self.token:
            self.stop()
            return
        if self.played >= ATTEMPTS:
            self.my_rank()
            return
        cid = Shared.contest_id
        with self.client.post(f"/api/v1/contests/{cid}/attempts", headers=self.headers, name="start",
                              catch_response=True) as resp:
            if resp.status_code not in (200, 201):
                resp.failure(f"start: {resp.status_code} {resp.text[:200]}")
                return
            attempt = resp.json()
        aid = attempt["attempt_id"]
        done = {a["index"] for a in attempt.get("answered", [])}
        for question in attempt["questions"]:
            if question["index"] in done:
                continue
            time.sleep(random.uniform(*THINK))
            with self.client.post(f"/api/v1/attempts/{aid}/answers", headers=self.headers, name="answer",
                                  json={"index": question["index"], "choice": _choice(question)},
                                  catch_response=True) as resp:
                if resp.status_code != 200:
                    resp.failure(f"answer: {resp.status_code} {resp.text[:200]}")
        with self.client.post(f"/api/v1/attempts/{aid}/finish", headers=self.headers, name="finish",
                              catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"finish: {resp.status_code} {resp.text[:200]}")
        self.played += 1
        self.my_rank()

    def my_rank(self) -> None:
        with self.client.get(f"/api/v1/contests/{Shared.contest_id}/leaderboard/me?around=5", headers=self.headers,
                             name="leaderboard/me", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"leaderboard/me: {resp.status_code} {resp.text[:200]}")
            elif self.played and resp.json().get("rank") is None:
                resp.failure("leaderboard/me: no rank after a finished attempt")


class Organizer(HttpUser):
    """Watches the night: boards, org rankings, stats, and the live feed held open."""

    weight = int(_num("QUIZ_LOCUST_ORGANIZER_WEIGHT", 1))
    wait_time = between(*POLL)

    def _get(self, path: str, name: str, token: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with self.client.get(path, headers=headers, name=name, catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"{name}: {resp.status_code} {resp.text[:200]}")

    @task(4)
    def board(self) -> None:
        cid = Shared.contest_id
        query = f"board={random.choice(('total', 'daily'))}&offset={random.choice((0, 0, 50, 100))}&limit=50"
        if random.random() < 0.3:
            query += f"&org_id={random.choice(Shared.orgs)}"
        self._get(f"/api/v1/contests/{cid}/leaderboard?{query}", "leaderboard")

    @task(2)
    def org_ranking(self) -> None:
        sort = random.choice(("participation_rate", "participants", "avg_score", "total_score"))
        self._get(f"/api/v1/contests/{Shared.contest_id}/orgs?level={random.randint(1, 3)}&sort={sort}", "orgs")

    @task(2)
    def stats(self) -> None:
        if ORGANIZER_TOKEN:
            self._get(f"/api/v1/admin/contests/{Shared.contest_id}/stats", "stats", ORGANIZER_TOKEN)

    @task(1)
    def live(self) -> None:
        """Hold the SSE feed for QUIZ_LOCUST_SSE_S; reported as ``live`` with the time to the first snapshot."""
        started = time.perf_counter()
        first_ms: float | None = None
        snapshots, size = 0, 0
        error: Exception | None = None
        try:
            resp = self.client.get(f"/api/v1/contests/{Shared.contest_id}/live", stream=True, name="live (connect)",
                                   timeout=(5, 5))
            try:
                if resp.status_code != 200:
                    error = RuntimeError(f"live: {resp.status_code}")
                else:
                    for line in resp.iter_lines():
                        size += len(line) + 1
                        if line.startswith(b"event: snapshot"):
                            snapshots += 1
                            if first_ms is None:
                                first_ms = (time.perf_counter() - started) * 1000
                        if time.perf_counter() - started >= SSE_S:
                            break
            finally:
                resp.close()
        except Exception as exc:
            error = exc
        if error is None and snapshots == 0:
            error = RuntimeError(f"live: no snapshot in {SSE_S:.0f} s")
        self.environment.events.request.fire(
            request_type="SSE", name="live", response_time=first_ms or (time.perf_counter() - started) * 1000,
            response_length=size, exception=error, context={"snapshots": snapshots})


if os.environ.get("QUIZ_LOCUST_SHAPE", "").lower() == "spike":

    class SpikeShape(LoadTestShape):
        """The 8 pm spike: ramp to the peak in RAMP_S, hold, decay to BASE of it, then stop."""

        peak = int(_num("QUIZ_LOCUST_PEAK", 500))
        ramp_s = _num("QUIZ_LOCUST_RAMP_S", 60)
        hold_s = _num("QUIZ_LOCUST_HOLD_S", 240)
        decay_s = _num("QUIZ_LOCUST_DECAY_S", 60)
        base = _num("QUIZ_LOCUST_BASE", 0.1)

        def tick(self) -> tuple[int, float] | None:
            t = self.get_run_time()  # type: ignore[no-untyped-call]  # locust's LoadTestShape is unannotated
            if t < self.ramp_s:
                return max(1, round(self.peak * t / self.ramp_s)), max(1.0, self.peak / self.ramp_s)
            if t < self.ramp_s + self.hold_s:
                return self.peak, max(1.0, self.peak / self.ramp_s)
            if t < self.ramp_s + self.hold_s + self.decay_s:
                left = 1 - (t - self.ramp_s - self.hold_s) / self.decay_s
                users = round(self.peak * (self.base + (1 - self.base) * left))
                return max(1, users), max(1.0, self.peak / max(self.decay_s, 1))
            return None
