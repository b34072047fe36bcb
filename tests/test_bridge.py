"""Clients of the original Commissaire bus, unchanged, served through the bridge.

Each broker (the session's Redis; RabbitMQ in a vhost of its own) gets one real
prefork worker and one ``commissaire-tasks bridge`` process; the services use
an exchange of their own and the original clients publish to another, as the
bridge's start-up note recommends.
"""

from __future__ import annotations

import json
import os
import signal
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
import redis

from commissaire_tasks.testing import RedisServer, WorkerProcess
from tests.bridge_client import OriginalClient, OriginalSubscriber
from tests.conftest import ROOT

SERVICES = "workers.simple,workers.storage,tests.services"
QUEUES = ["simple", "my", "error", "introspect", "ledger", "storage"]
#: Seconds the bridge gets to say it is consuming.
READY_TIMEOUT_S = 30.0


@dataclass
class Deployment:
    """A worker and a bridge on one broker, and how to reach them as an original client."""

    broker_url: str
    exchange: str
    env: dict[str, str]
    bridge: subprocess.Popen[bytes]
    bridge_log: Path
    worker: WorkerProcess
    qkwargs_prefix: str

    def client(self) -> OriginalClient:
        return OriginalClient(self.broker_url, self.exchange)

    def log(self) -> str:
        return self.bridge_log.read_text(errors="replace")


def start_bridge(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``commissaire-tasks bridge`` in a subprocess; returns once it consumes."""
    with open(log, "ab") as file:
        process = subprocess.Popen(
            [sys.executable, "-m", "commissaire_tasks.cli", "bridge"],
            cwd=ROOT,
            env=env,
            stdout=file,
            stderr=subprocess.STDOUT,
        )
    wait_for(lambda: "Bridge ready" in log.read_text(errors="replace"), READY_TIMEOUT_S, log)
    return process


def stop_process(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, then SIGKILL (with any children) after 20 s; the exit code."""
    if process.poll() is not None:
        return process.returncode
    process.terminate()
    try:
        return process.wait(20)
    except subprocess.TimeoutExpired:
        for child in [*psutil.Process(process.pid).children(recursive=True)]:
            child.kill()
        process.kill()
        process.wait()
        return None


def wait_for(condition: Callable[[], bool], timeout_s: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            detail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"condition not met within {timeout_s} s\n{detail}")
        time.sleep(0.05)


def deployment_env(broker_url: str, backend: str | None, store_url: str, unique: str) -> dict:
    queue = f"myq{unique}"
    env = {
        **os.environ,
        "COMMISSAIRE_BROKER_URL": broker_url,
        "COMMISSAIRE_EXCHANGE": f"ct-{unique}",
        "COMMISSAIRE_BRIDGE_EXCHANGE": f"commissaire-{unique}",
        "COMMISSAIRE_BRIDGE_QUEUE": f"bridge-{unique}",
        "COMMISSAIRE_SERVICES": SERVICES,
        "COMMISSAIRE_QUEUES": json.dumps(
            [
                {"name": queue, "routing_key": f"queues.{queue}.*", "service": "my"},
                {"name": f"idle{unique}", "routing_key": f"queues.idle{unique}.*"},  # no worker
            ]
        ),
        "COMMISSAIRE_STORE_URL": store_url,
        "TEST_RECORD_URL": store_url,
    }
    if backend:
        env["COMMISSAIRE_RESULT_BACKEND"] = backend
    return env


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def deployment(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    if request.param == "redis":
        broker_url, backend = redis_server.url, None
    else:
        broker_url, backend = request.getfixturevalue("rabbitmq_url"), redis_server.url
    unique = uuid.uuid4().hex[:8]
    folder = tmp_path_factory.mktemp(f"bridge-{request.param}")
    config = folder / "services.json"
    config.write_text(json.dumps({"legacy_notifications": True}))
    env = deployment_env(broker_url, backend, redis_server.url, unique)
    env["COMMISSAIRE_CONFIG_FILE"] = str(config)
    worker = WorkerProcess(
        broker_url=broker_url,
        result_backend=backend,
        queues=[*QUEUES, f"myq{unique}"],
        concurrency=4,
        env={k: v for k, v in env.items() if k.startswith(("COMMISSAIRE_", "TEST_"))},
        log_dir=folder,
    )
    with worker:
        log = folder / "bridge.log"
        bridge = start_bridge(env, log)
        try:
            yield Deployment(
                broker_url, env["COMMISSAIRE_BRIDGE_EXCHANGE"], env, bridge, log, worker,
                f"queues.myq{unique}",
            )
        finally:
            stop_process(bridge)


@pytest.fixture
def client(deployment: Deployment) -> Iterator[OriginalClient]:
    caller = deployment.client()
    yield caller
    caller.close()


# -- requests -----------------------------------------------------------------------------------


def test_a_request_with_list_params_gets_its_result_as_a_double_encoded_reply(
    client: OriginalClient,
) -> None:
    reply = client.request("simple.add", [1, 2])
    assert reply["result"] == 3 and reply["jsonrpc"] == "2.0" and "error" not in reply
    assert isinstance(client.raw, str), "the original services sent the reply as a JSON string"
    assert json.loads(client.raw)["id"] == reply["id"]


def test_a_request_with_object_params_gets_its_result_and_its_own_id(
    client: OriginalClient,
) -> None:
    reply = client.request("simple.add", {"x": "a", "y": "b"})
    assert reply["result"] == "ab"
    assert client.request("my.ping")["result"] == "pong"  # no params at all: {} as the original


def test_a_qkwargs_queue_is_reached_by_its_routing_key(
    client: OriginalClient, deployment: Deployment
) -> None:
    reply = client.request(f"{deployment.qkwargs_prefix}.echo", ["hello"])
    assert reply["result"] == "hello"


def test_a_service_that_calls_another_over_the_bus_answers_through_the_bridge(
    client: OriginalClient,
) -> None:
    assert client.request("simple.wordy_add", [2, 3])["result"] == "2 plus 3 is 5"


# -- errors -------------------------------------------------------------------------------------


def test_storage_lookup_and_container_manager_errors_keep_their_codes_and_data(
    client: OriginalClient,
) -> None:
    lookup = client.request("error.lookup", {"key": "k1"})["error"]
    assert lookup["code"] == -20000
    assert lookup["data"]["key"] == "k1" and lookup["data"]["exception"] == "StorageLookupError"
    container = client.request("error.container")["error"]
    assert container["code"] == -20001 and container["data"]["manager"] == "m1"


def test_a_real_storage_miss_reaches_the_original_client_as_storage_lookup_error(
    client: OriginalClient,
) -> None:
    params = {"model_type_name": "Host", "model_json_data": {"address": f"nx-{uuid.uuid4()}"}}
    assert client.request("storage.get", params)["error"]["code"] == -20000


def test_other_failures_get_the_frameworks_codes(client: OriginalClient) -> None:
    assert client.request("my.fail")["error"]["code"] == -32603
    assert client.request("my.fail")["error"]["data"]["exception"] == "NotImplementedError"
    assert client.request("error.custom")["error"]["code"] == -32603
    assert client.request("simple.add", [1])["error"]["code"] == -32602


def test_a_method_no_service_has_gets_method_not_found_at_once(
    client: OriginalClient, deployment: Deployment
) -> None:
    started = time.monotonic()
    assert client.request("simple.nosuch", [])["error"]["code"] == -32601  # known service
    assert client.request(f"nosuch{uuid.uuid4().hex[:6]}.ping")["error"]["code"] == -32601
    assert client.request("no.such.queue")["error"]["code"] == -32601  # no route at all
    idle = deployment.qkwargs_prefix.replace("queues.myq", "queues.idle")
    assert client.request(f"{idle}.ping")["error"]["code"] == -32601  # configured, never bound
    assert time.monotonic() - started < 5.0, "answered, not left to the caller's timeout"


def test_a_body_that_is_not_json_gets_parse_error(client: OriginalClient) -> None:
    reply = client.send_raw("simple.add", b"{not json")
    assert reply["error"]["code"] == -32700 and reply["id"] is None


def test_a_body_that_is_not_a_request_gets_invalid_request(client: OriginalClient) -> None:
    assert client.send_raw("simple.add", [1, 2])["error"]["code"] == -32600
    reply = client.send_raw("simple.add", {"jsonrpc": "2.0", "id": "c1", "params": []})
    assert reply["error"]["code"] == -32600 and reply["id"] == "c1"
    reply = client.send_raw("simple.add", {"id": "c2", "method": "add", "params": 3})
    assert reply["error"]["code"] == -32600


def test_a_method_not_matching_the_routing_keys_last_segment_is_refused_as_the_original_did(
    client: OriginalClient, deployment: Deployment
) -> None:
    run = uuid.uuid4().hex
    params = {"run": run, "token": 1}
    assert client.request("ledger.tally", params, method="other") == {"jsonrpc": "2.0", "id": -1}
    assert client.request("ledger.tally", {"run": run, "token": 2})["result"] == 2
    ledger = redis.Redis.from_url(deployment.env["TEST_RECORD_URL"])
    assert ledger.smembers(f"ledger:{run}:tokens") == {b"2"}, "the refused call never ran"


def test_bad_traffic_without_reply_to_is_logged_and_dropped_and_the_bridge_keeps_serving(
    client: OriginalClient, deployment: Deployment
) -> None:
    with client.connection.clone() as connection:
        producer = connection.Producer()
        for body in (b"\xff\xfe garbage", b"[]", b'{"method": 1}'):
            producer.publish(
                body,
                exchange=client.exchange,
                routing_key="simple.add",
                content_type="application/json",
                content_encoding="binary",
                declare=[client.exchange],
            )
        producer.publish(  # a binary serialisation is refused, never unpickled
            b"\x80\x04K\x01.",
            exchange=client.exchange,
            routing_key="simple.add",
            content_type="application/x-python-serialize",
            content_encoding="binary",
        )
    assert client.request("simple.add", [20, 22])["result"] == 42
    wait_for(lambda: deployment.log().count("Refused message on 'simple.add'") >= 4, 10)
    assert deployment.bridge.poll() is None


# -- notifications ------------------------------------------------------------------------------


def test_a_notification_is_forwarded_and_gets_no_reply(
    client: OriginalClient, deployment: Deployment
) -> None:
    run = uuid.uuid4().hex
    client.notify("ledger.tally", {"run": run, "token": 7})
    ledger = redis.Redis.from_url(deployment.env["TEST_RECORD_URL"])
    wait_for(lambda: ledger.smembers(f"ledger:{run}:tokens") == {b"7"}, 15)


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
        client.request("storage.delete", {"model_type_name": "Host", "model_json_data": host})
        key, body = subscriber.get()
        assert (key, body["event"], body["model"]["address"]) == (
            "notify.storage.Host.deleted", "deleted", address
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


def test_the_bridge_survives_a_broker_restart_and_resumes_by_itself(tmp_path: Path) -> None:
    """Redis only: the shared RabbitMQ node is never restarted (it serves other sessions)."""
    server = RedisServer(appendonly=True, directory=tmp_path / "redis").start()
    unique = uuid.uuid4().hex[:8]
    env = deployment_env(server.url, None, server.url, unique)
    env["COMMISSAIRE_SERVICES"] = "workers.simple"
    worker = WorkerProcess(
        broker_url=server.url,
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
        caller = OriginalClient(server.url, env["COMMISSAIRE_BRIDGE_EXCHANGE"])
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
        server.restart()
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
        server.close()
