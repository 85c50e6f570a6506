"""Org tree import checks and tree queries (paths, subtrees, member roll-ups, snapshots)."""

from __future__ import annotations

import json

import pytest

from contest.orgtree import Org, OrgTree, OrgTreeError, parse_orgs
from question_bank import ImportFormatError

HEADER = "org_id,parent_id,name,level,members"
BASE = [
    "P,,Province,1,0",
    "C1,P,City 1,2,0",
    "C2,P,City 2,2,500",
    "K1,C1,County 1,3,0",
    "T1,K1,Town 1,4,0",
    "V1,T1,Village 1,5,30",
    "V2,T1,Village 2,5,20",
    "K2,C1,County 2,3,100",
    "V3,T2,Village 3,5,7",
    "T2,K1,Town 2,4,0",
]


def csv_bytes(lines: list[str], header: str = HEADER, encoding: str = "utf-8") -> bytes:
    return "\n".join([header, *lines]).encode(encoding)


def errors_of(lines: list[str], existing: OrgTree | None = None) -> list[tuple[int, str]]:
    _, errors = parse_orgs(csv_bytes(lines), filename="orgs.csv", existing=existing)
    return [(e.row, e.column) for e in errors]


@pytest.fixture
def tree() -> OrgTree:
    orgs, errors = parse_orgs(csv_bytes(BASE), filename="orgs.csv")
    assert errors == []
    return OrgTree.from_orgs(orgs, version=3)


def test_parse_valid_file(tree: OrgTree) -> None:
    assert len(tree) == 10 and tree.version == 3
    assert tree.get("V1") == Org("V1", "T1", "Village 1", 5, 30)
    assert tree.get("P") == Org("P", None, "Province", 1, 0)


def test_parse_chinese_headers_levels_and_gb18030() -> None:
    header = "机构编号,上级编号,机构名称,级别,人数"
    lines = [
        "GD,,广东省,省,0",
        "GZ,GD,广州市,市,0",
        "TH,GZ,天河区,区,0",
        "SP,TH,石牌街道,街道,0",
        "CM,SP,某社区,村,120",
    ]
    orgs, errors = parse_orgs(csv_bytes(lines, header, "gb18030"), filename="机构.csv")
    assert errors == []
    assert [(o.org_id, o.level) for o in orgs] == [("GD", 1), ("GZ", 2), ("TH", 3), ("SP", 4), ("CM", 5)]
    assert orgs[2].name == "天河区"


def test_parse_level_names_and_bom() -> None:
    lines = ["a,,A,province,", "b,a,B,city,", "c,b,C,county,", "d,c,D,town,", "e,d,E,village,3"]
    orgs, errors = parse_orgs(b"\xef\xbb\xbf" + csv_bytes(lines), content_type="text/csv")
    assert errors == [] and [o.level for o in orgs] == [1, 2, 3, 4, 5] and orgs[0].members == 0


def test_parse_json_forms() -> None:
    items = [
        {"org_id": "r", "parent_id": None, "name": "Root", "level": 1, "members": 10},
        {"org_id": "s", "parent_id": "r", "name": "Sub", "level": "2", "members": "4"},
    ]
    for payload in (items, {"orgs": items}):
        orgs, errors = parse_orgs(json.dumps(payload).encode(), filename="orgs.json")
        assert errors == [] and orgs[1] == Org("s", "r", "Sub", 2, 4)


def test_unreadable_file() -> None:
    with pytest.raises(ImportFormatError):
        parse_orgs(b"\x00\x01\x02", filename=None)
    with pytest.raises(ImportFormatError, match="level"):
        parse_orgs(b"org_id,name\nx,y\n", filename="o.csv")


# --- one test per row error ------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", ["", "has space", "x" * 65, "a/b", "中文"])
def test_error_invalid_org_id(bad_id: str) -> None:
    assert errors_of(["P,,Province,1,0", f"{bad_id},P,City,2,0"]) == [(3, "org_id")]


def test_error_duplicate_org_id() -> None:
    _, errors = parse_orgs(csv_bytes(["P,,Province,1,0", "C,P,City,2,0", "C,P,Again,2,0"]), filename="o.csv")
    assert [(e.row, e.column) for e in errors] == [(4, "org_id")] and "row 3" in errors[0].message


def test_error_unknown_parent() -> None:
    assert errors_of(["P,,Province,1,0", "C,X,City,2,0"]) == [(3, "parent_id")]


def test_parent_from_existing_tree(tree: OrgTree) -> None:
    assert errors_of(["V9,T2,Village 9,5,1"], existing=tree) == []
    assert errors_of(["V9,T9,Village 9,5,1"], existing=tree) == [(2, "parent_id")]


@pytest.mark.parametrize("level", ["0", "6", "planet", "2.5", ""])
def test_error_bad_level(level: str) -> None:
    assert errors_of(["P,,Province,1,0", f"C,P,City,{level},0"]) == [(3, "level")]


def test_error_level_jump() -> None:
    assert errors_of(["P,,Province,1,0", "K,P,County,3,0"]) == [(3, "level")]


def test_error_root_not_level_one() -> None:
    assert errors_of(["C,,City,2,0"]) == [(2, "level")]


def test_error_level_change_strands_existing_children(tree: OrgTree) -> None:
    assert errors_of(["K1,P,County 1,2,0"], existing=tree) == [(2, "level")]
    assert errors_of(["T1,K2,Town 1,4,0"], existing=tree) == []  # moving a subtree at the same level is fine


def test_error_cycle() -> None:
    lines = ["P,,Province,1,0", "A,B,A,2,0", "B,A,B,2,0", "S,S,Self,2,0"]
    assert errors_of(lines) == [(3, "parent_id"), (4, "parent_id"), (5, "parent_id")]


def test_error_cycle_through_existing_tree(tree: OrgTree) -> None:
    # C1 re-parented under its own grandchild T1.
    assert (2, "parent_id") in errors_of(["C1,T1,City 1,5,0"], existing=tree)


@pytest.mark.parametrize("members", ["-1", "many", "1.5"])
def test_error_bad_members(members: str) -> None:
    assert errors_of([f"P,,Province,1,{members}"]) == [(2, "members")]


def test_error_bool_members_in_json() -> None:
    items = [{"org_id": "r", "parent_id": "", "name": "Root", "level": 1, "members": True}]
    _, errors = parse_orgs(json.dumps(items).encode(), filename="o.json")
    assert [(e.row, e.column) for e in errors] == [(1, "members")]


def test_error_empty_name() -> None:
    assert errors_of(["P,,  ,1,0"]) == [(2, "name")]


def test_error_too_many_rows() -> None:
    _, errors = parse_orgs(csv_bytes(BASE), filename="o.csv", max_rows=3)
    assert [(e.row, e.column) for e in errors] == [(0, "")]


# --- the tree --------------------------------------------------------------------------------


def test_paths(tree: OrgTree) -> None:
    assert tree.path("V3") == ("P", "C1", "K1", "T2", "V3")
    assert tree.path("P") == ("P",)
    assert tree.path_string("V3") == "/P/C1/K1/T2/V3/"
    assert tree.path_string("V1").startswith(tree.path_string("K1"))
    with pytest.raises(KeyError):
        tree.path("nope")


def test_children_and_levels(tree: OrgTree) -> None:
    assert [o.org_id for o in tree.children(None)] == ["P"]
    assert [o.org_id for o in tree.children("C1")] == ["K1", "K2"]
    assert tree.children("V1") == []
    assert [o.org_id for o in tree.at_level(5)] == ["V1", "V2", "V3"]
    assert "T2" in tree and "zz" not in tree


def test_subtree_ids(tree: OrgTree) -> None:
    assert tree.subtree_ids("K1") == {"K1", "T1", "T2", "V1", "V2", "V3"}
    assert tree.subtree_ids("V1") == {"V1"}
    assert tree.subtree_ids("P") == {o.org_id for o in tree}


def test_members_rollup(tree: OrgTree) -> None:
    assert tree.members_total("T1") == 50  # 30 + 20
    assert tree.members_total("K1") == 57  # T1 50 + T2 7
    assert tree.members_total("K2") == 100  # imported figure wins
    assert tree.members_total("C1") == 157
    assert tree.members_total("P") == 657  # C1 157 + C2 500


def test_snapshot_round_trip(tree: OrgTree) -> None:
    blob = tree.to_snapshot()
    again = OrgTree.from_snapshot(blob)
    assert again == tree and again.version == 3 and again.to_snapshot() == blob
    assert again.path_string("V2") == tree.path_string("V2")
    with pytest.raises(OrgTreeError):
        OrgTree.from_snapshot(b"junk")


def test_merged_upserts(tree: OrgTree) -> None:
    merged = tree.merged([Org("V1", "T1", "Renamed", 5, 40), Org("V4", "T2", "Village 4", 5, 3)])
    assert merged.version == 4 and len(merged) == 11
    assert merged.get("V1").name == "Renamed"  # type: ignore[union-attr]
    assert merged.members_total("K1") == 70 and tree.members_total("K1") == 57


def test_from_orgs_rejects_non_trees() -> None:
    with pytest.raises(OrgTreeError, match="unknown parent"):
        OrgTree.from_orgs([Org("a", "missing", "A", 2, 0)])
    with pytest.raises(OrgTreeError, match="level"):
        OrgTree.from_orgs([Org("a", None, "A", 1, 0), Org("b", "a", "B", 3, 0)])


def test_two_hundred_thousand_orgs() -> None:
    counts = [1, 20, 400, 8_000, 191_579]  # 200,000 orgs over 5 levels
    orgs: list[Org] = []
    parents: list[str | None] = [None]
    for level, count in enumerate(counts, start=1):
        ids = [f"L{level}-{i}" for i in range(count)]
        orgs.extend(
            Org(org_id, parents[i % len(parents)], org_id, level, 1 if level == 5 else 0)
            for i, org_id in enumerate(ids)
        )
        parents = ids  # type: ignore[assignment]
    tree = OrgTree.from_orgs(orgs)
    assert len(tree) == 200_000
    assert all(len(tree.path(o.org_id)) == o.level for o in orgs)
    assert tree.members_total("L1-0") == counts[-1]
    assert len(tree.at_level(5)) == counts[-1]
    assert len(tree.subtree_ids("L2-0")) == 1 + 20 + 400 + 9_579
    # A file-sized import of the upper levels, checked against nothing but itself.
    lines = [f"{o.org_id},{o.parent_id or ''},{o.name},{o.level},{o.members}" for o in orgs[:8_421]]
    parsed, errors = parse_orgs(csv_bytes(lines), filename="orgs.csv")
    assert errors == [] and len(parsed) == 8_421
