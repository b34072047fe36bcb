"""The REST front against the real ``container`` and ``clusterexec`` services.

A world of its own (db 2 of the package's Redis): a worker serving storage and the
real container service (trivial and Kubernetes managers, membership from storage's
notifications), a real clusterexec worker with the cluster tests' command set
(:mod:`tests.clusters.commands`), a private sshd whose loopback address is the one
real host, and ``serve --no-auth``. The stand-ins of :mod:`.standins` keep what
these cannot produce on demand (a call outlasting the timeout, a gated call).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import ContainerManagerError
from commissaire_tasks.runtime.app import create_app
from commissaire_tasks.storage.subscriptions import list_subscriptions
from commissaire_tasks.testing import WorkerProcess, free_port
from tests.clusters.commands import write_cluster_config
from tests.hosts.sshd import ADDRESSES, SSHServer, key_b64

from .conftest import CALL_TIMEOUT_S, READY_TIMEOUT_S, Worlds
from .server import ServeProcess
from .test_hosts import KEY, error_of

#: Seconds a notification-driven change or an operation gets (the machine is shared).
SETTLE_S = 60.0


class RealWorld:
    """The server's client, a bus of the same world (to ask the manager), the sshd."""

    def __init__(self, http: httpx.Client, bus: Bus, sshd: SSHServer, out_dir: Path) -> None:
        self.http = http
        self.bus = bus
        self.sshd = sshd
        self.out_dir = out_dir

    def registered(self, manager: str, address: str) -> bool:
        return bool(self.bus.call("container.node_registered", manager, address))

    def host_status(self, address: str) -> str:
        return str(self.http.get(f"/api/v0/host/{address}/").json()["status"])


@pytest.fixture(scope="module")
def real(
    worlds: Worlds, logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealWorld]:
    broker = worlds.main.rsplit("/", 1)[0] + "/2"
    out_dir = tmp_path_factory.mktemp("real-out")
    config = write_cluster_config(out_dir, tmp_path_factory.mktemp("real-config"))
    workers = [
        WorkerProcess(
            broker_url=broker,
            queues=["storage", "container"],
            concurrency=2,
            env={"COMMISSAIRE_SERVICES": "workers.storage,workers.container"},
            log_dir=logs,
        ),
        WorkerProcess(
            broker_url=broker,
            queues=["clusterexec"],
            concurrency=3,
            env={
                "COMMISSAIRE_SERVICES": "workers.clusterexec",
                "COMMISSAIRE_CONFIG_FILE": str(config),
            },
            log_dir=logs,
        ),
    ]
    server = _server(broker, logs, tmp_path_factory.mktemp("real-serve"))
    for worker in workers:
        worker.start(wait=False)
    server.start(wait=False)
    sshd = SSHServer().start()
    try:
        for worker in workers:
            worker.wait_ready(READY_TIMEOUT_S)
        server.wait_listening()
        env = {**os.environ, "COMMISSAIRE_BROKER_URL": broker}
        bus = Bus(create_app(load_settings(env), services=()))
        _wait(lambda: "container" in {s.service for s in list_subscriptions(bus)}, "subscribed")
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=60) as http:
            yield RealWorld(http, bus, sshd, out_dir)
    finally:
        stoppers = [threading.Thread(target=p.stop) for p in (*workers, server)]
        for stopper in stoppers:
            stopper.start()
        sshd.close()
        for stopper in stoppers:
            stopper.join()


def _server(broker: str, logs: Path, folder: Path) -> ServeProcess:
    config = folder / "serve.json"
    config.write_text(f'{{"call-timeout": {CALL_TIMEOUT_S}}}')
    port = free_port()
    return ServeProcess(
        [],
        ["--host", "127.0.0.1", "--port", str(port), "--no-auth", "--config", str(config)],
        port,
        logs / f"serve-real-{uuid.uuid4().hex[:6]}.log",
        {**os.environ, "COMMISSAIRE_BROKER_URL": broker, "COMMISSAIRE_CALL_TIMEOUT": "20"},
    )


def _wait(condition: Callable[[], Any], what: str, timeout_s: float = SETTLE_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _managed_cluster(real: RealWorld, **manager: Any) -> tuple[str, str]:
    """A container manager (trivial unless told) and a cluster it manages: (cluster, manager)."""
    cluster, name = _unique("c"), _unique("m")
    created = real.http.put(
        f"/api/v0/containermanager/{name}/", json=manager or {"type": "trivial"}
    )
    assert created.status_code == 201, created.text
    body = {"container_manager": name}
    assert real.http.put(f"/api/v0/cluster/{cluster}/", json=body).status_code == 201
    return cluster, name


def _host(real: RealWorld, status: str = "disassociated") -> str:
    address = _unique("h")
    created = real.http.put(
        f"/api/v0/host/{address}/", json={"ssh_priv_key": KEY, "status": status}
    )
    assert created.status_code == 201, created.text
    return address


def test_membership_over_http_registers_and_deregisters_hosts(real: RealWorld) -> None:
    cluster, manager = _managed_cluster(real)
    first, second = _host(real), _host(real)
    assert real.http.put(f"/api/v0/cluster/{cluster}/hosts/{first}/").json() == [first]
    _wait(lambda: real.host_status(first) == "active", "the first host active")
    assert real.registered(manager, first)
    # the host status route carries the trivial manager's node status, not an envelope
    status = real.http.get(f"/api/v0/host/{first}/status/")
    assert status.status_code == 200
    assert status.json() == {
        "type": "host_only",
        "host": {"last_check": "", "status": "active"},
        "container_manager": {"node": first, "status": "ok"},
    }

    hosts = f"/api/v0/cluster/{cluster}/hosts/"
    replaced = real.http.put(hosts, json={"old": [first], "new": [second]})
    assert replaced.status_code == 200, replaced.text
    _wait(lambda: real.host_status(second) == "active", "the second host active")
    _wait(lambda: not real.registered(manager, first), "the replaced host deregistered")
    assert real.registered(manager, second)
    _wait(lambda: real.host_status(first) == "disassociated", "the replaced host disassociated")

    assert real.http.delete(f"{hosts}{second}/").json() == []
    _wait(lambda: not real.registered(manager, second), "the removed host deregistered")
    _wait(lambda: real.host_status(second) == "disassociated", "the removed host disassociated")


def test_a_second_membership_is_a_409_with_a_json_body(real: RealWorld) -> None:
    cluster, manager = _managed_cluster(real)
    other, _ = _managed_cluster(real)
    address = _host(real)
    assert real.http.put(f"/api/v0/cluster/{cluster}/hosts/{address}/").status_code == 200
    refusals = [
        real.http.put(f"/api/v0/cluster/{other}/hosts/{address}/"),
        real.http.put(f"/api/v0/cluster/{other}/hosts/", json={"old": [], "new": [address]}),
        real.http.put(f"/api/v0/cluster/{other}/", json={"hostset": [address]}),
    ]
    for refused in refusals:
        assert refused.status_code == 409, refused.text
        error = error_of(refused)
        assert error["code"] == "conflict" and cluster in error["message"]
        assert error["details"] == {"cluster": cluster, "hosts": [address]}
    assert real.http.get(f"/api/v0/cluster/{other}/hosts/").json() == []
    _wait(lambda: real.registered(manager, address), "the host registered in its own cluster")


def test_manager_errors_map_to_the_documented_statuses(real: RealWorld) -> None:
    # a host not ready is in the hostset but not registered: the manager has no such node
    cluster, manager = _managed_cluster(real)
    waiting = _host(real, status="investigating")
    body = {"hostset": [waiting]}
    assert real.http.put(f"/api/v0/cluster/{cluster}/", json=body).status_code == 201
    with pytest.raises(ContainerManagerError) as unknown:
        real.bus.call("container.get_node_status", manager, waiting)
    assert unknown.value.data["http_status"] == 404
    status = real.http.get(f"/api/v0/host/{waiting}/status/")
    assert status.status_code == 200, status.text
    assert status.json()["container_manager"] == {}

    # a Kubernetes manager whose API server does not answer: the service failed, 502
    closed = f"http://127.0.0.1:{free_port()}"
    cluster, _ = _managed_cluster(real, type="kubernetes", options={"server_url": closed})
    address = _host(real, status="active")
    assert real.http.put(f"/api/v0/cluster/{cluster}/", json={"hostset": [address]}).is_success
    failed = real.http.get(f"/api/v0/host/{address}/status/")
    assert failed.status_code == 502, failed.text
    error = error_of(failed)
    assert error["code"] == "service_failed" and error["jsonrpc_code"] == -20001
    assert "no answer" in error["message"]


def test_an_empty_clusters_upgrade_finishes_at_once(real: RealWorld) -> None:
    cluster = _unique("c")
    assert real.http.put(f"/api/v0/cluster/{cluster}/", json={}).status_code == 201
    started = real.http.put(f"/api/v0/cluster/{cluster}/upgrade")
    assert started.status_code == 201, started.text
    assert started.json()["status"] == "finished" and started.json()["upgraded"] == []
    assert real.http.get(f"/api/v0/cluster/{cluster}/upgrade").json() == started.json()


def test_an_upgrade_of_a_real_host_refuses_a_second_operation(real: RealWorld) -> None:
    address = f"{ADDRESSES[0]}:{real.sshd.port}"
    host = {"address": address, "ssh_priv_key": key_b64(real.sshd.client_key), "os": "debian"}
    assert real.http.put("/api/v0/host/", json={**host, "status": "active"}).status_code == 201
    cluster = _unique("c")
    assert real.http.put(f"/api/v0/cluster/{cluster}/", json={"hostset": [address]}).is_success
    slow = real.out_dir / f"{address}.slow"
    slow.touch()  # the host's upgrade waits while this file exists
    try:
        started = real.http.put(f"/api/v0/cluster/{cluster}/upgrade")
        assert started.status_code == 201, started.text
        assert started.json()["status"] == "in_process"
        for operation in ("upgrade", "restart"):
            busy = real.http.put(f"/api/v0/cluster/{cluster}/{operation}")
            assert busy.status_code == 409, busy.text
            error = error_of(busy)
            assert error["code"] == "conflict" and error["jsonrpc_code"] == -32050
    finally:
        slow.unlink()
    path = f"/api/v0/cluster/{cluster}/upgrade"
    done = _wait(lambda: _finished(real.http.get(path).json()), "the upgrade to finish")
    assert done["status"] == "finished", done
    assert done["upgraded"] == [address] and done["failed"] == {}
    assert "end" in (real.out_dir / address / "upgrade").read_text()


def _finished(record: dict[str, Any]) -> dict[str, Any] | None:
    return record if record["status"] != "in_process" else None
