"""The three ways to run a service, clean shutdown, process replacement and brokers."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import CallTimeout
from commissaire_tasks.testing import RedisServer, WorkerProcess
from tests.conftest import Background
from tests.ledger import Ledger, wait_until
from tests.report import record

ROOT = Path(__file__).resolve().parent.parent


def bus_for(broker_url: str, exchange: str = "commissaire", **settings: object) -> Bus:
    return Bus(
        create_app(load_settings().replace(broker_url=broker_url, exchange=exchange, **settings))
    )


def wait_for_answer(call: Callable[[], object], timeout_s: float = 30.0) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except CallTimeout:
            if time.monotonic() > deadline:
                raise


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_service_manager_runs_n_processes_on_custom_queues(
    redis_server: RedisServer, background: Background, unique: str
) -> None:
    exchange = f"my_exchange_{unique}"
    qkwargs = [{"name": f"my_queue_{unique}", "routing_key": f"queues.my_queue_{unique}.*"}]
    manager, _ = background(
        python(
            "from commissaire_tasks.service import ServiceManager\n"
            "from tests.services import IntrospectService\n"
            "ServiceManager(service_class=IntrospectService, process_count=3,"
            f" exchange_name={exchange!r},"
            f" connection_url={redis_server.url!r}, qkwargs={qkwargs!r}).run()\n"
        )
    )
    caller = bus_for(redis_server.url, exchange, queues=tuple(qkwargs))
    key = f"queues.my_queue_{unique}"
    described = wait_for_answer(lambda: caller.call(f"{key}.describe", timeout=1))
    assert described["routing_key"] == f"{key}.describe"  # type: ignore[index]
    assert described["queue"] == f"my_queue_{unique}"  # type: ignore[index]
    assert described["exchange"] == exchange  # type: ignore[index]
    pool = psutil.Process(manager.pid).children()
    assert len(pool) == 3

    os.kill(pool[0].pid, signal.SIGKILL)  # a pool process dies...

    def replaced() -> bool:
        children = {c.pid for c in psutil.Process(manager.pid).children()}
        return len(children) == 3 and pool[0].pid not in children

    wait_until(replaced, 20, "the dead pool process to be replaced")  # ...and is replaced
    assert caller.call(f"{key}.pid", timeout=10) != pool[0].pid
    # The caller has its answer as soon as the pool process stored it; the main
    # process acknowledges once it has read that process's report. A SIGTERM in
    # between makes billiard's pool process wait up to 30 s for its report to be
    # read, so stop only once the call is acknowledged.
    wait_until(lambda: redis_server.client().hlen("unacked") == 0, 20, "the call's acknowledgement")

    manager.send_signal(signal.SIGTERM)
    assert manager.wait(30) == 0


def test_run_serves_one_process_in_the_foreground(
    redis_server: RedisServer,
    background: Background,
    tmp_path: Path,
    unique: str,
) -> None:
    config = tmp_path / "service.json"
    config.write_text(json.dumps({"greeting": "hello"}))
    qkwargs = [{"name": f"solo_{unique}", "routing_key": f"solo_{unique}.*"}]
    process, _ = background(
        python(
            "from tests.services import IntrospectService\n"
            f"IntrospectService(connection_url={redis_server.url!r}, qkwargs={qkwargs!r},"
            f" config_file={str(config)!r}).run()\n"
        )
    )
    caller = bus_for(redis_server.url, queues=tuple(qkwargs))
    described = wait_for_answer(lambda: caller.call(f"solo_{unique}.describe", timeout=1))
    assert described["config"] == {"greeting": "hello"}  # type: ignore[index]
    assert caller.call(f"solo_{unique}.pid") == process.pid  # no pool: the process itself
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0


def unacked_calls(broker: RedisServer, call_ids: set[str]) -> list[str]:
    """Those of ``call_ids`` that sit in kombu's ``unacked`` hash (taken, not acknowledged)."""
    entries = broker.client().hvals("unacked")
    return [i for i in call_ids if any(i.encode() in entry for entry in entries)]


def interrupt(worker: WorkerProcess) -> int:
    """Ctrl-C in the worker's terminal: SIGINT to the worker and its pool processes at
    once (a terminal signals its whole foreground process group). Returns the exit code."""
    assert worker.process is not None
    for pid in [worker.pid, *worker.pool_pids()]:
        os.kill(pid, signal.SIGINT)
    code = worker.process.wait(30)
    worker.process = None
    return code


#: How each warm shutdown is asked for, and the exit code ``celery worker`` gives then.
WARM_STOPS: dict[str, tuple[Callable[[WorkerProcess], int | None], int]] = {
    "SIGTERM": (WorkerProcess.stop, 0),
    "SIGINT": (interrupt, 1),
}


@pytest.mark.reliability
@pytest.mark.parametrize("signame", list(WARM_STOPS))
def test_warm_shutdown_finishes_the_call_in_flight_and_leaves_queued_calls_in_the_broker(
    signame: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    stop, exit_code = WARM_STOPS[signame]
    ledger = Ledger(redis_server, tmp_path)
    worker = ledger.worker(concurrency=1).start()
    in_flight = ledger.send(0, seconds=2)
    ledger.wait_running(set(worker.pool_pids()), fresh_s=1.5)
    queued = [ledger.send(token) for token in range(1, 6)]
    assert stop(worker) == exit_code
    assert in_flight.get(timeout=5) == 0
    # The queued calls ran nowhere and are back in the queue, none held as unacknowledged.
    assert [d["token"] for d in ledger.done()] == [0]
    assert redis_server.client().llen(ledger.queue["name"]) == 5
    assert unacked_calls(redis_server, {r.id for r in queued}) == []
    with ledger.worker(concurrency=1):
        assert [r.get(timeout=15) for r in queued] == [1, 2, 3, 4, 5]
    outcome = ledger.outcome(range(6))
    assert outcome.figures() == {"sent": 6, "completed": 6, "lost": 0, "duplicated": 0}
    record(
        "warm_shutdown" if signame == "SIGTERM" else "warm_shutdown_sigint",
        **outcome.figures(),
        notes=f"{signame}: the running call finished; the 5 queued stayed in the queue for the "
        "next worker",
    )
