"""Organizer and admin accounts of the units ("staff"): the directory in Redis, its import file,
and the gate that refuses tokens of disabled or changed accounts on every process.

An account is keyed by its phone (one person, one account); its token carries the account's
version (``v``).  Disabling an account, or a re-import that changes its role or org, bumps the
version; every process re-reads the versions every ``staff_check_s`` (20 s) and refuses older
tokens, so a disabled organizer is out within that interval everywhere, with no Redis call on the
requests themselves (the check runs beside the cached claims).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson

from contest.orgtree import OrgTree
from contest.phones import normalize_phone
from contest.redis_client import ScriptRunner
from leaderboard import keys
from leaderboard.staff_scripts import STAFF_WRITE
from question_bank.errors import RowError
from question_bank.parse import normalize_header, read_table

__all__ = ["STAFF_ROLES", "StaffAccount", "StaffDirectory", "StaffGate", "parse_staff"]

log = logging.getLogger(__name__)

STAFF_ROLES: dict[str, str] = {
    "organizer": "organizer", "组织者": "organizer", "组织员": "organizer", "管理者": "organizer",
    "admin": "admin", "管理员": "admin", "administrator": "admin",
}
_AUDIT_MAXLEN = 200_000

_HEADER_ALIASES: dict[str, str] = {
    normalize_header(spelling): column
    for column, spellings in {
        "phone": ["phone", "mobile", "手机号", "手机", "手机号码", "电话", "联系电话"],
        "name": ["name", "姓名", "名字"],
        "org_id": ["org_id", "org", "机构编号", "组织编号", "单位编号", "机构代码"],
        "role": ["role", "角色", "权限"],
    }.items()
    for spelling in spellings
}


@dataclass(frozen=True, slots=True)
class StaffAccount:
    staff_id: str
    phone: str
    name: str
    org_id: str
    role: str  # organizer | admin
    disabled: bool = False
    version: int = 1
    created_at: int = 0  # ms
    updated_at: int = 0

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes | str) -> StaffAccount:
        return cls(**orjson.loads(data))

    def public(self) -> dict[str, Any]:
        return asdict(self)


def parse_staff(data: bytes, *, filename: str | None, content_type: str | None, orgs: OrgTree,
                phone_pattern: str, max_rows: int = 100_000) -> tuple[list[dict[str, str]], list[RowError]]:
    """Rows of an organizer file (CSV/XLSX/JSON; Chinese or English headers) and every bad field."""
    table = read_table(data, aliases=_HEADER_ALIASES, filename=filename, content_type=content_type,
                       list_key="organizers", required=("phone", "name", "org_id"), max_rows=max_rows)
    if table.truncated:
        return [], [RowError(0, "", f"too many rows: at most {max_rows} per file", "too_many_rows", {"max": max_rows})]
    errors = list(table.errors)
    rows: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for number, values in table.rows:
        before = len(errors)

        def fail(column: str, message: str, code: str, number: int = number) -> None:
            errors.append(RowError(number, column, message, code))

        raw_phone = _cell(values.get("phone"))
        phone = normalize_phone(raw_phone, phone_pattern) if raw_phone else None
        if phone is None:
            fail("phone", "手机号必须是中国大陆手机号（11 位，1 开头）", "invalid_phone")
        elif phone in seen:
            fail("phone", f"手机号与第 {seen[phone]} 行重复", "duplicate_phone")
        name = _cell(values.get("name"))
        if not name or len(name) > 32:
            fail("name", "姓名必须是 1-32 个字", "invalid_name")
        org_id = _cell(values.get("org_id"))
        if org_id not in orgs:
            fail("org_id", f"机构编号 {org_id!r} 不存在", "unknown_org")
        role = STAFF_ROLES.get(_cell(values.get("role")).lower() or "organizer")
        if role is None:
            fail("role", "角色必须是 organizer（组织者）或 admin（管理员）", "invalid_role")
        if len(errors) == before and phone and role:
            seen[phone] = number
            rows.append({"phone": phone, "name": name, "org_id": org_id, "role": role})
    return rows, sorted(errors, key=lambda e: e.row)


def _cell(value: object) -> str:
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # a phone typed into a spreadsheet cell arrives as 13912345678.0
    return str(value).strip()


class StaffDirectory:
    """The accounts, read and written in Redis (``{quiz}`` keys: one slot)."""

    def __init__(self, redis: Any, runner: ScriptRunner) -> None:
        self.redis = redis
        self.runner = runner

    async def by_phone(self, phone: str) -> StaffAccount | None:
        staff_id = await self.redis.hget(keys.staff_phones(), phone)
        return await self.get(staff_id.decode()) if staff_id else None

    async def get(self, staff_id: str) -> StaffAccount | None:
        raw = await self.redis.hget(keys.staff_accounts(), staff_id)
        return StaffAccount.from_json(raw) if raw else None

    async def all(self) -> list[StaffAccount]:
        raw = await self.redis.hgetall(keys.staff_accounts())
        return sorted((StaffAccount.from_json(v) for v in raw.values()), key=lambda a: (a.org_id, a.phone))

    async def upsert(self, rows: Iterable[Mapping[str, str]]) -> tuple[int, int]:
        """Create or update accounts by phone; a changed role or org bumps the version (old tokens
        carry the old role and org).  Returns (imported, updated)."""
        current = {a.phone: a for a in await self.all()}
        now = int(time.time() * 1000)
        args: list[Any] = []
        imported = updated = 0
        for row in rows:
            old = current.get(row["phone"])
            if old is None:
                account = StaffAccount("s" + secrets.token_hex(6), row["phone"], row["name"], row["org_id"],
                                       row["role"], created_at=now, updated_at=now)
                imported += 1
            else:
                changed = (old.role, old.org_id) != (row["role"], row["org_id"])
                account = replace(old, name=row["name"], org_id=row["org_id"], role=row["role"], updated_at=now,
                                  version=old.version + 1 if changed else old.version)
                updated += 1
            args += [account.staff_id, account.to_json(), account.phone, account.version]
        if args:
            await self.runner.run(STAFF_WRITE, (keys.staff_accounts(), keys.staff_phones(), keys.staff_versions()),
                                  args)
        return imported, updated

    async def set_disabled(self, account: StaffAccount, disabled: bool) -> StaffAccount:
        """Disabling bumps the version: every token issued before is refused from then on."""
        if account.disabled == disabled:
            return account
        changed = replace(account, disabled=disabled, updated_at=int(time.time() * 1000),
                          version=account.version + 1 if disabled else account.version)
        await self.runner.run(STAFF_WRITE, (keys.staff_accounts(), keys.staff_phones(), keys.staff_versions()),
                              [changed.staff_id, changed.to_json(), changed.phone, changed.version])
        return changed

    async def versions(self) -> dict[str, int]:
        raw = await self.redis.hgetall(keys.staff_versions())
        return {k.decode(): int(v) for k, v in raw.items()}

    async def audit(self, event: str, **fields: Any) -> None:
        """One line of the audit log (a capped stream), also written to the server log."""
        entry = {"event": event, "at": int(time.time() * 1000),
                 **{k: "" if v is None else v for k, v in fields.items()}}
        log.info("staff audit: %s", " ".join(f"{k}={v}" for k, v in entry.items()))
        await self.redis.xadd(keys.staff_audit(), entry, maxlen=_AUDIT_MAXLEN, approximate=True)

    async def audit_log(self, count: int) -> list[dict[str, str]]:
        entries = await self.redis.xrevrange(keys.staff_audit(), count=count)
        return [{"id": eid.decode(), **{k.decode(): v.decode() for k, v in fields.items()}} for eid, fields in entries]


class StaffGate:
    """This process's copy of the account versions, refreshed every ``interval`` seconds."""

    def __init__(self, directory: StaffDirectory, interval: float) -> None:
        self.directory = directory
        self.interval = interval
        self.versions: dict[str, int] = {}

    def allows(self, staff_id: str, version: int) -> bool:
        return version >= self.versions.get(staff_id, 0)

    async def refresh(self) -> None:
        self.versions = await self.directory.versions()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.refresh()
            except Exception as exc:  # keep the last copy while Redis is away
                log.debug("staff gate refresh failed: %r", exc)
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                pass
