"""Running services: a Celery worker on the services' queues.

The primary way is ``celery -A <module> worker`` on a module with a
:func:`service_app` line (or ``celery -A commissaire_tasks worker -Q simple -c 3``);
:func:`run_worker` is the same worker started from Python. The guide's
``ServiceManager(...).run()`` and ``MyService(...).run()`` are adapters over
:func:`run_worker`, in :mod:`commissaire_tasks.guide`.

All stop cleanly on SIGINT/SIGTERM: the running call finishes, queued calls stay
in the broker. This module imports the service module for type checking only.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .config import load_settings
from .runtime.app import CommissaireCelery, create_app, host_queue
from .runtime.registry import registry
from .runtime.tasks import install_service, instances

if TYPE_CHECKING:
    from .service import CommissaireService

__all__ = ["run_worker", "service_app"]


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
