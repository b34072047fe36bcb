"""CommissaireService: subclass it, define ``on_<method>``, and each method is a task.

::

    class SimpleService(CommissaireService):
        def on_add(self, message, x, y):
            return x + y

registers the Celery task ``simple.add`` served from queue ``simple`` (bound with
``simple.*`` on the ``commissaire`` topic exchange). ``SimpleService.add`` is
that task, so ``SimpleService.add.delay(1, 2).get()`` works from any app that
imports the class; apps that do not import it use :mod:`commissaire_tasks.bus`.

``service_app(MyService)`` is the one line a module needs for ``celery -A module worker``
(it lives in :mod:`commissaire_tasks.worker`). The guide's forms (the constructor's
``exchange_name``/``connection_url``/``qkwargs``, ``self.request``/``self.notify`` with
``params=``, ``MyService(...).run()`` and ``ServiceManager``, importable from here as
the guide imports it) are adapters kept apart in :mod:`commissaire_tasks.guide`.

The class is tagged, not wrapped: ``on_*`` methods stay plain methods that tests
call directly with a stand-in message (:mod:`commissaire_tasks.testing`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from .bus import Bus
from .config import POOLS, load_settings, read_config_file
from .errors import ServiceDefinitionError
from .guide import GuideService, ServiceManager, bus_for
from .routing import NAME_PATTERN
from .runtime.registry import EXPOSED_PREFIX, ServiceSpec, registry
from .worker import service_app

__all__ = ["CommissaireService", "ServiceManager", "service_app", "service_name_for"]


def service_name_for(class_name: str) -> str:
    """``SimpleService`` -> ``simple``, ``MyService`` -> ``my``, ``HTTPProxy`` -> ``http_proxy``."""
    base = class_name[: -len("Service")] if class_name.endswith("Service") else class_name
    base = base or class_name
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", base)
    return words.lower()


class _TaskHandle:
    """Class attribute ``Service.<method>``: the method's task on the default app."""

    def __init__(self, task_name: str) -> None:
        self.task_name = task_name

    def __get__(self, instance: Any, owner: type[Any] | None = None) -> Any:
        from .runtime.app import default_app

        return default_app().tasks[self.task_name]


class CommissaireService(GuideService):
    """Base class of every service; see the module docstring.

    Attributes:
        name: The service name (task prefix and default queue). Defaults to the
            class name in snake_case without a trailing ``Service``.
        abstract: Set to True on a base class that is not a service itself.
        config: The service's options, read from ``config_file``.
        pool: The worker pool this service asks for: ``"threads"`` for one that
            mostly waits (SSH, HTTP, storage), ``None`` for prefork. Under the
            threads pool one instance serves every thread of the process, so
            per-call state belongs in locals, not on ``self``, and what
            ``__init__`` builds must be safe to share between threads.
    """

    name: ClassVar[str] = ""
    abstract: ClassVar[bool] = True
    pool: ClassVar[str | None] = None
    #: Methods exposed on the bus: method name -> ``on_<method>`` attribute.
    __exposed__: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("abstract", False):
            return
        cls.abstract = False
        cls.name = cls.__dict__.get("name") or service_name_for(cls.__name__)
        if not isinstance(cls.name, str) or not NAME_PATTERN.match(cls.name):
            raise ServiceDefinitionError(
                f"{cls.__qualname__}: service name {cls.name!r} must match {NAME_PATTERN.pattern}"
            )
        if cls.pool is not None and cls.pool not in POOLS:
            raise ServiceDefinitionError(
                f"{cls.__qualname__}: pool {cls.pool!r} must be one of {', '.join(POOLS)}"
            )
        cls.__exposed__ = _exposed_methods(cls)
        for method in cls.__exposed__:
            _attach_handle(cls, method)
        registry.register(ServiceSpec(name=cls.name, cls=cls, methods=cls.__exposed__))

    def __init__(
        self,
        exchange_name: str | None = None,
        connection_url: str | None = None,
        qkwargs: Sequence[Mapping[str, Any]] | None = None,
        config_file: str | None = None,
        bus: Bus | None = None,
    ) -> None:
        # The guide's three broker arguments: see commissaire_tasks.guide.
        super().__init__(exchange_name, connection_url, qkwargs)
        self.config_file = config_file or load_settings().config_file
        self.config: dict[str, Any] = read_config_file(self.config_file)
        self.bus = bus if bus is not None else bus_for(exchange_name, connection_url)

    @property
    def logger(self) -> logging.Logger:
        """This service's logger; ``COMMISSAIRE_LOG_LEVEL_<NAME>`` sets its level in workers."""
        return logging.getLogger(f"commissaire_tasks.services.{self.name}")

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> None:
        """Refuse a bad config before the worker consumes (raise ConfigurationError)."""


def _exposed_methods(cls: type[CommissaireService]) -> dict[str, str]:
    exposed = {}
    for attribute in dir(cls):
        if attribute.startswith(EXPOSED_PREFIX) and callable(getattr(cls, attribute)):
            method = attribute[len(EXPOSED_PREFIX) :]
            if not NAME_PATTERN.match(method):
                raise ServiceDefinitionError(
                    f"{cls.__qualname__}.{attribute}: {method!r} is not a valid method name"
                )
            exposed[method] = attribute
    return exposed


def _attach_handle(cls: type[CommissaireService], method: str) -> None:
    existing = getattr(cls, method, None)
    if existing is not None and not isinstance(cls.__dict__.get(method), _TaskHandle):
        if not any(isinstance(k.__dict__.get(method), _TaskHandle) for k in cls.__mro__):
            raise ServiceDefinitionError(
                f"{cls.__qualname__}: on_{method} would hide attribute {method!r}; rename one"
            )
    setattr(cls, method, _TaskHandle(f"{cls.name}.{method}"))
