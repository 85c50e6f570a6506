"""``quiz demo --simulate N`` as a real subprocess: embedded Valkey, sample data, players that move
the numbers, the printed URLs and organizer token work. QUIZ_DEMO_PACE speeds the players up."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from contest.embedded_redis import free_port

SAMPLE = Path(__file__).resolve().parents[1] / "contest" / "sample"


def test_sample_bank_is_chinese_and_big_enough() -> None:
    questions = json.loads((SAMPLE / "questions.json").read_text("utf-8"))
    assert len(questions) >= 50
    assert {q["type"] for q in questions} == {"single", "multiple", "judge"}
    assert all(re.search(r"[\u4e00-\u9fff]", q["stem"]) for q in questions)
    assert len({q["id"] for q in questions}) == len(questions)


async def _read_banner(stdout: asyncio.StreamReader) -> dict[str, str]:
    lines: dict[str, str] = {}
    while "Organizer token" not in lines:
        line = (await asyncio.wait_for(stdout.readline(), 30)).decode()
        assert line, "quiz demo exited before printing its URLs"
        name, sep, value = line.partition(":")
        if sep and value.strip():
            lines[name.strip()] = value.strip()
    return lines


async def _staff_sign_in(session: aiohttp.ClientSession, base: str, phone: str, log_lines: list[str]) -> Any:
    """The demo organizer signs in by SMS with the code from the demo's log."""
    async with session.post(f"{base}/api/v1/auth/sms/send", json={"phone": phone, "purpose": "staff"}) as resp:
        assert resp.status == 202, await resp.text()
    code = None
    for _ in range(100):
        found = [m for x in log_lines if (m := re.search(rf"SMS to {phone} \(staff\): code (\d{{6}})", x))]
        if found:
            code = found[-1].group(1)
            break
        await asyncio.sleep(0.05)
    assert code, log_lines[-5:]
    async with session.post(f"{base}/api/v1/auth/staff/login", json={"phone": phone, "code": code}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_demo_runs_embedded_and_players_move_the_numbers(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIZ_")}
    env.update(QUIZ_DATA_DIR=str(tmp_path / "demo"), QUIZ_DEMO_PACE="25", QUIZ_LOG_LEVEL="WARNING")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "contest.cli", "demo", "--port", str(port), "--simulate", "8",
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    log_lines: list[str] = []

    async def read_log() -> None:  # the demo's log (stderr), where the `log` SMS provider writes codes
        assert proc.stderr is not None
        while line := await proc.stderr.readline():
            log_lines.append(line.decode(errors="replace"))

    log_reader = asyncio.create_task(read_log())
    try:
        assert proc.stdout is not None
        banner = await _read_banner(proc.stdout)
        base = f"http://127.0.0.1:{port}"
        assert banner["Participant H5 app"] == f"{base}/"
        assert banner["Big screen"] == f"{base}/screen/demo"
        organizer = banner["Organizer token"]
        # the dashboard is signed in to by SMS (the pasted token stays for scripts)
        assert banner["Organizer dashboard"] == f"{base}/dashboard/?contest=demo"
        phone = re.search(r"phone (\d{11})", banner["Organizer sign-in"]).group(1)  # type: ignore[union-attr]
        headers = {"Authorization": f"Bearer {organizer}"}

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            deadline = time.monotonic() + 30
            stats: dict[str, int] = {}
            while time.monotonic() < deadline:
                try:
                    async with session.get(f"{base}/api/v1/admin/contests/demo/stats", headers=headers) as resp:
                        if resp.status == 200:
                            stats = await resp.json()
                            if stats["participants"] >= 3:
                                break
                except aiohttp.ClientError:
                    pass  # still starting
                await asyncio.sleep(0.2)
            assert stats.get("participants", 0) >= 3, stats
            assert stats["answers"] >= 30

            for page in ("/", "/dashboard/", "/screen/demo", "/admin/"):
                async with session.get(base + page) as resp:
                    assert resp.status == 200 and "text/html" in resp.headers["Content-Type"]
            async with session.get(f"{base}/api/v1/contests") as resp:
                assert [c["contest_id"] for c in (await resp.json())["contests"]] == ["demo"]
            async with session.get(f"{base}/api/v1/contests/demo/live") as resp:
                while True:
                    line = await asyncio.wait_for(resp.content.readline(), 5)
                    if line.startswith(b"data: "):
                        break
            snapshot = json.loads(line[6:])
            assert snapshot["top"] and snapshot["stats"]["participants"] >= 3
            staff = await _staff_sign_in(session, base, phone, log_lines)
            assert staff["role"] == "organizer" and staff["org_id"] == "360000"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log_reader.cancel()
    assert proc.returncode == 0
