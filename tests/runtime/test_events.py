"""Task events on demand, with real workers on the session's Redis and a real event receiver.

A call's task events are looked for with Celery's own event receiver, as Flower
receives them. That a call sent *no* events is shown with a later call whose
events do arrive: one worker's events reach a receiver in the order it sent them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from celery.worker.control import Panel

from commissaire_tasks import bus
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.ops.status import collect_status
from commissaire_tasks.runtime.app import CommissaireCelery, create_app
from commissaire_tasks.runtime.events import (
    EventsOnDemand,
    TaskEventsOnDemand,
    install,
    task_events_state,
)
from commissaire_tasks.runtime.registry import registry
from commissaire_tasks.testing import RedisServer, WorkerProcess
from workers.simple import SimpleService

SERVICES = "workers.simple"
install(create_app(load_settings(), services=()))  # the control-command hooks, in this process


class EventRecorder:
    """Every event one worker sends while the recorder runs (a receiver that asks for none)."""

    def __init__(self, app: CommissaireCelery, hostname: str) -> None:
        self.app = app
        self.hostname = hostname
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.receiver: Any = None

    def __enter__(self) -> EventRecorder:
        connection = self.app.connection_for_read()
        self.receiver = self.app.events.Receiver(connection, handlers={"*": self._record})
        thread = threading.Thread(target=self._capture, daemon=True)
        thread.start()
        self.thread = thread
        # Heartbeats come every 2 s: the first one shows the receiver is listening.
        self.wait_for(lambda e: e["type"] == "worker-heartbeat", "a worker heartbeat")
        return self

    def __exit__(self, *exc: object) -> None:
        self.receiver.should_stop = True
        self.thread.join(10)
        self.receiver.connection.release()

    def _capture(self) -> None:
        # wakeup=False: no heartbeat request, which workers take for a monitor asking.
        self.receiver.capture(limit=None, timeout=None, wakeup=False)

    def _record(self, event: dict[str, Any]) -> None:
        if event.get("hostname") == self.hostname:
            with self.lock:
                self.events.append(event)

    def of(self, call_id: str) -> list[str]:
        with self.lock:
            return [e["type"] for e in self.events if e.get("uuid") == call_id]

    def wait_for(self, match: Callable[[dict[str, Any]], bool], what: str) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with self.lock:
                if any(match(e) for e in self.events):
                    return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; got {self.events[-5:]}")

    def wait_for_call(self, call_id: str) -> None:
        self.wait_for(
            lambda e: e.get("uuid") == call_id and e["type"] == "task-succeeded",
            f"the events of call {call_id}",
        )


@pytest.fixture
def app() -> Iterator[CommissaireCelery]:
    yield create_app(load_settings(), services=())


def state(app: CommissaireCelery, worker: WorkerProcess) -> dict[str, Any]:
    return task_events_state(app, [worker.hostname], timeout_s=2)[worker.hostname]


def wait_until(check: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def add(x: int, y: int) -> str:
    """Call ``simple.add``; return the call id once it answered."""
    call = bus.send("simple.add", x, y)
    assert call.get() == x + y
    return str(call.id)


def settle(app: CommissaireCelery, worker: WorkerProcess) -> None:
    """Wait until the worker is done with its calls (the caller has its answer earlier)."""
    inspect = app.control.inspect(destination=[worker.hostname], timeout=2)
    wait_until(lambda: (inspect.active() or {}).get(worker.hostname) == [], "no active call")


def test_task_events_stay_off_until_a_monitor_asks_and_stop_after_the_quiet_period(
    app: CommissaireCelery, worker_factory: Callable[..., WorkerProcess]
) -> None:
    worker = worker_factory(
        queues=["simple"], services=SERVICES, env={"COMMISSAIRE_EVENTS_QUIET_S": "3"}
    )
    with EventRecorder(app, worker.hostname) as events:
        unseen = add(1, 2)
        settle(app, worker)
        assert state(app, worker) == {"mode": "demand", "on": False, "off_in_s": None}

        replies = app.control.enable_events(destination=[worker.hostname], reply=True, timeout=2)
        assert replies == [{worker.hostname: {"ok": "task events enabled"}}]
        seen = add(2, 3)
        events.wait_for_call(seen)
        assert events.of(seen) == ["task-received", "task-started", "task-succeeded"]
        assert events.of(unseen) == []
        now = state(app, worker)
        assert now["on"] is True and 0 < now["off_in_s"] <= 3

        wait_until(lambda: not state(app, worker)["on"], "the quiet period to end")
        after_quiet = add(3, 4)
        settle(app, worker)
        report = collect_status(app, [registry.get(SimpleService.name)])  # asks, as Flower does
        assert report.services_without_worker == []
        assert state(app, worker)["on"] is True
        marker = add(4, 5)
        events.wait_for_call(marker)
        assert events.of(after_quiet) == []

        app.control.disable_events(destination=[worker.hostname], reply=True, timeout=2)
        assert state(app, worker)["on"] is False
        collect_status(app, [registry.get(SimpleService.name)], ask_for_events=False)
        assert state(app, worker)["on"] is False  # `status --no-task-events`, for health checks
        # A receiver that starts listening asks for a heartbeat (Flower, `celery events`).
        app.control.heartbeat(destination=[worker.hostname])
        wait_until(lambda: state(app, worker)["on"], "the heartbeat request to turn them on")
        events.wait_for_call(add(6, 7))
    log = worker.log()
    assert "Task events off: no monitor asked for 3 s" in log
    assert "Task events on: requested by enable_events" in log
    assert "Task events off: disable_events requested" in log
    assert "Task events on: requested by heartbeat" in log


def test_a_worker_started_beside_workers_a_monitor_watches_sends_task_events_at_once(
    app: CommissaireCelery, worker_factory: Callable[..., WorkerProcess]
) -> None:
    watched = worker_factory(queues=["simple"], services=SERVICES)
    app.control.enable_events(destination=[watched.hostname], reply=True, timeout=2)
    newcomer = worker_factory(queues=["simple"], services=SERVICES)
    wait_until(lambda: state(app, newcomer)["on"], "the newcomer to follow the watched worker")
    # For as long as the watched worker's quiet period lasts, not a fresh one.
    watched_left = state(app, watched)["off_in_s"]
    assert 0 < state(app, newcomer)["off_in_s"] <= watched_left + 1
    assert f"Task events on: {watched.hostname} has them on" in newcomer.log()


@pytest.mark.rabbitmq
def test_on_rabbitmq_task_events_come_on_request_and_go_after_the_quiet_period(
    rabbitmq_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    settings = load_settings().replace(broker_url=rabbitmq_url, result_backend=redis_server.url)
    rabbit = create_app(settings, services=())
    worker = WorkerProcess(
        broker_url=rabbitmq_url,
        result_backend=redis_server.url,
        queues=["simple"],
        env={"COMMISSAIRE_SERVICES": SERVICES, "COMMISSAIRE_EVENTS_QUIET_S": "2"},
        log_dir=tmp_path,
    )
    caller = Bus(rabbit)
    with worker, EventRecorder(rabbit, worker.hostname) as events:
        assert state(rabbit, worker)["on"] is False
        rabbit.control.enable_events(destination=[worker.hostname], reply=True, timeout=2)
        call = caller.send("simple.add", 1, 1)
        assert call.get() == 2
        events.wait_for_call(str(call.id))
        wait_until(lambda: not state(rabbit, worker)["on"], "the quiet period to end")
    assert "Task events off: no monitor asked for 2 s" in worker.log()


class _Dispatcher:
    def __init__(self, groups: set[str] | None = None) -> None:
        self.groups = {"worker"} if groups is None else groups
        self.sent: list[str] = []

    def send(self, type: str, **fields: Any) -> None:  # noqa: A002 - Celery's name
        self.sent.append(type)


class _Consumer:
    """What a worker's consumer offers the step and the control commands."""

    def __init__(self, mode: str, groups: set[str] | None = None) -> None:
        settings = load_settings().replace(task_events=mode, events_quiet_s=5)
        self.app = create_app(settings, services=())  # on the session's broker
        self.hostname = "unit@test"  # asks the session's workers (none here) about theirs
        self.event_dispatcher = _Dispatcher(groups)
        self.timer = SimpleNamespace(call_repeatedly=lambda *a: SimpleNamespace(cancel=None))


def control(command: str, consumer: _Consumer) -> Any:
    """Run a remote-control command's handler as the worker's pidbox does."""
    return Panel.data[command](SimpleNamespace(consumer=consumer))


def test_mode_on_leaves_celery_sending_every_event_and_off_refuses_every_request() -> None:
    always = _Consumer("on", groups=set())  # worker_send_task_events: every group
    TaskEventsOnDemand(always).start(always)
    assert control("task_events", always) == {"mode": "on", "on": True, "off_in_s": None}

    never = _Consumer("off")
    TaskEventsOnDemand(never).start(never)
    assert control("enable_events", never) == {
        "ok": "task events stay off on this worker (COMMISSAIRE_TASK_EVENTS=off)"
    }
    control("heartbeat", never)
    assert never.event_dispatcher.sent == ["worker-heartbeat"]  # Celery's handler still ran
    assert never.event_dispatcher.groups == {"worker"}
    assert control("task_events", never) == {"mode": "off", "on": False, "off_in_s": None}

    asked = _Consumer("demand")
    TaskEventsOnDemand(asked).start(asked)
    assert control("enable_events", asked) == {"ok": "task events enabled"}
    assert asked.event_dispatcher.groups == {"worker", "task"}
    assert control("task_events", asked)["off_in_s"] == 5


def test_the_quiet_period_restarts_with_every_request_and_survives_a_new_dispatcher() -> None:
    now = [100.0]
    demand = EventsOnDemand("demand", quiet_s=10, clock=lambda: now[0])
    demand.attach(_Dispatcher())
    assert demand.requested("enable_events")
    now[0] = 108.0
    demand.requested("enable_events")
    now[0] = 117.0
    demand.expire()
    assert demand.dispatcher.groups == {"worker", "task"}
    reconnected = _Dispatcher()  # the consumer builds a new one after a reconnection
    demand.attach(reconnected)
    assert reconnected.groups == {"worker", "task"}
    now[0] = 118.0
    demand.expire()
    assert reconnected.groups == {"worker"} and demand.describe()["on"] is False
