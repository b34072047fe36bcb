"""Storage change notifications, delivered as tasks to every subscribing service.

A service subscribes with ``StorageClient(self).register_callback(cb, Host,
NOTIFY_EVENT_CREATED)`` in its ``__init__`` or with ``@on_storage_change(Host,
NOTIFY_EVENT_CREATED)`` on a method. When its worker starts, the subscription is
sent to the storage service (durably: it waits in the ``storage`` queue if storage
is down) and kept there, so it outlives restarts. After every committed change
the storage service sends one task per matching subscribing service to that
service's queue, named ``<service>.notify.storage.<Model>.<event>`` and
addressed ``notify.storage.<Model>.<event>``, with the body
``{event, class, model, revision}`` (``model`` is the safe rendering). One of the
service's processes runs it: each subscribing service gets each change once,
late-acknowledged like any call, so a stopped or crashed subscriber gets it
when it starts again. The callback's ``message.headers["revision"]`` is the
record's revision after the change. Deliveries to different processes may
overlap; callbacks that must apply changes of a record in order use
:class:`~commissaire_tasks.storage.ordering.RevisionGate`.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init
from kombu.entity import Exchange, Queue

from .. import _startup
from .._registry import ServiceSpec
from .._tasks import ServiceTask, instances
from ..bridge.legacy_notifications import legacy_publisher
from ..errors import InternalError, InvalidParams, StorageLookupError, ValidationError
from ..message import Message
from ..models import ListModel, Model, model_class, model_types
from ..routing import queue_arguments
from . import broadcast as broadcasting

logger = logging.getLogger(__name__)

NOTIFY_EVENT_CREATED = "created"
NOTIFY_EVENT_UPDATED = "updated"
NOTIFY_EVENT_DELETED = "deleted"
NOTIFY_EVENT_ANY = "*"
#: The events a change can be.
EVENTS = (NOTIFY_EVENT_CREATED, NOTIFY_EVENT_UPDATED, NOTIFY_EVENT_DELETED)
#: Model filter meaning "every model type".
ANY_MODEL = "*"
#: The service that keeps subscriptions and sends notifications.
STORAGE_SERVICE = "storage"
#: Record type the storage service keeps subscriptions under.
SUBSCRIPTION_TYPE = "_Subscription"

Callback = Callable[..., Any]
#: Attribute on a decorated function listing its (model, event, broadcast) declarations.
_DECLARED = "__storage_subscriptions__"


def notification_address(model_name: str, event: str) -> str:
    return f"notify.storage.{model_name}.{event}"


def notification_task_name(service: str, model_name: str, event: str) -> str:
    return f"{service}.{notification_address(model_name, event)}"


@dataclass(frozen=True)
class Subscription:
    """A service's standing interest in changes, kept by the storage service."""

    service: str
    queue: str
    #: (model name or "*", event or "*") pairs
    filters: tuple[tuple[str, str], ...]

    def matches(self, model_name: str, event: str) -> bool:
        return any(
            m in (ANY_MODEL, model_name) and e in (NOTIFY_EVENT_ANY, event) for m, e in self.filters
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "queue": self.queue,
            "filters": [list(f) for f in self.filters],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Subscription:
        filters = tuple((str(m), str(e)) for m, e in data.get("filters", []))
        for model, event in filters:
            _check_filter(model, event)
        return cls(service=str(data["service"]), queue=str(data["queue"]), filters=filters)


def NotifyCallback(function: Callback) -> Callback:  # noqa: N802 - the original's name
    """Turn a raw notification into ``(event, model_instance, message)`` for ``function``.

    A body with an unknown event, an unknown class or model data that does not
    build is logged as a warning and dropped; ``function`` is not called.
    """

    @functools.wraps(function)
    def deliver(*args: Any) -> Any:
        *owner, body, message = args
        parsed = parse_notification(body)
        if parsed is None:
            return None
        event, model = parsed
        return function(*owner, event, model, message)

    deliver.__notify_callback__ = True  # type: ignore[attr-defined]
    return deliver


def on_storage_change(
    model_type: type[Model] | None = None, event: str = NOTIFY_EVENT_ANY, broadcast: bool = False
) -> Callable[[Callback], Callback]:
    """Declare a method as a notification callback: ``@on_storage_change(Host, "created")``.

    ``broadcast=True`` asks for every running process instead (see :mod:`.broadcast`).
    """
    model_name = _model_name(model_type)
    _check_filter(model_name, event)

    def declare(function: Callback) -> Callback:
        callback = (
            function
            if getattr(function, "__notify_callback__", False)
            else NotifyCallback(function)
        )
        declared = list(getattr(callback, _DECLARED, []))
        setattr(callback, _DECLARED, [*declared, (model_name, event, broadcast)])
        return callback

    return declare


def register_callback(
    service: Any,
    callback: Callback,
    model_type: type[Model] | None = None,
    event: str = NOTIFY_EVENT_ANY,
    broadcast: bool = False,
) -> None:
    """Run ``callback(body, message)`` in ``service`` for matching changes (see NotifyCallback)."""
    model_name = _model_name(model_type)
    _check_filter(model_name, event)
    callbacks = service.__dict__.setdefault("_notify_callbacks", [])
    callbacks.append((model_name, event, callback, broadcast))


def callbacks_of(service: Any, broadcast: bool = False) -> list[tuple[str, str, Callback]]:
    """(model, event, bound callback) of a service instance, declared or registered.

    ``broadcast`` picks the broadcast callbacks instead of the default ones.
    """
    found = [
        (m, e, c) for m, e, c, b in service.__dict__.get("_notify_callbacks", []) if b == broadcast
    ]
    seen: set[str] = set()
    for klass in type(service).__mro__:
        for attribute, function in vars(klass).items():
            if attribute in seen:
                continue
            seen.add(attribute)
            for model_name, event, wanted in getattr(function, _DECLARED, []):
                if wanted == broadcast:
                    found.append((model_name, event, getattr(service, attribute)))
    return found


def parse_notification(body: Any) -> tuple[str, Model] | None:
    """``(event, model)`` from a notification body, or None (logged) when it is bad."""
    if not isinstance(body, Mapping):
        logger.warning("Dropped notification: body is %s, not an object", type(body).__name__)
        return None
    event, class_name = body.get("event"), body.get("class")
    if event not in EVENTS:
        logger.warning("Dropped notification: unknown event %r", event)
        return None
    try:
        cls = model_class(str(class_name))
        model = cls.from_dict(body.get("model") or {})
    except (ValidationError, ValueError, TypeError) as exc:
        logger.warning("Dropped notification of %s %r: %s", event, class_name, exc)
        return None
    return str(event), model


def _model_name(model_type: type[Model] | None) -> str:
    return ANY_MODEL if model_type is None else model_type.__name__


def _check_filter(model_name: str, event: str) -> None:
    if event not in (*EVENTS, NOTIFY_EVENT_ANY):
        raise ValueError(f"unknown notification event {event!r}; use one of {EVENTS} or '*'")
    if model_name != ANY_MODEL:
        model_class(model_name)


def _record_model_names() -> list[str]:
    return sorted(n for n, c in model_types().items() if not issubclass(c, ListModel))


# -- subscriber side: a worker registers notification tasks and subscribes ---------------------


def _subscribe_on_start(app: Celery, spec: ServiceSpec, queue: str) -> None:
    """Startup hook: register this service's notification tasks and announce them."""
    probe = spec.cls(**instances.options)
    if callbacks_of(probe, broadcast=True):
        _broadcast_services.add(spec.cls)
    filters = sorted({(m, e) for m, e, _ in callbacks_of(probe)})
    if not filters:
        return
    subscription = Subscription(service=spec.name, queue=queue, filters=tuple(filters))
    for model_name in _record_model_names():
        for event in EVENTS:
            if subscription.matches(model_name, event):
                _install_notify_task(app, spec, queue, model_name, event)
    from ..bus import Bus

    # The subscriber knows the storage service: the subscription waits in its queue
    # even when no storage worker has run yet (a fresh broker, workers starting together).
    app.router.add_service(STORAGE_SERVICE)
    Bus(app).notify(f"{STORAGE_SERVICE}.subscribe", subscription.to_dict())
    logger.info("Subscribed %s to storage changes %s", spec.name, filters)


def _install_notify_task(
    app: Celery, spec: ServiceSpec, queue: str, model_name: str, event: str
) -> None:
    name = notification_task_name(spec.name, model_name, event)
    if name in app.tasks:
        return
    cls = spec.cls
    address = notification_address(model_name, event)

    def deliver(task: Task, **body: Any) -> None:
        service = instances.get(cls)
        received = Message.from_task(task, address, queue)
        headers = {**received.headers, "revision": body.get("revision"), "event": body.get("event")}
        message = dataclasses.replace(received, routing_key=address, headers=headers)
        _dispatch(service, model_name, event, body, message)

    deliver.__name__ = f"{cls.__name__}_notify_{model_name}_{event}"
    app.task(
        name=name,
        bind=True,
        base=ServiceTask,
        shared=False,
        ignore_result=True,
        service_name=spec.name,
        method_name=address,
        queue_name=queue,
    )(deliver)


def _dispatch(
    service: Any,
    model_name: str,
    event: str,
    body: dict[str, Any],
    message: Message,
    broadcast: bool = False,
) -> None:
    """Run every matching callback; one failing does not stop the others (nor is retried)."""
    failed = []
    for filter_model, filter_event, callback in callbacks_of(service, broadcast):
        if filter_model in (ANY_MODEL, model_name) and filter_event in (NOTIFY_EVENT_ANY, event):
            try:
                callback(body, message)
            except Exception:  # noqa: BLE001 - one callback must not starve the others
                logger.error(
                    "Notification callback %s failed on %s",
                    getattr(callback, "__qualname__", callback),
                    message.routing_key,
                    exc_info=True,
                )
                failed.append(getattr(callback, "__qualname__", repr(callback)))
    if failed:
        raise InternalError(f"notification callback(s) failed: {', '.join(failed)}")


_startup.add_startup_hook(_subscribe_on_start)

#: Service classes of this worker with broadcast callbacks (set before the prefork).
_broadcast_services: set[type[Any]] = set()


@worker_process_init.connect(weak=False)  # type: ignore[untyped-decorator,unused-ignore]
def _listen_for_broadcasts(**_: Any) -> None:
    """In each pool process, start a listener for every service with broadcast callbacks."""
    for cls in _broadcast_services:
        broadcasting.Listener(functools.partial(_deliver_broadcast, cls)).start()


def _deliver_broadcast(cls: type[Any], body: dict[str, Any]) -> None:
    model_name, event = str(body.get("class")), str(body.get("event"))
    headers = {"revision": body.get("revision"), "event": event, "broadcast": True}
    address = notification_address(model_name, event)
    message = Message.stand_in(method=address, routing_key=address, headers=headers)
    _dispatch(instances.get(cls), model_name, event, body, message, broadcast=True)


# -- storage side: who to tell, and telling them ------------------------------------------------


class Notifier:
    """Announces committed changes to subscribing services (used by the storage service)."""

    def __init__(self, handlers: Any, bus: Any, config: Mapping[str, Any]) -> None:
        self._store = handlers.default.handler
        self._bus = bus
        self._configured = [Subscription.from_dict(s) for s in config.get("subscribers", [])]
        self._legacy = legacy_publisher(config, bus)

    def subscribe(self, data: Mapping[str, Any]) -> None:
        subscription = Subscription.from_dict(data)
        self._store.save(SUBSCRIPTION_TYPE, subscription.service, subscription.to_dict())

    def unsubscribe(self, service: str) -> bool:
        """Forget ``service``'s stored subscription; False when it had none.

        Raises:
            InvalidParams: The subscription comes from the storage config, which wins.
        """
        if any(s.service == service for s in self._configured):
            raise InvalidParams(
                f"{service!r} is subscribed by the storage service's config (`subscribers`); "
                "remove it there"
            )
        try:
            self._store.delete(SUBSCRIPTION_TYPE, service)
        except StorageLookupError:
            return False
        return True

    def subscriptions(self) -> list[Subscription]:
        stored = [Subscription.from_dict(r.data) for r in self._store.list(SUBSCRIPTION_TYPE)]
        known = {s.service for s in stored}
        return stored + [s for s in self._configured if s.service not in known]

    def announce(self, cls: type[Model], outcome: Any) -> int:
        """Send ``outcome`` to every matching subscriber; return how many were sent."""
        body = {
            "event": outcome.event,
            "class": cls.__name__,
            "model": cls.from_dict(outcome.data).to_dict_safe(),
            "revision": outcome.revision,
        }
        broadcasting.publish(body)
        self._legacy.publish(body)
        sent = 0
        for subscription in self.subscriptions():
            if subscription.matches(cls.__name__, outcome.event):
                self._send(subscription, cls.__name__, outcome.event, body)
                sent += 1
        return sent

    def _send(
        self, subscription: Subscription, model_name: str, event: str, body: dict[str, Any]
    ) -> None:
        app = self._bus.app
        queue = Queue(
            subscription.queue,
            Exchange(""),
            routing_key=subscription.queue,
            durable=True,
            queue_arguments=queue_arguments(app.settings.queue_type),  # as its worker declares it
        )
        app.send_task(
            notification_task_name(subscription.service, model_name, event),
            kwargs=body,
            queue=queue,
            exchange="",
            routing_key=subscription.queue,
            ignore_result=True,
        )


def unsubscribe(service: str, bus: Any = None, timeout: float | None = None) -> bool:
    """Remove ``service``'s subscription, so changes are no longer queued for it.

    Stop the service's workers first: a worker that starts subscribes again.
    Returns False when the storage service kept no subscription for it.
    """
    from ..bus import Bus

    caller = bus if bus is not None else Bus()
    return bool(caller.call("storage.unsubscribe", service, timeout=timeout))


def list_subscriptions(bus: Any = None, timeout: float | None = None) -> list[Subscription]:
    """Every subscription the storage service holds (stored and configured)."""
    from ..bus import Bus

    caller = bus if bus is not None else Bus()
    return [
        Subscription.from_dict(s) for s in caller.call("storage.subscriptions", timeout=timeout)
    ]


def matching_subscriptions(
    subscriptions: Iterable[Subscription], model_name: str, event: str
) -> list[Subscription]:
    return [s for s in subscriptions if s.matches(model_name, event)]
