"""Each Lua reply shape the scripts document decodes into its record's named fields.

The scripts' own behaviour is tested through the service on a real Valkey (test_attempts,
test_challenge, test_review...); these pin the decoding of every documented shape, including the
rare ones (a challenge finished inside its answer, a rate-limited answer, an off-board finish).
"""

from __future__ import annotations

from leaderboard.ratelimit_scripts import RateVerdict
from leaderboard.review_scripts import ReviewReply
from leaderboard.scripts import (
    AnswerReply,
    BoardMeReply,
    BoardPageReply,
    FinishReply,
    RegisterReply,
    StartReply,
)
from leaderboard.signin_scripts import SmsCheckReply, SmsReserveReply

_FINISHED = [b"ok", 80, 8, 10, 61234, 3, 80, 1, 1733270000061, 1733269938827, 0, 0, b"343597383619999"]


def test_start_reply_every_status() -> None:
    assert StartReply.from_reply([b"new", 1000, 61000, b"2026-12-03"]) == StartReply("new", 1000, 61000, "2026-12-03")
    assert StartReply.from_reply([b"limit", b"day"]).limit == "day"
    assert StartReply.from_reply([b"closed"]).status == "closed"
    resumed = StartReply.from_reply([b"resume", [b"uid", b"7", b"st", b"1000"], b"c1.tok"])
    assert (resumed.status, resumed.attempt_id, resumed.state) == ("resume", "c1.tok", {"uid": b"7", "st": b"1000"})


def test_answer_reply_paper_and_errors() -> None:
    ok = AnswerReply.from_reply([b"ok", 1, 12, 40, b"AC", 0, b"m"])
    assert ok == AnswerReply("", 1, 12, 40, "AC", 0, "m")
    assert (ok.next_question, ok.finish) == (None, None)
    assert AnswerReply.from_reply([b"err", b"already_answered"]).error == "already_answered"
    limited = AnswerReply.from_reply([b"err", b"rate_limited", 250])
    assert (limited.error, limited.retry_after_ms) == ("rate_limited", 250)


def test_answer_reply_challenge_next_end_and_time_limit() -> None:
    nxt = AnswerReply.from_reply([b"ok", 1, 10, 10, b"B", 0, b"s", b"q7|2130"])
    assert (nxt.next_question, nxt.finish) == ("q7|2130", None)
    end = AnswerReply.from_reply([b"ok", 0, 0, 10, b"B", 0, b"s", b"", [*_FINISHED, b"c1.tok"]])
    assert end.next_question == "" and end.finish is not None
    assert (end.finish.attempt_id, end.finish.score, end.finish.rank) == ("c1.tok", 80, 3)
    timed_out = AnswerReply.from_reply([b"err", b"deadline_passed", [*_FINISHED, b"c1.tok"]])
    assert timed_out.error == "deadline_passed" and timed_out.finish is not None


def test_finish_reply_on_and_off_the_board() -> None:
    done = FinishReply.from_reply(_FINISHED)
    assert (done.error, done.score, done.correct_count, done.question_count, done.duration_ms) == ("", 80, 8, 10, 61234)
    assert (done.rank, done.best, done.counted, done.again, done.auto) == (3, 80, True, False, False)
    assert done.encoded == 343597383619999.0 and done.attempt_id == ""
    off = FinishReply.from_reply([b"ok", 5, 1, 10, 900, -1, 0, 0, 2, 1, 1, 1, b""])
    assert (off.rank, off.counted, off.again, off.auto, off.encoded) == (-1, False, True, True, None)
    assert FinishReply.from_reply([b"err", b"not_due"]).error == "not_due"


def test_register_board_and_guard_replies() -> None:
    assert RegisterReply.from_reply([b"new", b"42", 1000]) == RegisterReply("new", "42")
    assert RegisterReply.from_reply([b"dup"]) == RegisterReply("dup", "")
    page = BoardPageReply.from_reply([2, b"7", b"1", 1, b"Zhang\to1"])
    assert (page.total, list(page.rows)) == (2, [b"7", b"1", 1, b"Zhang\to1"])
    assert BoardMeReply.from_reply([5]) == BoardMeReply(5)
    me = BoardMeReply.from_reply([5, b"99", 2, b"7", b"99", 2, b"Zhang\to1"])
    assert (me.total, me.encoded, me.rank, len(me.rows)) == (5, b"99", 2, 4)
    assert RateVerdict.from_reply([0, 1200]) == RateVerdict(False, 1200)
    assert ReviewReply.from_reply([b"ok", 1, 80, -1]) == ReviewReply("", True, 80, None)
    assert ReviewReply.from_reply([b"err", b"not_finished"]).error == "not_finished"
    assert SmsReserveReply.from_reply([0, b"daily", 5000]) == SmsReserveReply(False, 0, "daily", 5000)
    assert SmsReserveReply.from_reply([1, 3]) == SmsReserveReply(True, 3)
    assert SmsCheckReply.from_reply([0, -1]) == SmsCheckReply(False, -1)
