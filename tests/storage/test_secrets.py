"""A secret saved through StorageClient never appears in plaintext anywhere it travels.

The broker's whole traffic is tapped with Redis MONITOR while the calls are
queued and running, so every message in flight (kombu's envelopes, whose bodies
are base64), every result and every notification is searched after decoding.
A subscriber of HostCreds changes records what it received; worker, Flower and
caller logs and Flower's task API are searched too, and finally every key at rest.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from commissaire_tasks import models
from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.runtime.events import task_events_state
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.testing import RedisServer, WorkerProcess, free_port
from tests.conftest import Background
from tests.ledger import wait_until

pytestmark = pytest.mark.reliability

TAG = f"super-secret-{uuid.uuid4().hex}"
SECRET = f"-----BEGIN KEY----- {TAG} -----END KEY-----"
BASE64 = re.compile(rb"[A-Za-z0-9+/_-]{16,}={0,2}")


def reveals(data: bytes) -> bool:
    """True when ``data`` holds the secret, as it is or inside a base64 token."""
    if TAG.encode() in data:
        return True
    for token in BASE64.findall(data):
        for decode in (base64.b64decode, base64.urlsafe_b64decode):
            try:
                decoded = decode(token + b"=" * (-len(token) % 4))
            except (binascii.Error, ValueError):
                continue
            if TAG.encode() in decoded:
                return True
    return False


class BrokerTap:
    """Every command the broker receives, captured with MONITOR in a thread."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.commands: list[bytes] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        client = redis.Redis(host="127.0.0.1", port=self.server.port, decode_responses=False)
        with client.monitor() as monitor:
            self._ready.set()
            while not self._stop.is_set():
                command = monitor.next_command()["command"]
                self.commands.append(command if isinstance(command, bytes) else command.encode())

    def __enter__(self) -> BrokerTap:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.server.client().ping()  # one more command wakes the monitor up
        self._thread.join(10)

    def seen(self, needle: str) -> list[bytes]:
        return [c for c in self.commands if needle.encode() in c]


def keys_at_rest(client: redis.Redis) -> Iterator[tuple[bytes, bytes]]:
    """Every value in every database of the broker, as (key, bytes)."""
    for db in range(16):
        client.execute_command("SELECT", db)
        for key in client.scan_iter():
            kind = client.type(key)
            if kind == b"string":
                yield key, client.get(key) or b""
            elif kind == b"hash":
                yield from ((key, v) for v in client.hgetall(key).values())
            elif kind == b"list":
                yield from ((key, v) for v in client.lrange(key, 0, -1))
            elif kind in (b"set", b"zset"):
                members = client.smembers(key) if kind == b"set" else client.zrange(key, 0, -1)
                yield from ((key, v) for v in members)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(directory=tmp_path / "redis") as server:
        yield server


def test_a_secret_saved_through_storage_client_is_never_seen_in_plaintext(
    broker: RedisServer,
    background: Background,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    record_url = broker.url.rsplit("/", 1)[0] + "/6"
    env = {"COMMISSAIRE_LOG_LEVEL_STORAGE": "DEBUG", "TEST_RECORD_URL": record_url}
    storage = WorkerProcess(
        broker_url=broker.url, app="workers.storage", concurrency=2, log_dir=tmp_path, env=env
    )
    audit = WorkerProcess(
        broker_url=broker.url,
        queues=["audit"],
        log_dir=tmp_path,
        env={**env, "COMMISSAIRE_SERVICES": "tests.subscribers"},
    )
    port = free_port()
    flower, flower_log = background(
        [sys.executable, "-m", "celery", "-A", "commissaire_tasks", "flower",
         f"--port={port}", "--address=127.0.0.1", "--basic-auth=u:p"],
        {**os.environ, "COMMISSAIRE_BROKER_URL": broker.url,
         "COMMISSAIRE_SERVICES": "workers.storage"},
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    client = StorageClient(Bus(create_app(load_settings().replace(broker_url=broker.url))))
    record = redis.Redis.from_url(record_url)
    address = f"secret-host-{uuid.uuid4().hex[:8]}"
    with BrokerTap(broker) as tap, storage, audit:
        wait_until(lambda: _healthy(base), 30, f"Flower to listen; log:\n{flower_log.read_text()}")
        # Workers started after Flower send task events from its next request (every 5 s).
        events_app = create_app(load_settings().replace(broker_url=broker.url), services=())
        for worker in (storage, audit):
            wait_until(
                lambda w=worker: (
                    task_events_state(events_app, [w.hostname]).get(w.hostname, {}).get("on")
                ),
                30,
                "Flower to ask for task events",
            )
        probe = client.save(models.Host.new(address=f"probe-{address}"))
        wait_until(
            lambda: record.llen(f"deliveries:Host:{probe.address}"), 30, "audit to be subscribed"
        )
        client.save(models.HostCreds.new(address=address, ssh_priv_key=SECRET))
        assert client.get(models.HostCreds.new(address=address)).ssh_priv_key == SECRET
        received = wait_until(
            lambda: record.lrange(f"received:HostCreds:{address}", 0, -1),
            30,
            "the HostCreds notification to reach the subscriber",
        )
        tasks: Any = wait_until(
            lambda: _flower_tasks(base, minimum=4), 30, "Flower to list the storage calls"
        )
    # The tap really saw the traffic: the calls and the notification in flight.
    assert tap.seen('"storage"') and tap.seen("audit.notify.storage.HostCreds.created")
    assert tap.seen("celery-task-meta-")
    leaks = [c[:200] for c in tap.commands if reveals(c)]
    assert leaks == [], "plaintext secret on the broker"
    assert not any(reveals(body) for body in received), received
    assert not reveals(repr(tasks).encode()), "Flower's API shows the secret"
    assert ["storage.save" in repr(t) for t in [tasks]] == [True]
    for process in (storage, audit):
        assert not reveals(process.log().encode()), process.log_path
    assert not reveals(flower_log.read_bytes())
    assert not reveals(caplog.text.encode())
    at_rest = [key for key, value in keys_at_rest(broker.client()) if reveals(value)]
    assert at_rest == []
    assert flower.poll() is None


def get(url: str, auth: str | None = None) -> tuple[int, Any]:
    """GET ``url`` with optional basic auth; the status and the JSON body (or text)."""
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def _healthy(base: str) -> bool:
    try:
        return get(f"{base}/healthcheck")[0] == 200
    except OSError:
        return False


def _flower_tasks(base: str, minimum: int) -> Any:
    try:
        status, tasks = get(f"{base}/api/tasks", "u:p")
    except OSError:
        return None
    return tasks if status == 200 and isinstance(tasks, dict) and len(tasks) >= minimum else None
