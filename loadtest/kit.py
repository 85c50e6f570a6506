"""What every load tool here shares: a tiny blocking API client and the contest setup on a fresh server.

Blocking on purpose (``urllib``): locust runs it under gevent, ``replay.py`` and ``bench.py`` call it
once before their event loop starts.  Nothing here is on a measured path.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson

__all__ = ["SAMPLE", "ApiFailure", "api", "leaf_orgs", "setup_contest"]

SAMPLE = Path(__file__).resolve().parent.parent / "contest" / "sample"


class ApiFailure(RuntimeError):
    """A setup call answered something other than what it must."""


def api(host: str, method: str, path: str, *, token: str | None = None, body: Any = None,
        raw: bytes | None = None, content_type: str = "application/json",
        timeout: float = 30.0) -> tuple[int, Any]:
    """(status, decoded JSON body) of one request; HTTP errors are returned, not raised."""
    data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
    request = urllib.request.Request(host.rstrip("/") + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", content_type)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    try:
        return status, orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        return status, payload.decode(errors="replace")


def _expect(result: tuple[int, Any], *ok: int, what: str) -> Any:
    status, body = result
    if status not in ok:
        raise ApiFailure(f"{what}: HTTP {status}: {body}")
    return body


def setup_contest(host: str, admin_token: str, contest_id: str = "loadtest", *,
                  duration_s: int = 4 * 3600, province: bool = False, **overrides: Any) -> str:
    """Import the sample org tree and bank, then create (or re-open) and publish ``contest_id``.

    ``province``: import the generated 130,000-org province (contest/orggen.py) as well, so the
    registration picker and the org boards work on a real province's numbers.
    Idempotent, so a second run against the same server re-opens the window instead of failing:
    re-importing orgs and questions updates them, an existing contest is PATCHed.  The contest
    allows unlimited attempts (a load test replays the same users) unless overrides say otherwise.
    """
    _expect(api(host, "POST", "/api/v1/admin/orgs/import", token=admin_token,
                raw=(SAMPLE / "orgs.csv").read_bytes(), content_type="text/csv"), 200, what="import orgs")
    if province:
        from contest.orggen import generate_orgs, orgs_csv

        _expect(api(host, "POST", "/api/v1/admin/orgs/import", token=admin_token, timeout=120.0,
                    raw=orgs_csv(generate_orgs()), content_type="text/csv"), 200, what="import the province")
    _expect(api(host, "POST", "/api/v1/admin/questions/import", token=admin_token,
                raw=(SAMPLE / "questions.json").read_bytes()), 200, what="import questions")
    config = orjson.loads((SAMPLE / "contest.json").read_bytes())
    now = int(time.time() * 1000)
    config.update(contest_id=contest_id, title=f"{config['title']} [{contest_id}]",
                  starts_at=now - 60_000, ends_at=now + duration_s * 1000,
                  attempts_per_day=0, attempts_total=0, time_limit_s=900)
    config.update(overrides)
    status, body = api(host, "POST", "/api/v1/admin/contests", token=admin_token, body=config)
    if status == 409:
        patch = {k: v for k, v in config.items() if k != "contest_id"}
        _expect(api(host, "PATCH", f"/api/v1/admin/contests/{contest_id}", token=admin_token, body=patch),
                200, what="re-open contest")
    elif status != 201:
        raise ApiFailure(f"create contest: HTTP {status}: {body}")
    _expect(api(host, "POST", f"/api/v1/admin/contests/{contest_id}/publish", token=admin_token), 200,
            what="publish contest")
    _wait_visible(host, contest_id)
    return contest_id


def _wait_visible(host: str, contest_id: str, timeout_s: float = 15.0) -> None:
    """Until every worker serves the contest: each one picks it up on its catalog refresh.

    Requests on fresh connections land on any worker sharing the port, so several answers in a
    row that all find it mean the workers have it (the first participants then never see 404).
    """
    deadline = time.monotonic() + timeout_s
    streak = 0
    while streak < 12:
        if time.monotonic() > deadline:
            raise ApiFailure(f"contest {contest_id} not served by every worker within {timeout_s:.0f} s")
        status, _ = api(host, "GET", f"/api/v1/contests/{contest_id}")
        streak = streak + 1 if status == 200 else 0
        time.sleep(0.05 if status == 200 else 0.2)


def leaf_orgs(host: str) -> list[str]:
    """Org ids a participant can register in (the leaves of the tree the server has)."""
    body = _expect(api(host, "GET", "/api/v1/orgs?all=1"), 200, what="list orgs")
    leaves = [o["org_id"] for o in body["orgs"] if not o.get("has_children")]
    if not leaves:
        raise ApiFailure("the server has no org tree: import one or let the load test set up its own")
    return leaves
