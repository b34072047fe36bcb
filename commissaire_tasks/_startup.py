"""What a worker does before it consumes: read service config, refuse bad config.

``celery -A ... worker`` gains ``--config-file``: the JSON file the hosted
services read (as the original's ``--config-file``). Each hosted service's
``check_config(config)`` runs here, so a bad config stops the worker at start
with a clear ConfigurationError instead of failing its first call.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from celery import Celery, bootsteps

from ._registry import registry
from ._tasks import instances
from .config import read_config_file

logger = logging.getLogger(__name__)


class ServiceStartup(bootsteps.Step):  # type: ignore[misc]
    """Worker bootstep: configure service instances and check their config."""

    label = "commissaire services"

    def __init__(self, worker: Any, config_file: str | None = None, **options: Any) -> None:
        super().__init__(worker, **options)
        if config_file:
            instances.configure(config_file=config_file)
        config = read_config_file(instances.options.get("config_file"))
        for name in hosted_services(worker.app):
            spec = registry.get(name)
            spec.cls.check_config(config)
            logger.info("Serving %s from %s", spec.name, spec.import_path)


def hosted_services(app: Celery) -> list[str]:
    """Names of the services whose queues this worker consumes."""
    consumed = app.amqp.queues.consume_from
    queues = set(consumed) if consumed is not None else set(app.amqp.queues)
    return sorted(
        {
            task.service_name
            for task in app.tasks.values()
            if getattr(task, "queue_name", None) in queues and task.service_name
        }
    )


def install(app: Celery) -> None:
    """Add the step and the ``--config-file`` worker option to ``app``."""
    app.steps["worker"].add(ServiceStartup)
    app.user_options["worker"].add(
        click.Option(["--config-file"], default=None, help="JSON config file the services read")
    )
