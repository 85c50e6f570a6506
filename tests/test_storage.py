"""Both storage backends against the event format of docs/events.md (real SQLite, real PostgreSQL)."""

from __future__ import annotations

import pytest

from contest.storage import PoisonEvent, Storage, open_storage
from contest.storage.postgres import PostgresStorage
from contest.storage.sqlite import SqliteStorage

__all__ = ["T0", "ans_ev", "attempt_events", "fin_ev", "seed_export_data", "start_ev", "user_ev", "void_ev"]

T0 = 1_700_000_000_000


def user_ev(
    uid: str, *, name: str = "张三", phone: str = "", ext: str = "", org: str = "x1"
) -> dict[str, str]:
    return {"t": "user", "uid": uid, "name": name, "phone": phone, "ext": ext, "org": org, "at": str(T0)}


def start_ev(
    aid: str, uid: str, *, cid: str = "c1", org: str = "x1", path: str = "/p1/c1/x1/", at: int = T0
) -> dict[str, str]:
    return {
        "t": "start",
        "cid": cid,
        "aid": aid,
        "uid": uid,
        "org": org,
        "path": path,
        "at": str(at),
        "dl": str(at + 600_000),
        "day": "2023-11-15",
        "paper": '[["q1","0123"],["q2","10"]]',
    }


def ans_ev(
    aid: str, uid: str, i: int, *, cid: str = "c1", ok: int = 1, pts: int = 10, fl: int = 0, ch: str = "B"
) -> dict[str, str]:
    return {
        "t": "ans",
        "cid": cid,
        "aid": aid,
        "uid": uid,
        "i": str(i),
        "qid": f"q{i + 1}",
        "ch": ch,
        "ok": str(ok),
        "pts": str(pts),
        "at": str(T0 + 1000 * (i + 1)),
        "fl": str(fl),
    }


def fin_ev(aid: str, uid: str, *, cid: str = "c1", score: int = 20, at: int = T0 + 5000) -> dict[str, str]:
    return {
        "t": "fin",
        "cid": cid,
        "aid": aid,
        "uid": uid,
        "score": str(score),
        "cc": "2",
        "qc": "2",
        "dur": "5000",
        "at": str(at),
        "auto": "0",
        "counted": "1",
    }


def void_ev(aid: str, *, undo: int = 0, at: int = T0 + 9000, cid: str = "c1") -> dict[str, str]:
    return {
        "t": "void",
        "cid": cid,
        "aid": aid,
        "by": "admin",
        "reason": "cheating",
        "at": str(at),
        "undo": str(undo),
    }


def attempt_events(aid: str, uid: str, *, cid: str = "c1", **kw: str) -> list[dict[str, str]]:
    return [
        start_ev(aid, uid, cid=cid, **kw),
        ans_ev(aid, uid, 0, cid=cid),
        ans_ev(aid, uid, 1, cid=cid, ok=0, pts=0, fl=1),
        fin_ev(aid, uid, cid=cid, score=10),
    ]


async def collect(iterator) -> list:
    return [row async for row in iterator]


def test_open_storage_picks_backend_by_url() -> None:
    assert isinstance(open_storage("sqlite:////tmp/x/quiz.db"), SqliteStorage)
    assert open_storage("sqlite:////tmp/x/quiz.db").path == "/tmp/x/quiz.db"
    assert isinstance(open_storage("postgresql://u@h/db"), PostgresStorage)
    assert isinstance(open_storage("postgres://u@h/db"), PostgresStorage)
    with pytest.raises(ValueError):
        open_storage("mysql://h/db")


async def test_admin_data_round_trip(storage: Storage) -> None:
    await storage.ping()
    await storage.save_orgs(
        [
            {"org_id": "p1", "parent_id": None, "name": "省", "level": 1, "members": 100, "accepts_members": True},
            {"org_id": "c1", "parent_id": "p1", "name": "市", "level": 2, "members": 40},
        ]
    )
    await storage.save_orgs([{"org_id": "c1", "parent_id": "p1", "name": "市二", "level": 2, "members": 41}])
    orgs = await storage.load_orgs()
    assert orgs == [
        {"org_id": "c1", "parent_id": "p1", "name": "市二", "level": 2, "members": 41, "accepts_members": 0},
        {"org_id": "p1", "parent_id": None, "name": "省", "level": 1, "members": 100, "accepts_members": 1},
    ]
    question = {
        "id": "q1",
        "type": "single",
        "stem": "1+1?",
        "options": ["1", "2"],
        "answer": "B",
        "category": "math",
        "difficulty": 1,
        "points": 10,
        "explanation": "",
    }
    await storage.save_questions([question])
    await storage.save_questions([{**question, "stem": "1+1=?"}])
    assert await storage.load_questions() == [{**question, "stem": "1+1=?"}]
    await storage.save_contest("c1", {"title": "竞赛", "paper": {"draw": []}}, "draft")
    await storage.save_contest("c1", {"title": "竞赛", "paper": {"draw": []}}, "published")
    assert await storage.load_contests() == [
        {"contest_id": "c1", "config": {"title": "竞赛", "paper": {"draw": []}}, "status": "published"}
    ]


async def test_replayed_batch_is_stored_once(storage: Storage) -> None:
    batch = [user_ev("u1", phone="13800000001"), *attempt_events("a1", "u1"), void_ev("a1")]
    await storage.write_events(batch)
    await storage.write_events(batch)
    assert await storage.count_rows("c1") == {"users": 1, "attempts": 1, "finished": 1, "answers": 2}
    assert await storage.count_rows() == {"users": 1, "attempts": 1, "finished": 1, "answers": 2}
    [attempt] = await collect(storage.load_attempts("c1"))
    assert attempt["voided"] == 1 and attempt["score"] == 10 and attempt["org_path"] == "/p1/c1/x1/"


async def test_finish_before_start_in_one_batch(storage: Storage) -> None:
    await storage.write_events([fin_ev("a1", "u1", score=30), ans_ev("a1", "u1", 0), start_ev("a1", "u1")])
    [attempt] = await collect(storage.load_attempts("c1"))
    assert attempt["started_at"] == T0 and attempt["finished_at"] == T0 + 5000 and attempt["score"] == 30
    assert attempt["org_path"] == "/p1/c1/x1/" and attempt["deadline_at"] == T0 + 600_000


async def test_finish_in_a_later_batch_never_overwrites(storage: Storage) -> None:
    await storage.write_events([fin_ev("a1", "u1", score=30)])
    await storage.write_events([start_ev("a1", "u1"), fin_ev("a1", "u1", score=99, at=T0 + 9999)])
    [attempt] = await collect(storage.load_attempts("c1"))
    assert attempt["score"] == 30 and attempt["started_at"] == T0


async def test_void_then_restore(storage: Storage) -> None:
    await storage.write_events(attempt_events("a1", "u1"))
    await storage.write_events([void_ev("a1", at=T0 + 10), void_ev("a1", undo=1, at=T0 + 20)])
    [attempt] = await collect(storage.load_attempts("c1"))
    assert attempt["voided"] == 0
    # an older decision delivered late does not win over the newer one
    await storage.write_events([void_ev("a1", at=T0 + 15)])
    [attempt] = await collect(storage.load_attempts("c1"))
    assert attempt["voided"] == 0


async def test_users_phone_and_ext_are_unique(storage: Storage) -> None:
    await storage.write_events([user_ev("u1", phone="13800000001", ext="wx-1"), user_ev("u2")])
    await storage.write_events([user_ev("u3"), user_ev("u4")])  # empty phone/ext are NULL, not duplicates
    with pytest.raises(PoisonEvent) as info:
        await storage.write_events([user_ev("u5"), user_ev("u6", phone="13800000001")])
    assert info.value.index == 1
    with pytest.raises(PoisonEvent) as info:
        await storage.write_events([user_ev("u7", ext="wx-1")])
    assert info.value.index == 0
    users = await storage.load_users(None, 10)
    assert [u["user_id"] for u in users] == ["u1", "u2", "u3", "u4"]
    assert users[0]["phone"] == "13800000001" and users[0]["ext_id"] == "wx-1" and users[1]["phone"] is None
    assert [u["user_id"] for u in await storage.load_users("u2", 1)] == ["u3"]


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (ans_ev("a1", "u1", 0) | {"pts": "ten"}, "bad value"),
        ({k: v for k, v in ans_ev("a1", "u1", 0).items() if k != "qid"}, "missing field 'qid'"),
        (ans_ev("a1", "u1", 0) | {"i": str(2**40)}, "out of range"),
        ({"t": "nope"}, "unknown event type"),
    ],
)
async def test_poison_event_names_its_index(storage: Storage, event: dict[str, str], message: str) -> None:
    with pytest.raises(PoisonEvent) as info:
        await storage.write_events([start_ev("a1", "u1"), event])
    assert info.value.index == 1 and message in info.value.message
    assert (await storage.count_rows())["attempts"] == 0  # all or nothing


async def seed_export_data(storage: Storage) -> None:
    events = [user_ev("u1", name="=HYPERLINK(1)"), user_ev("u2", name="李四")]
    events += attempt_events("a1", "u1", path="/p1/c1/x1/")
    events += attempt_events("a2", "u2", path="/p1/c2/x2/", org="x2")
    events += attempt_events("a3", "u3", path="/p10/c9/", org="y")  # u3 never registered: name NULL
    events += [start_ev("a4", "u1", path="/p1/c1/x1/")]  # unfinished: not a result
    events += attempt_events("b1", "u1", cid="c2")  # another contest
    await storage.write_events(events)


async def test_results_export_filtered_by_org_prefix(storage: Storage) -> None:
    await seed_export_data(storage)
    rows = await collect(storage.iter_results("c1", None))
    assert [r[0] for r in rows] == ["a1", "a2", "a3"]
    assert rows[0] == ("a1", "u1", "=HYPERLINK(1)", "x1", 10, 2, 2, 5000, T0, T0 + 5000, 0, 1)
    assert rows[2][2] is None
    assert [r[0] for r in await collect(storage.iter_results("c1", "/p1/"))] == ["a1", "a2"]
    assert [r[0] for r in await collect(storage.iter_results("c1", "/p1/c2/"))] == ["a2"]
    assert [r[0] for r in await collect(storage.iter_results("c1", "/p2/"))] == []


async def test_answers_export_streams_in_order(storage: Storage) -> None:
    await seed_export_data(storage)
    rows = await collect(storage.iter_answers("c1", "/p1/"))
    assert [(r[0], r[2]) for r in rows] == [("a1", 0), ("a1", 1), ("a2", 0), ("a2", 1)]
    assert rows[1] == ("a1", "u1", 1, "q2", "B", 0, 0, T0 + 2000, 1)
    everything = await collect(storage.iter_answers("c1", None))
    assert len(everything) == 6
    loaded = await collect(storage.load_answers("c1"))
    assert [(a["attempt_id"], a["idx"]) for a in loaded] == [
        (a, i) for a in ("a1", "a2", "a3") for i in (0, 1)
    ]
    attempts = await collect(storage.load_attempts("c1"))
    assert {a["attempt_id"] for a in attempts} == {"a1", "a2", "a3", "a4"}


async def test_large_export_streams_in_chunks(storage: Storage) -> None:
    events = []
    for n in range(300):
        aid = f"a{n:04d}"
        events += [start_ev(aid, f"u{n}", path=f"/p1/c{n % 7}/")]
        events += [ans_ev(aid, f"u{n}", i) for i in range(20)]
    await storage.write_events(events)
    seen = 0
    previous: tuple = ()
    async for row in storage.iter_answers("c1", "/p1/"):
        key = (f"/p1/c{int(row[0][1:]) % 7}/", row[0], row[2])
        assert key > previous
        previous = key
        seen += 1
    assert seen == 6000
    # leaving an export half way releases its connection and cursor
    for _ in range(10):
        async for _row in storage.iter_answers("c1", None):
            break
    await storage.ping()


@pytest.mark.postgres
async def test_value_postgres_refuses_is_found_by_bisection(pg_storage: PostgresStorage) -> None:
    events = [start_ev(f"a{n}", "u1") for n in range(9)] + [ans_ev("a3", "u1", 0, ch="B\x00")]
    events += [ans_ev("a4", "u1", 0)]
    with pytest.raises(PoisonEvent) as info:
        await pg_storage.write_events(events)
    assert info.value.index == 9
    assert (await pg_storage.count_rows())["attempts"] == 0
