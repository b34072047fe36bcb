"""One Celery task per exposed method and queue, each a plain function.

The task looks up this process's instance of the service (created lazily, after
the prefork) and calls the ``on_<method>`` with a :class:`Message` first. Wrong
parameters are refused before the method runs, with
:class:`~commissaire_tasks.errors.InvalidParams`.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init

from ..errors import InvalidParams
from ..message import Message
from ..routing import QueueSpec
from .registry import ServiceSpec

logger = logging.getLogger(__name__)


class LateAckTask(Task):  # type: ignore[misc]
    """Base of every task of ours: acknowledged after it ran, requeued when its process dies.

    So a killed worker loses no call (see README, "Guarantees").
    """

    acks_late = True
    reject_on_worker_lost = True


class ServiceTask(LateAckTask):
    """Base of every task that runs a service method."""

    #: Where the method lives, for introspection (Flower, status).
    service_name: str = ""
    method_name: str = ""
    queue_name: str = ""


class _Instances:
    """This process's instance of each service class, built on first use."""

    def __init__(self) -> None:
        self._instances: dict[type[Any], Any] = {}
        self._options: dict[str, Any] = {}
        self._given: set[type[Any]] = set()
        self._lock = threading.Lock()

    @property
    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def configure(self, **options: Any) -> None:
        """Add constructor arguments services get in this process (and its children)."""
        with self._lock:
            self._options.update({k: v for k, v in options.items() if v is not None})
            self._instances.clear()

    def use(self, instance: Any) -> None:
        """Serve calls to ``type(instance)`` with this very instance (``Service.run()``)."""
        with self._lock:
            self._instances[type(instance)] = instance
            self._given.add(type(instance))

    def forget_built(self) -> None:
        """Drop the instances built here (a forked child builds its own; given ones stay)."""
        with self._lock:
            self._instances = {c: i for c, i in self._instances.items() if c in self._given}

    def get(self, cls: type[Any]) -> Any:
        instance = self._instances.get(cls)
        if instance is None:
            with self._lock:
                instance = self._instances.get(cls)
                if instance is None:
                    instance = cls(**self._options)
                    self._instances[cls] = instance
        return instance


#: The service instances of this process.
instances = _Instances()


@worker_process_init.connect(weak=False)  # type: ignore[untyped-decorator,unused-ignore]
def _fresh_instances_after_fork(**_: Any) -> None:
    """A prefork child never serves calls with an instance its parent built."""
    instances.forget_built()


def install_service(app: Celery, spec: ServiceSpec, queue: QueueSpec) -> list[str]:
    """Register on ``app`` one task per exposed method of ``spec`` reached through ``queue``.

    The queue is recorded in ``app.service_queues`` (queue -> service) even for a
    service without methods (one that only receives notifications).
    """
    app.service_queues.setdefault(queue.name, spec.name)
    names = []
    for method, attribute in spec.methods.items():
        name = queue.task_name(method)
        if name not in app.tasks:
            runner = _make_runner(spec.cls, method, attribute, queue.name)
            register_task(app, name, runner, service=spec.name, method=method, queue=queue.name)
        names.append(name)
    return names


def register_task(
    app: Celery,
    name: str,
    runner: Callable[..., Any],
    *,
    service: str,
    method: str,
    queue: str,
    **options: Any,
) -> Task:
    """Register ``runner(task, ...)`` as task ``name`` of ``service`` on ``app``.

    The one way a task of ours is made (service methods and notification tasks), so
    every one is a late-acknowledged :class:`ServiceTask` that introspection can place.
    """
    return app.task(
        name=name,
        bind=True,
        base=ServiceTask,
        shared=False,
        service_name=service,
        method_name=method,
        queue_name=queue,
        **options,
    )(runner)


def _make_runner(cls: type[Any], method: str, attribute: str, queue: str) -> Callable[..., Any]:
    function = getattr(cls, attribute)
    check_params = _param_checker(function, f"{cls.__name__}.{attribute}")

    def run(task: Task, *args: Any, **kwargs: Any) -> Any:
        service = instances.get(cls)
        message = Message.from_task(task, method, queue)
        check_params(service, message, args, kwargs)
        return getattr(service, attribute)(message, *args, **kwargs)

    run.__name__ = f"{cls.__name__}_{attribute}"
    run.__qualname__ = f"{cls.__qualname__}.{attribute}"
    run.__doc__ = function.__doc__
    return run


def _param_checker(
    function: Callable[..., Any], label: str
) -> Callable[[Any, Message, tuple[Any, ...], Mapping[str, Any]], None]:
    signature = inspect.signature(function)

    def check(
        service: Any, message: Message, args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> None:
        try:
            signature.bind(service, message, *args, **kwargs)
        except TypeError as exc:
            raise InvalidParams(
                f"{label}: {exc}", data={"params": _describe(args, kwargs)}
            ) from None

    return check


def _describe(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Name the parameters a call got, without their values (they may be secret)."""
    return {"positional": len(args), "keyword": sorted(kwargs)}
