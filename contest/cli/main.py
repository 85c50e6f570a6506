"""The ``quiz`` command: serve, demo, tokens, imports, contests, flush, rebuild, export."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import orjson

from contest.cli.runtime import setup_logging, use_uvloop, with_embedded_redis
from contest.settings import Settings, SettingsError

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["Services", "main", "services"]

# Each command imports what it needs inside its function, so a short one (quiz token, quiz migrate)
# starts without loading aiohttp, the web layer, the workers and the catalog it never uses.
log = logging.getLogger("quiz")


@dataclass
class Services:
    settings: Settings
    redis: Any
    storage: Any
    catalog: Any
    runner: Any


@contextlib.asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[Services]:
    """Redis, the database and the catalog without the HTTP server (for CLI commands)."""
    from contest.catalog import Catalog
    from contest.redis_client import connect_redis, make_runner
    from contest.storage import open_storage

    assert settings.redis_url
    redis = connect_redis(settings.redis_url, cluster=settings.redis_cluster)
    runner = make_runner(settings.redis_url, redis, cluster=settings.redis_cluster,
                         durability=settings.ack_durability or "memory", ack_timeout_ms=settings.ack_timeout_ms)
    storage = open_storage(settings.effective_database_url)
    await storage.open()
    try:
        catalog = Catalog(redis, storage)
        await catalog.bootstrap()
        yield Services(settings, redis, storage, catalog, runner)
    finally:
        await storage.close()
        await runner.aclose()
        await redis.aclose()


# ---- serve -------------------------------------------------------------------------------
def _serve_worker(settings: Settings, reuse_port: bool, own_group: bool = False) -> None:
    """One aiohttp process with the answer lane.  ``serve`` turns SIGTERM/SIGINT into a graceful
    shutdown: the listening socket closes, requests in flight finish (up to 10 s), then the
    cleanup contexts run, the flusher's final flush among them."""
    from contest.web.app import create_app
    from contest.web.front_door import serve

    if own_group:
        # A terminal's Ctrl-C reaches the whole foreground group; the supervisor forwards one
        # signal itself, and a second one would cut this worker's final flush short.
        os.setpgrp()
    setup_logging(settings.log_level)
    use_uvloop()
    app = create_app(settings)
    app.on_startup.append(_freeze_gc)  # after the cleanup contexts: connections, catalog, workers
    asyncio.run(serve(app, settings.host, settings.port, reuse_port=reuse_port, shutdown_timeout=10.0,
                      lane=settings.answer_lane))


async def _freeze_gc(_app: web.Application) -> None:
    """Keep the cyclic GC's full collections off the answer path's latency tail.

    A full (gen2) collection scans every tracked object: with the modules, routes and catalog
    loaded that paused the loop for tens of milliseconds every second or two under load
    (loadtest/README.md, "Figures behind the code"), the worst answers of a run.  Objects alive once startup is
    done live as long as the process, so they move to the permanent generation and are never
    scanned again; the raised thresholds make the collections that remain rarer.
    """
    import gc

    from contest.workers.flusher import relax_gc

    gc.collect()
    gc.freeze()
    relax_gc()


def cmd_serve(settings: Settings) -> int:
    settings, server = with_embedded_redis(settings)
    try:
        if settings.workers <= 1:
            log.info("serving on http://%s:%s", settings.host, settings.port)
            _serve_worker(settings, reuse_port=False)
            return 0
        return _serve_many(settings)
    finally:
        if server is not None:
            server.stop()


def _serve_many(settings: Settings) -> int:
    """N processes sharing the port with SO_REUSEPORT (the kernel spreads connections over them).

    Every worker runs the whole app: its flusher is one more consumer of the ``flusher`` group
    (consumers share the streams, a dead one's entries are reclaimed), its sweeper races the
    others harmlessly (finishing twice is a no-op).  SIGTERM/SIGINT is passed on once to each
    worker, which shuts down gracefully; the supervisor exits 0 when every worker did.
    """
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_serve_worker, args=(settings, True, True), name=f"quiz-worker-{i}")
             for i in range(settings.workers)]
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        log.info("signal %s: stopping %d workers gracefully", signum, len(procs))
        for proc in procs:
            if proc.pid and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        if not stopping:
            proc.start()
    log.info("serving on http://%s:%s with %d workers", settings.host, settings.port, len(procs))
    started = [proc for proc in procs if proc.pid is not None]
    for proc in started:
        proc.join()
    codes = [proc.exitcode for proc in started]
    if not stopping:
        log.error("workers exited on their own: %s", codes)
        return 1
    if any(code != 0 for code in codes):
        # a negative code is the signal that ended the worker (-9: killed, -11: crashed)
        log.error("workers did not all stop cleanly: exit codes %s", codes)
        return 1
    return 0


# ---- data commands -----------------------------------------------------------------------
async def _import(settings: Settings, kind: str, path: Path) -> int:
    from contest.orgtree import parse_orgs
    from question_bank import parse_questions

    data = await asyncio.to_thread(path.read_bytes)
    async with services(settings) as svc:
        if kind == "orgs":
            orgs, errors = await asyncio.to_thread(parse_orgs, data, filename=path.name, existing=svc.catalog.orgs)
            if not errors:
                await svc.catalog.install_orgs(orgs)
                print(f"imported {len(orgs)} orgs ({len(svc.catalog.orgs)} in the tree)")
        else:
            result = await asyncio.to_thread(parse_questions, data, filename=path.name)
            errors = result.errors
            if not errors:
                imported, updated = await svc.catalog.install_questions(result.questions)
                print(f"imported {imported} questions, updated {updated} ({len(svc.catalog.bank)} in the bank)")
    for error in errors:
        print(f"row {error.row} column {error.column}: {error.message}", file=sys.stderr)
    return 1 if errors else 0


async def _contest_create(settings: Settings, path: Path, publish: bool) -> int:
    from contest.contests import validate_contest
    from contest.errors import DomainError

    async with services(settings) as svc:
        try:
            raw = await asyncio.to_thread(path.read_bytes)
            config = validate_contest(orjson.loads(raw), svc.catalog.bank,
                                      default_min_answer_ms=settings.min_answer_ms)
        except DomainError as exc:
            print(f"{exc.message}: {orjson.dumps(exc.details).decode()}", file=sys.stderr)
            return 1
        if publish:
            config["status"] = "published"
        await svc.catalog.install_contest(config)
        print(f"contest {config['contest_id']} {config['status']}")
    return 0


async def _flush(settings: Settings, once: bool) -> int:
    from contest.workers.flusher import Flusher, consumer_name

    async with services(settings) as svc:
        flusher = Flusher(svc.redis, svc.storage, consumer=consumer_name(), batch=settings.flush_batch)
        if once:
            total = 0
            while (n := await flusher.flush_once()) > 0:
                total += n
            print(f"flushed {total} entries; backlog {await flusher.backlog()}")
            return 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await flusher.run(stop)
        print(f"flushed {flusher.rows} rows in {flusher.batches} batches")
    return 0


async def _rebuild(settings: Settings, contest_id: str) -> int:
    from contest.errors import DomainError
    from contest.workers.rebuild import rebuild_with

    async with services(settings) as svc:
        try:
            report = await rebuild_with(svc.redis, svc.runner, svc.storage, svc.catalog, contest_id,
                                        daily_board_keep_s=settings.daily_board_keep_s)
        except DomainError as exc:
            print(f"rebuild {contest_id}: {exc.message}", file=sys.stderr)
            return 1
        print(orjson.dumps(report).decode())
    return 0


async def _export(settings: Settings, contest_id: str, what: str, fmt: str, org: str | None, out: Path | None) -> int:
    from contest.export import export_rows

    async with services(settings) as svc:
        if org and org not in svc.catalog.orgs:
            print(f"export: no org {org!r}", file=sys.stderr)
            return 2
        if contest_id not in svc.catalog.contests:
            print(f"export: no contest {contest_id!r}", file=sys.stderr)
            return 2
        prefix = svc.catalog.orgs.path_string(org) if org else None
        target = out or Path(f"{contest_id}-{what}.{fmt}")
        with target.open("wb") as fh:
            async for chunk in export_rows(svc.storage, what, contest_id, prefix, fmt):
                await asyncio.to_thread(fh.write, chunk)
        print(f"wrote {target}")
    return 0


async def _lottery_verify(settings: Settings, contest_id: str, lottery_id: str, export: Path) -> int:
    from contest.lottery import published_from_redis, verify_cli

    async with services(settings) as svc:
        doc = await published_from_redis(svc.redis, contest_id, lottery_id)
    if doc is None:
        print(f"lottery verify: no lottery {lottery_id!r} in contest {contest_id!r}", file=sys.stderr)
        return 2
    return verify_cli(doc, export)


def cmd_token(settings: Settings, role: str, org: str | None, user: str | None, name: str | None, ttl: int) -> int:
    from contest.auth import issue_token

    if role == "organizer" and not org:
        print("an organizer token needs --org ORG", file=sys.stderr)
        return 2
    token, expires_at = issue_token(settings.signing_secret, user_id=user or role, role=role, org_id=org,
                                    name=name or user or role, ttl_s=ttl)
    print(f"role={role} org={org or '-'} expires_at={expires_at}")
    print(token)
    return 0


def _run_async(settings: Settings, coro_factory: Callable[[Settings], Coroutine[Any, Any, int]]) -> int:
    settings, server = with_embedded_redis(settings)
    try:
        return int(asyncio.run(coro_factory(settings)))
    finally:
        if server is not None:
            server.stop()


# ---- argument parsing -------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quiz", description="Quiz-competition engine")
    parser.add_argument("--data-dir", type=Path, help="QUIZ_DATA_DIR")
    parser.add_argument("--redis-url", help="QUIZ_REDIS_URL")
    parser.add_argument("--database-url", help="QUIZ_DATABASE_URL")
    parser.add_argument("--log-level", help="QUIZ_LOG_LEVEL")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    demo = sub.add_parser("demo", help="everything embedded, with sample data and a running contest")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--simulate", type=int, default=0, help="simulated players")
    token = sub.add_parser("token", help="print a bearer token")
    token.add_argument("--role", required=True, choices=("participant", "organizer", "admin"))
    token.add_argument("--org")
    token.add_argument("--user")
    token.add_argument("--name")
    token.add_argument("--ttl", type=int, default=30 * 86400)
    for name in ("import-orgs", "import-questions"):
        p = sub.add_parser(name)
        p.add_argument("file", type=Path)
    contest = sub.add_parser("contest", help="contest commands")
    csub = contest.add_subparsers(dest="contest_command", required=True)
    create = csub.add_parser("create")
    create.add_argument("file", type=Path)
    create.add_argument("--publish", action="store_true")
    flush = sub.add_parser("flush", help="run a flusher (stream -> database)")
    flush.add_argument("--once", action="store_true", help="drain what is there and exit")
    sub.add_parser("migrate", help="apply database migrations")
    bench = sub.add_parser("bench", help="benchmark on loopback, prints a table (loadtest/bench.py; --help there)",
                           add_help=False)
    del bench  # its options are loadtest/bench.py's own: main() hands it the rest of the line
    rehearse = sub.add_parser("rehearse", add_help=False,
                              help="a campaign rehearsal at size, prints a table (loadtest/rehearse.py; --help there)")
    del rehearse  # likewise loadtest/rehearse.py's own options
    rebuild = sub.add_parser("rebuild", help="rebuild a contest's Redis state from the database")
    rebuild.add_argument("contest_id")
    export = sub.add_parser("export", help="export results or answers")
    export.add_argument("contest_id")
    export.add_argument("--what", choices=("results", "answers"), default="results")
    export.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    export.add_argument("--org")
    export.add_argument("--out", type=Path)
    lottery = sub.add_parser("lottery", help="lottery commands")
    lsub = lottery.add_subparsers(dest="lottery_command", required=True)
    verify = lsub.add_parser("verify", help="recompute a drawn lottery from its seed and the results export")
    verify.add_argument("contest_id")
    verify.add_argument("lottery_id")
    verify.add_argument("--export", type=Path, required=True, help="the results export (csv or xlsx)")
    verify.add_argument("--published", type=Path, help="the published lottery as JSON (default: read it from Redis)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in ("bench", "rehearse"):
        return _loadtest(args.command, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        settings = Settings.from_env(
            data_dir=args.data_dir, redis_url=args.redis_url, database_url=args.database_url,
            log_level=args.log_level.upper() if args.log_level else None,
            host=getattr(args, "host", None), port=getattr(args, "port", None),
            workers=getattr(args, "workers", None),
        )
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level)
    command = args.command
    if command == "serve":
        return cmd_serve(settings)
    if command == "demo":
        from contest.cli.demo import run_demo

        return run_demo(settings, simulate=args.simulate)
    if command == "token":
        return cmd_token(settings, args.role, args.org, args.user, args.name, args.ttl)
    if command == "lottery" and args.published:
        from contest.lottery import verify_cli

        return verify_cli(args.published.read_bytes(), args.export)
    if command == "migrate":
        return _run_async(settings.replace(redis_url=settings.redis_url), _migrate)
    handlers = {
        "import-orgs": lambda s: _import(s, "orgs", args.file),
        "import-questions": lambda s: _import(s, "questions", args.file),
        "contest": lambda s: _contest_create(s, args.file, args.publish),
        "flush": lambda s: _flush(s, args.once),
        "rebuild": lambda s: _rebuild(s, args.contest_id),
        "export": lambda s: _export(s, args.contest_id, args.what, args.format, args.org, args.out),
        "lottery": lambda s: _lottery_verify(s, args.contest_id, args.lottery_id, args.export),
    }
    return _run_async(settings, handlers[command])


def _loadtest(command: str, argv: list[str]) -> int:
    """``quiz bench`` / ``quiz rehearse``: runs loadtest/<command>.py of the source checkout (it
    starts its own servers)."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "loadtest" / f"{command}.py"
    spec = importlib.util.spec_from_file_location(f"quiz_loadtest_{command}", path)
    if not path.exists() or spec is None or spec.loader is None:
        print(f"quiz {command} needs the source checkout's loadtest/ directory ({path} is missing)", file=sys.stderr)
        return 2
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return int(module.main(argv))


async def _migrate(settings: Settings) -> int:
    from contest.storage import open_storage

    storage = open_storage(settings.effective_database_url)
    await storage.open()  # applies pending migrations
    await storage.close()
    print(f"database at {settings.effective_database_url.split('@')[-1]} is up to date")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
