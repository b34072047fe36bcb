"""The memory row: a worker's resident memory before and after draining many calls.

The worker stops consuming its queue (``cancel_consumer``), its memory is read,
the calls are queued, it starts consuming again, and the clock runs until the
queue is empty and nothing is reserved or running. Fire-and-forget calls are
used, so no result is left behind in the backend.
"""

from __future__ import annotations

import time
from typing import Any

from .queues import load_calls, queue_size
from .systems import System
from .workers import WorkerSet

#: Seconds between two looks at the queue while it drains.
POLL_S = 0.25
#: Seconds without any progress after which the drain is given up.
STALL_S = 60.0
MB = 1024 * 1024
#: Seconds for a blocking read issued before the cancellation to time out (kombu's is 1 s).
CANCEL_SETTLE_S = 1.5


def measure_drain(system: System, workers: WorkerSet, calls: int) -> dict[str, Any]:
    """Drain ``calls`` queued calls through the system's worker; memory and rate."""
    host = workers.hostname(system.key)
    control = system.app.control
    _control(control.cancel_consumer, system.add_queue, host)
    _wait_not_consuming(system, host)
    before = workers.rss_bytes(system.key)
    try:
        load_calls(system, calls)
    finally:
        start = time.perf_counter()
        _control(control.add_consumer, system.add_queue, host)
    _wait_drained(system, workers, host)
    elapsed = time.perf_counter() - start
    after = workers.rss_bytes(system.key)
    return {
        "system": system.key,
        "calls": calls,
        "concurrency": workers.concurrency,
        "rss_before_mb": before / MB,
        "rss_after_mb": after / MB,
        "rss_growth_mb": (after - before) / MB,
        "drain_calls_per_s": calls / elapsed,
        "drain_s": elapsed,
    }


def _control(command: Any, queue: str, host: str) -> None:
    replies = command(queue, destination=[host], reply=True, timeout=10.0)
    if not replies:
        raise RuntimeError(f"worker {host} did not answer {command.__name__}({queue!r})")


def _wait_not_consuming(system: System, host: str) -> None:
    """Wait until the worker has really cancelled (the reply comes before it does)."""
    inspect = system.app.control.inspect(destination=[host], timeout=2.0)
    deadline = time.perf_counter() + 30.0
    while time.perf_counter() < deadline:
        queues = (inspect.active_queues() or {}).get(host)
        if queues is not None and all(q["name"] != system.add_queue for q in queues):
            time.sleep(CANCEL_SETTLE_S)
            return
        time.sleep(POLL_S)
    raise TimeoutError(f"worker {host} kept consuming {system.add_queue!r}")


def _wait_drained(system: System, workers: WorkerSet, host: str) -> None:
    """Until the queue is empty and nothing is reserved or running; fails on a stall."""
    left, progress = queue_size(system, system.add_queue), time.perf_counter()
    while left > 0:
        _check_alive(workers, system.key)
        time.sleep(POLL_S)
        now_left = queue_size(system, system.add_queue)
        if now_left < left:
            left, progress = now_left, time.perf_counter()
        elif time.perf_counter() - progress > STALL_S:
            raise TimeoutError(f"queue {system.add_queue!r} stuck at {left} calls for {STALL_S} s")
    inspect = system.app.control.inspect(destination=[host], timeout=2.0)
    deadline = time.perf_counter() + STALL_S
    while True:
        _check_alive(workers, system.key)
        active = (inspect.active() or {}).get(host, None)
        reserved = (inspect.reserved() or {}).get(host, None)
        if active == [] and reserved == []:
            return
        if time.perf_counter() > deadline:
            raise TimeoutError(f"worker {host} still busy {STALL_S} s after the queue drained")
        time.sleep(POLL_S)


def _check_alive(workers: WorkerSet, key: str) -> None:
    process = workers.workers[key].process
    if process is None or process.poll() is not None:
        raise RuntimeError(
            f"the {key} worker exited while draining (was it killed from outside the bench?)"
        )
