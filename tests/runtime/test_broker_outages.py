"""Broker outages: a Redis restart under load leaves no call stuck and hides no result.

Redis runs with its append-only file on (``appendfsync always``), is shut down
mid-load and started again on the same port and folder. Executions are counted
in a ledger on a second Redis (the session's), so the outage cannot touch the
count. Each test prints its figures (run with ``-s`` to see them).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from commissaire_tasks.app import create_app
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import BrokerUnavailable
from commissaire_tasks.testing import RedisServer
from tests.ledger import (
    DUPLICATED_AT_MOST,
    Ledger,
    Restart,
    restart_under_load,
    token_figures,
    wait_until,
)
from tests.report import record

pytestmark = pytest.mark.reliability

#: The default visibility timeout: nothing here may wait for it.
VISIBILITY_S = 1800
#: Seconds every call sent before the outage gets to complete once Redis is back.
BOUND_S = 30.0


def outage_ledger(broker: RedisServer, record: RedisServer, log_dir: Path) -> Ledger:
    """A ledger on ``broker`` with the default visibility timeout; records on ``record``."""
    return Ledger(broker, log_dir, visibility_s=VISIBILITY_S, record_server=record)


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
        yield server


#: Calls a Redis that exits under load may take with it: kombu takes a message with
#: BRPOP, and a Redis that exits right after executing one never sends the reply, so
#: the message is in no list, no hash and not in the worker. One BRPOP is in flight per
#: worker connection: at most one call per worker (seen in about one run in six).
LOST_TO_THE_LAST_BRPOP_AT_MOST = 1


def held_by_redis(server: RedisServer, ledger: Ledger) -> list[int]:
    """Tokens of the ledger's calls still in its queue or in kombu's ``unacked`` hash."""
    client = server.client()
    raw = [*client.lrange(ledger.queue["name"], 0, -1), *client.hvals("unacked")]
    envelopes = [json.loads(item) for item in raw]
    messages = [e[0] if isinstance(e, list) else e for e in envelopes]
    return [json.loads(base64.b64decode(m["body"]))[0][1] for m in messages]


def assert_restart_figures(restart: Restart, server: RedisServer, ledger: Ledger) -> None:
    """Every call not lost to the last BRPOP completed within the bound; nothing stuck."""
    assert held_by_redis(server, ledger) == [], "calls left waiting for the visibility timeout"
    assert restart.lost <= LOST_TO_THE_LAST_BRPOP_AT_MOST, restart.log[-3000:]
    assert restart.seconds < BOUND_S, restart.seconds
    restart.assert_only_calls_cut_by_the_outage_ran_twice(DUPLICATED_AT_MOST)


def test_a_redis_restart_under_load_leaves_no_call_waiting_for_the_visibility_timeout(
    aof_redis: RedisServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    ledger = outage_ledger(aof_redis, redis_server, tmp_path)
    # SIGTERM: Redis writes its append-only file and exits; then it starts again.
    restart = restart_under_load(ledger, aof_redis.stop, aof_redis.start, bound_s=BOUND_S)
    figures = restart.figures("redis restart, 60 calls")
    assert_restart_figures(restart, aof_redis, ledger)
    record("redis_restart_load", **figures, notes=restart_notes(restart, "Redis"))


def restart_notes(restart: Restart, broker: str) -> str:
    lost = f"; {restart.lost} lost as Redis exited after a BRPOP" if restart.lost else ""
    return (
        f"every call done {restart.seconds:.1f} s after {broker} answered again "
        f"(asserted: under {BOUND_S:.0f} s){lost}"
    )


def kill(server: RedisServer) -> None:
    """SIGKILL: a crash of the Redis machine as the append-only file sees it."""
    assert server.process is not None
    server.process.kill()
    server.process.wait()
    server.process = None


def test_a_redis_killed_under_load_keeps_every_call_its_append_only_file_acknowledged(
    aof_redis: RedisServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    assert aof_redis.client().config_get("appendfsync") == {"appendfsync": "always"}
    ledger = outage_ledger(aof_redis, redis_server, tmp_path)
    restart = restart_under_load(ledger, lambda: kill(aof_redis), aof_redis.start, bound_s=BOUND_S)
    figures = restart.figures("redis SIGKILL (appendfsync always), 60 calls")
    assert_restart_figures(restart, aof_redis, ledger)
    record("redis_sigkill_aof", **figures, notes=restart_notes(restart, "Redis"))


class Waiter(threading.Thread):
    """Runs ``wait()`` in a thread; keeps what it returned or raised and when."""

    def __init__(self, wait: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.wait = wait
        self.outcome: Any = None
        self.ended_at: float | None = None

    def run(self) -> None:
        try:
            self.outcome = self.wait()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            self.outcome = exc
        self.ended_at = time.monotonic()


def test_a_call_running_across_a_redis_restart_runs_once_and_its_worker_keeps_serving(
    aof_redis: RedisServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    ledger = outage_ledger(aof_redis, redis_server, tmp_path)
    with ledger.worker(concurrency=1) as worker:
        long_call = ledger.send(0, seconds=10.0)  # ends after the worker has reconnected
        inspect = ledger.bus.app.control.inspect(destination=[worker.hostname], timeout=1)
        wait = time.monotonic() + 10
        while not (inspect.active() or {}).get(worker.hostname) and time.monotonic() < wait:
            time.sleep(0.1)
        aof_redis.stop()
        time.sleep(2)
        aof_redis.start()
        assert long_call.get(timeout=40) == 0
        assert ledger.bus.call(ledger.key("work"), ledger.run, 1, 0.0, timeout=20) == 1
        time.sleep(6)  # past a restore sweep: a second run of token 0 would show now
        alive = worker.process is not None and worker.process.poll() is None
        log = worker.log()
    result = token_figures("call running across a restart", 2, ledger.tokens())
    assert alive, log[-3000:]
    assert "Unrecoverable error" not in log, log[-3000:]
    assert result["duplicated"] == 0


def test_callers_blocked_across_a_redis_restart_receive_every_result(
    aof_redis: RedisServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Seven calls of 1 s, all held by the worker (its prefetch is 8) when Redis stops: each
    caller is blocked across the restart, and no message can be in a BRPOP reply then."""
    ledger = outage_ledger(aof_redis, redis_server, tmp_path)
    key, run = ledger.key("work"), ledger.run
    broker = aof_redis.client()
    with ledger.worker(concurrency=2) as worker:
        ledger.bus.call(key, run, 999, 0.0, timeout=20)  # the result consumer is subscribed
        sent = [ledger.send(token, seconds=1.0) for token in range(3)]
        waiters = [
            Waiter(lambda: [r.get(timeout=45) for r in sent]),
            Waiter(lambda: ledger.bus.call(key, run, 100, 1.0, timeout=45)),
            Waiter(lambda: ledger.bus.call_many(key, [[run, t, 1.0] for t in (200, 201, 202)], 45)),
        ]
        for waiter in waiters:
            waiter.start()
        wait_until(
            lambda: broker.llen(ledger.queue["name"]) == 0 and broker.hlen("unacked") == 7,
            20,
            "the worker holds all 7 calls",
        )
        ledger.wait_running(set(worker.pool_pids()), fresh_s=0.8)
        aof_redis.stop()
        time.sleep(2)
        aof_redis.start()
        restarted = time.monotonic()
        for waiter in waiters:
            waiter.join(60)
    seconds = max((w.ended_at or time.monotonic()) - restarted for w in waiters)
    outcomes = [w.outcome if isinstance(w.outcome, list) else [w.outcome] for w in waiters]
    received = [outcome for listed in outcomes for outcome in listed]
    tokens = [0, 1, 2, 100, 200, 201, 202]
    figures = token_figures(
        "callers blocked across a restart",
        len(tokens),
        [t for t in received if isinstance(t, int)],
        seconds_after_restart=round(seconds, 2),
    )
    assert waiters[0].outcome == [0, 1, 2]
    assert waiters[1].outcome == 100
    assert waiters[2].outcome == [200, 201, 202]
    assert seconds < BOUND_S
    runs = ledger.outcome(range(203)).runs
    duplicated = sum(n - 1 for t, n in runs.items() if t in tokens)
    assert duplicated <= DUPLICATED_AT_MOST, runs
    record(
        "redis_restart_callers",
        sent=figures["sent"],
        completed=figures["completed"],
        lost=0,
        duplicated=duplicated,
        seconds_after_restart=figures["seconds_after_restart"],
        notes=f"{len(waiters)} callers (get(), bus.call, call_many) blocked across the restart "
        f"received every result, the last {seconds:.1f} s after Redis answered again "
        f"(asserted: under {BOUND_S:.0f} s)",
    )


def test_a_caller_whose_timeout_ends_in_the_outage_gets_broker_unavailable_in_time(
    aof_redis: RedisServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    ledger = outage_ledger(aof_redis, redis_server, tmp_path)
    with ledger.worker(concurrency=1):
        ledger.bus.call(ledger.key("work"), ledger.run, 999, 0.0, timeout=20)
        waiter = Waiter(lambda: ledger.send(1, seconds=2.0).get(timeout=4))
        waiter.start()
        time.sleep(0.5)
        aof_redis.stop()
        stopped = time.monotonic()
        waiter.join(30)
        waited = (waiter.ended_at or time.monotonic()) - stopped
        aof_redis.start()
    print(
        f"\n[outages] timeout in the outage: {type(waiter.outcome).__name__} after {waited:.2f} s"
    )
    assert isinstance(waiter.outcome, BrokerUnavailable), repr(waiter.outcome)
    assert waited < 3.5 + 2.0  # its 4 s timeout (0.5 s of it spent before the stop), plus margin


def test_a_result_stored_while_its_caller_reconnects_still_reaches_the_caller(
    aof_redis: RedisServer,
) -> None:
    app = create_app(load_settings().replace(broker_url=aof_redis.url), services=())
    call_id = str(uuid.uuid4())
    result = app.AsyncResult(call_id)
    backend = result.backend  # (each thread has its own: this is the waiter's)
    waiter = Waiter(lambda: result.get(timeout=25))
    waiter.start()
    time.sleep(0.5)  # the caller is subscribed to the call's result
    aof_redis.stop()
    client = backend.client
    read = client.mget
    stored: list[bool] = []

    def read_then_store(*args: Any, **kwargs: Any) -> Any:
        """The reconnect's read of the subscribed results; the result lands just after it."""
        values = read(*args, **kwargs)
        if not stored:
            stored.append(True)
            backend.store_result(call_id, 42, "SUCCESS")
        return values

    client.mget = read_then_store
    time.sleep(1)
    aof_redis.start()
    waiter.join(30)
    assert stored, repr(waiter.outcome)
    assert waiter.outcome == 42
