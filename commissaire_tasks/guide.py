"""The original guide's forms, as thin adapters over the primary API.

The primary API calls with :mod:`commissaire_tasks.bus` (``bus.call``), runs with
``celery -A <module> worker`` on a :func:`~commissaire_tasks.worker.service_app`
line, and subscribes with ``@on_storage_change``. The guide
("Writing a Commissaire Service") wrote the same things differently; those forms
live here, together, each a few lines over the primary path:

* the constructor's broker arguments ``exchange_name``, ``connection_url`` and
  ``qkwargs`` (:class:`GuideService`, which ``CommissaireService`` inherits);
* ``self.request(routing_key, params=...)`` returning the JSON-RPC envelope
  ``{"jsonrpc": "2.0", "id", "result"}`` and ``self.notify(routing_key, params=...)``;
* ``Service(...).run()`` (:func:`run_service`: one foreground process, solo pool);
* ``ServiceManager(service_class=..., process_count=N, ...).run()`` (a prefork worker).

Every call still leaves through the one publish path (``runtime.publish``), and
every run through :func:`~commissaire_tasks.worker.run_worker`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .bus import Bus, Params
from .config import check_pool, load_settings
from .errors import ConfigurationError
from .worker import run_worker

if TYPE_CHECKING:
    from .service import CommissaireService

__all__ = ["GuideService", "ServiceManager", "bus_for", "run_service"]


class GuideService:
    """The guide's side of ``CommissaireService``: broker arguments, request/notify, run()."""

    bus: Bus
    config_file: str | None

    def __init__(
        self,
        exchange_name: str | None = None,
        connection_url: str | None = None,
        qkwargs: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        #: The guide's broker arguments; ``None`` means the environment's settings.
        self.exchange_name = exchange_name
        self.connection_url = connection_url
        #: The guide's queue definitions; empty means the service's default queues.
        self.qkwargs = list(qkwargs or [])

    def request(
        self, routing_key: str, params: Params = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """``bus.call`` answering ``{"jsonrpc": "2.0", "id", "result"}``, as the guide's did."""
        return self.bus.request(routing_key, params=params, timeout=timeout)

    def notify(self, routing_key: str, params: Params = None) -> None:
        """``bus.notify`` with the guide's JSON-RPC ``params`` (a list or an object)."""
        self.bus.notify(routing_key, params=params)

    def run(self, loglevel: str = "INFO") -> int:
        """Serve this service in one foreground process (solo pool), for debugging."""
        return run_service(self, loglevel=loglevel)  # type: ignore[arg-type]


def bus_for(exchange_name: str | None, connection_url: str | None) -> Bus:
    """The default bus, or one bound to the guide's broker and exchange."""
    if exchange_name is None and connection_url is None:
        return Bus()
    from .runtime.app import create_app

    settings = load_settings().replace(exchange=exchange_name, broker_url=connection_url)
    return Bus(create_app(settings, services=()))


def run_service(instance: CommissaireService, loglevel: str = "INFO") -> int:
    """Serve calls with ``instance`` itself, in this process (solo pool)."""
    return run_worker(
        type(instance),
        pool="solo",
        exchange_name=instance.exchange_name,
        connection_url=instance.connection_url,
        qkwargs=instance.qkwargs,
        config_file=instance.config_file,
        loglevel=loglevel,
        instance=instance,
    )


class ServiceManager:
    """Runs ``process_count`` processes of a service (Celery's prefork pool).

    With ``pool="threads"`` (or the service's ``pool`` attribute, or
    ``COMMISSAIRE_POOL=threads``) it runs one process of ``process_count`` threads.
    """

    def __init__(
        self,
        service_class: type[CommissaireService],
        process_count: int,
        exchange_name: str | None = None,
        connection_url: str | None = None,
        qkwargs: Sequence[Mapping[str, Any]] | None = None,
        config_file: str | None = None,
        loglevel: str = "INFO",
        pool: str | None = None,
    ) -> None:
        if process_count < 1:
            raise ConfigurationError(f"process_count must be at least 1, got {process_count}")
        self.service_class = service_class
        self.process_count = process_count
        self.pool = None if pool is None else check_pool(pool, "pool")
        self.options: dict[str, Any] = {
            "exchange_name": exchange_name,
            "connection_url": connection_url,
            "qkwargs": qkwargs,
            "config_file": config_file,
            "loglevel": loglevel,
        }

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM; dead processes are replaced meanwhile."""
        return run_worker(
            self.service_class, concurrency=self.process_count, pool=self.pool, **self.options
        )
