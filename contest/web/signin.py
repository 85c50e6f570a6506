"""Wiring of sign-in by SMS and of staff accounts: one cleanup context, added by ``setup_routes``.

It runs after the Redis context (it needs the runner) and owns the HTTP session of the SMS
providers and the task that keeps this process's copy of staff account versions fresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from contest.appkeys import REDIS, RUNNER, SETTINGS, SMS_CODES, STAFF, STAFF_GATE
from contest.otp import SmsCodes
from contest.sms.providers import make_sender
from contest.staff import StaffDirectory, StaffGate
from contest.web.static_assets import assets_for, page_handler

__all__ = ["setup_signin"]


async def _signin_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    session = aiohttp.ClientSession()
    directory = StaffDirectory(app[REDIS], app[RUNNER])
    gate = StaffGate(directory, settings.staff_check_s)
    try:
        app[SMS_CODES] = SmsCodes(app[RUNNER], settings, make_sender(settings, session))
    except ValueError:
        await session.close()
        raise
    app[STAFF] = directory
    app[STAFF_GATE] = gate
    stop = asyncio.Event()
    task = asyncio.create_task(gate.run(stop), name="staff-gate")
    yield
    stop.set()
    await task
    await session.close()


def setup_signin(app: web.Application) -> None:
    app.cleanup_ctx.append(_signin_ctx)
    # the page where admins import, find and disable organizer accounts
    app.router.add_get("/admin/organizers/", page_handler("admin/organizers.html", assets_for()))
