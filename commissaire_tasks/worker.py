"""Running services: a Celery worker on the services' queues.

The primary way is ``celery -A <module> worker`` on a module with a
:func:`service_app` line (or ``celery -A commissaire_tasks worker -Q simple -c 3``);
:func:`run_worker` is the same worker started from Python. The guide's
``ServiceManager(...).run()`` and ``MyService(...).run()`` are adapters over
:func:`run_worker`, in :mod:`commissaire_tasks.guide`.

The pool is the one asked for by argument, else ``COMMISSAIRE_POOL``, else the
service class's ``pool`` attribute, else prefork (:func:`pool_for`). Under the
threads pool the threads share the process's one instance of the service (see
:class:`~commissaire_tasks.service.CommissaireService`).

All stop cleanly on SIGINT/SIGTERM: the running call finishes, queued calls stay
in the broker. This module imports the service module for type checking only.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .config import DEFAULT_POOL, Settings, check_pool, load_settings
from .runtime.app import CommissaireCelery, create_app, host_queue
from .runtime.registry import registry
from .runtime.tasks import install_service, instances

if TYPE_CHECKING:
    from .service import CommissaireService

__all__ = ["pool_for", "run_worker", "service_app"]


def pool_for(
    service_classes: Sequence[type[CommissaireService]],
    settings: Settings,
    given: str | None = None,
) -> str:
    """The worker pool: ``given``, else the settings', else the one every class asks for."""
    if given is not None:
        return check_pool(given, "pool")
    if settings.pool is not None:
        return settings.pool
    asked = {getattr(cls, "pool", None) for cls in service_classes}
    if len(asked) == 1 and None not in asked:
        return str(asked.pop())
    return DEFAULT_POOL  # none asked, or they disagree: the safe default


def service_app(*service_classes: type[CommissaireService]) -> CommissaireCelery:
    """An app hosting ``service_classes``: ``celery -A <module> worker`` serves just them.

    Its workers use the pool :func:`pool_for` picks, unless ``-P`` names another.
    """
    app = create_app(services=service_classes)
    pool = pool_for(service_classes, app.settings)
    if pool != DEFAULT_POOL:
        app.conf.worker_pool = pool
    return app


def run_worker(
    service_class: type[CommissaireService],
    *,
    concurrency: int = 1,
    pool: str | None = None,
    exchange_name: str | None = None,
    connection_url: str | None = None,
    qkwargs: Sequence[Mapping[str, Any]] | None = None,
    config_file: str | None = None,
    loglevel: str = "INFO",
    instance: CommissaireService | None = None,
) -> int:
    """Serve ``service_class`` in a Celery worker until it is stopped; return its exit code.

    ``concurrency`` is the number of pool processes (threads, under ``pool="threads"``).
    """
    settings = load_settings().replace(exchange=exchange_name, broker_url=connection_url)
    pool = pool_for([service_class], settings, pool)
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
