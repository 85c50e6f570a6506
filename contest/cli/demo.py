"""``quiz demo``: everything embedded, sample data, a running contest, optional simulated players."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import aiohttp
import orjson
from aiohttp import web

from contest.appkeys import CATALOG, SETTINGS, STAFF
from contest.auth import issue_token, sign_ticket
from contest.cli.runtime import use_uvloop, with_embedded_redis
from contest.contests import validate_contest
from contest.orgtree import parse_orgs
from contest.settings import Settings
from contest.web.app import create_app
from contest.web.front_door import serve
from question_bank import parse_questions

__all__ = ["run_demo", "seed_sample", "simulate_players"]

log = logging.getLogger(__name__)
SAMPLE = Path(__file__).resolve().parents[1] / "sample"
# the demo's staff accounts: they sign in by SMS, the code printed in the demo's log
DEMO_ORGANIZER_PHONE, DEMO_ADMIN_PHONE = "13800138000", "13800138001"


def _pace() -> float:
    """Time scale of the simulated players: QUIZ_DEMO_PACE=10 plays ten times faster (for tests)."""
    try:
        pace = float(os.environ.get("QUIZ_DEMO_PACE", "1"))
    except ValueError:
        return 1.0
    return pace if pace > 0 else 1.0


async def seed_sample(app: web.Application, contest_id: str = "demo") -> None:
    """Load the sample org tree and bank and open the sample contest (only what is missing)."""
    catalog = app[CATALOG]
    if len(catalog.orgs) == 0:
        orgs, errors = parse_orgs((SAMPLE / "orgs.csv").read_bytes(), filename="orgs.csv")
        assert not errors, errors
        await catalog.install_orgs(orgs)
    if len(catalog.bank) == 0:
        result = parse_questions((SAMPLE / "questions.json").read_bytes(), filename="questions.json")
        assert not result.errors, result.errors
        await catalog.install_questions(result.questions)
    if contest_id not in catalog.contests:
        body = orjson.loads((SAMPLE / "contest.json").read_bytes())
        now = int(time.time() * 1000)
        body.update(contest_id=contest_id, starts_at=now - 60_000, ends_at=now + 30 * 86_400_000)
        config = validate_contest(body, catalog.bank, default_min_answer_ms=app[SETTINGS].min_answer_ms)
        config["status"] = "published"
        await catalog.install_contest(config)


async def seed_staff(app: web.Application) -> None:
    """A demo organizer of the whole province and a demo admin (kept when they exist)."""
    directory = app[STAFF]
    wanted = [{"phone": DEMO_ORGANIZER_PHONE, "name": "演示组织者", "org_id": "360000", "role": "organizer"},
              {"phone": DEMO_ADMIN_PHONE, "name": "演示管理员", "org_id": "360000", "role": "admin"}]
    missing = [row for row in wanted if await directory.by_phone(row["phone"]) is None]
    if missing:
        await directory.upsert(missing)


async def _player_safe(session: aiohttp.ClientSession, base: str, contest_id: str, org_ids: list[str], n: int,
                       stop: asyncio.Event, ticket_secret: str) -> None:
    try:
        await _player(session, base, contest_id, org_ids, n, stop, ticket_secret)
    except Exception as exc:  # one broken player must not stop the demo
        log.warning("simulated player %d stopped: %r", n, exc)


async def _player(session: aiohttp.ClientSession, base: str, contest_id: str, org_ids: list[str], n: int,
                  stop: asyncio.Event, ticket_secret: str) -> None:
    rng = random.Random(n)
    pace = _pace()

    def pause(low: float, high: float) -> Awaitable[None]:
        return asyncio.sleep(rng.uniform(low, high) / pace)

    await pause(0.5, 5.0)
    # Slot n is played by one member after another: when a member has used up their attempts
    # (409 attempt_limit_reached) a new member joins in the slot, so N players stay active for as
    # long as the demo runs and the dashboard still moves an hour later.
    generation = 0
    headers = await _sign_in(session, base, rng, org_ids, n, generation, stop, ticket_secret)
    while not stop.is_set():
        async with session.post(f"{base}/api/v1/contests/{contest_id}/attempts", headers=headers) as resp:
            if resp.status == 409:  # this member's attempts are used up: the next member joins
                generation += 1
                headers = await _sign_in(session, base, rng, org_ids, n, generation, stop, ticket_secret)
                continue
            if resp.status not in (200, 201):  # closed, rate limited, a hiccup: come back later
                await asyncio.sleep(min(30.0, 30 / pace))
                continue
            attempt = await resp.json()
        for q in attempt["questions"]:
            await pause(0.5, 3.0)
            keys = [o["key"] for o in q["options"]]
            choice: object = rng.choice(keys) if q["type"] != "multiple" else sorted(rng.sample(keys, 2))
            async with session.post(f"{base}/api/v1/attempts/{attempt['attempt_id']}/answers", headers=headers,
                                    json={"index": q["index"], "choice": choice}):
                pass
        async with session.post(f"{base}/api/v1/attempts/{attempt['attempt_id']}/finish", headers=headers):
            pass
        await pause(5, 20)


async def _sign_in(session: aiohttp.ClientSession, base: str, rng: random.Random, org_ids: list[str], n: int,
                   generation: int, stop: asyncio.Event, ticket_secret: str) -> dict[str, str]:
    """Headers of simulated member ``generation`` of slot ``n``, signed in with a gateway ticket
    (as from a WeChat front): the same members each run, so a demo restarted on the same data
    directory finds them again instead of colliding."""
    surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
    ticket = sign_ticket(ticket_secret.encode(), {
        "sub": f"demo-player-{n}" + (f"-{generation}" if generation else ""),
        "name": rng.choice(surnames) + rng.choice("伟芳娜敏静丽强磊军洋勇艳杰涛明超"),
        "org_id": rng.choice(org_ids), "exp": int(time.time()) + 30 * 86400,
    })
    while not stop.is_set():
        try:  # the server starts listening only after the startup hooks
            async with session.post(f"{base}/api/v1/auth/ticket", json={"ticket": ticket}) as resp:
                if resp.status == 200:
                    return {"Authorization": f"Bearer {(await resp.json())['token']}"}
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    return {}


async def simulate_players(base: str, contest_id: str, org_ids: list[str], count: int,
                           stop: asyncio.Event, ticket_secret: str) -> None:
    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(_player_safe(session, base, contest_id, org_ids, i, stop, ticket_secret))
                 for i in range(count)]
        await stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def run_demo(settings: Settings, *, simulate: int = 0) -> int:
    if not settings.admin_token:
        settings = settings.replace(admin_token=f"demo-admin-{secrets.token_hex(8)}")
    if not settings.ticket_secret:
        settings = settings.replace(ticket_secret="demo-ticket-secret")
    # QUIZ_ENV=dev: sign-in codes go to this log unless a real SMS provider is configured
    settings = settings.replace(env="dev", sms_provider=settings.sms_provider or "log")
    settings, server = with_embedded_redis(settings)
    try:
        app = create_app(settings)
        host = settings.host if settings.host != "0.0.0.0" else "127.0.0.1"
        base = f"http://{host}:{settings.port}"

        async def sample(app: web.Application) -> AsyncIterator[None]:
            await seed_sample(app)
            await seed_staff(app)
            yield

        async def players(app: web.Application) -> AsyncIterator[None]:
            stop = asyncio.Event()
            task = None
            if simulate > 0:
                leaves = [o.org_id for o in app[CATALOG].orgs if not app[CATALOG].orgs.children(o.org_id)]
                task = asyncio.create_task(simulate_players(base, "demo", leaves, simulate, stop,
                                                             settings.ticket_secret))
            yield
            stop.set()
            if task is not None:
                with contextlib.suppress(Exception):
                    await task

        app.cleanup_ctx.extend([sample, players])
        organizer, _ = issue_token(settings.signing_secret, user_id="demo-organizer", role="organizer",
                                   org_id="360000", name="演示组织者", ttl_s=30 * 86400)
        print("\n".join([
            "",
            f"Quiz demo is starting (Ctrl-C stops it; data in {settings.data_dir.resolve()})",
            f"  Participant H5 app : {base}/",
            f"  Organizer dashboard: {base}/dashboard/?contest=demo",
            f"  Organizer sign-in  : phone {DEMO_ORGANIZER_PHONE}, 获取验证码: the code appears in this log",
            f"  Big screen         : {base}/screen/demo",
            f"  Admin pages        : {base}/admin/",
            f"  Admin sign-in      : phone {DEMO_ADMIN_PHONE}, the code appears in this log",
            f"  Admin token        : {settings.admin_token}",
            f"  Organizer token    : {organizer}",
            "",
        ]), flush=True)
        use_uvloop()
        asyncio.run(serve(app, host, settings.port, lane=settings.answer_lane))
        return 0
    finally:
        if server is not None:
            server.stop()
