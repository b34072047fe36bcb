"""Faults with real processes: killed pool processes and workers, a broker restart.

Each test reports sent, completed, lost and duplicated calls (run with -s to see).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import BrokerUnavailable, CallTimeout
from commissaire_tasks.testing import RedisServer, WorkerProcess

pytestmark = pytest.mark.reliability


def report(name: str, sent: int, tokens: list[bytes]) -> dict[str, int]:
    counts = Counter(int(t) for t in tokens)
    figures = {
        "sent": sent,
        "completed": len(counts),
        "lost": sum(1 for t in range(sent) if t not in counts),
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
    }
    print(f"\n[reliability] {name}: {json.dumps(figures)}")
    return figures


class Ledger:
    def __init__(
        self,
        redis_server: RedisServer,
        log_dir: Path,
        visibility_s: int = 30,
        record_server: RedisServer | None = None,
    ) -> None:
        self.run = uuid.uuid4().hex[:8]
        self.queue = {
            "name": f"ledger_{self.run}",
            "routing_key": f"ledger_{self.run}.*",
            "service": "ledger",
        }
        self.url = redis_server.url
        self.record_url = (record_server or redis_server).url.rsplit("/", 1)[0] + "/8"
        self.log_dir = log_dir
        self.env = {
            "COMMISSAIRE_SERVICES": "tests.services",
            "COMMISSAIRE_QUEUES": json.dumps([self.queue]),
            "COMMISSAIRE_VISIBILITY_TIMEOUT": str(visibility_s),
            "TEST_RECORD_URL": self.record_url,
        }
        settings = load_settings().replace(
            broker_url=self.url, queues=(self.queue,), visibility_timeout_s=visibility_s
        )
        self.bus = Bus(create_app(settings))

    def worker(self, concurrency: int = 2) -> WorkerProcess:
        return WorkerProcess(
            broker_url=self.url,
            queues=[self.queue["name"]],
            concurrency=concurrency,
            env=self.env,
            log_dir=self.log_dir,
        )

    def send(self, token: int, seconds: float = 0.0):  # type: ignore[no-untyped-def]
        return self.bus.send(f"ledger_{self.run}.work", self.run, token, seconds)

    def tokens(self) -> list[bytes]:
        return redis.Redis.from_url(self.record_url).lrange(f"ledger:{self.run}", 0, -1)


@pytest.fixture
def ledger(redis_server: RedisServer, tmp_path: Path) -> Ledger:
    return Ledger(redis_server, tmp_path)


def test_a_pool_process_killed_mid_call_loses_nothing(ledger: Ledger) -> None:
    with ledger.worker(concurrency=2) as worker:
        results = [ledger.send(token, seconds=1.5) for token in range(6)]
        time.sleep(0.7)  # both pool processes are in the middle of a call
        victim = worker.pool_pids()[0]
        os.kill(victim, signal.SIGKILL)
        assert [r.get(timeout=40) for r in results] == list(range(6))
    figures = report("pool process SIGKILL", 6, ledger.tokens())
    assert figures["lost"] == 0
    assert figures["completed"] == 6


def test_a_worker_killed_outright_loses_no_accepted_call(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    ledger = Ledger(redis_server, tmp_path, visibility_s=3)
    worker = ledger.worker(concurrency=2).start()
    results = [ledger.send(token, seconds=0.5) for token in range(20)]
    time.sleep(0.8)
    worker.kill()  # SIGKILL, worker and pool: unacknowledged calls stay in the broker
    time.sleep(3.5)  # past the visibility timeout
    with ledger.worker(concurrency=2):
        assert sorted(r.get(timeout=60) for r in results) == list(range(20))
    figures = report("worker SIGKILL", 20, ledger.tokens())
    assert figures["lost"] == 0


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
        yield server


def test_a_broker_restart_under_load_is_survived(
    private_redis: RedisServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    ledger = Ledger(private_redis, tmp_path, visibility_s=5, record_server=redis_server)
    with ledger.worker(concurrency=2):
        before = [ledger.send(token, seconds=0.05) for token in range(20)]
        private_redis.stop()
        outage_started = time.monotonic()
        outcomes = []
        try:
            ledger.bus.call(f"ledger_{ledger.run}.work", ledger.run, 1000, timeout=3)
            outcomes.append("completed")
        except (BrokerUnavailable, CallTimeout) as error:
            outcomes.append(type(error).__name__)
        assert time.monotonic() - outage_started < 15  # bounded, never a hang
        time.sleep(2)
        private_redis.start()
        after = [ledger.send(token, seconds=0.0) for token in range(20, 40)]
        assert sorted(r.get(timeout=60) for r in after) == list(range(20, 40))
        for r in before:
            try:
                r.get(timeout=30)
            except (CallTimeout, BrokerUnavailable):
                pass  # this waiter lost its subscription in the outage; the ledger counts the work
    deadline = time.monotonic() + 30
    while (
        time.monotonic() < deadline
        and len(set(ledger.tokens()) & {str(t).encode() for t in range(20)}) < 20
    ):
        time.sleep(0.5)
    tokens = [t for t in ledger.tokens() if int(t) < 40]
    figures = report("redis restart under load", 40, tokens)
    print(f"[reliability] call during outage: {outcomes}")
    assert figures["lost"] == 0
