"""A generated province: a realistic 5-level org tree of ~130,000 units for tests and load tests.

Deterministic for a seed. Ids follow the GB/T 2260 + township/village code shape the sample tree
uses (``510000`` province, ``510100`` city, ``510101`` county, ``510101001`` town,
``510101001001`` village); names are two-character place names with the usual suffixes, so they
have pinyin initials like real ones; villages carry member counts, the levels above carry 0
(their totals are the sums, as in contest/sample/orgs.csv).

    rows = generate_orgs()            # [{org_id, parent_id, name, level, members}, ...]
    data = orgs_csv(rows)             # the import file, as an admin would upload it
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterable

__all__ = ["FANOUT", "generate_orgs", "orgs_csv"]

# How many units each level has in total: 1 province, 14 cities, 110 counties, 1,500 towns and
# the villages that make it 130,000.
FANOUT: tuple[int, ...] = (1, 14, 110, 1_500, 130_000 - 1 - 14 - 110 - 1_500)

_CHARS = (
    "安白宝北长城川大德东丰凤福富高古广桂海和河红洪华黄吉江金锦靖九康乐里临岭龙罗马梅明南宁平"
    "齐青清庆仁荣瑞三沙山上石双顺松泰桃天通万王文西溪霞祥新兴杏阳杨永玉元云泽张樟正中竹朱庄"
    "柏碧草茶春翠丹东渡峰岗港谷湖花槐建涧郊井径葵兰蓝岚柳隆芦鹿茂民南牛盘蒲桥秋泉沙杉寿水"
)
_SUFFIX = {1: ("省",), 2: ("市",), 3: ("县", "县", "区"), 4: ("镇", "镇", "乡", "街道"), 5: ("村", "村", "村", "社区")}
_DIGITS = {2: 2, 3: 2, 4: 3, 5: 3}  # code digits added at each level below the province


def generate_orgs(
    *,
    fanout: Iterable[int] = FANOUT,
    seed: int = 2026,
    province_code: str = "51",
    province_name: str = "西川省",
    members: tuple[int, int] = (40, 900),
) -> list[dict[str, object]]:
    """Rows of a province tree with ``fanout`` units per level (the first must be 1), parents first."""
    totals = list(fanout)
    if len(totals) != 5 or totals[0] != 1 or any(b < a for a, b in zip(totals, totals[1:], strict=False)):
        raise ValueError("fanout must be 5 non-decreasing totals starting with 1")
    rng = random.Random(seed)
    root = province_code + "0000"
    rows: list[dict[str, object]] = [
        {"org_id": root, "parent_id": "", "name": province_name, "level": 1, "members": 0}
    ]
    parents = [(root, province_code)]  # (org_id, code prefix of its children)
    for level in range(2, 6):
        counts = _spread(totals[level - 1], len(parents), rng)
        children: list[tuple[str, str]] = []
        for (parent_id, prefix), count in zip(parents, counts, strict=True):
            for i, name in enumerate(_names(rng, count, level), start=1):
                code = prefix + str(i).zfill(_DIGITS[level])
                org_id = code + "00" if level == 2 else code
                rows.append({
                    "org_id": org_id, "parent_id": parent_id, "name": name, "level": level,
                    "members": rng.randint(*members) if level == 5 else 0,
                })
                children.append((org_id, code))
        parents = children
    return rows


def _spread(total: int, parents: int, rng: random.Random) -> list[int]:
    """``total`` split over ``parents``, each at least 1, uneven like real districts (+-40%)."""
    weights = [rng.uniform(0.6, 1.4) for _ in range(parents)]
    scale = (total - parents) / sum(weights)
    counts = [1 + int(w * scale) for w in weights]
    for i in rng.sample(range(parents), total - sum(counts)):  # the rounding remainder (< parents)
        counts[i] += 1
    return counts


def _names(rng: random.Random, count: int, level: int) -> list[str]:
    """``count`` distinct sibling names: two characters and the level's suffix."""
    if count > len(_CHARS) ** 2:
        raise ValueError(f"{count} siblings cannot all have distinct two-character names")
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        name = rng.choice(_CHARS) + rng.choice(_CHARS) + rng.choice(_SUFFIX[level])
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def orgs_csv(rows: Iterable[dict[str, object]]) -> bytes:
    """The rows as a UTF-8 CSV import file with the standard header."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["org_id", "parent_id", "name", "level", "members"])
    for r in rows:
        writer.writerow([r["org_id"], r["parent_id"] or "", r["name"], r["level"], r["members"]])
    return buf.getvalue().encode("utf-8")
