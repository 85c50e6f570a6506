"""Every Redis key name of the product, built in one place.

All keys of one contest share the hash tag ``{c:<contest_id>}`` so each Lua script touches one
slot and the same code runs on a single Redis and on a Redis Cluster.  The Lua scripts in
``leaderboard.scripts`` receive the contest prefix (``contest_prefix(cid)``) and append the
suffixes defined here as ``SUFFIX_*`` constants; keep the two in step.

Global (non-contest) keys live under the ``{quiz}`` tag: users, the org tree and bank snapshots.
"""

from __future__ import annotations

__all__ = [
    "GLOBAL_TAG",
    "attempt",
    "bank_drawn",
    "bank_snapshot",
    "bank_version",
    "board",
    "client_devices",
    "client_ips",
    "contest_meta",
    "contest_prefix",
    "contests_snapshot",
    "contests_version",
    "daily_expiry",
    "dead_letters",
    "deadlines",
    "events",
    "lotteries",
    "lottery",
    "org_level_rank",
    "org_stat",
    "orgs_snapshot",
    "orgs_version",
    "qstats",
    "rate_limit",
    "sms_code",
    "sms_cooldown",
    "sms_daily",
    "staff_accounts",
    "staff_audit",
    "staff_phones",
    "staff_versions",
    "stats",
    "streams_registry",
    "timeline",
    "user",
    "user_contest",
    "user_events",
    "user_ext",
    "user_phones",
    "user_profiles",
    "user_registrations",
    "user_seq",
]

GLOBAL_TAG = "{quiz}"

# Suffixes appended to contest_prefix(cid) by the Lua scripts; the functions below use them too.
SUFFIX_ATTEMPT = "a:"  # + attempt id
SUFFIX_USER = "u:"  # + user id
SUFFIX_BOARD = "lb:"  # + "t" | "d:<YYYY-MM-DD>" [+ ":o:<org_id>"]
SUFFIX_ORG_STAT = "os:"  # + "p" | "a" | "s"   (participants, attempts, total score per org)
SUFFIX_ORG_RANK = "or:"  # + metric + ":" + level
SUFFIX_STATS = "stats"
SUFFIX_QSTATS = "qstats"
SUFFIX_EVENTS = "events"
SUFFIX_DEADLINES = "deadlines"
SUFFIX_TIMELINE = "tl:"  # + "s" (per second) | "m" (per minute)
SUFFIX_NAMES = "names"
SUFFIX_DAILY_EXPIRY = "lb:x"

# Review evidence (issue 18: two sets per member with a TTL cost ~170 B per participant): the
# user-in-contest hash holds the distinct client IPs and devices of the member's starts as
# fixed-width tokens (keyed hashes, contest.evidence), concatenated in the fields below, at most
# EVIDENCE_MAX of each; a count at the cap means "that many or more".
USER_FIELD_IPS = "ip"
USER_FIELD_DEVICES = "dv"
EVIDENCE_TOKEN_CHARS = 6
EVIDENCE_MAX = 16  # the START script's cap, keep in step


def contest_prefix(contest_id: str, shard: int = 0) -> str:
    """``{c:<cid>}:`` for the whole contest, ``{c:<cid>:<n>}:`` for shard n > 0 of a sharded one."""
    if shard:
        return f"{{c:{contest_id}:{shard}}}:"
    return f"{{c:{contest_id}}}:"


def contest_meta(contest_id: str) -> str:
    return contest_prefix(contest_id) + "meta"


def attempt(contest_id: str, attempt_id: str, shard: int = 0) -> str:
    return contest_prefix(contest_id, shard) + SUFFIX_ATTEMPT + attempt_id


def user_contest(contest_id: str, user_id: str, shard: int = 0) -> str:
    """Hash of one member in one contest: ``n`` / ``n:<day>`` starts, ``active`` attempt, ``c:<day>``
    counted finishes, ``p:<day>`` / ``part`` participant marks, ``r:<aid>`` 'score|dur|day' of each
    counted attempt (review), ``v:<aid>`` voids, ``ss``/``sd``/``ds:<day>``/``dd:<day>`` sums (ranking
    'sum'), and the review evidence ``ip`` / ``dv`` (USER_FIELD_IPS, USER_FIELD_DEVICES)."""
    return contest_prefix(contest_id, shard) + SUFFIX_USER + user_id


def board(contest_id: str, day: str | None = None, org_id: str | None = None, shard: int = 0,
          lone_root: str | None = None) -> str:
    """Total board (day None) or daily board of ``day`` (YYYY-MM-DD); per org subtree if org_id.

    The tree's lone root (``lone_root``: OrgTree.lone_root()) has no boards of its own: its subtree
    is every member, so its boards are the contest's (FINISH skips it when the attempt's ``lr``
    field says so).  Daily boards expire ``QUIZ_DAILY_BOARD_KEEP_S`` after their day (attempt field
    ``dx``, kept per day in ``daily_expiry``)."""
    name = "t" if day is None else f"d:{day}"
    if org_id is not None and org_id != lone_root:
        name += f":o:{org_id}"
    return contest_prefix(contest_id, shard) + SUFFIX_BOARD + name


def daily_expiry(contest_id: str, shard: int = 0) -> str:
    """Hash day -> ms at which that day's daily boards expire (FINISH writes it; REVIEW leaves a day
    past it alone instead of bringing its boards back without an expiry)."""
    return contest_prefix(contest_id, shard) + SUFFIX_DAILY_EXPIRY


def names(contest_id: str, shard: int = 0) -> str:
    """Hash user id -> "name\\torg_id" of everyone who started an attempt (for board pages)."""
    return contest_prefix(contest_id, shard) + SUFFIX_NAMES


def org_stat(contest_id: str, what: str, shard: int = 0) -> str:
    """Hash org id -> counter; what is ``p`` participants, ``a`` attempts, ``s`` total score."""
    return contest_prefix(contest_id, shard) + SUFFIX_ORG_STAT + what


def org_level_rank(contest_id: str, metric: str, level: int, shard: int = 0) -> str:
    """Sorted set of the orgs of one level by a metric (only orgs with a participant)."""
    return contest_prefix(contest_id, shard) + f"{SUFFIX_ORG_RANK}{metric}:{level}"


def stats(contest_id: str, shard: int = 0) -> str:
    return contest_prefix(contest_id, shard) + SUFFIX_STATS


def qstats(contest_id: str, shard: int = 0) -> str:
    return contest_prefix(contest_id, shard) + SUFFIX_QSTATS


def timeline(contest_id: str, resolution: str, shard: int = 0) -> str:
    return contest_prefix(contest_id, shard) + SUFFIX_TIMELINE + resolution


def events(contest_id: str, shard: int = 0) -> str:
    return contest_prefix(contest_id, shard) + SUFFIX_EVENTS


def deadlines(contest_id: str, shard: int = 0) -> str:
    return contest_prefix(contest_id, shard) + SUFFIX_DEADLINES


def dead_letters(stream: str) -> str:
    """The dead-letter stream beside ``stream`` (same hash tag, so same slot)."""
    return stream + ":dead"


def rate_limit(scope: str, subject: str) -> str:
    return f"{{rl:{scope}:{subject}}}"


def user(user_id: str) -> str:
    return f"{GLOBAL_TAG}:user:{user_id}"


def user_phones() -> str:
    return f"{GLOBAL_TAG}:phones"


def user_ext() -> str:
    return f"{GLOBAL_TAG}:ext"


def user_seq() -> str:
    return f"{GLOBAL_TAG}:user_seq"


def user_registrations() -> str:
    """Hash org id -> registrants in that org's subtree."""
    return f"{GLOBAL_TAG}:registrants"


def user_events() -> str:
    return f"{GLOBAL_TAG}:events"


def streams_registry() -> str:
    """Set of every event stream the flusher must drain."""
    return f"{GLOBAL_TAG}:streams"


def bank_snapshot() -> str:
    return f"{GLOBAL_TAG}:bank"


def bank_version() -> str:
    return f"{GLOBAL_TAG}:bank_version"


def bank_drawn() -> str:
    """Set of question ids ever drawn into an attempt: those are retired, never changed (issue 16)."""
    return f"{GLOBAL_TAG}:bank_drawn"


def client_ips(contest_id: str, user_id: str, shard: int = 0) -> str:
    """Legacy (before issue 18): set of the client IPs a member started attempts from, kept 40
    days; only read, so counts noted before an upgrade still show until they expire.  New starts
    note evidence in the user-in-contest hash (USER_FIELD_IPS)."""
    return contest_prefix(contest_id, shard) + "seen:ip:" + user_id


def lottery(contest_id: str, lottery_id: str) -> str:
    """Hash of one lottery: its document (seed included) and, once drawn, the frozen eligible list."""
    return contest_prefix(contest_id) + "lot:" + lottery_id


def lotteries(contest_id: str) -> str:
    """Sorted set of a contest's lottery ids by creation time."""
    return contest_prefix(contest_id) + "lots"


def client_devices(contest_id: str, user_id: str, shard: int = 0) -> str:
    """Legacy (before issue 18): set of the devices a member started attempts from; read only."""
    return contest_prefix(contest_id, shard) + "seen:dev:" + user_id


def orgs_snapshot() -> str:
    return f"{GLOBAL_TAG}:orgs"


def orgs_version() -> str:
    return f"{GLOBAL_TAG}:orgs_version"


def contests_snapshot() -> str:
    """Hash contest id -> msgpack of the contest's full config (the hot copy)."""
    return f"{GLOBAL_TAG}:contests"


def contests_version() -> str:
    return f"{GLOBAL_TAG}:contests_version"


def user_profiles() -> str:
    """Hash uid -> "name\torg_id" of phone users: what an SMS sign-in puts in the new token."""
    return f"{GLOBAL_TAG}:profiles"


# Sign-in codes: every key of one phone shares the tag {sms:<phone>} (one slot per phone, so the
# scripts that check the resend clock, the daily count and the code run on a cluster too).
def sms_code(phone: str, purpose: str) -> str:
    """Hash of the live code of ``purpose`` (login | register | staff): its HMAC and tries left."""
    return f"{{sms:{phone}}}:code:{purpose}"


def sms_cooldown(phone: str) -> str:
    return f"{{sms:{phone}}}:cool"


def sms_daily(phone: str) -> str:
    return f"{{sms:{phone}}}:day"


def staff_accounts() -> str:
    """Hash staff id -> account JSON (phone, name, org_id, role, disabled, version)."""
    return f"{GLOBAL_TAG}:staff"


def staff_phones() -> str:
    """Hash phone -> staff id."""
    return f"{GLOBAL_TAG}:staff_phones"


def staff_versions() -> str:
    """Hash staff id -> token version; tokens of an older version are refused (disable, re-import)."""
    return f"{GLOBAL_TAG}:staff_ver"


def staff_audit() -> str:
    """Stream of staff sign-ins and account changes (capped)."""
    return f"{GLOBAL_TAG}:staff_audit"
