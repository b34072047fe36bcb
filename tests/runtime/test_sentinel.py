"""Redis Sentinel: broker, results and the Redis store handler through ``sentinel://``,
and a failover (the master killed, its replica promoted) under load.

One master, one replica and three sentinels (``redis-server --sentinel``, what
Debian's ``redis-sentinel`` runs), all on loopback ports chosen here. Executions
are counted in the session's Redis. Figures are printed (run with ``-s``).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from commissaire_tasks.app import celery_config, create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import ConfigurationError
from commissaire_tasks.ops.embedded import redis_binary as redis_server_binary
from commissaire_tasks.storage.handlers.redis import RedisStoreHandler
from commissaire_tasks.testing import RedisServer, WorkerProcess, free_port
from tests.ledger import done_tokens

pytestmark = pytest.mark.reliability

MASTER = "ctmaster"
#: Seconds every call gets to complete after the master is killed.
BOUND_S = 30.0


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if condition():
                return time.monotonic() - started
        except redis.RedisError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout_s} s: {what}")


@dataclass
class SentinelSetup:
    master: RedisServer
    replica: RedisServer
    sentinel_ports: list[int]

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}/0" for port in self.sentinel_ports)

    def master_port(self) -> int:
        client = redis.Redis(port=self.sentinel_ports[0])
        return int(client.sentinel_get_master_addr_by_name(MASTER)[1])


def _start_sentinel(port: int, master_port: int, directory: Path) -> subprocess.Popen[bytes]:
    config = directory / f"sentinel-{port}.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
        f"logfile {directory / f'sentinel-{port}.log'}\n"
        f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n"
        f"sentinel down-after-milliseconds {MASTER} 1000\n"
        f"sentinel failover-timeout {MASTER} 5000\n"
    )
    return subprocess.Popen([redis_server_binary(), str(config), "--sentinel"])


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelSetup]:
    master = RedisServer(appendonly=True, directory=tmp_path / "master").start()
    replica = RedisServer(appendonly=True, directory=tmp_path / "replica").start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        replica.client().replicaof("127.0.0.1", master.port)
        wait_until(
            lambda: replica.client().info("replication")["master_link_status"] == "up",
            20,
            "the replica is in sync",
        )
        ports = [free_port() for _ in range(3)]
        processes = [_start_sentinel(port, master.port, tmp_path) for port in ports]
        setup = SentinelSetup(master=master, replica=replica, sentinel_ports=ports)

        def all_known() -> bool:
            state = redis.Redis(port=ports[0]).sentinel_master(MASTER)
            return state["num-other-sentinels"] == 2 and state["num-slaves"] == 1

        wait_until(all_known, 30, "the sentinels know each other and the replica")
        yield setup
    finally:
        for process in processes:
            process.kill()
            process.wait()
        replica.close()
        master.close()


def _settings(url: str):  # type: ignore[no-untyped-def]
    return load_settings().replace(broker_url=url, sentinel_master=MASTER)


def test_calls_results_and_records_go_through_sentinel(
    sentinels: SentinelSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMISSAIRE_SENTINEL_MASTER", MASTER)
    worker = WorkerProcess(
        broker_url=sentinels.url,
        queues=["simple"],
        env={"COMMISSAIRE_SERVICES": "workers.simple"},
        log_dir=tmp_path,
    )
    bus = Bus(create_app(_settings(sentinels.url)))
    with worker:
        call = bus.send("simple.add", 2, 3)
        assert call.get(timeout=20) == 5
    master = sentinels.master.client()
    assert master.exists(f"celery-task-meta-{call.id}")  # the result is on the master
    assert master.keys("_kombu.binding.*")  # and so is the broker
    options = {"url": sentinels.url, "master_name": MASTER}
    handler = RedisStoreHandler(RedisStoreHandler.check_config(options))
    handler.save("Host", "h1", {"address": "h1"})
    assert handler.get("Host", "h1").data["address"] == "h1"
    assert sentinels.master.client().keys("commissaire:store:Host:*")


#: Calls a master killed under load may take with it (the replication window).
LOST_TO_REPLICATION_AT_MOST = 2


def test_a_failover_under_load_loses_only_what_asynchronous_replication_may_lose(
    sentinels: SentinelSetup,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMMISSAIRE_SENTINEL_MASTER", MASTER)
    run = uuid.uuid4().hex[:8]
    queue = {"name": f"ledger_{run}", "routing_key": f"ledger_{run}.*", "service": "ledger"}
    record_url = redis_server.url.rsplit("/", 1)[0] + "/12"
    record = redis.Redis.from_url(record_url)
    worker = WorkerProcess(
        broker_url=sentinels.url,
        queues=[queue["name"]],
        concurrency=2,
        env={
            "COMMISSAIRE_SERVICES": "tests.services",
            "COMMISSAIRE_QUEUES": json.dumps([queue]),
            "TEST_RECORD_URL": record_url,
        },
        log_dir=tmp_path,
    )
    bus = Bus(create_app(_settings(sentinels.url).replace(queues=(queue,))))
    sent = 60
    with worker:
        results = [bus.send(f"ledger_{run}.work", run, token, 0.05) for token in range(sent)]
        wait_until(lambda: len(done_tokens(record, run)) >= 5, 30, "the first calls to complete")
        old_master = sentinels.master.port
        assert sentinels.master.process is not None
        sentinels.master.process.kill()  # a crash: no shutdown, no last write of the file
        killed = time.monotonic()
        promoted = wait_until(lambda: sentinels.master_port() != old_master, 30, "a failover")

        def tokens() -> list[int]:
            return done_tokens(record, run)

        def all_done() -> bool:
            return set(range(sent)) <= set(tokens())

        try:
            wait_until(all_done, BOUND_S, "every call completed")
        except AssertionError:
            pass
        seconds = time.monotonic() - killed
        received = []
        for result in results:
            try:
                received.append(result.get(timeout=10))
            except Exception as exc:  # noqa: BLE001 - counted below
                received.append(type(exc).__name__)
        time.sleep(1)  # let a late duplicate show itself
        log = worker.log()
    counts = Counter(tokens())
    figures = {
        "sent": sent,
        "completed": len(counts),
        "lost": sent - len(counts),
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
        "results_received": sum(1 for r in received if isinstance(r, int)),
        "seconds_to_promotion": round(promoted, 2),
        "seconds_to_complete_after_kill": round(seconds, 2),
    }
    print(f"\n[outages] sentinel failover, 60 calls: {json.dumps(figures)}")
    # A SIGKILLed master takes with it what it had not copied to the replica yet (a
    # call pushed, or popped by the worker, in its last milliseconds): Redis
    # replication is asynchronous. Seen: 0 lost in most runs, 1 in some.
    assert figures["lost"] <= LOST_TO_REPLICATION_AT_MOST, log[-3000:]
    assert figures["results_received"] >= sent - figures["lost"]
    if figures["lost"] == 0:
        assert seconds < BOUND_S


def test_a_sentinel_broker_url_without_a_master_name_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="COMMISSAIRE_SENTINEL_MASTER"):
        load_settings({"COMMISSAIRE_BROKER_URL": "sentinel://127.0.0.1:26379"})


def test_the_master_name_reaches_the_broker_and_the_result_backend() -> None:
    settings = load_settings(
        {
            "COMMISSAIRE_BROKER_URL": "sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380",
            "COMMISSAIRE_SENTINEL_MASTER": MASTER,
        }
    )
    config = celery_config(settings)
    assert config["result_backend"] == settings.backend_url
    assert config["result_backend"].endswith(settings.broker_url)  # lean+ or Celery's
    assert config["broker_transport_options"]["master_name"] == MASTER
    assert config["result_backend_transport_options"]["master_name"] == MASTER


def test_records_saved_across_a_failover_are_all_on_the_new_master(
    sentinels: SentinelSetup,
) -> None:
    options = {"url": sentinels.url, "master_name": MASTER, "prefix": f"fo{uuid.uuid4().hex[:6]}"}
    handler = RedisStoreHandler(RedisStoreHandler.check_config(options))
    saved, failed = [], []
    assert sentinels.master.process is not None
    for index in range(60):
        if index == 20:
            sentinels.master.process.kill()  # the master crashes mid-load
        key = f"h{index}"
        try:
            handler.save("Host", key, {"address": key})
            saved.append(key)
        except redis.RedisError:
            failed.append(key)
    readable = [key for key in saved if handler.get("Host", key).data["address"] == key]
    figures = {"saved": len(saved), "failed": len(failed), "readable_after": len(readable)}
    print(f"\n[outages] store records across a sentinel failover: {json.dumps(figures)}")
    assert sentinels.master_port() == sentinels.replica.port
    assert readable == saved
    assert len(saved) >= 20
