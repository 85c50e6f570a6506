"""Every Redis key name of the product, built in one place.

All keys of one contest share the hash tag ``{c:<contest_id>}`` so each Lua script touches one
slot and the same code runs on a single Redis and on a Redis Cluster.  The Lua scripts in
``leaderboard.scripts`` receive the contest prefix (``contest_prefix(cid)``) and append the
suffixes defined here as ``SUFFIX_*`` constants; keep the two in step.

Global (non-contest) keys live under the ``{quiz}`` tag: users, the org tree and bank snapshots.

Every hash field is named and explained below (``ATTEMPT_*``, ``USER_*``, ``STATS_*``...).
The Lua scripts write the same names as literals: passing them in ARGV would cost every answer
its parsing, so tests/test_lua_names.py checks that every field name and key suffix a script
uses is one defined here (and that every field defined for the scripts' hashes is still used).
Python reads and writes the same fields through these constants.  A name ending in ``:`` or a
one-letter prefix (``q``, ``a``) is completed by the value its comment names.  The fields of
stream entries (``events``, ``user_events``) are the event format: docs/events.md.
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
    "flush_leases",
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
SUFFIX_LEASES = ":leases"  # after a stream's name: its flusher leases (flush_leases)
SUFFIX_DEADLINES = "deadlines"
SUFFIX_TIMELINE = "tl:"  # the one timeline hash of a contest (TIMELINE_* fields)
SUFFIX_NAMES = "names"
SUFFIX_DAILY_EXPIRY = "lb:x"  # daily_expiry(): day -> ms its daily boards expire
# Org board of a subtree: the total or daily board key + this + org id (SUFFIX_BOARD's "t:o:<org>")
SUFFIX_ORG_BOARD = ":o:"
BOARD_TOTAL = "t"  # SUFFIX_BOARD + this: the total board
BOARD_DAILY = "d:"  # SUFFIX_BOARD + this + day: the daily board of a contest day (YYYY-MM-DD)
ORG_STAT_PARTICIPANTS = "p"  # SUFFIX_ORG_STAT + this: org id -> members with a counted finish
ORG_STAT_ATTEMPTS = "a"  # ... org id -> counted finished attempts of its members
ORG_STAT_SCORE = "s"  # ... org id -> total board score of its members
# SUFFIX_ORG_RANK + metric + ":" + level: the orgs of one level (1 = the roots) ranked by a metric
ORG_METRICS = ("participants", "total_score", "avg_score", "participation_rate")

# ---- the attempt hash (attempt()): one per attempt, written by START (and a rebuild), moved on by
# ANSWER, closed by FINISH; it expires a day after the attempt's deadline (the database keeps it).
ATTEMPT_USER = "uid"  # the owner's user id
ATTEMPT_STARTED = "st"  # started at, ms (Redis TIME)
ATTEMPT_DEADLINE = "dl"  # deadline, ms: start + the time limit, at most the contest's end
ATTEMPT_DAY = "day"  # the contest day (YYYY-MM-DD in the contest's timezone) it started on
ATTEMPT_FINISHED = "fin"  # 0 running | 1 finished
ATTEMPT_SCORE = "score"  # points so far
ATTEMPT_CORRECT = "cc"  # right answers so far
ATTEMPT_ANSWERED = "n"  # answers so far (a question whose own clock ran out counts)
ATTEMPT_LAST_AT = "la"  # ms of the start or the last answer: a question's own clock starts here
ATTEMPT_STREAK = "streak"  # right answers in a row (the streak bonus)
ATTEMPT_QUESTIONS = "qc"  # questions in the paper (a challenge: in its drawn sequence)
ATTEMPT_PATH = "path"  # the owner's org path 'root,...,org' (boards and rollups of every level)
ATTEMPT_MEMBERS = "mem"  # members of each org of the path 'm1,...' (participation rates)
ATTEMPT_ORG = "org"  # the owner's org id
ATTEMPT_PAPER = "paper"  # the drawn paper, JSON [[question id, option permutation], ...]
ATTEMPT_QUESTION = "q"  # + index: 'type s|m|j|shown key|points|question id|option count'
ATTEMPT_ANSWER = "a"  # + index: 'choice|ok 0/1|points|at ms|flagged 0/1|score after it' ('' choice: timed out)
ATTEMPT_RATE = "rl"  # the per-user answer limit's GCRA state (theoretical arrival time, ms)
ATTEMPT_CURRENT = "cur"  # a challenge only: index of the question being served
ATTEMPT_FINISHED_AT = "fa"  # finished at, ms (the deadline when the service finished it)
ATTEMPT_DURATION = "dur"  # finished at - started at, ms (the board's tie-break)
ATTEMPT_COUNTED = "counted"  # 1: counted on the boards (0: over the contest's counted attempts per day)
ATTEMPT_AUTO = "auto"  # 1: finished by the service at the deadline
ATTEMPT_REVIEW = "review"  # the latest review decision: void | restore | clear
# ms at which the daily boards of the attempt's day expire (the day's end + QUIZ_DAILY_BOARD_KEEP_S;
# absent: never): FINISH sets it on every daily board it touches (issue 18)
ATTEMPT_DAILY_EXPIRY = "dx"
# 1: the path's root is the tree's lone root, whose boards are the contest's total and daily
# boards: FINISH keeps no org board for it (issue 18; board() reads it so)
ATTEMPT_LONE_ROOT = "lr"
ATTEMPT_FIELDS = (ATTEMPT_USER, ATTEMPT_STARTED, ATTEMPT_DEADLINE, ATTEMPT_DAY, ATTEMPT_FINISHED, ATTEMPT_SCORE,
                  ATTEMPT_CORRECT, ATTEMPT_ANSWERED, ATTEMPT_LAST_AT, ATTEMPT_STREAK, ATTEMPT_QUESTIONS,
                  ATTEMPT_PATH, ATTEMPT_MEMBERS, ATTEMPT_ORG, ATTEMPT_PAPER, ATTEMPT_QUESTION, ATTEMPT_ANSWER,
                  ATTEMPT_RATE, ATTEMPT_CURRENT, ATTEMPT_FINISHED_AT, ATTEMPT_DURATION, ATTEMPT_COUNTED,
                  ATTEMPT_AUTO, ATTEMPT_REVIEW, ATTEMPT_DAILY_EXPIRY, ATTEMPT_LONE_ROOT)

# ---- the user-in-contest hash (user_contest()): one per member of a contest, never expires
USER_ACTIVE = "active"  # the member's unfinished attempt id (START resumes it)
USER_STARTS = "n"  # attempts started in the contest (attempts_total)
USER_STARTS_ON = "n:"  # + day: attempts started that day (attempts_per_day)
USER_COUNTED_ON = "c:"  # + day: counted finishes that day (counted_per_day)
USER_RESULT = "r:"  # + attempt id: 'score|duration|day' of a counted finish (a review recomputes from these)
USER_VOIDED = "v:"  # + attempt id: 1 while a review has voided it
USER_PLAYED_ON = "p:"  # + day: 1 once counted in that day's participants
USER_PARTICIPANT = "part"  # 1 once counted in the contest's participants
USER_SUM_SCORE = "ss"  # ranking 'sum': total score of the counted attempts
USER_SUM_DURATION = "sd"  # ranking 'sum': their total duration, ms
USER_DAY_SCORE = "ds:"  # + day: ranking 'sum', that day's total score
USER_DAY_DURATION = "dd:"  # + day: ranking 'sum', that day's total duration, ms
# Review evidence (issue 18; two sets per member with a 40-day TTL cost ~170 B per participant):
# the distinct client IPs and devices of the member's starts as fixed-width keyed tokens
# (contest.play.evidence_token: no address is stored), concatenated, at most EVIDENCE_MAX each; a
# count at the cap reads "that many or more".
USER_IPS = "ip"
USER_DEVICES = "dv"
EVIDENCE_TOKEN_CHARS = 6
EVIDENCE_MAX = 16  # the START script's cap, keep in step
USER_CONTEST_FIELDS = (USER_ACTIVE, USER_STARTS, USER_STARTS_ON, USER_COUNTED_ON, USER_RESULT, USER_VOIDED,
                       USER_PLAYED_ON, USER_PARTICIPANT, USER_SUM_SCORE, USER_SUM_DURATION, USER_DAY_SCORE,
                       USER_DAY_DURATION, USER_IPS, USER_DEVICES)

# ---- the contest counters (stats()): summed over shards for the dashboard (contest/stats.py)
STATS_STARTED = "attempts_started"
STATS_FINISHED = "attempts_finished"
STATS_PARTICIPANTS = "participants"  # members with a counted finish
STATS_PARTICIPANTS_ON = "participants:"  # + day: members with a counted finish that day
STATS_ANSWERS = "answers"
STATS_CORRECT = "correct"
STATS_FLAGGED = "flagged"  # answers faster than the human minimum
STATS_VOIDED = "voided"  # attempts a review has voided
STATS_FIELDS = (STATS_STARTED, STATS_FINISHED, STATS_PARTICIPANTS, STATS_PARTICIPANTS_ON, STATS_ANSWERS,
                STATS_CORRECT, STATS_FLAGGED, STATS_VOIDED)

# ---- per-question counters (qstats()): '<question id>' + one of these
QSTATS_ANSWERS = ":n"  # answers to the question
QSTATS_CORRECT = ":c"  # right ones
QSTATS_FIELDS = (QSTATS_ANSWERS, QSTATS_CORRECT)

# ---- the timeline hash (timeline(cid, "")): one of these + a time bucket
TIMELINE_ANSWERS = "a:"  # + minute since the epoch: answers in it
TIMELINE_PER_SECOND = "s:"  # + second since the epoch: answers in it (answers/s; the sweeper drops old ones)
TIMELINE_FINISHES = "f:"  # + minute: attempts finished in it
TIMELINE_FIELDS = (TIMELINE_ANSWERS, TIMELINE_PER_SECOND, TIMELINE_FINISHES)

# ---- the registrants hash (user_registrations()): org id -> registrants in its subtree, and:
REGISTRANTS_ALL = ""  # the whole tree's count
# ---- a sign-in code's hash (sms_code())
SMS_CODE_HMAC = "h"  # HMAC-SHA256 of the live code (never the code itself)
SMS_CODE_TRIES = "left"  # wrong tries left before the code is taken away
# ---- a lottery's hash (lottery())
LOTTERY_DOC = "doc"  # the lottery's JSON document (commitment; once drawn, the winners)
LOTTERY_SEED = "seed"  # the secret seed, published by the draw
LOTTERY_DRAWING = "drawing"  # ms a draw began: the lock that makes a second draw 409
LOTTERY_ELIGIBLE = "eligible"  # the frozen sorted eligible user ids, JSON (set by the draw)
# Hashes keyed by ids only (no fixed fields): names() uid -> 'name\torg'; org_stat() org id ->
# count; user_phones() / user_ext() phone or external id -> uid; user_profiles() uid ->
# 'name\torg'; staff_*() as their functions say; contests_snapshot() contest id -> config.
HASH_FIELDS = (*ATTEMPT_FIELDS, *USER_CONTEST_FIELDS, *STATS_FIELDS, *QSTATS_FIELDS, *TIMELINE_FIELDS,
               REGISTRANTS_ALL, SMS_CODE_HMAC, SMS_CODE_TRIES, LOTTERY_DOC, LOTTERY_SEED, LOTTERY_DRAWING,
               LOTTERY_ELIGIBLE)


def contest_prefix(contest_id: str, shard: int = 0) -> str:
    """``{c:<cid>}:`` for the whole contest, ``{c:<cid>:<n>}:`` for shard n > 0 of a sharded one."""
    if shard:
        return f"{{c:{contest_id}:{shard}}}:"
    return f"{{c:{contest_id}}}:"


def every_key_under(prefix: str) -> str:
    """The SCAN MATCH pattern for every key starting with ``prefix`` (a contest's ``{c:<cid>}:``,
    or a narrower one): the hash tag's braces escaped, so the glob reads them as plain text."""
    return prefix.replace("{", "\\{").replace("}", "\\}") + "*"


def contest_meta(contest_id: str) -> str:
    """Reserved for a contest's metadata; nothing reads or writes it today (the contest's config
    lives in contests_snapshot())."""
    return contest_prefix(contest_id) + "meta"


def attempt(contest_id: str, attempt_id: str, shard: int = 0) -> str:
    """The attempt hash (ATTEMPT_* fields)."""
    return contest_prefix(contest_id, shard) + SUFFIX_ATTEMPT + attempt_id


def user_contest(contest_id: str, user_id: str, shard: int = 0) -> str:
    """A member's hash in one contest (USER_* fields)."""
    return contest_prefix(contest_id, shard) + SUFFIX_USER + user_id


def board(contest_id: str, day: str | None = None, org_id: str | None = None, shard: int = 0,
          lone_root: str | None = None) -> str:
    """Total board (day None) or daily board of ``day`` (YYYY-MM-DD); per org subtree if org_id.
    A sorted set of user ids by encoded score (leaderboard.encoding: score, then shorter duration).

    The tree's lone root (``lone_root``: OrgTree.lone_root()) has no boards of its own: its subtree
    is every member, so its boards are the contest's (ATTEMPT_LONE_ROOT).  Daily boards expire
    QUIZ_DAILY_BOARD_KEEP_S after their day (ATTEMPT_DAILY_EXPIRY, daily_expiry())."""
    name = BOARD_TOTAL if day is None else BOARD_DAILY + day
    if org_id is not None and org_id != lone_root:
        name += SUFFIX_ORG_BOARD + org_id
    return contest_prefix(contest_id, shard) + SUFFIX_BOARD + name


def daily_expiry(contest_id: str, shard: int = 0) -> str:
    """Hash day -> ms at which that day's daily boards expire (FINISH writes it; REVIEW leaves a day
    past it alone instead of bringing its boards back without an expiry)."""
    return contest_prefix(contest_id, shard) + SUFFIX_DAILY_EXPIRY


def names(contest_id: str, shard: int = 0) -> str:
    """Hash user id -> "name\\torg_id" of everyone who started an attempt (for board pages)."""
    return contest_prefix(contest_id, shard) + SUFFIX_NAMES


def org_stat(contest_id: str, what: str, shard: int = 0) -> str:
    """Hash org id -> counter; ``what`` is one of ORG_STAT_* (participants, attempts, total score)."""
    return contest_prefix(contest_id, shard) + SUFFIX_ORG_STAT + what


def org_level_rank(contest_id: str, metric: str, level: int, shard: int = 0) -> str:
    """Sorted set of the orgs of one level by a metric (only orgs with a participant)."""
    return contest_prefix(contest_id, shard) + f"{SUFFIX_ORG_RANK}{metric}:{level}"


def stats(contest_id: str, shard: int = 0) -> str:
    """The contest's counters (STATS_* fields)."""
    return contest_prefix(contest_id, shard) + SUFFIX_STATS


def qstats(contest_id: str, shard: int = 0) -> str:
    """Per-question counters: '<question id>' + QSTATS_* -> count."""
    return contest_prefix(contest_id, shard) + SUFFIX_QSTATS


def timeline(contest_id: str, resolution: str, shard: int = 0) -> str:
    """The hash of answers and finishes per time bucket (TIMELINE_* fields); every caller passes
    ``resolution`` "": the buckets are in the field names."""
    return contest_prefix(contest_id, shard) + SUFFIX_TIMELINE + resolution


def events(contest_id: str, shard: int = 0) -> str:
    """The contest's event stream (start, ans, fin, void entries: docs/events.md), drained by the flusher."""
    return contest_prefix(contest_id, shard) + SUFFIX_EVENTS


def deadlines(contest_id: str, shard: int = 0) -> str:
    """Sorted set of running attempt ids by deadline ms: the sweeper finishes the abandoned ones."""
    return contest_prefix(contest_id, shard) + SUFFIX_DEADLINES


def dead_letters(stream: str) -> str:
    """The dead-letter stream beside ``stream`` (same hash tag, so same slot)."""
    return stream + ":dead"


def flush_leases(stream: str) -> str:
    """Hash of the flusher's leases on ``stream``: lease start id -> '<consumer> <ms taken>'
    (leaderboard/stream_scripts.py). Same hash tag, so same slot; gone when no batch is in flight."""
    return stream + SUFFIX_LEASES


def rate_limit(scope: str, subject: str) -> str:
    """A GCRA limiter: the theoretical arrival time, ms (leaderboard.ratelimit_scripts); its own tag per subject."""
    return f"{{rl:{scope}:{subject}}}"


def user(user_id: str) -> str:
    """Reserved for a per-user hash; nothing reads or writes it today (a user's name and org travel
    in the token, profiles in user_profiles(), per-contest state in user_contest())."""
    return f"{GLOBAL_TAG}:user:{user_id}"


def user_phones() -> str:
    """Hash phone -> user id of phone-registered users."""
    return f"{GLOBAL_TAG}:phones"


def user_ext() -> str:
    """Hash external (identity gateway) id -> user id."""
    return f"{GLOBAL_TAG}:ext"


def user_seq() -> str:
    """Counter: the last user id given out (REGISTER INCRs it)."""
    return f"{GLOBAL_TAG}:user_seq"


def user_registrations() -> str:
    """Hash org id -> registrants in that org's subtree."""
    return f"{GLOBAL_TAG}:registrants"


def user_events() -> str:
    """The users' event stream (user entries: docs/events.md), drained by the flusher."""
    return f"{GLOBAL_TAG}:events"


def streams_registry() -> str:
    """Set of every event stream the flusher must drain."""
    return f"{GLOBAL_TAG}:streams"


def bank_snapshot() -> str:
    """The question bank snapshot every process loads (question_bank snapshots)."""
    return f"{GLOBAL_TAG}:bank"


def bank_version() -> str:
    """Counter bumped on each bank change: processes reload the snapshot when it moves."""
    return f"{GLOBAL_TAG}:bank_version"


def bank_drawn() -> str:
    """Set of question ids ever drawn into an attempt: those are retired, never changed (issue 16)."""
    return f"{GLOBAL_TAG}:bank_drawn"


def client_ips(contest_id: str, user_id: str, shard: int = 0) -> str:
    """Legacy (before issue 18): set of the client IPs a member started attempts from, kept 40
    days; only read, so counts noted before an upgrade still show until they expire.  New starts
    note evidence in the user-in-contest hash (USER_IPS)."""
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
    """The org tree snapshot every process loads."""
    return f"{GLOBAL_TAG}:orgs"


def orgs_version() -> str:
    """Counter bumped on each org tree import: processes reload the snapshot when it moves."""
    return f"{GLOBAL_TAG}:orgs_version"


def contests_snapshot() -> str:
    """Hash contest id -> msgpack of the contest's full config (the hot copy)."""
    return f"{GLOBAL_TAG}:contests"


def contests_version() -> str:
    """Counter bumped on each contest change: processes reload contests_snapshot() when it moves."""
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
    """The resend clock: set for the resend interval after a send (its PTTL is the wait)."""
    return f"{{sms:{phone}}}:cool"


def sms_daily(phone: str) -> str:
    """Counter of code sends in the rolling day that started with the first one (expires with it)."""
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
