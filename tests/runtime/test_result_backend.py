"""The lean result backend: results reach callers by reply list, and stay where Celery looks.

One real prefork worker (2 processes) on the session's Redis serves every test;
callers are apps of this process and separate Python processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from celery.result import ResultSet

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import CallTimeout, InvalidParams, StorageLookupError
from commissaire_tasks.ops.progress import PROGRESS_STATE
from commissaire_tasks.runtime.backend import LeanReplies
from commissaire_tasks.testing import RedisServer, WorkerProcess

SERVICES = "workers.simple,tests.services"
#: The worker's reply-list lifetime, in seconds (short enough to see one expire).
REPLY_EXPIRES_S = 4
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def worker(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    process = WorkerProcess(
        broker_url=redis_server.url,
        result_backend="lean",
        queues=["simple", "introspect", "error"],
        concurrency=2,
        env={"COMMISSAIRE_SERVICES": SERVICES, "COMMISSAIRE_REPLY_EXPIRES": str(REPLY_EXPIRES_S)},
        log_dir=tmp_path_factory.mktemp("worker"),
    )
    with process:
        yield process


@pytest.fixture(scope="module")
def bus(redis_server: RedisServer) -> Bus:
    settings = load_settings().replace(broker_url=redis_server.url, result_backend="lean")
    return Bus(create_app(settings, services=[]))


@pytest.fixture(scope="module")
def client(redis_server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url)


def commands_run(client: redis.Redis) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def in_another_process(code: str, timeout: float = 60) -> Any:
    """Run ``code`` (which prints one JSON value last) in a fresh interpreter; return it."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_each_call_is_answered_on_the_callers_reply_list_in_one_pop(
    worker: WorkerProcess, bus: Bus, client: redis.Redis
) -> None:
    assert isinstance(bus.app.backend, LeanReplies)
    assert bus.call("simple.add", 1, 2) == 3  # warm: scripts cached, connections open
    before = commands_run(client)
    values = [bus.call("simple.add", 1, n) for n in range(20)]
    after = commands_run(client) - before
    assert values == [1 + n for n in range(20)]
    # One pop per call at the caller, one script at the worker; no subscription per call
    assert after["blmpop"] + after["blpop"] == 20 and after["evalsha"] >= 20
    assert after["subscribe"] == 0 and after["unsubscribe"] == 0
    assert after["rpush"] == 20


def test_get_with_a_timeout_raises_call_timeout_and_the_result_still_lands_in_its_key(
    worker: WorkerProcess, bus: Bus
) -> None:
    result = bus.send("introspect.sleep", 1.5)
    started = time.monotonic()
    with pytest.raises(CallTimeout, match="introspect.sleep"):
        result.get(timeout=0.3)
    assert time.monotonic() - started < 1.4  # it gave up at its timeout, not at the result
    assert result.get(timeout=20) == 1.5  # the same result, waited for again
    assert bus.app.AsyncResult(result.id).state == "SUCCESS"


def test_another_process_reads_a_result_by_id_before_and_after_it_is_ready(
    worker: WorkerProcess, bus: Bus
) -> None:
    pending = bus.send("introspect.sleep", 0.5)
    done = bus.send("simple.add", 2, 3)
    assert done.get() == 5
    code = f"""
        import json
        from commissaire_tasks.app import create_app
        from commissaire_tasks.config import load_settings
        app = create_app(load_settings().replace(result_backend="lean"), services=[])
        pending = app.AsyncResult({pending.id!r}).get(timeout=20)
        done = app.AsyncResult({done.id!r})
        print(json.dumps([pending, done.get(timeout=20), done.state]))
    """
    assert in_another_process(code) == [0.5, 5, "SUCCESS"]
    assert pending.get(timeout=20) == 0.5  # its own caller gets it as well


def test_a_result_set_and_call_many_collect_every_result_in_order(
    worker: WorkerProcess, bus: Bus
) -> None:
    results = ResultSet([bus.send("simple.add", n, n) for n in range(30)])
    assert results.get(timeout=30) == [2 * n for n in range(30)]
    assert bus.call_many("simple.add", [[n, 1] for n in range(100)]) == list(range(1, 101))


def test_a_caller_that_went_away_leaves_a_reply_list_that_expires(
    worker: WorkerProcess, client: redis.Redis
) -> None:
    # Given a caller process that sends calls and exits without waiting for them
    code = """
        import json, time
        from commissaire_tasks.app import create_app
        from commissaire_tasks.bus import Bus
        from commissaire_tasks.config import load_settings
        bus = Bus(create_app(load_settings().replace(result_backend="lean"), services=[]))
        sent = [bus.send("simple.add", n, 1) for n in range(3)]
        print(json.dumps([bus.app.backend.result_consumer.reply_key, [r.id for r in sent]]))
    """
    reply_key, ids = in_another_process(code)
    # Then its results wait on its reply list, which expires, and under their keys
    deadline = time.monotonic() + 20
    while client.llen(reply_key) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.llen(reply_key) == 3
    assert 0 < client.pttl(reply_key) <= REPLY_EXPIRES_S * 1000
    while client.exists(reply_key) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not client.exists(reply_key)
    stored = [json.loads(client.get(f"celery-task-meta-{i}")) for i in ids]
    assert [meta["result"] for meta in stored] == [1, 2, 3]


def test_errors_arrive_with_their_json_rpc_codes(worker: WorkerProcess, bus: Bus) -> None:
    with pytest.raises(StorageLookupError) as looked_up:
        bus.call("error.lookup", "h1")
    assert looked_up.value.code == StorageLookupError.code
    assert looked_up.value.data["key"] == "h1"
    with pytest.raises(InvalidParams) as invalid:
        bus.call("simple.add", 1)  # a parameter missing
    assert invalid.value.code == -32602
    values = bus.call_many("error.typed", [[1], ["x"]], return_exceptions=True)
    assert values[0] == 1 and isinstance(values[1], TypeError)  # a builtin arrives as itself


def test_progress_reaches_the_caller_as_progress_states(worker: WorkerProcess, bus: Bus) -> None:
    seen: list[dict[str, Any]] = []
    result = bus.send("introspect.progress", 3, 0.1)
    assert result.get(timeout=20, on_message=seen.append) == 3
    progress = [m["result"]["done"] for m in seen if m["status"] == PROGRESS_STATE]
    assert progress == [0, 1, 2]
    assert seen[-1]["status"] == "SUCCESS"


def test_a_caller_on_celerys_pubsub_path_still_gets_results_from_the_same_worker(
    worker: WorkerProcess, redis_server: RedisServer
) -> None:
    settings = load_settings().replace(broker_url=redis_server.url, result_backend="pubsub")
    bus = Bus(create_app(settings, services=[]))
    assert not isinstance(bus.app.backend, LeanReplies)
    assert bus.call("simple.add", 4, 4, timeout=10) == 8


def test_a_plain_celery_app_finds_the_backend_by_its_lean_scheme() -> None:
    redis_app = Celery("plain", backend="lean+redis://127.0.0.1:6379/0", set_as_current=False)
    assert type(redis_app.backend).__name__ == "LeanRedisBackend"
    options = {"master_name": "mymaster"}
    sentinel_app = Celery(
        "plain",
        backend="lean+sentinel://127.0.0.1:26379",
        result_backend_transport_options=options,
        set_as_current=False,
    )
    assert type(sentinel_app.backend).__name__ == "LeanSentinelBackend"


def test_a_result_the_garbage_collector_drops_mid_wait_never_deadlocks_the_caller(
    bus: Bus,
) -> None:
    """``AsyncResult.__del__`` stops expecting its call; the collector may run it while the
    waiting thread holds the consumer's lock (a caller hung for good that way)."""
    consumer = bus.app.backend.result_consumer
    consumer.expect("dropped-call")

    def collect_while_locked() -> None:
        with consumer._lock:  # as inside is_expected(), when the collector ran __del__
            consumer.cancel_for("dropped-call")

    collector = threading.Thread(target=collect_while_locked, daemon=True)
    collector.start()
    collector.join(5)
    assert not collector.is_alive(), "cancel_for blocked on the lock its own thread held"
    assert "dropped-call" not in consumer.awaited
