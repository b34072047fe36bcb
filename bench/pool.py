"""``python -m bench.pool``: prefork against threads for a service that waits, side by side.

One private Redis; one worker at a time serves :class:`PoolWaitService` (``celery -A
bench.pool``). For each pool: calls per second for a burst of calls that each wait
``--wait-ms`` (sent at once, then collected), the p50 of trivial sequential calls,
the worker's CPU per call and its resident memory (main process and pool children).
Task events are at their default (on demand; no monitor asks here) unless an
entry names them (``prefork:2:on``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from commissaire_tasks.bus import Bus
from commissaire_tasks.message import Message
from commissaire_tasks.service import CommissaireService
from commissaire_tasks.worker import service_app

ROOT = Path(__file__).resolve().parent.parent


class PoolWaitService(CommissaireService):
    """Waits as an SSH or HTTP call would; answers at once when told to wait 0."""

    def on_wait(self, message: Message, seconds: float) -> float:
        if seconds:
            time.sleep(seconds)
        return seconds


#: ``celery -A bench.pool worker`` serves PoolWaitService.
app = service_app(PoolWaitService)


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _cpu_s(pid: int) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in _tree(pid))


def _rss_mb(pid: int) -> float:
    return sum(p.memory_info().rss for p in _tree(pid)) / 2**20


def measure(bus: Bus, pid: int, calls: int, wait_s: float, sequential: int) -> dict[str, Any]:
    name = f"{PoolWaitService.name}.wait"
    for _ in range(20):
        bus.call(name, 0, timeout=30)  # warm up
    latencies = []
    for _ in range(sequential):
        start = time.perf_counter()
        bus.call(name, 0, timeout=30)
        latencies.append(time.perf_counter() - start)
    cpu_before = _cpu_s(pid)
    start = time.perf_counter()
    sent = [bus.send(name, wait_s) for _ in range(calls)]
    for result in sent:
        result.get(timeout=120)
    elapsed = time.perf_counter() - start
    cpu = _cpu_s(pid) - cpu_before
    return {
        "calls_per_s": calls / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "cpu_ms_per_call": cpu / calls * 1000,
        "rss_mb": _rss_mb(pid),
    }


def _entry(entry: str) -> tuple[str, int, str]:
    """``pool[:concurrency[:task events]]``, with 4 and demand as defaults."""
    parts = entry.split(":")
    concurrency = int(parts[1]) if len(parts) > 1 else 4
    return parts[0], concurrency, parts[2] if len(parts) > 2 else "demand"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--wait-ms", type=float, default=50.0)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument(
        "--pools",
        default="prefork:4,threads:4,threads:16",
        help="pool:concurrency[:task events],... (task events: demand, the default, on or off)",
    )
    args = parser.parse_args(argv)
    from commissaire_tasks.app import create_app
    from commissaire_tasks.config import load_settings
    from commissaire_tasks.testing import RedisServer, WorkerProcess

    print(f"{args.calls} calls waiting {args.wait_ms:g} ms each, sent at once; "
          f"p50 of {args.sequential} sequential calls waiting 0")  # fmt: skip
    print(f"{'pool':<18} {'calls/s':>8} {'p50 ms':>7} {'CPU ms/call':>12} {'RSS MB':>7}")
    with RedisServer() as redis, tempfile.TemporaryDirectory() as logs:
        os.environ["COMMISSAIRE_BROKER_URL"] = redis.url
        for entry in args.pools.split(","):
            pool, concurrency, events = _entry(entry)
            settings = load_settings().replace(broker_url=redis.url, task_events=events)
            bus = Bus(create_app(settings, services=()))  # "on": the caller sends "sent" too
            bus.app.router.add_service(PoolWaitService.name)
            worker = WorkerProcess(
                env={"COMMISSAIRE_TASK_EVENTS": events},
                broker_url=redis.url,
                app="bench.pool",
                pool=pool,
                concurrency=concurrency,
                log_dir=logs,
                cwd=ROOT,
            )
            with worker:
                row = measure(bus, worker.pid, args.calls, args.wait_ms / 1000, args.sequential)
            print(
                f"{entry:<18} {row['calls_per_s']:>8.0f} {row['p50_ms']:>7.2f} "
                f"{row['cpu_ms_per_call']:>12.2f} {row['rss_mb']:>7.0f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
