"""The threads pool: chosen by a service attribute, ServiceManager or COMMISSAIRE_POOL.

Overlap is judged from the start and end times the calls record, never from wall speed.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import Any

import pytest

from commissaire_tasks import bus
from commissaire_tasks.config import Settings, load_settings
from commissaire_tasks.errors import CallTimeout, ServiceDefinitionError
from commissaire_tasks.runtime.app import create_app
from commissaire_tasks.runtime.events import task_events_state
from commissaire_tasks.service import CommissaireService
from commissaire_tasks.testing import RedisServer, WorkerProcess
from commissaire_tasks.worker import pool_for
from tests.conftest import Background
from tests.runtime.waiting_services import PlainWaitService, ThreadedWaitService

#: Concurrent calls, and the seconds each waits.
CALLS, WAIT_S = 4, 1.5


def concurrent_waits(service: str) -> list[dict[str, Any]]:
    calls = [bus.send(f"{service}.wait", WAIT_S) for _ in range(CALLS)]
    return [call.get(timeout=60) for call in calls]


def assert_overlap_in_one_process(runs: list[dict[str, Any]]) -> None:
    assert max(run["start"] for run in runs) < min(run["end"] for run in runs), runs
    assert len({run["pid"] for run in runs}) == 1  # threads of one process
    assert len({run["thread"] for run in runs}) == CALLS
    assert len({run["instance"] for run in runs}) == 1  # one instance, shared by the threads


def test_a_service_that_asks_for_threads_runs_its_calls_concurrently_in_one_process(
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    worker = worker_factory(app="tests.runtime.waiting_services", concurrency=CALLS)
    runs = concurrent_waits(ThreadedWaitService.name)
    assert_overlap_in_one_process(runs)
    assert runs[0]["pid"] == worker.pid  # no pool processes: the worker's own threads
    app = create_app(load_settings(), services=())
    app.control.enable_events(destination=[worker.hostname], reply=True, timeout=2)
    assert task_events_state(app, [worker.hostname])[worker.hostname]["on"]  # on demand here too


def test_service_manager_runs_a_service_on_threads_when_asked(
    redis_server: RedisServer, background: Background
) -> None:
    manager, log = background(
        [sys.executable, "-c",
         "from commissaire_tasks.service import ServiceManager\n"
         "from tests.runtime.waiting_services import PlainWaitService\n"
         f"ServiceManager(PlainWaitService, process_count={CALLS}, pool='threads').run()\n"]
    )  # fmt: skip
    name = PlainWaitService.name
    for _ in range(30):  # the manager is up once a call answers
        try:
            bus.call(f"{name}.wait", 0, timeout=1)
            break
        except CallTimeout:
            assert manager.poll() is None, log.read_text()
    else:
        raise AssertionError(f"the manager never answered; log:\n{log.read_text()}")
    runs = concurrent_waits(name)
    assert_overlap_in_one_process(runs)
    assert runs[0]["pid"] == manager.pid
    manager.send_signal(signal.SIGTERM)
    assert manager.wait(30) == 0


def test_the_pool_comes_from_the_argument_then_the_settings_then_the_service() -> None:
    assert pool_for([PlainWaitService], Settings()) == "prefork"
    assert pool_for([ThreadedWaitService], Settings()) == "threads"
    assert pool_for([ThreadedWaitService, PlainWaitService], Settings()) == "prefork"
    assert pool_for([ThreadedWaitService], Settings(pool="prefork")) == "prefork"
    assert pool_for([PlainWaitService], Settings(pool="prefork"), "threads") == "threads"


def test_a_service_asking_for_an_unknown_pool_fails_at_definition() -> None:
    with pytest.raises(ServiceDefinitionError, match="pool 'greenlets'"):

        class GreenService(CommissaireService):  # noqa: F841 - defining it is the test
            pool = "greenlets"
