"""The bare Celery tasks the framework is compared with: same work, no framework.

Two apps, each defining ``bare.add`` and ``bare.echo`` as plain ``@app.task``
functions, so the only difference from ``simple.add`` / ``my.echo`` is the
framework itself:

* ``identical``: a plain :class:`~celery.Celery` with exactly the settings the
  framework's apps start from (:func:`commissaire_tasks.app.celery_config`), its
  own queue ``bare`` declared as the framework declares a service's queue, and
  the framework's generated ``task_routes`` (taken from a framework app's
  config), so a call is routed and published exactly as the framework's is;
* ``default``: ``Celery(broker=..., backend=...)`` and nothing else: what a user
  who sets nothing up gets (queue ``celery``).

Worker subprocesses find them with ``celery -A bench.bare_tasks:identical``; the
apps are built on first attribute access from ``$BENCH_BROKER_URL`` and
``$BENCH_RESULT_BACKEND``, so importing this module connects nowhere, and no
framework app is ever built in a bare worker (its process-wide signal handlers,
e.g. the framework's call logging, would make the worker less than bare).
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

from commissaire_tasks.app import celery_config, create_app
from commissaire_tasks.config import Settings
from commissaire_tasks.routing import QueueSpec

__all__ = ["BARE_QUEUE", "add", "default_app", "echo", "identical_app"]

#: Environment variables a worker subprocess reads its broker and backend from.
ENV_BROKER_URL = "BENCH_BROKER_URL"
ENV_RESULT_BACKEND = "BENCH_RESULT_BACKEND"
#: The bare-identical app's queue (the bare-default app uses Celery's ``celery``).
BARE_QUEUE = "bare"


def add(x: Any, y: Any) -> Any:
    """The work of ``simple.add``."""
    return x + y


def echo(words: Any) -> Any:
    """The work of ``my.echo``."""
    return words


def _register(app: Celery) -> Celery:
    app.task(name="bare.add")(add)
    app.task(name="bare.echo")(echo)
    return app


def identical_app(
    broker_url: str, result_backend: str | None = None, *, client: bool = True
) -> Celery:
    """A plain Celery app configured, queued and routed exactly as the framework's apps.

    Args:
        client: Copy the framework's generated routes (callers need them). A worker
            never routes, and building a framework app would connect the
            framework's process-wide signal handlers, so workers pass False.
    """
    # Celery's own Redis result backend: the lean one (the framework's default) is ours.
    settings = Settings(broker_url=broker_url, result_backend=result_backend or "pubsub")
    app = Celery("bare_identical", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.conf.task_queues = [QueueSpec.default_for(BARE_QUEUE).to_kombu(settings.exchange)]
    if client:
        routing = create_app(settings, services=())
        routing.router.add_service(BARE_QUEUE)  # routed before any bare worker bound its queue
        app.conf.task_routes = routing.conf.task_routes
    return _register(app)


def default_app(
    broker_url: str, result_backend: str | None = None, *, client: bool = True
) -> Celery:
    """Celery with its defaults: only the broker and the result backend are given."""
    backend = result_backend or broker_url
    return _register(
        Celery("bare_default", broker=broker_url, backend=backend, set_as_current=False)
    )


_FACTORIES = {"identical": identical_app, "default": default_app}
_built: dict[str, Celery] = {}


def __getattr__(name: str) -> Celery:
    """``identical`` and ``default``: the apps a worker subprocess serves (built once)."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _built:
        broker = os.environ[ENV_BROKER_URL]
        _built[name] = factory(broker, os.environ.get(ENV_RESULT_BACKEND) or None, client=False)
    return _built[name]
