"""Load: drain many queued calls with flat worker memory, and leave nothing behind.

The benchmark (``commissaire-tasks bench``) drains 100,000 calls; this test drains
10,000 on every CI run so the suite stays fast.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import psutil
import pytest

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.testing import RedisServer, WorkerProcess

pytestmark = pytest.mark.reliability

CALLS = 10_000
WITH_RESULTS = 1_000


def rss_mb(worker: WorkerProcess) -> float:
    pids = [worker.pid, *worker.pool_pids()]
    return sum(psutil.Process(pid).memory_info().rss for pid in pids) / 2**20


def test_draining_many_calls_keeps_memory_flat_and_leaves_nothing_behind(tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    queue = {"name": f"load_{run}", "routing_key": f"load_{run}.*", "service": "my"}
    with RedisServer(directory=tmp_path / "redis") as server:
        broker = server.client()
        settings = load_settings().replace(
            broker_url=server.url, queues=(queue,), result_expires_s=3
        )
        bus = Bus(create_app(settings))
        env = {
            "COMMISSAIRE_SERVICES": "workers.simple",
            "COMMISSAIRE_QUEUES": json.dumps([queue]),
            "COMMISSAIRE_RESULT_EXPIRES": "3",
        }
        worker = WorkerProcess(
            broker_url=server.url, queues=[queue["name"]], concurrency=2, env=env, log_dir=tmp_path
        )
        with worker:
            for _ in range(3):  # warm up the pool processes
                bus.call(f"load_{run}.echo", "warm")
            start_memory = broker.info("memory")["used_memory"]
            before = rss_mb(worker)
            for index in range(CALLS - WITH_RESULTS):
                bus.notify(f"load_{run}.echo", index)
            results = [bus.send(f"load_{run}.echo", index) for index in range(WITH_RESULTS)]
            assert [r.get(timeout=300) for r in results] == list(range(WITH_RESULTS))
            deadline = time.monotonic() + 300
            while broker.llen(queue["name"]) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert broker.llen(queue["name"]) == 0
            after = rss_mb(worker)
            del results
            time.sleep(4)  # past result_expires
            leftover = sum(1 for _ in broker.scan_iter("celery-task-meta-*"))
            end_memory = broker.info("memory")["used_memory"]
    print(
        f"\n[load] {CALLS} calls drained; worker RSS {before:.1f} MB -> {after:.1f} MB; "
        f"result keys left {leftover}; broker memory {start_memory} -> {end_memory} bytes"
    )
    assert after < before * 1.25 + 10  # flat, allowing for allocator noise
    assert leftover == 0
    assert end_memory < start_memory + 2 * 2**20
