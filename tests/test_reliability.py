"""Faults with real processes: killed pool processes and workers, a broker restart.

Every fault happens at a proven moment: the test waits until the ledger shows a
call running (its call id and pid) before it kills or stops anything. Every call
sent is then counted: completed, how many times, lost. The figures are asserted
and written to the reliability report (``tests/report.py``).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from commissaire_tasks.errors import BrokerUnavailable
from commissaire_tasks.testing import RedisServer
from tests.ledger import Ledger, wait_until
from tests.report import record

pytestmark = pytest.mark.reliability

#: The timeout of each call made while Redis is down: it must get BrokerUnavailable
#: within it (README, "Broker outages": "within its timeout, never a hang").
OUTAGE_CALL_TIMEOUT_S = 3.0
#: How much later than its timeout the error may reach the caller: raising and
#: unwinding the failed publish or subscribe, plus scheduling delays on a loaded
#: 2-core machine. Well under a second retry round, so a call that outlives its
#: timeout (waits for the broker to come back, retries once more) still fails the test.
OUTAGE_MARGIN_S = 1.0
OUTAGE_FAILURE_LIMIT_S = OUTAGE_CALL_TIMEOUT_S + OUTAGE_MARGIN_S


def seconds_to_broker_unavailable(call: Callable[[], object], naming: str | None = None) -> float:
    """How long ``call`` took to raise BrokerUnavailable (naming ``naming``, when given)."""
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as raised:
        call()
    if naming is not None:
        assert raised.value.routing_key == naming
    return time.monotonic() - started


@pytest.fixture
def ledger(redis_server: RedisServer, tmp_path: Path) -> Ledger:
    return Ledger(redis_server, tmp_path)


def test_a_pool_process_killed_mid_call_is_replaced_and_its_call_runs_once_elsewhere(
    ledger: Ledger,
) -> None:
    tokens = range(6)
    with ledger.worker(concurrency=2) as worker:
        pool = set(worker.pool_pids())
        results = [ledger.send(token, seconds=1.5) for token in tokens]
        victim = ledger.wait_running(pool, fresh_s=1.0)[0]
        os.kill(victim["pid"], signal.SIGKILL)
        assert sorted(r.get(timeout=40) for r in results) == list(tokens)
        replaced = wait_until(
            lambda: len(set(worker.pool_pids()) - pool) == 1 and len(worker.pool_pids()) == 2,
            20,
            "the killed pool process to be replaced",
        )
        assert replaced
    outcome = ledger.outcome(tokens)
    runs = [s for s in ledger.started() if s["id"] == victim["id"]]
    finished = [d for d in ledger.done() if d["id"] == victim["id"]]
    assert len(runs) == 2, runs  # cut off once, run again once
    assert [d["pid"] for d in finished] == [runs[1]["pid"]] != [victim["pid"]]
    assert runs[1]["redelivered"] is True  # message.redelivered tells the method
    assert outcome.figures() == {"sent": 6, "completed": 6, "lost": 0, "duplicated": 0}
    record("pool_kill", **outcome.figures(), notes="the cut-off call ran again on another process")


def test_a_worker_killed_outright_loses_no_call_and_reruns_only_the_ones_it_was_running(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    tokens = range(20)
    ledger = Ledger(redis_server, tmp_path, visibility_s=6)
    worker = ledger.worker(concurrency=2).start()
    pool = set(worker.pool_pids())
    results = [ledger.send(token, seconds=0.5) for token in tokens]
    cut = ledger.wait_running(pool, fresh_s=0.3)
    worker.kill()  # SIGKILL, worker and pool: unacknowledged calls stay in the broker
    cut_ids = {c["id"] for c in cut}
    assert not [d for d in ledger.done() if d["id"] in cut_ids]  # they really were cut off
    with ledger.worker(concurrency=2):
        assert sorted(r.get(timeout=60) for r in results) == list(tokens)
    outcome = ledger.outcome(tokens)
    for call_id in cut_ids:
        starts = [s for s in ledger.started() if s["id"] == call_id]
        assert len(starts) == 2 and starts[1]["pid"] not in pool, starts
    assert outcome.figures() == {"sent": 20, "completed": 20, "lost": 0, "duplicated": 0}
    record(
        "worker_kill",
        **outcome.figures(),
        notes=f"{len(cut_ids)} running calls cut off, each ran again once after the visibility "
        "timeout",
    )


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
        yield server


def test_a_broker_restart_under_load_loses_nothing_and_a_call_during_the_outage_fails_fast(
    private_redis: RedisServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    before, after = range(20), range(20, 40)
    # The ledger lives on the session Redis, so the outage cannot erase the evidence.
    ledger = Ledger(private_redis, tmp_path, visibility_s=5, record_server=redis_server)
    with ledger.worker(concurrency=2) as worker:
        pool = set(worker.pool_pids())
        for token in before:
            ledger.send(token, seconds=0.2)  # counted in the ledger, not by their waiters
        ledger.wait_running(pool, fresh_s=0.15)
        private_redis.stop()
        failed_after_s = seconds_to_broker_unavailable(
            lambda: ledger.bus.call(
                ledger.key("work"), ledger.run, 1000, timeout=OUTAGE_CALL_TIMEOUT_S
            )
        )
        time.sleep(max(0.0, 2.0 - failed_after_s))  # the outage itself lasts 2 s
        private_redis.start()
        results = [ledger.send(token) for token in after]
        assert sorted(r.get(timeout=60) for r in results) == list(after)
        outcome = ledger.wait_all_done(range(40), timeout_s=60)
    twice = {token for token, runs in outcome.runs.items() if runs > 1}
    assert failed_after_s < OUTAGE_FAILURE_LIMIT_S, (
        f"BrokerUnavailable after {failed_after_s:.1f} s"
    )
    assert 1000 not in {s["token"] for s in ledger.started()}  # the refused call never ran
    assert (outcome.sent, outcome.completed, outcome.lost) == (40, 40, 0)
    # Only calls sent before the outage (running or taken by the worker when the
    # broker went away) may run twice (README, "Which calls may run twice"), at most twice.
    assert twice <= set(before), twice
    assert all(runs <= 2 for runs in outcome.runs.values()), outcome.runs
    record(
        "redis_restart",
        **outcome.figures(),
        notes=f"Redis down 2 s; {outcome.duplicated} taken before the outage ran again; "
        f"a call during the outage got BrokerUnavailable after {failed_after_s:.1f} s",
    )


def test_message_retry_runs_the_call_again_with_its_retry_count(ledger: Ledger) -> None:
    with ledger.worker(concurrency=1):
        assert ledger.bus.call(ledger.key("flaky"), ledger.run, 2, timeout=20) == 2
    runs = ledger.record.lrange(f"ledger:{ledger.run}:retries", 0, -1)
    assert [int(r) for r in runs] == [0, 1, 2]


def test_a_new_caller_gets_broker_unavailable_within_its_timeout_while_redis_is_down(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    # A caller that never reached the broker (Celery would retry subscribing for 20 s)
    ledger = Ledger(private_redis, tmp_path)
    private_redis.stop()
    work, batch = ledger.key("work"), [[ledger.run, t] for t in range(10)]
    took = {
        "call": seconds_to_broker_unavailable(
            lambda: ledger.bus.call(work, ledger.run, 0, timeout=OUTAGE_CALL_TIMEOUT_S)
        ),
        "call_many": seconds_to_broker_unavailable(
            lambda: ledger.bus.call_many(work, batch, timeout=OUTAGE_CALL_TIMEOUT_S), work
        ),
        # 40 calls travel in chunks (the framework's chunk task): the error names the key.
        "call_many_chunks": seconds_to_broker_unavailable(
            lambda: ledger.bus.call_many(work, batch * 4, timeout=OUTAGE_CALL_TIMEOUT_S), work
        ),
        # notify_many has no timeout: it is held to the same bound as the others.
        "notify_many": seconds_to_broker_unavailable(lambda: ledger.bus.notify_many(work, batch)),
    }
    assert all(seconds < OUTAGE_FAILURE_LIMIT_S for seconds in took.values()), took
