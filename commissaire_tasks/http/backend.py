"""What the routes reach the services through: the storage client and the bus, by name.

Routes never import a service class: storage is called through
:class:`~commissaire_tasks.storage.client.StorageClient` (``storage.*``), the
cluster operations through ``clusterexec.*`` and the container managers through
``container.*``, all by routing key. The functions of the route modules are
plain blocking code taking a :class:`Backend`; the routes run them with
:meth:`Backend.run`, off the event loop (see :mod:`.calls`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..bus import Bus
from ..errors import StorageLookupError
from ..models import Model
from ..storage.client import StorageClient
from .calls import DEFAULT_MAX_THREADS, Calls
from .errors import NotFound

__all__ = ["Backend"]

M = TypeVar("M", bound=Model)
T = TypeVar("T")


class Backend:
    """The bus, a storage client over it and the thread pool calls run in.

    Args:
        bus: The bus to call through (the environment's default app when None).
        timeout: Seconds each bus call waits (the app's default when None).
        max_threads: Bus calls in flight at once.
    """

    def __init__(
        self,
        bus: Bus | None = None,
        timeout: float | None = None,
        max_threads: int = DEFAULT_MAX_THREADS,
    ) -> None:
        self.bus = bus if bus is not None else Bus()
        self.timeout = timeout
        self.storage = StorageClient(self.bus, timeout=timeout)
        self.calls = Calls(max_threads)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(self, *args)`` in a worker thread."""
        return await self.calls.run(function, self, *args)

    def call(self, routing_key: str, *args: Any) -> Any:
        """Call a service method by routing key (blocking)."""
        return self.bus.call(routing_key, *args, timeout=self.timeout)

    def get(self, model: M, what: str | None = None) -> M:
        """The stored record ``model`` names, or NotFound saying which one."""
        try:
            return self.storage.get(model)
        except StorageLookupError as exc:
            label = what or f"{type(model).__name__} {model.primary_key!r}"
            raise NotFound(f"{label} does not exist", jsonrpc_code=exc.code) from exc

    def find(self, model: M) -> M | None:
        """The stored record ``model`` names, or None."""
        try:
            return self.storage.get(model)
        except StorageLookupError:
            return None
