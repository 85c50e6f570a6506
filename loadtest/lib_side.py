"""The PyPI ``leaderboard`` library's side of ``quiz bench``, run in a process of its own.

Its top-level module is called ``leaderboard`` like our package, and it was written for redis-py
2.x (``zadd(name, score, member)``), so ``bench.py`` installs it with that redis-py into a
separate directory and runs this file with that directory first on ``sys.path``; nothing of ours
is imported here.

    python loadtest/lib_side.py '{"lib_dir": ..., "redis_url": ..., "board": ..., "op": "rank", ...}'

Ops, done the way an application using the library would: ``rank`` rank_for (competition
ranking), ``page`` leaders(page, page_size=50, with_member_data), ``around`` around_me(member,
page_size=11, with_member_data), ``finish`` keep-best update (rank_member_if_in) of the member
on each board a finish touches (total, daily and the org boards of the member's path), with
member data.  Prints one JSON line: ops done, seconds taken and this process's CPU seconds.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from typing import Any
from urllib.parse import urlparse


def main() -> None:
    cfg = json.loads(sys.argv[1])
    sys.path.insert(0, cfg["lib_dir"])
    import redis  # the redis-py 2.x installed beside the library
    from leaderboard.competition_ranking_leaderboard import CompetitionRankingLeaderboard

    url = urlparse(cfg["redis_url"])
    pool = redis.ConnectionPool(host=url.hostname, port=url.port or 6379, db=int(url.path.strip("/") or 0),
                                max_connections=cfg["concurrency"] + 4)
    connection = redis.StrictRedis(connection_pool=pool)
    board = CompetitionRankingLeaderboard(cfg["board"], redis_connection=connection, page_size=50)
    members, op = int(cfg["members"]), cfg["op"]
    boards = cfg.get("finish_boards") or [cfg["board"]]

    def higher(_lb: Any, _member: str, current: float | None, score: float, *_: Any) -> bool:
        return current is None or score > current

    def one(rng: random.Random, n: int) -> None:
        if op == "rank":
            board.rank_for(f"u{rng.randrange(members)}")
        elif op == "page":
            board.leaders(rng.randrange(members // 50) + 1, page_size=50, with_member_data=True)
        elif op == "around":
            board.around_me(f"u{rng.randrange(members)}", page_size=11, with_member_data=True)
        else:
            member = f"{cfg['finish_prefix']}{n}"
            score = float(rng.randrange(100) * 4294967296 + rng.randrange(4294967295))
            for name in boards:
                board.rank_member_if_in(name, higher, member, score, "name\torg")

    deadline = time.perf_counter() + float(cfg["seconds"])
    counts = [0] * cfg["concurrency"]

    def worker(i: int) -> None:
        rng = random.Random(i)
        n = i * 10_000_000
        while time.perf_counter() < deadline:
            one(rng, n)
            n += 1
            counts[i] += 1

    started, cpu0 = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(cfg["concurrency"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"ops": sum(counts), "seconds": time.perf_counter() - started,
                      "cpu_s": time.process_time() - cpu0}))


if __name__ == "__main__":
    main()
