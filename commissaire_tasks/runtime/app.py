"""Celery apps configured for the bus: JSON only, late acks, events on demand, routes generated.

:func:`create_app` builds an app from :class:`~commissaire_tasks.config.Settings`;
every service class, defined before or after, gets its tasks on it. The app's
``task_queues`` hold the default queues of the services it *hosts* (what a
worker started from it consumes when not given ``-Q``). Calls go to the queue
:class:`~commissaire_tasks.routing.Router` knows for their routing key, or else
where the broker's bindings send them (:mod:`._bindings`).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from typing import Any

from celery import Celery
from celery.app.defaults import DEFAULTS as CELERY_SETTINGS
from kombu.utils.objects import cached_property

from ..config import TASK_EVENTS_ON, Settings, load_settings
from ..routing import QueueSpec, Router
from . import batches, events, publish, startup
from ._bindings import BrokerRoutes
from .backend import is_lean_url, lean_backend
from .logs import install as install_logging
from .registry import ServiceSpec, registry
from .results import BoundedResult, with_jsonrpc_failures
from .tasks import install_service

__all__ = ["CommissaireCelery", "celery_config", "create_app", "default_app"]


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings every app of ours starts from (see README, "Configuration")."""
    transport: dict[str, Any] = {
        # A message a dead worker took is handed out again after this many seconds.
        "visibility_timeout": settings.visibility_timeout_s,
        # ...checked for every 5 s (kombu's default sweep is every 100 s).
        "unacked_restore_interval": 5,
        "unacked_restore_throttle": 1,
        "socket_connect_timeout": 5,
        "socket_keepalive": True,
    }
    results: dict[str, Any] = {
        "visibility_timeout": settings.visibility_timeout_s,
        # How long a caller's reply list outlives its caller (lean result path).
        "reply_expires": settings.reply_expires_s,
    }
    if settings.sentinel_master:  # Redis Sentinel: the master's name, for broker and results
        transport["master_name"] = results["master_name"] = settings.sentinel_master
    return {
        "broker_url": settings.broker_url,
        "result_backend": settings.backend_url,
        # JSON only, everywhere: no pickle is ever produced or accepted.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        # Nothing accepted is lost: ack after running, requeue when a process dies.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 4,
        "broker_transport_options": transport,
        "result_backend_transport_options": results,
        "broker_connection_retry_on_startup": True,
        "broker_connection_max_retries": None,
        "redis_socket_connect_timeout": 5,
        "redis_retry_on_timeout": True,
        "redis_backend_health_check_interval": 10,
        "result_expires": settings.result_expires_s,
        # Task events while a monitor asks (:mod:`.events`); COMMISSAIRE_TASK_EVENTS=on sends
        # them always, with the callers' "sent" events too.
        "worker_send_task_events": settings.task_events == TASK_EVENTS_ON,
        "task_send_sent_event": settings.task_events == TASK_EVENTS_ON,
        # Unknown queues are an error, never silently created.
        "task_create_missing_queues": False,
        "task_default_exchange": settings.exchange,
        "task_default_exchange_type": "topic",
        "worker_consumer": "commissaire_tasks.runtime.consumer:Consumer",
        "worker_hijack_root_logger": True,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "broker_channel_error_retry": True,
        "enable_utc": True,
        **({"worker_pool": settings.pool} if settings.pool else {}),
    }


class CommissaireCelery(Celery):  # type: ignore[misc]
    """A Celery app whose result backend stores failures as JSON-RPC error objects.

    On Redis it also stores each result in one round trip (:mod:`.results`), on the
    lean result path delivers it to the caller's reply list in that same trip
    (:mod:`.backend`, the default), and reuses one Redis client per broker channel
    (:mod:`.transport`).
    """

    amqp_cls = "commissaire_tasks.runtime.transport:AMQP"

    settings: Settings
    router: Router
    #: Routes for keys the router does not know, by the broker's bindings
    broker_routes: BrokerRoutes
    #: queue name -> the service served from it
    service_queues: dict[str, str]
    #: The app's route: ``route_call(name, args, kwargs, options)`` (Celery's router calls it)
    route_call: Any

    #: Calls carry the backend's ``reply_to`` (the lean result path's reply list).
    replies_to_lists = True

    def _get_backend(self) -> Any:
        from celery.app import backends

        configured = self.backend_cls or self.conf.result_backend
        if is_lean_url(configured):
            return lean_backend(app=self, url=configured)
        backend_cls, url = backends.by_url(
            self.backend_cls or self.conf.result_backend, self.loader
        )
        return with_jsonrpc_failures(backend_cls)(app=self, url=url)

    def send_task(
        self,
        name: str,
        args: Any = None,
        kwargs: Any = None,
        **options: Any,
    ) -> Any:
        """Every call's one way out (bus, ``.delay()``, notifier): see :mod:`.publish`."""
        reply_to = getattr(self.backend, "reply_to", None)
        if reply_to is not None and not options.get("reply_to"):
            options["reply_to"] = reply_to
        return publish.send(self, super().send_task, name, args, kwargs, options)

    @cached_property
    def AsyncResult(self) -> type[BoundedResult]:  # noqa: N802 - Celery's name
        return self.subclass_with_self(BoundedResult)  # type: ignore[no-any-return]


class _ServiceInstaller:
    """Puts every registered service's tasks on one app; tracks the hosted queues."""

    def __init__(self, app: CommissaireCelery, hosted: Iterable[type[Any]] | None) -> None:
        self.app = app
        self.host_all = hosted is None
        self.hosted = set(hosted or ())

    def __call__(self, spec: ServiceSpec) -> None:
        self.app.router.add_service(spec.name)
        for queue in spec.queues(self.app.settings):
            install_service(self.app, spec, queue)
        if self.host_all or spec.cls in self.hosted:
            host_queue(self.app, spec.default_queue)


def host_queue(app: CommissaireCelery, queue: QueueSpec) -> None:
    """Make ``queue`` one that a worker of ``app`` consumes by default."""
    kombu_queue = queue.to_kombu(app.settings.exchange, app.settings.queue_type)
    amqp = app.__dict__.get("amqp")
    if amqp is not None and "queues" in amqp.__dict__:  # already built from task_queues
        amqp.queues.add(kombu_queue)
        return
    queues = list(app.conf.task_queues or ())
    if all(q.name != kombu_queue.name for q in queues):
        app.conf.task_queues = [*queues, kombu_queue]


def create_app(
    settings: Settings | None = None,
    *,
    services: Iterable[type[Any]] | None = None,
    main: str = "commissaire_tasks",
) -> CommissaireCelery:
    """Build an app for ``settings`` (the environment by default).

    Args:
        settings: Broker, exchange and timeouts; :func:`load_settings` when omitted.
        services: The service classes this app hosts (their queues are the
            worker's defaults); every defined service when omitted.
        main: The app's name, shown by Celery and Flower.
    """
    settings = settings or load_settings()
    app = CommissaireCelery(main, set_as_current=False)
    app.conf.update(celery_config(settings))
    app.settings = settings
    app.service_queues = {}
    app.router = Router(QueueSpec.from_kwargs(q) for q in settings.queues)
    app.broker_routes = BrokerRoutes(app)
    app.conf.task_queues = [
        spec.to_kombu(settings.exchange, settings.queue_type) for spec in _configured(settings)
    ]
    app.route_call = _route_for(app)
    app.conf.task_routes = (app.route_call,)
    startup.install(app)
    events.install(app)
    batches.install(app)
    install_logging(app)
    installer = _ServiceInstaller(app, services)
    app._commissaire_installer = installer  # keeps the registry's weak reference alive
    registry.subscribe(installer, installer.__call__)
    return app


def _configured(settings: Settings) -> list[QueueSpec]:
    return [QueueSpec.from_kwargs(q) for q in settings.queues]


def _route_for(app: CommissaireCelery) -> Any:
    def route(name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any) -> Any:
        if name.startswith("celery.") or options.get("queue"):
            return None
        spec = app.router.known(name)
        if spec is None:
            return app.broker_routes.route(name)
        # Straight to the queue the topic exchange would pick (it stays bound there):
        # no binding lookup per call, and a message restored after a crash finds its
        # queue again (kombu's Redis transport can lose topic-routed restores).
        return {
            "queue": spec.to_kombu(app.settings.exchange, app.settings.queue_type),
            "exchange": "",
            "routing_key": spec.name,
        }

    return route


_default_app: CommissaireCelery | None = None
_default_lock = threading.Lock()


def default_app() -> CommissaireCelery:
    """The app configured from the environment, shared by this process."""
    global _default_app
    if _default_app is None:
        with _default_lock:
            if _default_app is None:
                _default_app = create_app()
                _apply_user_config(_default_app)
    return _default_app


def _apply_user_config(app: CommissaireCelery) -> None:
    """Apply a ``celeryconfig`` module on the import path, as Celery users expect."""
    try:
        module = importlib.import_module("celeryconfig")
    except ModuleNotFoundError as exc:
        if exc.name != "celeryconfig":
            raise
        return
    app.conf.update({k: v for k, v in vars(module).items() if k in CELERY_SETTINGS})
