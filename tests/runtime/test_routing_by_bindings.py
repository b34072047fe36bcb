"""Routing by the broker's bindings, as the original's topic exchange routed.

A caller that imports nothing and configures nothing reaches any key a worker
has bound (the guide's ``queues.my_queue.ping``), on Redis and on RabbitMQ; a key
no binding matches fails at once with NoRouteError and leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import NoRouteError
from commissaire_tasks.routing import topic_matches
from commissaire_tasks.runtime._bindings import BindingTable
from commissaire_tasks.testing import RedisServer, WorkerProcess

UNIQUE = uuid.uuid4().hex[:8]
#: The guide's run example, with a name of this test run's own.
GUIDE_QUEUE = {
    "name": f"my_queue_{UNIQUE}",
    "routing_key": f"queues.my_queue_{UNIQUE}.*",
    "service": "my",
}
GUIDE_KEY = f"queues.my_queue_{UNIQUE}.ping"
#: The installed command line, next to this interpreter.
CLI = str(Path(sys.executable).parent / "commissaire-tasks")


class Broker:
    def __init__(self, kind: str, url: str, backend: str | None) -> None:
        self.kind, self.url, self.backend = kind, url, backend

    def env(self) -> dict[str, str]:
        """The environment of a bare client: a broker URL and nothing else of ours."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMMISSAIRE_")}
        env["COMMISSAIRE_BROKER_URL"] = self.url
        env["COMMISSAIRE_CALL_TIMEOUT"] = "15"
        if self.backend:
            env["COMMISSAIRE_RESULT_BACKEND"] = self.backend
        return env

    def bus(self) -> Bus:
        """A caller in this process (which has imported workers.simple, but no queues)."""
        settings = load_settings().replace(broker_url=self.url, result_backend=self.backend)
        return Bus(create_app(settings, services=()))

    def queued(self, queue: str) -> int | None:
        """Messages in ``queue``; None when the broker has no such queue at all."""
        with Connection(self.url) as connection:
            if self.kind == "redis":
                with connection.default_channel.conn_or_acquire() as client:
                    return int(client.llen(queue)) if client.exists(queue) else None
            try:
                with connection.channel() as channel:
                    return int(channel.queue_declare(queue=queue, passive=True).message_count)
            except connection.channel_errors:
                return None


@pytest.fixture(
    scope="module", params=["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)]
)
def broker(request: pytest.FixtureRequest, redis_server: RedisServer) -> Broker:
    if request.param == "redis":
        return Broker("redis", redis_server.url, None)
    return Broker("rabbitmq", request.getfixturevalue("rabbitmq_url"), redis_server.url)


@pytest.fixture(scope="module")
def worker(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """A worker of the guide's MyService on its qkwargs queue, and of SimpleService."""
    process = WorkerProcess(
        broker_url=broker.url,
        result_backend=broker.backend,
        queues=[GUIDE_QUEUE["name"], "simple"],
        env={
            "COMMISSAIRE_SERVICES": "workers.simple",
            "COMMISSAIRE_QUEUES": json.dumps([GUIDE_QUEUE]),
        },
        log_dir=tmp_path_factory.mktemp(f"bindings-{broker.kind}"),
    )
    with process:
        yield process


def bare(broker: Broker, code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a process that imports only commissaire_tasks (outside the checkout)."""
    return subprocess.run(
        [sys.executable, "-c", code],
        env=broker.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_bare_client_calls_the_guides_qkwargs_bound_key(
    broker: Broker, worker: WorkerProcess, tmp_path: Path
) -> None:
    code = f"""
import sys
from commissaire_tasks import bus
from commissaire_tasks.app import default_app
assert "workers" not in sys.modules and "COMMISSAIRE_QUEUES" not in __import__("os").environ
print(bus.call({GUIDE_KEY!r}))
print(bus.send({GUIDE_KEY!r}).get())
print(default_app().send_task({GUIDE_KEY!r}).get())
print(bus.call("simple.add", 1, 2))
print(*bus.call_many("simple.add", [[1, 2], [3, 4]]))
"""
    done = bare(broker, code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pong", "pong", "pong", "3", "3", "7"]


def test_the_command_line_calls_a_bound_key_with_no_configuration(
    broker: Broker, worker: WorkerProcess, tmp_path: Path
) -> None:
    done = subprocess.run(
        [CLI, "call", GUIDE_KEY],
        env=broker.env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == "pong"


def test_an_unbound_two_segment_key_fails_at_once_and_leaves_nothing_behind(
    broker: Broker, worker: WorkerProcess
) -> None:
    bus = broker.bus()
    key = f"nosuch_{UNIQUE}.ping"
    started = time.monotonic()
    with pytest.raises(NoRouteError, match=key):
        bus.call(key)
    first = time.monotonic() - started  # a fresh app: includes connecting
    consumer = bus.app.backend.result_consumer
    assert not consumer.awaited  # no result is awaited for a call never queued
    started = time.monotonic()
    with pytest.raises(NoRouteError):
        bus.app.send_task(key)
    with pytest.raises(NoRouteError):
        bus.notify(f"queues.nosuch_{UNIQUE}.ping")
    later = (time.monotonic() - started) / 2
    timing = f"first {first * 1000:.1f} ms, then {later * 1000:.1f} ms"
    print(f"\n[routing, {broker.kind}] NoRouteError {timing}")
    assert first < 0.5 and later < 0.25
    for queue in (f"nosuch_{UNIQUE}", key, f"queues.nosuch_{UNIQUE}.ping"):
        assert broker.queued(queue) is None
    if broker.kind == "redis":
        with Connection(broker.url) as connection:
            bindings = connection.default_channel.get_table("commissaire")
        assert not [row for row in bindings if f"nosuch_{UNIQUE}" in "".join(row)]
    assert bus.call(GUIDE_KEY) == "pong"  # the connection is still good after a refusal


def run_cli(
    broker: Broker, tmp_path: Path, *args: str
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Seconds ``commissaire-tasks ARGS`` took as a bare client, and what it did."""
    started = time.monotonic()
    done = subprocess.run(
        [CLI, *args], env=broker.env(), cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    return time.monotonic() - started, done


def test_the_command_line_refuses_an_unbound_key_at_once(
    broker: Broker, worker: WorkerProcess, tmp_path: Path
) -> None:
    # Baseline: a call that succeeds (start-up, connecting, one round trip), the faster of two
    baseline = min(run_cli(broker, tmp_path, "call", GUIDE_KEY)[0] for _ in range(2))
    refusals = [run_cli(broker, tmp_path, "call", f"nosuch_{UNIQUE}.ping") for _ in range(2)]
    for _, done in refusals:
        assert done.returncode == 1
        assert "NoRouteError" in done.stderr and f"nosuch_{UNIQUE}.ping" in done.stderr
    refused = min(seconds for seconds, _ in refusals)
    print(f"\n[routing, {broker.kind}] CLI NoRouteError {refused:.2f} s, a call {baseline:.2f} s")
    assert refused < baseline + 1.0  # not the 15 s call timeout, nor any wait of its own


def test_a_queue_bound_a_moment_ago_keeps_calls_until_its_worker_starts(
    broker: Broker, worker: WorkerProcess, tmp_path: Path
) -> None:
    # Given a caller that already found a key unbound
    late = {"name": f"late_{UNIQUE}", "routing_key": f"late.{UNIQUE}.*", "service": "my"}
    bus = broker.bus()
    with pytest.raises(NoRouteError):
        bus.call(f"late.{UNIQUE}.echo", "early")
    # When a worker of it has run and stopped (its queue stays bound), a call is kept
    late_worker = WorkerProcess(
        broker_url=broker.url,
        result_backend=broker.backend,
        queues=[late["name"]],
        env={"COMMISSAIRE_SERVICES": "workers.simple", "COMMISSAIRE_QUEUES": json.dumps([late])},
        log_dir=tmp_path,
    )
    with late_worker:
        pass
    pending = bus.send(f"late.{UNIQUE}.echo", "kept")
    assert broker.queued(late["name"]) == 1
    # Then the worker started again answers it
    with late_worker:
        assert pending.get(timeout=15) == "kept"


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("queues.my_queue.*", "queues.my_queue.ping", True),
        ("queues.my_queue.*", "queues.my_queue.ping.more", False),
        ("queues.my_queue.*", "queues.other.ping", False),
        ("simple.*", "simple.add", True),
        ("simple.*", "simple", False),
        ("#", "anything.at.all", True),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("a.#.z", "a.b.c", False),
        ("*.add", "simple.add", True),
    ],
)
def test_topic_patterns_match_as_on_a_topic_exchange(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches


def test_the_binding_table_is_read_once_for_hits_and_again_on_every_miss() -> None:
    bindings = [("simple.*", "simple")]
    reads = []

    def read() -> list[tuple[str, str]]:
        reads.append(1)
        return list(bindings)

    table = BindingTable(read)
    assert table.queue_for("simple.add") == "simple"
    assert table.queue_for("simple.add") == "simple"
    assert len(reads) == 1
    assert table.queue_for("queues.my_queue.ping") is None
    assert len(reads) == 2
    bindings.append(("queues.my_queue.*", "my_queue"))  # bound a moment ago
    assert table.queue_for("queues.my_queue.ping") == "my_queue"
    assert len(reads) == 3


def test_on_redis_a_key_several_bindings_match_goes_to_the_first_queue_by_name() -> None:
    table = BindingTable(lambda: [("queues.#", "zeta"), ("queues.*.ping", "alpha")])
    assert table.queue_for("queues.my_queue.ping") == "alpha"  # one message, never a fan-out
    assert table.queue_for("queues.my_queue.pong") == "zeta"
