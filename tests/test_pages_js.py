"""The pages' helpers agree with the server where both decide the same thing (the helpers' own unit
tests run under node --test, tools/js)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from contest.phones import normalize_phone

PHONE_JS = Path(__file__).resolve().parents[1] / "contest" / "static" / "common" / "phone.js"
SPELLINGS = [
    "13912345678", "139 1234 5678", "139-1234-5678", "(139) 1234 5678", "+86 139 1234 5678", "+8613912345678",
    "86 13912345678", "8613912345678", "008613912345678", "１３９１２３４５６７８", "＋８６ １３９１２３４５６７８",
    "139\u300012345678", "139\u00a012345678", "19912345678", "123456", "12912345678", "1391234567", "139123456789",
    "23912345678", "+1 415 555 0100", "8613912345678x", "86139123456", "abcdefghijk", "", "+86", "139\t12345678",
    "１３９－１２３４－５６７８", "(+86)13912345678",
]


def test_the_forms_normalize_a_phone_as_the_server_does(node_path: str) -> None:
    """A number the page refuses never reaches the server, and one it sends is the one the server stores:
    common/phone.js and contest/phones.py must agree on every spelling."""
    script = (f"const m = await import({json.dumps(PHONE_JS.as_uri())});"
              "console.log(JSON.stringify(JSON.parse(process.argv[1]).map(m.normalizePhone)));")
    run = subprocess.run([node_path, "--input-type=module", "-e", script, json.dumps(SPELLINGS)],
                         capture_output=True, text=True, timeout=30, check=True)
    in_page = json.loads(run.stdout)
    on_server = [normalize_phone(raw) or "" for raw in SPELLINGS]
    differ = [(raw, page, server) for raw, page, server in zip(SPELLINGS, in_page, on_server, strict=True)
              if page != server]
    assert not differ, f"(spelling, page, server) that differ: {differ}"
