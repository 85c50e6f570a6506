"""The org picker's search index (contest/orgsearch.py) and the generated province (contest/orggen.py)."""

from __future__ import annotations

import statistics
import time
from collections import Counter

import pytest

from contest.orggen import FANOUT, generate_orgs, orgs_csv
from contest.orgsearch import MAX_SPELLINGS, initials, normalize_query
from contest.orgtree import Org, OrgTree, parse_orgs

ROWS = [
    ("GD", None, "广东省", 1),
    ("CQ", "GD", "重庆市", 2),
    ("CS", "GD", "长沙市", 2),
    ("LQ", "CQ", "龙泉区", 3),
    ("LQX", "CS", "龙泉县", 3),
    ("HT", "LQ", "荷塘镇", 4),
    ("V1", "HT", "荷塘村", 5),
    ("V2", "HT", "王家村", 5),
    ("T2", "LQX", "王家镇", 4),
    ("V3", "T2", "王家村", 5),
    ("V4", "T2", "Abc 社区", 5),
]


@pytest.fixture(scope="module")
def tree() -> OrgTree:
    return OrgTree.from_orgs([Org(i, p, n, lv, 10 if lv == 5 else 0) for i, p, n, lv in ROWS])


def ids(orgs: list[Org]) -> list[str]:
    return [o.org_id for o in orgs]


def test_initials_cover_every_reading() -> None:
    assert initials("荷塘村") == ["htc"]
    assert {"cqs", "zqs"} <= set(initials("重庆市"))  # 重: zhong / chong
    assert {"css", "zss"} <= set(initials("长沙市"))  # 长: chang / zhang
    assert initials("Abc 社区")[0] == "abcsq"  # 区 is also read ou: "abcso" follows
    assert initials("——") == []
    assert len(initials("长长长长长长长长长长")) <= MAX_SPELLINGS


def test_normalize_query() -> None:
    assert normalize_query(" Ｗ J c\n") == "wjc"  # full-width letters, spaces, control characters
    assert normalize_query("王 家") == "王家"


def test_search_by_name_keeps_text_as_written(tree: OrgTree) -> None:
    assert ids(tree.search("荷塘")) == ["HT", "V1"]  # higher level first
    assert tree.search("荷塘村")[0].name == "荷塘村"
    assert ids(tree.search("abc")) == ["V4"] and tree.get("V4").name == "Abc 社区"  # type: ignore[union-attr]
    assert tree.search("不存在") == [] and tree.search("") == [] and tree.search("   ") == []


def test_search_by_pinyin_initials(tree: OrgTree) -> None:
    assert ids(tree.search("htc")) == ["V1"]
    assert ids(tree.search("HTC")) == ["V1"]
    assert ids(tree.search("cqs")) == ["CQ"] and ids(tree.search("zqs")) == ["CQ"]
    assert set(ids(tree.search("wjc"))) == {"V2", "V3"}
    assert ids(tree.search("lqx")) == ["LQX"]  # 龙泉县; 龙泉区 is "lqq"


def test_search_prefix_matches_first_within_a_level(tree: OrgTree) -> None:
    # both are towns; 王家镇 starts with the query, 荷塘镇 only contains its initials' "z"
    assert ids(tree.search("wjz")) == ["T2"]
    assert ids(tree.search("镇")) == ["HT", "T2"]
    assert ids(tree.search("王家")) == ["T2", "V2", "V3"]


def test_search_within_a_subtree_and_limit(tree: OrgTree) -> None:
    assert ids(tree.search("王家村", within="LQX")) == ["V3"]
    assert ids(tree.search("王家村", within="CQ")) == ["V2"]
    assert ids(tree.search("村", within="V1")) == ["V1"]  # an org is in its own subtree
    assert ids(tree.search("村", limit=2)) == ["V1", "V2"]
    with pytest.raises(KeyError):
        tree.search("村", within="nope")


def test_generated_province_shape_and_import() -> None:
    rows = generate_orgs()
    assert len(rows) == 130_000 == sum(FANOUT)
    assert Counter(r["level"] for r in rows) == dict(enumerate(FANOUT, start=1))
    assert generate_orgs()[:50] == rows[:50]  # deterministic
    villages = [r for r in rows if r["level"] == 5]
    assert all(40 <= int(r["members"]) <= 900 for r in villages)  # type: ignore[call-overload]
    siblings = Counter((r["parent_id"], r["name"]) for r in rows)
    assert max(siblings.values()) == 1  # no two siblings share a name
    started = time.perf_counter()
    orgs, errors = parse_orgs(orgs_csv(rows), filename="orgs.csv")
    tree = OrgTree.from_orgs(orgs)
    tree.search_index()
    elapsed = time.perf_counter() - started
    assert errors == [] and len(tree) == 130_000
    assert elapsed < 15, f"parsing and indexing 130,000 orgs took {elapsed:.1f} s"
    # a keystroke's search: a few ms at most, even when nothing matches (the whole index is scanned)
    village = tree.get(str(villages[77_777]["org_id"]))
    assert village is not None
    queries = ["村", village.name, village.name[:2], initials(village.name)[0], "zzzzqx", "不存在的名字", "xc"]
    timings = []
    for q in queries * 5:
        started = time.perf_counter()
        found = tree.search(q)
        timings.append(time.perf_counter() - started)
        assert len(found) <= 20
    assert village in tree.search(village.name)
    assert statistics.median(timings) < 0.005 and max(timings) < 0.05, timings
