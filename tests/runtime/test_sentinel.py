"""Redis Sentinel: broker, results and the Redis store handler through ``sentinel://``,
and a failover (the master killed, its replica promoted) under load.

One master, one replica and three sentinels (``redis-server --sentinel``, what
Debian's ``redis-sentinel`` runs), all on loopback ports chosen here. Executions
are counted in the session's Redis. Figures are printed (run with ``-s``).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from commissaire_tasks.app import celery_config, create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import ConfigurationError, StorageLookupError
from commissaire_tasks.ops.embedded import redis_binary as redis_server_binary
from commissaire_tasks.storage.handlers.redis import RedisStoreHandler
from commissaire_tasks.testing import RedisServer, WorkerProcess, free_port
from tests.ledger import DUPLICATED_AT_MOST, Ledger, restart_under_load
from tests.report import record

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


#: Calls a master killed under load may take with it (the replication window): a call
#: pushed, or popped by the worker, in its last milliseconds, not yet copied to the
#: replica. Seen: 0 in most runs, 1 in some.
LOST_TO_REPLICATION_AT_MOST = 2
#: Calls a failover may run twice: those a restart may (``DUPLICATED_AT_MOST``), and
#: calls whose acknowledgement the old master took but had not copied yet.
DUPLICATED_IN_FAILOVER_AT_MOST = DUPLICATED_AT_MOST + LOST_TO_REPLICATION_AT_MOST


def test_a_failover_under_load_loses_only_what_asynchronous_replication_may_lose(
    sentinels: SentinelSetup,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COMMISSAIRE_SENTINEL_MASTER", MASTER)
    # The default visibility timeout: no call may wait for it to complete.
    ledger = Ledger(
        sentinels, tmp_path, visibility_s=1800, record_server=redis_server, sentinel_master=MASTER
    )
    old_master = sentinels.master.port
    promotion_s: list[float] = []

    def watch_promotion() -> None:
        promotion_s.append(
            wait_until(lambda: sentinels.master_port() != old_master, 30, "a failover")
        )

    watcher = threading.Thread(target=watch_promotion, daemon=True)

    def kill_master() -> None:
        assert sentinels.master.process is not None
        sentinels.master.process.kill()  # a crash: no shutdown, no last write of the file
        sentinels.master.process.wait()
        watcher.start()

    restart = restart_under_load(ledger, kill_master, lambda: watcher.join(35), bound_s=BOUND_S)
    received = [_result_or_error(result) for result in restart.results]
    figures = restart.figures("sentinel failover, 60 calls")
    figures["results_received"] = sum(1 for r in received if isinstance(r, int))
    figures["seconds_to_promotion"] = round(promotion_s[0], 2)
    assert sentinels.master_port() == sentinels.replica.port
    assert restart.lost <= LOST_TO_REPLICATION_AT_MOST, restart.log[-3000:]
    assert restart.seconds < BOUND_S, restart.seconds  # lost or not, the rest is done in time
    restart.assert_only_calls_cut_by_the_outage_ran_twice(DUPLICATED_IN_FAILOVER_AT_MOST)
    # A result the old master stored in its last milliseconds may be lost with it too.
    assert figures["results_received"] >= restart.sent - restart.lost - LOST_TO_REPLICATION_AT_MOST
    record(
        "sentinel_failover",
        **figures,
        notes=f"every call not lost done {restart.seconds:.1f} s after the replica was "
        f"promoted (asserted: under {BOUND_S:.0f} s); lost asserted <= "
        f"{LOST_TO_REPLICATION_AT_MOST} (asynchronous replication)",
    )


def _result_or_error(result: Any) -> Any:
    try:
        return result.get(timeout=10)
    except Exception as exc:  # noqa: BLE001 - counted by the test
        return type(exc).__name__


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


#: Seconds before its crash in which a write the old master acknowledged may not have
#: reached its replica (asynchronous replication; milliseconds on loopback, this is the
#: bound asserted on a loaded machine).
REPLICATION_WINDOW_S = 1.0


def test_records_saved_across_a_failover_are_on_the_new_master_but_the_replication_window(
    sentinels: SentinelSetup,
) -> None:
    options = {"url": sentinels.url, "master_name": MASTER, "prefix": f"fo{uuid.uuid4().hex[:6]}"}
    handler = RedisStoreHandler(RedisStoreHandler.check_config(options))
    saved: dict[str, float] = {}  # key -> when its save returned
    failed: list[str] = []
    assert sentinels.master.process is not None
    killed = 0.0
    for index in range(60):
        if index == 20:
            sentinels.master.process.kill()  # the master crashes mid-load
            sentinels.master.process.wait()
            killed = time.monotonic()
        key = f"h{index}"
        try:
            handler.save("Host", key, {"address": key})  # (retried through the failover)
            saved[key] = time.monotonic()
        except redis.RedisError:
            failed.append(key)
    missing = [key for key in saved if not _readable(handler, key)]
    figures = {"saved": len(saved), "failed": len(failed), "missing_after": len(missing)}
    print(f"\n[outages] store records across a sentinel failover: {json.dumps(figures)}")
    assert sentinels.master_port() == sentinels.replica.port
    # Lost: only saves the old master acknowledged in its last moments, never one the
    # new master acknowledged (the handler does not WAIT for the replica: see README).
    assert all(killed - REPLICATION_WINDOW_S < saved[key] < killed for key in missing), figures
    assert len(saved) >= 40 and any(int(key[1:]) >= 20 for key in saved), failed


def _readable(handler: RedisStoreHandler, key: str) -> bool:
    try:
        return handler.get("Host", key).data["address"] == key
    except StorageLookupError:
        return False
