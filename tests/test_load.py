"""Load: drain many queued calls, count every execution, keep memory flat, leave nothing.

The benchmark (``python -m bench``) drains 100,000 calls; this test drains
10,000 on every CI run so the suite stays fast. Every call goes to the ledger's
``tally``, which counts executions and distinct calls, so the 9,000
fire-and-forget calls are counted as surely as the 1,000 with results.

The memory bound is meant to catch a leak of 1 KB per call. To see it do so, run
``TEST_LEAK_BYTES=1024 ./scripts/test tests/test_load.py``: the worker inherits the
variable, ``ledger.tally`` keeps 1 KB per call (``tests/services.py``), and this
test must fail on the RSS growth (about 10 MB over the 4 MB allowed).
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from commissaire_tasks.testing import RedisServer, WorkerProcess
from tests.ledger import Ledger, wait_until
from tests.report import record

pytestmark = pytest.mark.reliability

CALLS = 10_000
WITH_RESULTS = 1_000
WARM_UP = 1_000
#: Growth of the worker's RSS (main and pool processes) allowed over the drain.
#: A leak of 1 KB per call would add about 10 MB.
MAX_GROWTH_MB = 4.0
RESULT_EXPIRES_S = 3


def rss_mb(worker: WorkerProcess) -> float:
    pids = [worker.pid, *worker.pool_pids()]
    return sum(psutil.Process(pid).memory_info().rss for pid in pids) / 2**20


def drain(ledger: Ledger, first: int, count: int, with_results: int) -> None:
    """Send ``count`` tally calls, the last ``with_results`` waited for; wait for them all."""
    key = ledger.key("tally")
    for token in range(first, first + count - with_results):
        ledger.bus.notify(key, ledger.run, token)
    tokens = range(first + count - with_results, first + count)
    results = [ledger.bus.send(key, ledger.run, token) for token in tokens]
    assert [r.get(timeout=300) for r in results] == list(tokens)
    wait_until(
        lambda: int(ledger.record.get(f"ledger:{ledger.run}:count") or 0) >= first + count,
        300,
        f"{first + count} executions",
    )


def test_draining_10000_calls_runs_each_once_keeps_memory_flat_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    with RedisServer(directory=tmp_path / "redis") as server:
        broker = server.client()
        ledger = Ledger(
            server,
            tmp_path,
            extra_env={"COMMISSAIRE_RESULT_EXPIRES": str(RESULT_EXPIRES_S)},
            result_expires_s=RESULT_EXPIRES_S,
        )
        with ledger.worker(concurrency=2) as worker:
            pool = set(worker.pool_pids())
            drain(ledger, 0, WARM_UP, 10)  # allocator and caches settle first
            start_memory = broker.info("memory")["used_memory"]
            before = rss_mb(worker)
            drain(ledger, WARM_UP, CALLS, WITH_RESULTS)
            after = rss_mb(worker)
            assert set(worker.pool_pids()) == pool  # no pool process died and was replaced
            executions = int(ledger.record.get(f"ledger:{ledger.run}:count") or 0) - WARM_UP
            distinct = ledger.record.scard(f"ledger:{ledger.run}:tokens") - WARM_UP
            assert broker.llen(ledger.queue["name"]) == 0
            # A call's acknowledgement follows its count (and its result): await it.
            wait_until(lambda: broker.hlen("unacked") == 0, 15, "every call to be acknowledged")
        ledger.record.delete(f"ledger:{ledger.run}:tokens", f"ledger:{ledger.run}:count")
        wait_until(
            lambda: not any(broker.scan_iter("celery-task-meta-*")),
            RESULT_EXPIRES_S + 10,
            "every result key to expire",
        )
        end_memory = broker.info("memory")["used_memory"]
    growth = after - before
    assert (executions, distinct) == (CALLS, CALLS)
    assert growth < MAX_GROWTH_MB, f"worker RSS {before:.1f} -> {after:.1f} MB"
    assert end_memory < start_memory + 2 * 2**20
    record(
        "drain",
        sent=CALLS,
        completed=executions,
        lost=CALLS - distinct,
        duplicated=executions - distinct,
        notes=f"worker RSS {before:.1f} -> {after:.1f} MB (limit +{MAX_GROWTH_MB:.0f} MB); "
        f"0 unacknowledged; 0 result keys after expiry",
    )
