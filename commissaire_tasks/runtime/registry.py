"""The process-wide record of service classes: name, class and exposed methods.

Apps subscribe to it so a service defined after an app was created still gets
its tasks on that app.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ServiceDefinitionError
from ..routing import QueueSpec

if TYPE_CHECKING:
    from ..config import Settings

#: Prefix that marks a method as exposed on the bus.
EXPOSED_PREFIX = "on_"


@dataclass(frozen=True)
class ServiceSpec:
    """A service class as the bus sees it."""

    name: str
    cls: type[Any]
    #: method name (without ``on_``) -> attribute name on the class
    methods: Mapping[str, str]

    @property
    def default_queue(self) -> QueueSpec:
        return QueueSpec.default_for(self.name)

    def queues(
        self, settings: Settings, explicit: Sequence[Mapping[str, Any]] | None = None
    ) -> list[QueueSpec]:
        """The queues that serve this service: THE rule app, worker, status and ops share.

        ``explicit`` queue definitions (a runner's ``qkwargs``) replace the rule: only
        they serve it. Otherwise its default queue does, plus every configured queue
        (``COMMISSAIRE_QUEUES``) whose ``service`` names it.
        """
        if explicit:
            return [QueueSpec.from_kwargs(q) for q in explicit]
        queues = [self.default_queue]
        for kwargs in settings.queues:
            queue = QueueSpec.from_kwargs(kwargs)
            if queue.service == self.name and queue not in queues:
                queues.append(queue)
        return queues

    @property
    def import_path(self) -> str:
        return f"{self.cls.__module__}:{self.cls.__qualname__}"


Listener = Callable[[ServiceSpec], None]


class ServiceRegistry:
    """Service name -> :class:`ServiceSpec`, with listeners told of every registration."""

    def __init__(self) -> None:
        self._services: dict[str, ServiceSpec] = {}
        self._listeners: list[weakref.ref[Any] | Callable[[], Any]] = []
        self._lock = threading.RLock()

    def register(self, spec: ServiceSpec) -> None:
        """Record ``spec``; a different class under a known name is an error."""
        with self._lock:
            known = self._services.get(spec.name)
            if known is not None and not _same_definition(known.cls, spec.cls):
                raise ServiceDefinitionError(
                    f"service name {spec.name!r} is used by both {known.import_path} and "
                    f"{spec.import_path}; give one of them another `name`"
                )
            self._services[spec.name] = spec
            listeners = [ref() for ref in self._listeners]
        for listener in listeners:
            if listener is not None:
                listener(spec)

    def subscribe(self, owner: Any, listener: Listener) -> None:
        """Call ``listener`` for every service, now and later, while ``owner`` lives."""
        with self._lock:
            method = weakref.WeakMethod(listener) if hasattr(listener, "__self__") else None
            self._listeners.append(method if method is not None else (lambda: listener))
            weakref.finalize(owner, self._prune)
            services = list(self._services.values())
        for spec in services:
            listener(spec)

    def get(self, name: str) -> ServiceSpec:
        try:
            return self._services[name]
        except KeyError:
            raise ServiceDefinitionError(f"no service named {name!r} is defined") from None

    def __iter__(self) -> Iterator[ServiceSpec]:
        with self._lock:
            return iter(list(self._services.values()))

    def _prune(self) -> None:
        with self._lock:
            self._listeners = [ref for ref in self._listeners if ref() is not None]


def _same_definition(a: type[Any], b: type[Any]) -> bool:
    """True when ``b`` is ``a`` defined again (a re-import, or a script run as __main__)."""
    if a is b:
        return True
    modules = {a.__module__, b.__module__}
    return a.__qualname__ == b.__qualname__ and (len(modules) == 1 or "__main__" in modules)


#: The registry every CommissaireService subclass is recorded in.
registry = ServiceRegistry()
