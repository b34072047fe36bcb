"""The systems compared: the framework and bare Celery, each a client plus a worker.

Each system knows how its worker is started (``celery -A ...`` arguments and
environment) and how a client makes the five kinds of call the bench times:
a waiting ``add``, a sent-then-collected ``add``, a fire-and-forget ``add``, a
waiting ``echo`` of a payload and a batch of ``add`` calls awaited together. The
work done is the same everywhere (``x + y``, return the words); only the code
around it differs.
"""

from __future__ import annotations

from typing import Any, Protocol

from celery import Celery
from celery.result import ResultSet

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import (
    ENV_BROKER_URL,
    ENV_RESULT_BACKEND,
    ENV_TASK_EVENTS,
    Settings,
)

from . import bare_tasks

__all__ = [
    "BARE_DEFAULT",
    "BARE_IDENTICAL",
    "FRAMEWORK",
    "FRAMEWORK_QUIET",
    "CelerySystem",
    "FrameworkSystem",
    "System",
    "build_systems",
]

#: System keys, as used in the JSON results.
FRAMEWORK = "framework"
BARE_IDENTICAL = "bare_identical"
BARE_DEFAULT = "bare_default"
#: The framework with COMMISSAIRE_TASK_EVENTS=off (what Flower's live view costs).
FRAMEWORK_QUIET = "framework_quiet"
#: Suffix of the same system with RabbitMQ as its broker (results still in Redis).
RABBITMQ_SUFFIX = "_rabbitmq"


class System(Protocol):
    """What the bench needs from a system under test."""

    key: str
    label: str
    app: Celery
    broker_url: str
    #: ``-A`` argument of its worker, queues to consume (empty: the app's defaults).
    worker_app: str
    worker_queues: tuple[str, ...]
    #: The queue ``add`` calls land in (purged between phases, loaded for the drain).
    add_queue: str
    #: Every queue its calls may land in.
    queues: tuple[str, ...]

    def worker_env(self) -> dict[str, str]: ...
    def call_add(self) -> Any: ...
    def send_add(self) -> Any: ...
    def collect(self, result: Any) -> Any: ...
    def notify_add(self) -> None: ...
    def call_echo(self, words: Any) -> Any: ...
    def call_batch(self, count: int) -> list[Any]: ...
    def close(self) -> None: ...


class FrameworkSystem:
    """``commissaire_tasks.bus`` calling ``simple.add`` / ``my.echo`` on ``workers.simple``."""

    worker_app = "workers.simple"
    worker_queues: tuple[str, ...] = ()
    add_queue = "simple"
    queues: tuple[str, ...] = ("simple", "my")

    def __init__(
        self,
        key: str,
        label: str,
        broker_url: str,
        result_backend: str | None,
        timeout_s: float,
        task_events: bool = True,
    ) -> None:
        self.key = key
        self.label = label
        self.broker_url = broker_url
        self.result_backend = result_backend
        self.timeout_s = timeout_s
        self.task_events = task_events
        settings = Settings(
            broker_url=broker_url,
            result_backend=result_backend,
            call_timeout_s=timeout_s,
            task_events="demand" if task_events else "off",  # the default, or never
        )
        self.app = create_app(settings, services=())
        for service in self.queues:  # known without the broker's bindings: no worker has run yet
            self.app.router.add_service(service)
        self.bus = Bus(self.app)

    def worker_env(self) -> dict[str, str]:
        env = {ENV_BROKER_URL: self.broker_url}
        if self.result_backend:
            env[ENV_RESULT_BACKEND] = self.result_backend
        if not self.task_events:
            env[ENV_TASK_EVENTS] = "off"
        return env

    def call_add(self) -> Any:
        return self.bus.call("simple.add", 1, 2, timeout=self.timeout_s)

    def send_add(self) -> Any:
        return self.bus.send("simple.add", 1, 2)

    def collect(self, result: Any) -> Any:
        return result.get(timeout=self.timeout_s)

    def notify_add(self) -> None:
        self.bus.notify("simple.add", 1, 2)

    def call_echo(self, words: Any) -> Any:
        return self.bus.call("my.echo", words, timeout=self.timeout_s)

    def call_batch(self, count: int) -> list[Any]:
        return self.bus.call_many("simple.add", [[1, 2]] * count, timeout=self.timeout_s)

    def close(self) -> None:
        self.app.close()


class CelerySystem:
    """A bare Celery app from :mod:`bench.bare_tasks`, called with ``send_task``."""

    def __init__(
        self,
        key: str,
        label: str,
        flavour: str,
        broker_url: str,
        result_backend: str | None,
        timeout_s: float,
    ) -> None:
        self.key = key
        self.label = label
        self.broker_url = broker_url
        self.result_backend = result_backend
        self.timeout_s = timeout_s
        factory = bare_tasks.identical_app if flavour == "identical" else bare_tasks.default_app
        self.app: Celery = factory(broker_url, result_backend)
        self.worker_app = f"bench.bare_tasks:{flavour}"
        queue = bare_tasks.BARE_QUEUE if flavour == "identical" else "celery"
        self.worker_queues: tuple[str, ...] = (queue,) if flavour == "identical" else ()
        self.add_queue = queue
        self.queues: tuple[str, ...] = (queue,)

    def worker_env(self) -> dict[str, str]:
        env = {bare_tasks.ENV_BROKER_URL: self.broker_url}
        if self.result_backend:
            env[bare_tasks.ENV_RESULT_BACKEND] = self.result_backend
        return env

    def call_add(self) -> Any:
        return self.app.send_task("bare.add", args=[1, 2]).get(timeout=self.timeout_s)

    def send_add(self) -> Any:
        return self.app.send_task("bare.add", args=[1, 2])

    def collect(self, result: Any) -> Any:
        return result.get(timeout=self.timeout_s)

    def notify_add(self) -> None:
        self.app.send_task("bare.add", args=[1, 2], ignore_result=True)

    def call_echo(self, words: Any) -> Any:
        return self.app.send_task("bare.echo", args=[words]).get(timeout=self.timeout_s)

    def call_batch(self, count: int) -> list[Any]:
        """The best bare Celery has: send all, then one ``join_native`` (as ``group`` does)."""
        sent = [self.app.send_task("bare.add", args=[1, 2]) for _ in range(count)]
        return ResultSet(sent, app=self.app).join_native(timeout=self.timeout_s)  # type: ignore[no-any-return]

    def close(self) -> None:
        self.app.close()


def build_systems(
    broker_url: str, result_backend: str | None, timeout_s: float, suffix: str = ""
) -> list[System]:
    """The three systems on one broker; ``suffix`` tells variants on another broker apart."""
    where = " (RabbitMQ)" if suffix == RABBITMQ_SUFFIX else ""
    return [
        FrameworkSystem(
            FRAMEWORK + suffix, "framework" + where, broker_url, result_backend, timeout_s
        ),
        CelerySystem(
            BARE_IDENTICAL + suffix,
            "bare-identical" + where,
            "identical",
            broker_url,
            result_backend,
            timeout_s,
        ),
        CelerySystem(
            BARE_DEFAULT + suffix,
            "bare-default" + where,
            "default",
            broker_url,
            result_backend,
            timeout_s,
        ),
    ]
