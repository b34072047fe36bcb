"""Calls pushed onto their Redis list directly: the message Celery and kombu build, one LPUSH.

On a Redis broker a call ends in one ``LPUSH`` of about 40 µs of CPU, but Celery's
``send_task`` and kombu's producer around it (router, option merging, the queue's
declaration cache, the producer pool, retry wrappers) spend about 260 µs more, in
the caller, on every call's critical path, and in the storage worker for every
notification it delivers. For the calls that need none of that machinery,
:func:`try_publish` builds the same protocol-2 message and kombu envelope and
pushes it itself (``tests/runtime/test_lean_publish.py`` compares the two field by
field, and plain Celery workers consume it as their own).

Every other call takes Celery's path: another broker, a route that is not a list
on the default exchange, a queue not yet declared by this process (its binding is
what lets bare clients find it), a producer or connection given, countdown, eta,
expiry, time limits, priority, custom headers, canvas options, ``task-sent`` events,
receivers of Celery's publish signals, or a failed push (Celery's path retries it
by the publish retry policy and maps what is left to ``BrokerUnavailable``).
"""

from __future__ import annotations

import base64
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from celery import signals
from celery.utils.nodenames import anon_nodename
from kombu.entity import DELIVERY_MODES
from kombu.utils.json import dumps

from .transport import WITHOUT_SENT_EVENT, Transport

__all__ = ["try_publish"]

#: Options a lean publish takes care of (named parameters of ``send_task`` included).
_HANDLED = frozenset(
    {
        "task_id",
        "reply_to",
        "ignore_result",
        "add_to_parent",
        "result_cls",
        "task_type",
        "argsrepr",
        "kwargsrepr",
        "serializer",
        "queue",
        "exchange",
        "routing_key",
        "declare",
        WITHOUT_SENT_EVENT,
    }
)
#: Options that go into the message's properties as they are (as Celery puts them).
_PROPERTIES = ("argsrepr", "kwargsrepr")
#: The protocol-2 body's third part when there is no canvas.
_NO_CANVAS = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


class _Pusher:
    """This process's client for the app's broker, and the queues it has declared."""

    def __init__(self, app: Any) -> None:
        self.pid = os.getpid()
        self.connection = app.connection_for_write()
        self.channel = self.connection.default_channel
        with self.channel.conn_or_acquire() as client:
            self.client = client
        self.declared: set[str] = set()
        self.origin = anon_nodename()
        mode = app.conf.task_default_delivery_mode
        self.delivery_mode = DELIVERY_MODES.get(mode, mode)


_lock = threading.Lock()


def try_publish(
    app: Any, name: str, args: Sequence[Any], kwargs: Mapping[str, Any], options: dict[str, Any]
) -> Any:
    """Publish the call on the lean path and return its result; None to take Celery's path."""
    if not _lean_app(app) or not _plain(app, name, options):
        return None
    route = _destination(app, name, args, kwargs, options)
    if route is None:
        return None
    queue, declared = route
    pusher = _pusher(app)
    if pusher is None or (not declared and queue not in pusher.declared):
        return None  # Celery's path connects, and declares the queue; the next call comes here
    parent = app.current_worker_task
    task_id = options.get("task_id") or str(uuid.uuid4())
    envelope = _envelope(app, pusher, name, args, kwargs, options, task_id, queue, parent)
    ignore_result = options.get("ignore_result")
    if not ignore_result:
        app.backend.on_task_call(None, task_id)
    try:
        pusher.client.lpush(queue, dumps(envelope))
    except pusher.channel.connection_errors:
        return None  # Celery's path retries by the publish retry policy
    result = (options.get("result_cls") or app.AsyncResult)(task_id)
    result.ignored = ignore_result
    if parent and options.get("add_to_parent", True):
        parent.add_trail(result)
    return result


def declared(app: Any, options: Mapping[str, Any]) -> None:
    """Celery's path just published the call: the broker answers and the queue is declared.

    The pusher is made here, never on the lean path itself, so a caller that has not
    reached the broker yet gets Celery's connection retries and errors, not a wait of
    its own.
    """
    if not _lean_app(app):
        return
    pusher = _pusher(app) or _new_pusher(app)
    name = getattr(options.get("queue"), "name", None)
    if name:
        pusher.declared.add(name)


def _lean_app(app: Any) -> bool:
    """Whether the app's calls may be lean (its broker and settings, read at its first call)."""
    lean = app.__dict__.get("_lean_broker")
    if lean is None:
        with app.connection_for_write() as connection:
            ours = connection.get_transport_cls() is Transport
        conf = app.conf
        lean = app._lean_broker = ours and not conf.task_send_sent_event and conf.task_protocol == 2
    if not lean:
        return False
    return not (signals.before_task_publish.receivers or signals.after_task_publish.receivers)


def _plain(app: Any, name: str, options: Mapping[str, Any]) -> bool:
    """No option (of the call, or of a task of that name registered here) needs Celery's path."""
    if any(value for key, value in options.items() if key not in _HANDLED):
        return False
    if options.get("serializer") not in (None, "json"):
        return False
    task = app._tasks.get(name) if options.get("task_type") is None else None
    if task is None:
        return True
    execution = {k: v for k, v in task._get_exec_options().items() if k != "serializer"}
    return not any(execution.values()) and task.serializer == "json"


def _destination(
    app: Any, name: str, args: Sequence[Any], kwargs: Mapping[str, Any], options: dict[str, Any]
) -> tuple[str, bool] | None:
    """(the list to push onto, whether it needs no declaration), or None for Celery's path."""
    route = options if options.get("queue") is not None else app.route_call(name, args, kwargs, {})
    if not route or route.get("exchange") != "":
        return None
    queue = route.get("routing_key")
    if not isinstance(queue, str) or not queue:
        return None
    if options.get("queue") is None:
        options.update(route)  # what Celery's router would have merged in
    return queue, route.get("declare") == []


def _pusher(app: Any) -> _Pusher | None:
    """The app's pusher in this process, if it has one (a forked process makes its own)."""
    pusher: _Pusher | None = app.__dict__.get("_lean_pusher")
    return pusher if pusher is not None and pusher.pid == os.getpid() else None


def _new_pusher(app: Any) -> _Pusher:
    with _lock:
        pusher = _pusher(app)
        if pusher is None:
            pusher = app._lean_pusher = _Pusher(app)
        return pusher


def _envelope(
    app: Any,
    pusher: _Pusher,
    name: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    options: Mapping[str, Any],
    task_id: str,
    queue: str,
    parent: Any,
) -> dict[str, Any]:
    """kombu's Redis envelope around Celery's protocol-2 message, as their paths build it."""
    root_id = (parent.request.root_id or parent.request.id) if parent else task_id
    headers = {
        "lang": "py",
        "task": name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": root_id,
        "parent_id": parent.request.id if parent else None,
        "argsrepr": options.get("argsrepr"),
        "kwargsrepr": options.get("kwargsrepr"),
        "origin": pusher.origin,
        "ignore_result": options.get("ignore_result"),
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    body = dumps([list(args), dict(kwargs), _NO_CANVAS])
    properties: dict[str, Any] = {
        "correlation_id": task_id,
        "reply_to": options.get("reply_to") or app.thread_oid,
    }
    properties.update((key, options[key]) for key in _PROPERTIES if key in options)
    properties.update(
        delivery_mode=pusher.delivery_mode,
        delivery_info={"exchange": "", "routing_key": queue},
        priority=0,
        body_encoding="base64",
        delivery_tag=str(uuid.uuid4()),
    )
    return {
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": properties,
    }
