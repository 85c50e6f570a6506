"""Smoke tests of the load tools: locust traffic, the replay of a recorded night, ``quiz bench --quick``.

They prove the tools run end to end against a real server and report no failures; the speed
figures themselves come from ``quiz bench`` (loadtest/README.md), never from assertions here.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.app import LiveServer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "loadtest"))

from replay import load_recording, map_choice, replay  # noqa: E402


async def _run(*args: str, env: dict[str, str], limit_s: float) -> tuple[int, str]:
    """A child process awaited without blocking the loop the in-process server runs on."""
    proc = await asyncio.create_subprocess_exec(*args, env={**os.environ, **env}, cwd=str(ROOT),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")


async def test_locust_spike_shape_sets_up_its_contest_and_runs_clean(live_server: LiveServer, tmp_path: Path) -> None:
    env = {
        "QUIZ_ADMIN_TOKEN": live_server.admin_token, "QUIZ_LOCUST_SHAPE": "spike", "QUIZ_LOCUST_PEAK": "8",
        "QUIZ_LOCUST_RAMP_S": "1", "QUIZ_LOCUST_HOLD_S": "3", "QUIZ_LOCUST_DECAY_S": "1",
        "QUIZ_LOCUST_THINK": "0.02,0.05", "QUIZ_LOCUST_PAUSE": "0.05,0.1", "QUIZ_LOCUST_POLL": "0.05,0.1",
        "QUIZ_LOCUST_SSE_S": "0.8", "QUIZ_LOCUST_ORGANIZER_WEIGHT": "4", "QUIZ_LOCUST_PARTICIPANT_WEIGHT": "4",
    }
    code, out = await _run(sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--headless",
                           "--host", live_server.url.rstrip("/"), "--json-file", str(tmp_path / "run"),
                           "--only-summary", "--exit-code-on-error", "1", env=env, limit_s=60)
    assert code == 0, out[-3000:]
    stats = {s["name"]: s for s in json.loads((tmp_path / "run.json").read_text())}
    assert sum(s["num_failures"] for s in stats.values()) == 0, out[-3000:]
    # the shape ended the run by itself, after every kind of request had been made, grouped by route
    for name in ("register", "start", "answer", "finish", "leaderboard/me", "leaderboard", "orgs", "stats", "live"):
        assert stats.get(name, {}).get("num_requests", 0) > 0, (name, sorted(stats))
    assert not any("loadtest." in name for name in stats), "request names must not contain attempt ids"
    assert stats["answer"]["num_requests"] >= 10 * stats["finish"]["num_requests"] > 0


def _write_recording(path: Path, attempts: int, answers: int) -> None:
    t0 = int(time.time() * 1000) - 3_600_000
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["attempt_id", "user_id", "index", "question_id", "choice", "correct", "points_awarded",
                         "answered_at"])
        for a in range(attempts):
            for i in range(answers):
                choice = ("B", "AC", "D", "")[(a + i) % 4]  # "" is a recorded timeout: nothing is sent
                writer.writerow([f"night.{a}", f"u{a % 2}", i, f"Q{i:03d}", choice, 1, 10, t0 + a * 400 + i * 200])


async def test_replay_of_a_recorded_night(live_server: LiveServer, tmp_path: Path) -> None:
    recorded = tmp_path / "answers.csv"
    _write_recording(recorded, attempts=4, answers=5)
    recording = load_recording(recorded)
    assert len(recording.attempts) == 4 and recording.answer_count() == 20
    args = argparse_namespace(recorded, live_server)
    summary = await replay(args)
    assert summary["failed"] == 0, summary
    routes = summary["routes"]
    assert routes["register"]["statuses"] == {201: 2}  # two recorded users, each registered once
    assert routes["start"]["statuses"] == {201: 4} and routes["finish"]["statuses"] == {200: 4}
    assert summary["answers_sent"] == 15 and summary["answers_skipped"] == 5
    assert routes["answer"]["statuses"] == {200: 15}


def argparse_namespace(recorded: Path, live_server: LiveServer) -> object:
    import argparse

    return argparse.Namespace(answers=recorded, results=None, host=live_server.url.rstrip("/"),
                              admin_token=live_server.admin_token, contest_id="demo", speed=20.0,
                              finish_after_s=1.0, concurrency=50, limit_attempts=0, json=None)


def test_map_choice_fits_recorded_letters_to_the_new_question() -> None:
    judge = {"type": "judge", "options": [{"key": "A"}, {"key": "B"}]}
    multiple = {"type": "multiple", "options": [{"key": k} for k in "ABCD"]}
    assert map_choice("B", judge) == "B"
    assert map_choice("D", judge) == "A"  # a letter the new question lacks
    assert map_choice("CA", judge) == "A"
    assert map_choice("ca", multiple) == ["A", "C"]
    assert map_choice("E", multiple) == ["A"]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (.ci/run installs it)")
async def test_quiz_bench_quick_prints_its_table(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    code, out = await _run(sys.executable, "-m", "contest.cli", "bench", "--quick", "--no-postgres",
                           "--json", str(out_json), env={}, limit_s=180)
    assert code == 0, out[-3000:]
    assert "| section | measure | ours | baseline | ratio | target |" in out
    rows = {r["measure"]: r for r in json.loads(out_json.read_text())["rows"]}
    one = next(r for m, r in rows.items() if m.startswith("answers/s, 1 process"))
    assert one["raw"]["ours"]["rps"] > 0 and one["raw"]["naive"]["rps"] > 0
    assert one["raw"]["ours"]["errors"] == 0 and one["raw"]["naive"]["errors"] == 0
    lane = next(r for m, r in rows.items() if m.endswith("answer lane on / off"))
    assert lane["raw"]["nolane"]["rps"] > 0 and lane["raw"]["nolane"]["errors"] == 0
    for measure in ("rank of a member", "page of 50", "around-me", "finish update"):
        row = next(r for m, r in rows.items() if m.startswith(measure))
        assert min(r["per_s"] for r in row["raw"]["ours"]) > 0, row
    assert any(m.startswith("flusher into SQLite") and float(r["ours"].replace(",", "")) > 0 for m, r in rows.items())
    assert any(m.startswith("Redis memory per 1M registrants") for m in rows)
    for mode in ("memory", "fsync", "replica"):  # the durability row: each mode served, every answer a write
        row = next(r for m, r in rows.items() if m.startswith(f"answers/s, p99 ms: QUIZ_ACK_DURABILITY={mode} "))
        assert row["raw"]["errors"] == 0 and row["raw"]["first_answers"] == 1.0, row
        assert min(r["rps"] for r in row["raw"]["runs"]) > 0, row
