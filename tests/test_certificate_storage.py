"""The certificate and per-attempt answer storage of issue 15, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from contest.storage import Storage
from tests.test_storage import T0, attempt_events, void_ev


def _cert(serial: str, aid: str = "a1") -> dict:
    return {"serial": serial, "attempt_id": aid, "contest_id": "c1", "user_id": "u1", "name": "欧阳明月",
            "org_id": "o1", "org_name": "荷塘村", "score": 10, "rank": 2, "title": "荣誉证书", "issued_at": T0 + 100}


async def test_certificates_are_one_per_attempt_and_verify_voids(storage: Storage) -> None:
    await storage.write_events(attempt_events("a1", "u1"))
    answers = await storage.load_attempt_answers("a1")
    assert [(a["idx"], a["correct"], a["points_awarded"]) for a in answers] == [(0, 1, 10), (1, 0, 0)]
    assert await storage.load_attempt_answers("nope") == []
    first = await storage.save_certificate(_cert("SERIALAAAAAAAAAAAAAA"))
    again = await storage.save_certificate(_cert("SERIALBBBBBBBBBBBBBB"))  # a second issue race: the first wins
    assert first["serial"] == again["serial"] == "SERIALAAAAAAAAAAAAAA" and first["name"] == "欧阳明月"
    row = await storage.load_certificate("SERIALAAAAAAAAAAAAAA")
    assert row is not None and int(row["voided"]) == 0 and row["reason"] is None and int(row["rank"]) == 2
    assert await storage.load_certificate("SERIALBBBBBBBBBBBBBB") is None
    await storage.write_events([void_ev("a1", at=T0 + 200)])
    row = await storage.load_certificate("SERIALAAAAAAAAAAAAAA")
    assert row is not None and int(row["voided"]) == 1 and row["reason"] == "cheating"
    await storage.write_events([void_ev("a1", undo=1, at=T0 + 300)])
    row = await storage.load_certificate("SERIALAAAAAAAAAAAAAA")
    assert row is not None and int(row["voided"]) == 0
