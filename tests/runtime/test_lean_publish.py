"""The lean publish path pushes the very message Celery's path builds, a Celery worker
serves it, and every call the lean path does not cover still takes Celery's path."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import celery
import pytest
from celery.signals import before_task_publish

from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.runtime.app import CommissaireCelery, create_app
from commissaire_tasks.testing import RedisServer, WorkerProcess

#: What differs between any two messages: ids, delivery tags, the sending process.
VARYING = {"headers": ("id", "root_id", "origin"), "properties": ("correlation_id", "delivery_tag")}


@pytest.fixture
def app(redis_server: RedisServer, unique: str) -> Iterator[CommissaireCelery]:
    queue = {"name": f"simple_{unique}", "routing_key": "simple.*"}
    settings = load_settings().replace(broker_url=redis_server.url, queues=(queue,))
    app = create_app(settings, services=())
    yield app
    app.close()


@pytest.fixture
def celery_publishes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the calls Celery's own ``send_task`` published."""
    published: list[str] = []
    original = celery.Celery.send_task

    def counted(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        published.append(name)
        return original(self, name, *args, **kwargs)

    monkeypatch.setattr(celery.Celery, "send_task", counted)
    return published


def pushed(redis_server: RedisServer, queue: str) -> list[dict[str, Any]]:
    """The messages waiting on ``queue``, oldest first, their fields that vary removed."""
    messages = [json.loads(raw) for raw in reversed(redis_server.client().lrange(queue, 0, -1))]
    for message in messages:
        for part, fields in VARYING.items():
            for field in fields:
                assert message[part].pop(field)
    return messages


CALLS: dict[str, Callable[[Bus], Any]] = {
    "bus.send": lambda bus: bus.send("simple.add", 1, 2),
    "bus.notify": lambda bus: bus.notify("simple.add", 1, y=2),
    "bus.send with a record": lambda bus: bus.send("simple.add", {"address": "10.0.0.1"}, y=[]),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_a_lean_call_is_the_message_celerys_path_pushes(
    app: CommissaireCelery,
    redis_server: RedisServer,
    unique: str,
    celery_publishes: list[str],
    call: Callable[[Bus], Any],
) -> None:
    bus = Bus(app)
    call(bus)  # the first call of a queue declares it, through Celery's path
    call(bus)  # every later one is pushed directly
    assert celery_publishes == ["simple.add"]
    by_celery, lean = pushed(redis_server, f"simple_{unique}")
    assert lean == by_celery


def test_a_worker_serves_lean_calls_and_a_call_from_inside_a_call(
    app: CommissaireCelery,
    redis_server: RedisServer,
    unique: str,
    celery_publishes: list[str],
    tmp_path: Path,
) -> None:
    worker = WorkerProcess(  # two processes: wordy_add's inner call goes to the other one
        broker_url=redis_server.url,
        app="workers.simple",
        queues=[f"simple_{unique}"],
        concurrency=2,
        log_dir=tmp_path,
        env={
            "COMMISSAIRE_QUEUES": json.dumps(
                [{"name": f"simple_{unique}", "routing_key": "simple.*"}]
            )
        },
    )
    with worker:
        bus = Bus(app)
        assert [bus.call("simple.add", n, 1, timeout=30) for n in range(5)] == [1, 2, 3, 4, 5]
        assert bus.call("simple.wordy_add", 2, 3, timeout=30) == "2 plus 3 is 5"
    assert celery_publishes == ["simple.add"]  # only the first, which declared the queue


UNCOVERED: dict[str, dict[str, Any]] = {
    "countdown": {"countdown": 0.01},
    "expiry": {"expires": 60},
    "priority": {"priority": 5},
    "custom headers": {"headers": {"trace": "abc"}},
    "a time limit": {"time_limit": 30},
}


@pytest.mark.parametrize("options", UNCOVERED.values(), ids=UNCOVERED.keys())
def test_a_call_the_lean_path_does_not_cover_takes_celerys_path(
    app: CommissaireCelery, celery_publishes: list[str], options: dict[str, Any]
) -> None:
    Bus(app).notify("simple.add", 1, 2)  # declared: the next plain call would be lean
    app.send_task("simple.add", args=[1, 2], **options)
    assert celery_publishes == ["simple.add", "simple.add"]


def test_a_receiver_of_celerys_publish_signal_sees_every_call(
    app: CommissaireCelery, celery_publishes: list[str]
) -> None:
    seen: list[str] = []

    def receive(sender: str | None = None, **_: Any) -> None:
        seen.append(str(sender))

    before_task_publish.connect(receive, weak=False)
    try:
        for _ in range(3):
            Bus(app).notify("simple.add", 1, 2)
    finally:
        before_task_publish.disconnect(receive)
    assert seen == ["simple.add"] * 3
