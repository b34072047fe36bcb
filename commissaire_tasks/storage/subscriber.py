"""The subscriber side of storage notifications: declare callbacks, receive changes.

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
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery, Task
from celery.signals import worker_process_init

from ..bus import Bus
from ..errors import InternalError, ValidationError
from ..message import Message
from ..models import Model, model_class
from ..runtime import startup
from ..runtime.registry import ServiceSpec
from ..runtime.tasks import instances, register_task
from ..service import CommissaireService
from . import broadcast as broadcasting
from .subscriptions import (
    ANY_MODEL,
    EVENTS,
    NOTIFY_EVENT_ANY,
    STORAGE_SERVICE,
    Subscription,
    check_filter,
    model_name_of,
    notification_address,
    notification_task_name,
    record_model_names,
)

logger = logging.getLogger(__name__)

Callback = Callable[..., Any]
#: Attribute on a decorated function listing its (model, event, broadcast) declarations.
_DECLARED = "__storage_subscriptions__"


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
    model_name = model_name_of(model_type)
    check_filter(model_name, event)

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
    model_name = model_name_of(model_type)
    check_filter(model_name, event)
    callbacks = service.__dict__.setdefault("_notify_callbacks", [])
    callbacks.append((model_name, event, callback, broadcast))


def callbacks_of(service: Any, broadcast: bool = False) -> list[tuple[str, str, Callback]]:
    """(model, event, bound callback) of a service instance, declared or registered.

    ``broadcast`` picks the broadcast callbacks instead of the default ones.
    """
    found = [
        (m, e, c) for m, e, c, b in service.__dict__.get("_notify_callbacks", []) if b == broadcast
    ]
    for model_name, event, attribute in _declarations(type(service), broadcast):
        found.append((model_name, event, getattr(service, attribute)))
    return found


#: (class, broadcast) -> its declarations, read once per class, not per delivery.
_declared_by_class: dict[tuple[type[Any], bool], tuple[tuple[str, str, str], ...]] = {}


def _declarations(cls: type[Any], broadcast: bool) -> tuple[tuple[str, str, str], ...]:
    """(model, event, attribute) of each ``@on_storage_change`` method of ``cls``."""
    found = _declared_by_class.get((cls, broadcast))
    if found is None:
        found = _declared_by_class[cls, broadcast] = _scan(cls, broadcast)
    return found


def _scan(cls: type[Any], broadcast: bool) -> tuple[tuple[str, str, str], ...]:
    """The declarations of ``cls`` (its decorators ran when it was defined)."""
    found = []
    seen: set[str] = set()
    for klass in cls.__mro__:
        for attribute, function in vars(klass).items():
            if attribute in seen:
                continue
            seen.add(attribute)
            for model_name, event, wanted in getattr(function, _DECLARED, []):
                if wanted == broadcast:
                    found.append((model_name, event, attribute))
    return tuple(found)


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


def _subscribe_on_start(app: Celery, spec: ServiceSpec, queue: str) -> None:
    """Startup hook: register this service's notification tasks and announce them."""
    if _declared(spec.cls, broadcast=True) or _registered(spec.cls, broadcast=True):
        _broadcast_services.add(spec.cls)
    filters = sorted(set(_declared(spec.cls)) | set(_registered(spec.cls)))
    if not filters:
        return
    subscription = Subscription(service=spec.name, queue=queue, filters=tuple(filters))
    for model_name in record_model_names():
        for event in EVENTS:
            if subscription.matches(model_name, event):
                _install_notify_task(app, spec, queue, model_name, event)
    # Straight to the storage service's queue, bound or not: it waits there while storage is down.
    app.router.add_service(STORAGE_SERVICE)
    Bus(app).notify(f"{STORAGE_SERVICE}.subscribe", subscription.to_dict())
    logger.info("Subscribed %s to storage changes %s", spec.name, filters)


def _declared(cls: type[Any], broadcast: bool = False) -> list[tuple[str, str]]:
    """(model, event) of the class's ``@on_storage_change`` methods: no instance needed."""
    return [(m, e) for m, e, _ in _declarations(cls, broadcast)]


def _registered(cls: type[Any], broadcast: bool = False) -> list[tuple[str, str]]:
    """(model, event) of callbacks ``__init__`` registers.

    Only a class with its own ``__init__`` can register any: for it this process's
    instance is built now and kept (:data:`instances`; a prefork child builds its
    own after the fork). Other classes are never instantiated here.
    """
    if not _has_own_init(cls):
        return []
    registered = instances.get(cls).__dict__.get("_notify_callbacks", [])
    return [(m, e) for m, e, _, b in registered if b == broadcast]


def _has_own_init(cls: type[Any]) -> bool:
    for klass in cls.__mro__:
        if klass is CommissaireService or klass is object:
            return False
        if "__init__" in vars(klass):
            return True
    return False


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
    # No result; task events as for any call, so Flower lists each delivery
    # (COMMISSAIRE_TASK_EVENTS=off trades that for speed, for every task alike).
    register_task(
        app,
        name,
        deliver,
        service=spec.name,
        method=address,
        queue=queue,
        ignore_result=True,
    )


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


startup.add_startup_hook(_subscribe_on_start)

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
