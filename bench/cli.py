"""``python -m bench`` (from a checkout): the framework against bare Celery.

Starts its own Redis (unless ``--broker``) and its own ``celery worker`` prefork
subprocesses, measures the framework, a bare Celery task with the framework's
exact configuration and one with Celery's defaults, interleaved over rounds,
prints one table with the issue-7 target checks and writes the figures as JSON.
A FAIL is reported, never turned into an exit status: the exit status is 0
unless the run itself broke. ``--peers`` runs the side-by-side rows instead
(Nameko, Dramatiq, bare Celery; :mod:`bench.peers`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

from .peers.cli import add_arguments as add_peer_arguments
from .peers.cli import run_from_args as run_peers
from .plan import FULL, QUICK, Plan
from .report import evaluate_targets, render_table, write_json
from .runner import Options, run
from .stack import make_log_dir, start_redis
from .storage import measure_storage


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure what the framework costs over bare Celery (see bench/cli.py).",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="every row with few calls and one round (under a minute)",
    )
    p.add_argument("--out", default=None, help="JSON results file (default bench-results.json)")
    p.add_argument(
        "--plot",
        default=None,
        metavar="PNG",
        help="also draw latency and throughput against pool size (needs matplotlib)",
    )
    p.add_argument(
        "--broker",
        default=None,
        metavar="URL",
        help="use this broker instead of a Redis of the bench's own; its queues "
        "simple, my, bare and celery are purged, so give it a dedicated database",
    )
    p.add_argument(
        "--backend",
        default=None,
        metavar="URL",
        help="result backend (default: the broker if Redis, else a Redis of our own)",
    )
    p.add_argument("--no-rabbitmq", action="store_true", help="skip the RabbitMQ-broker row")
    p.add_argument("--rounds", type=int, default=None, help="rounds at the reference pool size")
    p.add_argument("--sweep-rounds", type=int, default=None, help="rounds at other pool sizes")
    p.add_argument(
        "--storage-rounds", type=int, default=None, help="rounds of the storage rows (full: 7)"
    )
    p.add_argument(
        "--calls",
        type=int,
        default=None,
        dest="throughput_calls",
        help="calls sent then collected per system and round",
    )
    p.add_argument(
        "--latency-calls", type=int, default=None, help="sequential calls per system and round"
    )
    p.add_argument(
        "--publish-calls", type=int, default=None, help="fire-and-forget calls per system and round"
    )
    p.add_argument(
        "--drain",
        type=int,
        default=None,
        dest="drain_calls",
        help="calls queued then drained for the memory row (full: 100000)",
    )
    p.add_argument(
        "--concurrency",
        default=None,
        help="comma-separated pool sizes (default 1,2,4; must include 2)",
    )
    p.add_argument(
        "--worker-loglevel",
        default="WARNING",
        help="the workers' -l (default WARNING, celery worker's own default)",
    )
    p.add_argument("--log-dir", default=None, help="keep worker logs here (default: a temp dir)")
    p.add_argument(
        "--storage-only",
        action="store_true",
        help="only the storage rows (save, get and their ratios to simple.add; callback delay)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    add_peer_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    concurrency = None
    if args.concurrency:
        concurrency = tuple(int(c) for c in args.concurrency.split(",") if c.strip())
    plan = (QUICK if args.quick else FULL).replace(
        rounds=args.rounds,
        sweep_rounds=args.sweep_rounds,
        storage_rounds=args.storage_rounds,
        throughput_calls=args.throughput_calls,
        latency_calls=args.latency_calls,
        publish_calls=args.publish_calls,
        drain_calls=args.drain_calls,
        concurrency=concurrency,
    )
    if plan.reference_concurrency not in plan.concurrency:
        print(f"--concurrency must include {plan.reference_concurrency}", file=sys.stderr)
        return 2
    options = Options(
        broker_url=args.broker,
        result_backend=args.backend,
        rabbitmq=not args.no_rabbitmq,
        loglevel=args.worker_loglevel,
        log_dir=args.log_dir,
    )
    progress = (lambda line: None) if args.quiet else _stderr
    if args.peers:
        try:
            with _sigterm_interrupts():
                return run_peers(args, progress)
        except KeyboardInterrupt:
            print(
                "interrupted; every server, worker and caller started was stopped", file=sys.stderr
            )
            return 130
    args.out = args.out or "bench-results.json"
    if args.storage_only:
        return _storage_only(plan, options, args.out)
    try:
        with _sigterm_interrupts():
            results = run(plan, options, progress)
    except KeyboardInterrupt:
        print("interrupted; every server and worker started was stopped", file=sys.stderr)
        return 130
    results["targets"] = evaluate_targets(results["rows"], plan.reference_concurrency)
    if args.plot:
        note = _plot(results, args.plot)
        if note:
            results["notes"].append(note)
    write_json(results, args.out)
    print(render_table(results))
    print(f"results: {args.out}" + (f", plot: {args.plot}" if args.plot else ""))
    return 0


def _storage_only(plan: Plan, options: Options, out: str) -> int:
    """The storage rows alone, on a Redis of the bench's own; printed and written to ``out``."""
    with contextlib.ExitStack() as stack:
        server = start_redis(stack)
        log_dir = make_log_dir(stack, options)
        rows = measure_storage(
            server.url,
            plan.storage_calls,
            plan.storage_rounds,
            log_dir,
            options.loglevel,
            plan.call_timeout_s,
        )
    write_json({"rows": {"storage": rows}}, out)
    for handler, figures in rows.items():
        print(f"[{handler}] " + json.dumps({k: v for k, v in figures.items() if "rounds" not in k}))
    print(f"results: {out}")
    return 0


def _plot(results: dict[str, object], path: str) -> str | None:
    from .plot import plot

    return plot(results, path)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM stops the run as Ctrl-C does, so servers and workers are still stopped.

    (A background job started by a non-interactive shell ignores SIGINT.)
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
