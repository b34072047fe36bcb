"""The one publish path: ``.delay()``, ``send_task`` and the storage notifier get the same
size check and broker error mapping as ``bus.call``, because all of them go through
``CommissaireCelery.send_task``.

The broker is a port nobody listens on: refusals must come before anything is sent,
and a publish that cannot reach the broker must be ``BrokerUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import BrokerUnavailable, PayloadTooLarge
from commissaire_tasks.models import Host
from commissaire_tasks.runtime.app import CommissaireCelery, create_app
from commissaire_tasks.storage.handlers.base import WriteOutcome
from commissaire_tasks.storage.handlers.memory import MemoryStoreHandler
from commissaire_tasks.storage.notifier import Notifier
from commissaire_tasks.testing import free_port
from workers.simple import SimpleService

LIMIT = 200
BIG = "x" * (LIMIT + 1)


@pytest.fixture
def app() -> CommissaireCelery:
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings = load_settings().replace(broker_url=url, max_payload_bytes=LIMIT)
    app = create_app(settings, services=())
    app.conf.broker_connection_timeout = 1
    app.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0.1}
    return app


def notifier(app: CommissaireCelery) -> Notifier:
    handlers = SimpleNamespace(default=SimpleNamespace(handler=MemoryStoreHandler({})))
    notifier = Notifier(handlers, Bus(app), {})
    notifier.table.subscribe({"service": "watch", "queue": "watch", "filters": [["Host", "*"]]})
    return notifier


def announce(app: CommissaireCelery, os: str = "fedora") -> int:
    host = Host.new(address="10.0.0.1", status="active", os=os)
    return notifier(app).announce(Host, WriteOutcome("created", 1, host.to_dict()))


#: Each way in, calling ``simple.add`` (or notifying ``watch``) with ``param``.
WAYS: dict[str, Callable[[CommissaireCelery, Any], Any]] = {
    "bus.call": lambda app, param: Bus(app).call("simple.add", param, 1, timeout=3),
    "bus.notify": lambda app, param: Bus(app).notify("simple.add", param, 1),
    ".delay()": lambda app, param: app.tasks[SimpleService.add.name].delay(param, 1),
    "apply_async": lambda app, param: app.tasks["simple.add"].apply_async((param, 1)),
    "send_task": lambda app, param: app.send_task("simple.add", args=[param, 1]),
    "notifier": lambda app, param: announce(app, os=param),
}


@pytest.mark.parametrize("way", list(WAYS))
def test_every_way_of_calling_refuses_oversized_parameters_before_sending(
    app: CommissaireCelery, way: str
) -> None:
    with pytest.raises(PayloadTooLarge):
        WAYS[way](app, BIG)


@pytest.mark.parametrize("way", list(WAYS))
def test_every_way_of_calling_maps_an_unreachable_broker_to_broker_unavailable(
    app: CommissaireCelery, way: str
) -> None:
    with pytest.raises(BrokerUnavailable):
        WAYS[way](app, 1)


def test_celery_s_own_tasks_pass_through_without_the_checks(app: CommissaireCelery) -> None:
    # celery.* tasks (chords, backend cleanup) are Celery's business, not calls of ours.
    with pytest.raises(Exception) as raised:
        app.send_task("celery.backend_cleanup", args=[BIG])
    assert not isinstance(raised.value, PayloadTooLarge | BrokerUnavailable)
