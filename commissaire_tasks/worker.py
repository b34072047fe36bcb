"""Running services: a Celery worker on the services' queues.

Three ways, as the original offered:

* ``celery -A commissaire_tasks worker -Q simple -c 3`` (or ``celery -A workers.simple worker``);
* ``ServiceManager(service_class=MyService, process_count=3, ...).run()``: a prefork
  worker with that many processes, replacing any that dies;
* ``MyService(...).run()``: one foreground process (solo pool), for debugging.

All stop cleanly on SIGINT/SIGTERM: the running call finishes, queued calls stay
in the broker.

:mod:`commissaire_tasks.service` re-exports ``ServiceManager`` and ``service_app``, as the
guide imports them; this module imports the service module for type checking only, so
the two never import each other in a circle.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .config import load_settings
from .errors import ConfigurationError
from .runtime.app import CommissaireCelery, create_app, host_queue
from .runtime.registry import registry
from .runtime.tasks import install_service, instances

if TYPE_CHECKING:
    from .service import CommissaireService

__all__ = ["ServiceManager", "run_service", "run_worker", "service_app"]


def service_app(*service_classes: type[CommissaireService]) -> CommissaireCelery:
    """An app hosting ``service_classes``: ``celery -A <module> worker`` serves just them."""
    return create_app(services=service_classes)


def run_worker(
    service_class: type[CommissaireService],
    *,
    concurrency: int = 1,
    pool: str = "prefork",
    exchange_name: str | None = None,
    connection_url: str | None = None,
    qkwargs: Sequence[Mapping[str, Any]] | None = None,
    config_file: str | None = None,
    loglevel: str = "INFO",
    instance: CommissaireService | None = None,
) -> int:
    """Serve ``service_class`` in a Celery worker until it is stopped; return its exit code."""
    settings = load_settings().replace(exchange=exchange_name, broker_url=connection_url)
    app = create_app(settings, services=())
    spec = registry.get(service_class.name)
    queues = spec.queues(settings, qkwargs)
    for queue in queues:
        install_service(app, spec, queue)
        host_queue(app, queue)
    instances.configure(
        exchange_name=exchange_name,
        connection_url=connection_url,
        qkwargs=list(qkwargs) if qkwargs else None,
        config_file=config_file,
    )
    if instance is not None:
        instances.use(instance)
    worker = app.Worker(
        queues=[q.name for q in queues],
        concurrency=concurrency,
        pool=pool,
        loglevel=loglevel,
        hostname=f"{spec.name}-{os.getpid()}@{socket.gethostname()}",
        without_mingle=True,
        without_gossip=True,
    )
    worker.start()
    return int(worker.exitcode or 0)


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
    """Runs ``process_count`` processes of a service (Celery's prefork pool)."""

    def __init__(
        self,
        service_class: type[CommissaireService],
        process_count: int,
        exchange_name: str | None = None,
        connection_url: str | None = None,
        qkwargs: Sequence[Mapping[str, Any]] | None = None,
        config_file: str | None = None,
        loglevel: str = "INFO",
    ) -> None:
        if process_count < 1:
            raise ConfigurationError(f"process_count must be at least 1, got {process_count}")
        self.service_class = service_class
        self.process_count = process_count
        self.options: dict[str, Any] = {
            "exchange_name": exchange_name,
            "connection_url": connection_url,
            "qkwargs": qkwargs,
            "config_file": config_file,
            "loglevel": loglevel,
        }

    def run(self) -> int:
        """Serve until SIGINT/SIGTERM; dead processes are replaced meanwhile."""
        return run_worker(self.service_class, concurrency=self.process_count, **self.options)
