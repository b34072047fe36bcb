"""What a worker does before it consumes: read service config, refuse bad config.

``celery -A ... worker`` gains ``--config-file``: the JSON file the hosted
services read (as the original's ``--config-file``). Each hosted service's
``check_config(config)`` runs here, so a bad config stops the worker at start
with a clear ConfigurationError instead of failing its first call.

A worker started without ``-n`` is named ``<service>-<pid>@<host>`` instead of
Celery's ``celery@<host>``, so two workers on one host never share a node name
(remote control, Flower and ``status`` tell them apart).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import click
from celery import Celery, bootsteps, signals
from celery.utils.nodenames import default_nodename, nodesplit

from ..config import read_config_file
from . import reprs
from .registry import ServiceSpec, registry
from .tasks import instances

logger = logging.getLogger(__name__)

#: Called for every hosted service when a worker starts: ``hook(app, spec, queue)``.
StartupHook = Callable[[Celery, ServiceSpec, str], None]
_hooks: list[StartupHook] = []


def add_startup_hook(hook: StartupHook) -> None:
    """Run ``hook`` for each service a worker hosts, before it consumes (once per hook)."""
    if hook not in _hooks:
        _hooks.append(hook)


class ServiceStartup(bootsteps.Step):  # type: ignore[misc]
    """Worker bootstep: configure service instances and check their config."""

    label = "commissaire services"

    def __init__(self, worker: Any, config_file: str | None = None, **options: Any) -> None:
        super().__init__(worker, **options)
        from . import introspect

        introspect.register()  # `commissaire-tasks services`, and the different-code check
        reprs.install()  # results shown as JSON text, inherited by the pool processes
        if config_file:
            instances.configure(config_file=config_file)
        config = read_config_file(instances.options.get("config_file"))
        for name, queue in hosted_services(worker.app).items():
            spec = registry.get(name)
            spec.cls.check_config(config)
            for hook in _hooks:
                hook(worker.app, spec, queue)
            logger.info("Serving %s from queue %s (%s)", spec.name, queue, spec.import_path)


def hosted_services(app: Celery) -> dict[str, str]:
    """Service name -> the first queue this worker consumes it from."""
    consumed = app.amqp.queues.consume_from
    queues = set(consumed) if consumed is not None else set(app.amqp.queues)
    hosted: dict[str, str] = {}
    for queue, service in sorted(app.service_queues.items()):
        if queue in queues:
            hosted.setdefault(service, queue)
    return hosted


def unique_nodename(app: Celery, queues: object = None) -> str:
    """``<service>-<pid>@<host>``: the first service the worker serves, else the app's name."""
    names = _queue_names(queues) or list(app.amqp.queues)
    services = [app.service_queues[q] for q in names if q in getattr(app, "service_queues", {})]
    label = services[0] if services else (names[0] if names else str(app.main or "worker"))
    _, host = nodesplit(default_nodename(None))
    return f"{label.rpartition('.')[2]}-{os.getpid()}@{host}"


def _queue_names(queues: object) -> list[str]:
    if isinstance(queues, str):
        return [q.strip() for q in queues.split(",") if q.strip()]
    if isinstance(queues, list | tuple):
        return [str(q) for q in queues]
    return []


def _name_worker(
    sender: object = None, instance: Any = None, options: object = None, **_: object
) -> None:
    """celeryd_init: replace Celery's default ``celery@<host>`` (no ``-n`` given)."""
    app = getattr(instance, "app", None)
    if app is None or getattr(app, "_commissaire_naming", None) is not True:
        return
    if getattr(instance, "hostname", None) != default_nodename(None):
        return
    given = options.get("queues") if isinstance(options, dict) else None
    instance.hostname = unique_nodename(app, given)


def install(app: Celery) -> None:
    """Add the step and the ``--config-file`` worker option to ``app``."""
    app.steps["worker"].add(ServiceStartup)
    app._commissaire_naming = True
    signals.celeryd_init.connect(_name_worker, weak=False, dispatch_uid=f"{__name__}.name")
    app.user_options["worker"].add(
        click.Option(["--config-file"], default=None, help="JSON config file the services read")
    )
