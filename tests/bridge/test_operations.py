"""The bridge at work: old subscribers, concurrent clients, `up`, broker restarts.

Each broker (the session's Redis; RabbitMQ in a vhost of its own) gets one real
prefork worker and one ``commissaire-tasks bridge`` process; the services use
an exchange of their own and the original clients publish to another, as the
bridge's start-up note recommends. The broker restart happens on a broker of the
test's own (a private Redis, or a private RabbitMQ node).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from commissaire_tasks.testing import RedisServer, WorkerProcess
from tests.bridge.deployment import (
    READY_TIMEOUT_S,
    Deployment,
    deployment_env,
    start_bridge,
    stop_process,
    wait_for,
)
from tests.bridge_client import OriginalClient, OriginalSubscriber
from tests.rabbit_node import private_rabbit

ROOT = Path(__file__).resolve().parents[2]


def test_an_old_style_subscriber_gets_storage_changes_in_the_original_form(
    client: OriginalClient, deployment: Deployment
) -> None:
    subscriber = OriginalSubscriber(deployment.broker_url, deployment.exchange)
    try:
        address = f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}-{uuid.uuid4().hex}"
        creds = {"address": address, "ssh_priv_key": "TOP-SECRET-KEY", "remote_user": "root"}
        saved = client.request(
            "storage.save", {"model_type_name": "HostCreds", "model_json_data": creds}
        )
        assert "error" not in saved, saved
        host = {"address": address, "status": "active", "os": "fedora"}
        saved = client.request("storage.save", {"model_type_name": "Host", "model_json_data": host})
        assert saved["result"]["address"] == address
        key, body = subscriber.get()
        assert key == "notify.storage.Host.created"
        assert body == {"event": "created", "class": "Host", "model": saved["result"]}
        changed = {**host, "status": "unreachable"}
        saved = client.request(
            "storage.save", {"model_type_name": "Host", "model_json_data": changed}
        )
        assert "error" not in saved, saved
        key, body = subscriber.get()
        assert key == "notify.storage.Host.updated"
        assert body == {"event": "updated", "class": "Host", "model": saved["result"]}
        assert body["model"]["status"] == "unreachable"
        # Cluster.hostset is hidden: the safe rendering leaves it out
        cluster = {"name": f"c-{uuid.uuid4().hex}", "hostset": [address]}
        saved = client.request(
            "storage.save", {"model_type_name": "Cluster", "model_json_data": cluster}
        )
        assert "error" not in saved, saved
        key, body = subscriber.get()
        assert (key, body["event"], body["class"]) == (
            "notify.storage.Cluster.created",
            "created",
            "Cluster",
        )
        assert body["model"]["name"] == cluster["name"]
        assert "hostset" not in body["model"]
        assert address not in json.dumps(body)
        client.request("storage.delete", {"model_type_name": "Cluster", "model_json_data": cluster})
        key, body = subscriber.get()
        assert (key, body["model"]["name"]) == ("notify.storage.Cluster.deleted", cluster["name"])
        assert "hostset" not in body["model"]
        client.request("storage.delete", {"model_type_name": "Host", "model_json_data": host})
        key, body = subscriber.get()
        assert (key, body["event"], body["model"]["address"]) == (
            "notify.storage.Host.deleted",
            "deleted",
            address,
        )
    finally:
        subscriber.close()
    assert "TOP-SECRET-KEY" not in deployment.log()


# -- load ---------------------------------------------------------------------------------------


def test_eight_concurrent_clients_are_served_at_once_each_getting_its_own_replies(
    deployment: Deployment,
) -> None:
    seconds = 1.0
    outcomes: dict[int, Any] = {}

    def one_client(number: int) -> None:
        caller = deployment.client()
        try:
            sums = [caller.request("simple.add", [number, i])["result"] for i in range(5)]
            slept = caller.request("introspect.sleep", {"seconds": seconds})["result"]
            outcomes[number] = (sums, slept)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            outcomes[number] = exc
        finally:
            caller.close()

    threads = [threading.Thread(target=one_client, args=(n,)) for n in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - started
    assert outcomes == {n: ([n + i for i in range(5)], seconds) for n in range(8)}
    # 8 one-second calls on a 4-process worker: 2 s when served at once, 8 s one by one.
    assert elapsed < 5.5, f"8 clients took {elapsed:.1f} s"


# -- operating ----------------------------------------------------------------------------------


def test_up_starts_the_bridge_when_enabled_and_stops_it_with_the_workers(
    background: Callable[..., tuple[subprocess.Popen[bytes], Path]],
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    unique = uuid.uuid4().hex[:8]
    env = deployment_env(redis_server.url, None, redis_server.url, unique)
    env.update(COMMISSAIRE_SERVICES="workers.simple", COMMISSAIRE_BRIDGE="on")
    command = [sys.executable, "-m", "commissaire_tasks.cli", "up", "-c", "1"]
    up, output = background([*command, "--data-dir", str(tmp_path / "unused")], env)
    wait_for(lambda: "Press Ctrl-C to stop." in output.read_text(), 60, output)
    wait_for(lambda: "Bridge ready" in output.read_text(), READY_TIMEOUT_S, output)
    children = psutil.Process(up.pid).children(recursive=True)
    caller = OriginalClient(redis_server.url, env["COMMISSAIRE_BRIDGE_EXCHANGE"])
    try:
        assert caller.request("simple.add", [1, 2])["result"] == 3
    finally:
        caller.close()
    up.send_signal(signal.SIGTERM)
    assert up.wait(60) == 0, output.read_text()
    assert "Bridge stopped" in output.read_text()
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def test_up_refuses_a_bridge_on_the_services_exchange_in_one_line_before_starting_anything(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMMISSAIRE_")}
    env.update(COMMISSAIRE_SERVICES="workers.simple", COMMISSAIRE_BRIDGE="on")  # both 'commissaire'
    data = tmp_path / "data"
    command = [sys.executable, "-m", "commissaire_tasks.cli", "up", "--data-dir", str(data)]
    done = subprocess.run(
        [*command, "--port", str(free_port())],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == ""  # no Redis, no worker, no bridge was started
    [line] = done.stderr.splitlines()
    assert line.startswith("error: COMMISSAIRE_BRIDGE=on, but the bridge and the services both ")
    assert "COMMISSAIRE_EXCHANGE=commissaire-tasks" in line
    assert not data.exists()
    helped = subprocess.run(
        [*command[:3], "bridge", "--help"], capture_output=True, text=True, timeout=60
    )
    text = " ".join(helped.stdout.split())  # as wrapped for any terminal width
    assert "default 'commissaire'" in text
    assert "the bus exchange" not in text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RestartableBroker:
    """A broker of the test's own that it may restart (the shared ones serve others)."""

    url: str
    backend: str | None
    restart: Callable[[], Any]


@pytest.fixture(params=["redis", "rabbitmq"])
def own_broker(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path
) -> Iterator[RestartableBroker]:
    """A private Redis (append-only file) or a private RabbitMQ node; results in Redis."""
    if request.param == "redis":
        with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
            yield RestartableBroker(server.url, None, server.restart)
        return
    with private_rabbit() as node:

        def restart() -> None:
            node.ctl("stop_app")
            node.ctl("start_app")

        yield RestartableBroker(node.url, redis_server.url, restart)


def test_the_bridge_survives_a_broker_restart_and_resumes_by_itself(
    own_broker: RestartableBroker, redis_server: RedisServer, tmp_path: Path
) -> None:
    unique = uuid.uuid4().hex[:8]
    env = deployment_env(own_broker.url, own_broker.backend, redis_server.url, unique)
    env["COMMISSAIRE_SERVICES"] = "workers.simple"
    worker = WorkerProcess(
        broker_url=own_broker.url,
        result_backend=own_broker.backend,
        queues=["simple"],
        concurrency=2,
        env={"COMMISSAIRE_SERVICES": "workers.simple", "COMMISSAIRE_EXCHANGE": f"ct-{unique}"},
        log_dir=tmp_path,
    )
    bridge: subprocess.Popen[bytes] | None = None
    answered: list[float] = []
    failed: list[float] = []
    stop = threading.Event()

    def traffic(number: int) -> None:
        caller = OriginalClient(own_broker.url, env["COMMISSAIRE_BRIDGE_EXCHANGE"])
        i = 0
        while not stop.is_set():
            i += 1
            try:
                reply = caller.request("simple.add", [number, i], timeout=3)
                assert reply["result"] == number + i, reply
                answered.append(time.monotonic())
            except Exception:  # noqa: BLE001 - expected while the broker is down
                failed.append(time.monotonic())
                time.sleep(0.2)
        caller.close()

    threads = [threading.Thread(target=traffic, args=(n,)) for n in range(4)]
    try:
        worker.start()
        bridge = start_bridge(env, tmp_path / "bridge.log")
        for thread in threads:
            thread.start()
        wait_for(lambda: len(answered) >= 20, 20)
        own_broker.restart()
        restarted = time.monotonic()
        log = tmp_path / "bridge.log"

        def resumed() -> bool:
            # Only the bridge is under test: a worker that died of the restart (as before
            # main's 753b164, kombu's restore on a closed channel) is started again.
            if worker.process is not None and worker.process.poll() is not None:
                worker.start(wait=False)  # judged by the answers that follow
            return sum(t > restarted + 0.5 for t in answered) >= 20

        wait_for(resumed, 60, log)
        assert bridge.poll() is None
        text = log.read_text()
        assert "Connection to broker lost" in text, "the restart was noticed"
        assert text.count("Bridge ready") >= 2, "and the bridge consumed again by itself"
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
        if bridge is not None:
            stop_process(bridge)
        worker.stop()
