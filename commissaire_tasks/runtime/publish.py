"""The one publish path: every call of ours leaves the process through :func:`send`.

``bus.call`` and friends, ``self.request``/``self.notify``, ``.delay()`` and
``apply_async`` on a service method (Celery's ``Task.apply_async`` calls
``app.send_task``), ``app.send_task`` itself and the storage notifier all end in
:meth:`CommissaireCelery.send_task <commissaire_tasks.runtime.app.CommissaireCelery.send_task>`,
which calls :func:`send`. So every call gets, the same way:

* the payload size check (:class:`~commissaire_tasks.errors.PayloadTooLarge`);
* the in-process self-call rule: a call whose result is kept (it may be waited
  for), made from inside a worker to a queue that worker consumes, runs inline,
  so a service calling itself never deadlocks; fire-and-forget calls
  (``ignore_result``), calls for later (``countdown``, ``eta``), retries and the
  members of a canvas (a chord's header tasks, a chain's next step, or any call
  sent with ``inline=False``, as a chord body is) are published: the canvas
  collects their results, nobody waits on them, and inlining would lose it;
* routing (the app's router, applied by Celery's ``send_task``);
* broker errors as :class:`~commissaire_tasks.errors.BrokerUnavailable`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from celery import states
from celery._state import get_current_worker_task
from celery.result import EagerResult

from ..errors import BrokerUnavailable, PayloadTooLarge, error_from_jsonrpc
from . import lean_publish
from .reprs import shown
from .results import UNREACHABLE, failure_as_jsonrpc

__all__ = ["check_size", "local_task", "run_here", "run_inline", "send", "value_of"]

#: Celery's own tasks (chords, backend cleanup) pass through untouched.
_CELERY_PREFIX = "celery."
#: Options that mark a call nobody waits on in-process: it is always published.
_PUBLISHED_OPTIONS = ("ignore_result", "countdown", "eta", "retries", "chord", "chain", "group_id")


def send(
    app: Any,
    publish: Callable[..., Any],
    name: str,
    args: Sequence[Any] | None,
    kwargs: Mapping[str, Any] | None,
    options: dict[str, Any],
) -> Any:
    """Check, then run inline or ``publish(name, args, kwargs, **options)``; see the module."""
    if name.startswith(_CELERY_PREFIX):
        return publish(name, args, kwargs, **options)
    args, kwargs = list(args or ()), dict(kwargs or {})
    check_size(name, args, kwargs, app.settings.max_payload_bytes)
    if options.pop("inline", True) and _may_be_waited_for(options):
        local = local_task(name)
        if local is not None:
            return run_inline(local, name, args, kwargs, options.get("task_id"))
    if "argsrepr" not in options:  # Celery's saferepr costs 20x more
        options["argsrepr"] = shown(args)
    if "kwargsrepr" not in options:  # (the storage notifier gives its own, shorter)
        options["kwargsrepr"] = shown(kwargs)
    try:
        result = lean_publish.try_publish(app, name, args, kwargs, options)
        if result is None:
            result = publish(name, args, kwargs, **options)
            lean_publish.declared(app, options)
    except UNREACHABLE as exc:
        raise BrokerUnavailable(name, str(exc)) from exc
    except RuntimeError as exc:  # Celery gave up subscribing to the result
        if not isinstance(exc.__cause__, UNREACHABLE):
            raise
        raise BrokerUnavailable(name, str(exc.__cause__)) from exc
    result.routing_key = name
    return result


def _may_be_waited_for(options: Mapping[str, Any]) -> bool:
    """A kept result, sent now and not as a retry: what a caller may be waiting on.

    Fire-and-forget calls, calls scheduled for later (``countdown``/``eta``) and
    Celery's retries (``retries`` > 0, sent by ``Task.retry``) are always published,
    and so are canvas members (``chord``, ``chain``, ``group_id``): the canvas waits
    for them through the result backend, and running them here would skip it.
    """
    return not any(options.get(k) for k in _PUBLISHED_OPTIONS)


def check_size(routing_key: str, args: Any, kwargs: Any, limit: int) -> int:
    """Refuse parameters whose JSON is over ``limit`` bytes, before anything is sent.

    Returns the size, for callers that budget bytes (``call_many``'s chunks).
    """
    size = len(json.dumps([args, kwargs], separators=(",", ":"), default=str))
    if size > limit:
        raise PayloadTooLarge(
            f"parameters of {routing_key!r} are {size} bytes, over the {limit}-byte limit",
            data={"size": size, "limit": limit},
        )
    return size


def local_task(routing_key: str) -> Any:
    """The task for ``routing_key`` if the worker running this code serves it, else None."""
    current = get_current_worker_task()
    if current is None:
        return None
    worker_app = current._get_app()
    task = worker_app.tasks.get(routing_key)
    queue = getattr(task, "queue_name", None)
    if task is None or queue is None:
        return None
    consumed = worker_app.amqp.queues.consume_from
    return task if consumed is None or queue in consumed else None


def run_inline(
    task: Any,
    routing_key: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    call_id: str | None = None,
) -> EagerResult:
    """Run ``task`` here; its result fails with the error a remote caller would get."""
    call_id = call_id or str(uuid.uuid4())
    outcome = run_here(task, routing_key, args, kwargs, call_id)
    state = states.FAILURE if "error" in outcome else states.SUCCESS
    result = EagerResult(call_id, value_of(outcome), state)
    result.routing_key = routing_key
    return result


def run_here(
    task: Any, routing_key: str, args: Sequence[Any], kwargs: Mapping[str, Any], call_id: str
) -> dict[str, Any]:
    """Run ``task`` in this process: ``{"result": value}`` or ``{"error": <JSON-RPC error>}``.

    The outcome a remote caller would decode (:func:`value_of`); ``call_many``'s chunks
    carry one per call.
    """
    outcome = task.apply(
        args=list(args), kwargs=dict(kwargs), task_id=call_id, routing_key=routing_key
    )
    if outcome.failed():
        return {"error": failure_as_jsonrpc(outcome.result)}
    return {"result": outcome.result}


def value_of(outcome: Mapping[str, Any]) -> Any:
    """The value of a :func:`run_here` outcome; a failure as its error (an exception)."""
    if "error" in outcome:
        return error_from_jsonrpc(outcome["error"])
    return outcome.get("result")
