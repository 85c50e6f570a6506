"""What decoding a Lua reply into its named record costs, against the positional reads it replaced.

    python loadtest/bench_replies.py             # 41 interleaved rounds of 20,000 decodes each
    python loadtest/bench_replies.py --rounds 11

The hot path decodes one ANSWER reply per answer (``AnswerReply.from_reply``) and one FINISH
reply per finish (``FinishReply.from_reply``).  The "positional" functions are the reads
``Play.answer_result`` and ``Play._finish_result`` made before the records, on the same replies.
Rounds are interleaved (each round times every way once) and medians reported, so a busy machine
slows all ways alike; read the ratios.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import timeit
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leaderboard.scripts import AnswerReply, FinishReply

Reply = Sequence[Any]
_ANSWER: Reply = [b"ok", 1, 10, 40, b"B", 0, b"s"]
_FINISH: Reply = [b"ok", 80, 8, 10, 61234, 17, 80, 1, 1733270000000, 1733269938766, 0, 0, b"343597383619999"]


def _as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def answer_positional(reply: Reply) -> tuple[Any, ...] | None:
    if _as_str(reply[0]) == "err":
        return None
    ok, pts, score, shown, qtype = int(reply[1]), int(reply[2]), int(reply[3]), _as_str(reply[4]), _as_str(reply[6])
    return ok, pts, score, shown, qtype, len(reply) > 7


def answer_record(reply: Reply) -> tuple[Any, ...] | None:
    r = AnswerReply.from_reply(reply)
    if r.error:
        return None
    return r.correct, r.points, r.score, r.shown, r.qtype, r.next_question is not None


def finish_positional(reply: Reply) -> tuple[Any, ...] | None:
    if _as_str(reply[0]) == "err":
        return None
    score, cc, qc, dur, rank, best, counted, fa, st = (int(x) for x in reply[1:10])
    return score, cc, qc, dur, rank, best, counted == 1, fa, st, len(reply) > 11 and int(reply[11] or 0) == 1


def finish_record(reply: Reply) -> tuple[Any, ...] | None:
    r = FinishReply.from_reply(reply)
    if r.error:
        return None
    return (r.score, r.correct_count, r.question_count, r.duration_ms, r.rank, r.best, r.counted, r.finished_at,
            r.started_at, r.auto)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--number", type=int, default=20_000)
    args = parser.parse_args(argv)
    ways: dict[str, tuple[Callable[[Reply], tuple[Any, ...] | None], Reply]] = {
        "answer, positional (before)": (answer_positional, _ANSWER),
        "answer, AnswerReply": (answer_record, _ANSWER),
        "finish, positional (before)": (finish_positional, _FINISH),
        "finish, FinishReply": (finish_record, _FINISH),
    }
    assert answer_positional(_ANSWER) == answer_record(_ANSWER)
    assert finish_positional(_FINISH) == finish_record(_FINISH)
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, (decode, reply) in ways.items():
            times[name].append(timeit.timeit(functools.partial(decode, reply), number=args.number) / args.number * 1e9)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, median in medians.items():
        print(f"{name:30s} {median:7.0f} ns per reply")
    for what in ("answer", "finish"):
        before, after = medians[f"{what}, positional (before)"], medians[f"{what}, {what.title()}Reply"]
        print(f"{what}: record / positional = {after / before:.2f}x ({after - before:+.0f} ns)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
