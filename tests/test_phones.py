"""Mainland mobile numbers: every spelling of a number is one number; the pattern can be replaced."""

from __future__ import annotations

from typing import Any

import pytest

from contest.phones import mask_phone, normalize_phone
from tests.fixtures.app import SAMPLE, admin_headers


@pytest.mark.parametrize(("raw", "phone"), [
    ("13912345678", "13912345678"), ("139 1234 5678", "13912345678"), ("139-1234-5678", "13912345678"),
    ("+86 139 1234 5678", "13912345678"), ("+8613912345678", "13912345678"), ("86 13912345678", "13912345678"),
    ("008613912345678", "13912345678"), ("１３９１２３４５６７８", "13912345678"), ("(139) 1234 5678", "13912345678"),
    ("19912345678", "19912345678"),
])
def test_spellings_of_one_number(raw: str, phone: str) -> None:
    assert normalize_phone(raw) == phone


@pytest.mark.parametrize("raw", ["123456", "12912345678", "1391234567", "139123456789", "23912345678",
                                 "+1 415 555 0100", "8613912345678x", "abcdefghijk", "", "+86"])
def test_not_a_mainland_mobile(raw: str) -> None:
    assert normalize_phone(raw) is None


def test_pattern_can_be_replaced_and_masking() -> None:
    assert normalize_phone("12912345678", r"^1\d{10}$") == "12912345678"
    assert normalize_phone("13912345678", r"^139\d{8}$") == "13912345678"
    assert normalize_phone("13812345678", r"^139\d{8}$") is None
    assert mask_phone("13912345678") == "139****5678"


async def test_register_follows_the_configured_pattern(app_factory: Any) -> None:
    async with app_factory(phone_pattern=r"^1\d{10}$") as client:
        resp = await client.post("/api/v1/admin/orgs/import", data=(SAMPLE / "orgs.csv").read_bytes(),
                                 headers={**admin_headers(), "Content-Type": "text/csv"})
        assert resp.status == 200
        resp = await client.post("/api/v1/auth/register", json={"name": "甲", "phone": "12912345678",
                                                               "org_id": "360302002001"})
        assert resp.status == 201, await resp.text()
