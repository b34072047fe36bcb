"""``call_many`` in chunks: many calls of one method carried by one message.

A worker spends about a millisecond of CPU on every message it takes (the
transport's bookkeeping, the hand-off to a pool process, the result store), far
more than a trivial call itself costs. So a ``call_many`` of more than
:data:`MAX_MESSAGES` calls is sent as at most that many messages, each a chunk of
calls for the framework's :data:`BATCH_TASK`. The worker that serves the routing
key runs a chunk's calls one after the other, each as it runs a self-call (the
same parameter check, errors and per-call log lines), and answers with one
outcome per call: ``{"result": ...}`` or ``{"error": <JSON-RPC error>}``.

What changes for the calls of a chunk: they run in one worker process, in order
(``chunk_size=1`` sends one message per call); a chunk redelivered after its
worker died runs all its calls again (at least once, as any call), with the same
call ids (``<chunk id>.<index>``), so storage's writes stay idempotent per call; a call's
``Message.progress`` is not reported, and ``Message.retry`` runs the call again
at once.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery

from ..errors import InternalError, InvalidParams, MethodNotFound, jsonrpc_error
from .publish import check_size, run_here, value_of
from .tasks import LateAckTask, ServiceTask

__all__ = ["BATCH_TASK", "MAX_MESSAGES", "Call", "chunk_size", "install", "split", "values_of"]

#: The framework's task that runs a chunk of calls (registered on every app of ours).
BATCH_TASK = "commissaire.call_many"
#: A ``call_many`` of more calls than this is sent as this many chunks by default.
MAX_MESSAGES = 16
#: Bytes of a chunk's JSON beside its calls (the routing key, brackets, commas).
_ENVELOPE_BYTES = 16

Call = tuple[Sequence[Any], Mapping[str, Any]]


def chunk_size(calls: int, requested: int | None) -> int:
    """Calls per message: ``requested``, or enough that ``calls`` need at most MAX_MESSAGES."""
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"chunk_size must be a positive integer, not {requested!r}")
        return requested
    return max(1, math.ceil(calls / MAX_MESSAGES))


def split(routing_key: str, calls: Sequence[Call], size: int, limit: int) -> list[list[Call]]:
    """``calls`` in chunks of at most ``size`` calls and ``limit`` bytes of JSON.

    A call over ``limit`` on its own raises PayloadTooLarge naming ``routing_key``,
    before anything is sent, as the same call made alone would.
    """
    budget = limit - len(routing_key) - _ENVELOPE_BYTES
    chunks: list[list[Call]] = []
    current: list[Call] = []
    used = 0
    for args, kwargs in calls:
        cost = check_size(routing_key, args, kwargs, limit) + 1  # and a comma
        if current and (len(current) == size or used + cost > budget):
            chunks.append(current)
            current, used = [], 0
        current.append((args, kwargs))
        used += cost
    if current:
        chunks.append(current)
    return chunks


def values_of(outcomes: Any, expected: int) -> list[Any]:
    """A chunk's answer as values, each failed call's error as an exception."""
    well_formed = isinstance(outcomes, list) and len(outcomes) == expected
    if not well_formed or not all(isinstance(outcome, dict) for outcome in outcomes):
        error = InternalError("a chunk of calls was answered with something else")
        return [error] * expected
    return [value_of(outcome) for outcome in outcomes]


def install(app: Celery) -> None:
    """Register :data:`BATCH_TASK` on ``app`` (late acknowledged, as every call)."""
    app.task(name=BATCH_TASK, bind=True, shared=False, base=LateAckTask)(_run_chunk)


def _run_chunk(task: Any, routing_key: str, calls: Any) -> list[dict[str, Any]]:
    """Run each call of a chunk here, in order; one outcome per call."""
    if not isinstance(routing_key, str) or not isinstance(calls, list):
        raise InvalidParams("a chunk is a routing key and a list of [args, kwargs] calls")
    target = task.app.tasks.get(routing_key)
    chunk_id = task.request.id or str(uuid.uuid4())
    # Each call's id derives from the chunk's, so a redelivered chunk repeats the same
    # ids and writes that are idempotent per call id (storage) stay so.
    return [
        _outcome(target, routing_key, call, f"{chunk_id}.{index}")
        for index, call in enumerate(calls)
    ]


def _outcome(target: Any, routing_key: str, call: Any, call_id: str) -> dict[str, Any]:
    if not isinstance(target, ServiceTask):
        missing = MethodNotFound(f"method not found: {routing_key!r}", data={"task": routing_key})
        return {"error": jsonrpc_error(missing)}
    if not _is_call(call):
        return {"error": jsonrpc_error(InvalidParams("a call is [args list, kwargs object]"))}
    args, kwargs = call
    return run_here(target, routing_key, args, kwargs, call_id)


def _is_call(call: Any) -> bool:
    return (
        isinstance(call, (list, tuple))
        and len(call) == 2
        and isinstance(call[0], list)
        and isinstance(call[1], dict)
    )
