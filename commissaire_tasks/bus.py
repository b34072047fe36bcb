"""Calling services by routing key, from any process, without importing their code.

>>> from commissaire_tasks import bus
>>> bus.call("simple.add", 1, 2)            # positional parameters
3
>>> bus.call("simple.add", x=1, y=2)        # keyword parameters
3
>>> bus.send("simple.add", 1, 2).get()      # a Celery AsyncResult
3
>>> bus.notify("simple.add", 1, 2)          # fire and forget
>>> bus.call_many("simple.add", [[1, 2], {"x": 3, "y": 4}])   # many calls, one wait
[3, 7]

Every waiting call has a timeout (``Settings.call_timeout_s`` unless given) and
raises :class:`~commissaire_tasks.errors.CallTimeout` naming the routing key.
Inside a worker, a call to a method that this very worker serves runs in-process
(same code, same errors, no broker round trip), so a service calling itself never
deadlocks, even with one worker process.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from celery._state import get_current_worker_task
from kombu.exceptions import BatchPublishError

from .errors import BrokerUnavailable, CallTimeout
from .runtime import batches
from .runtime.app import CommissaireCelery, default_app
from .runtime.publish import local_task
from .runtime.results import UNREACHABLE, BoundedResult

__all__ = ["Bus", "call", "call_many", "send", "notify", "notify_many", "request"]

Params = Sequence[Any] | Mapping[str, Any] | None


class Bus:
    """Sends calls through one app (the environment's default app when none is given)."""

    def __init__(self, app: CommissaireCelery | None = None) -> None:
        self._app = app

    @property
    def app(self) -> CommissaireCelery:
        return self._app if self._app is not None else default_app()

    def send(self, routing_key: str, *args: Any, params: Params = None, **kwargs: Any) -> Any:
        """Publish a call and return its AsyncResult (``.get()`` is bounded by the timeout)."""
        return self._publish(routing_key, *_merge(args, params, kwargs))

    def call(
        self,
        routing_key: str,
        *args: Any,
        params: Params = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call a method and return its result, or raise the error it raised."""
        positional, keyword = _merge(args, params, kwargs)
        return self._call(routing_key, positional, keyword, timeout, str(uuid.uuid4()))

    def notify(self, routing_key: str, *args: Any, params: Params = None, **kwargs: Any) -> None:
        """Send a call without waiting; its result is not stored."""
        self._publish(routing_key, *_merge(args, params, kwargs), ignore_result=True)

    def call_many(
        self,
        routing_key: str,
        params: Iterable[Params],
        timeout: float | None = None,
        return_exceptions: bool = False,
        chunk_size: int | None = None,
    ) -> list[Any]:
        """Call one method once per parameter set; the results come back in order.

        Every call is published, in pipelined batches over one broker connection,
        before any is awaited, and the whole batch waits at most ``timeout`` (not
        ``timeout`` per call). More than 16 calls travel in chunks, at most 16
        messages, each chunk's calls run in order by one worker process
        (:mod:`~commissaire_tasks.runtime.batches`); ``chunk_size`` sets the calls
        per message (1: one message per call). The first failure (in order)
        is raised, or with ``return_exceptions`` each failure takes its call's place
        in the list, as with :func:`asyncio.gather`.
        """
        calls = [_merge((), each, {}) for each in params]
        size = batches.chunk_size(len(calls), chunk_size)
        if size > 1 and local_task(routing_key) is None:
            values = self._call_chunks(routing_key, calls, size, timeout)
        else:
            values = self._join(routing_key, self._publish_many(routing_key, calls), timeout)
        if not return_exceptions:
            for value in values:
                if isinstance(value, BaseException):
                    raise value
        return values

    def notify_many(self, routing_key: str, params: Iterable[Params]) -> None:
        """Send one call per parameter set, over one connection, without waiting."""
        self._publish_many(
            routing_key, [_merge((), each, {}) for each in params], ignore_result=True
        )

    def request(
        self, routing_key: str, params: Params = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """Call and return a JSON-RPC response ``{"jsonrpc": "2.0", "id", "result"}``."""
        call_id = str(uuid.uuid4())
        result = self._call(routing_key, *_merge((), params, {}), timeout, call_id)
        return {"jsonrpc": "2.0", "id": call_id, "result": result}

    def _call(
        self,
        routing_key: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        timeout: float | None,
        call_id: str,
    ) -> Any:
        result = self._publish(routing_key, args, kwargs, task_id=call_id)
        inside_task = get_current_worker_task() is not None
        return self._wait(result, timeout, disable_sync_subtasks=not inside_task)

    def _publish(
        self,
        routing_key: str,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        /,
        **options: Any,
    ) -> BoundedResult:
        # The one publish path (size check, self-call rule, BrokerUnavailable): runtime.publish.
        return self.app.send_task(routing_key, args=args, kwargs=kwargs, **options)  # type: ignore[no-any-return]

    def _publish_many(
        self,
        routing_key: str,
        calls: Sequence[batches.Call],
        task: str | None = None,
        /,
        **options: Any,
    ) -> list[BoundedResult]:
        """Publish a batch through one producer; on Redis as pipelined commands.

        kombu's publish batch sends up to 1,000 buffered commands per round trip.
        If sending fails the caller gets :class:`BrokerUnavailable` and some of the
        calls may have been queued: a batch retried may run some calls twice.
        ``task`` names another task than the routing key's (a chunk of calls).
        """
        try:
            with self.app.producer_or_acquire() as producer, _batched(producer):
                return [
                    self._publish(task or routing_key, args, kwargs, producer=producer, **options)
                    for args, kwargs in calls
                ]
        except (*UNREACHABLE, BatchPublishError) as exc:
            raise BrokerUnavailable(routing_key, str(exc)) from exc

    def _call_chunks(
        self, routing_key: str, calls: list[batches.Call], size: int, timeout: float | None
    ) -> list[Any]:
        """Every call's value, sent in chunks of ``size`` to the routing key's queue."""
        route = self.app.route_call(routing_key, (), {}, {})  # NoRouteError before sending
        limit = self.app.settings.max_payload_bytes
        chunks = batches.split(routing_key, calls, size, limit)
        carried: list[batches.Call] = [((routing_key, chunk), {}) for chunk in chunks]
        try:
            results = self._publish_many(routing_key, carried, batches.BATCH_TASK, **route)
        except BrokerUnavailable as exc:  # raised naming the chunk task: name the caller's key
            raise BrokerUnavailable(routing_key, exc.reason) from exc
        values: list[Any] = []
        for chunk, outcome in zip(chunks, self._join(routing_key, results, timeout), strict=True):
            if isinstance(outcome, BaseException):
                values.extend([outcome] * len(chunk))
            else:
                values.extend(batches.values_of(outcome, len(chunk)))
        return values

    def _join(
        self, routing_key: str, results: list[BoundedResult], timeout: float | None
    ) -> list[Any]:
        """Every result of a batch, in order, failures as exceptions; bounded by ``timeout``.

        (Result by result under one deadline: Celery's ``ResultSet.join_native``
        measured slower; see the README, "Performance".)
        """
        if timeout is None:
            timeout = self.app.settings.call_timeout_s
        deadline = time.monotonic() + timeout
        inside_task = get_current_worker_task() is not None
        values = []
        for result in results:
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                values.append(
                    result.get(
                        timeout=remaining, propagate=False, disable_sync_subtasks=not inside_task
                    )
                )
            except CallTimeout:
                raise CallTimeout(routing_key, timeout) from None
        return values

    def _wait(self, result: BoundedResult, timeout: float | None, **options: Any) -> Any:
        return result.get(timeout=timeout, **options)


def _batched(producer: Any) -> AbstractContextManager[Any]:
    """The producer's publish batch (kombu 5.7+), or publishing one by one."""
    batch = getattr(producer, "batch", None)
    return batch() if batch is not None else nullcontext()


def _merge(
    args: Sequence[Any], params: Params, kwargs: Mapping[str, Any]
) -> tuple[Sequence[Any], Mapping[str, Any]]:
    """JSON-RPC parameters come as a list (positional) or an object (keyword)."""
    if params is None:
        return args, kwargs
    if args or kwargs:
        raise TypeError("give parameters either as params= or as arguments, not both")
    if isinstance(params, Mapping):
        return (), params
    if isinstance(params, (list, tuple)):
        return params, {}
    raise TypeError(f"params must be a list or a dict, not {type(params).__name__}")


_default_bus = Bus()
call = _default_bus.call
call_many = _default_bus.call_many
send = _default_bus.send
notify = _default_bus.notify
notify_many = _default_bus.notify_many
request = _default_bus.request
