"""Failures stored as JSON-RPC error objects, rebuilt as the right exception.

Celery stores a failure as ``{exc_type, exc_module, exc_message}``; the result
backends of our apps add ``error``: the JSON-RPC error object ``{code, message,
data}``. Plain Celery clients still read the first three keys; ours rebuild the
exception from ``error`` through the allow-list in :mod:`commissaire_tasks.errors`,
so ``.get()`` raises ``NotImplementedError`` for a ``NotImplementedError`` and a
``StorageLookupError`` with its code and data for a ``StorageLookupError``.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from functools import cache, partial
from typing import Any

from celery import states
from celery.backends.base import Backend
from celery.backends.redis import RedisBackend
from celery.backends.redis import ResultConsumer as CeleryRedisResultConsumer
from celery.exceptions import BackendStoreError, NotRegistered, TimeLimitExceeded, WorkerLostError
from celery.exceptions import TimeoutError as CeleryTimeoutError
from celery.result import AsyncResult
from kombu.exceptions import OperationalError
from kombu.utils.encoding import bytes_to_str
from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ..errors import (
    BrokerUnavailable,
    CallTimeout,
    InternalError,
    MethodNotFound,
    error_from_jsonrpc,
    jsonrpc_error,
)

#: Errors that mean the broker or the result backend cannot be reached.
UNREACHABLE = (OperationalError, ConnectionError, RedisConnectionError, RedisTimeoutError)

#: Celery's own failures, as the JSON-RPC errors a caller should see.
_CELERY_FAILURES: dict[type[BaseException], type[Exception]] = {
    NotRegistered: MethodNotFound,
    WorkerLostError: InternalError,
    TimeLimitExceeded: InternalError,
}


def failure_as_jsonrpc(exc: BaseException) -> dict[str, Any]:
    """The JSON-RPC error object for an exception raised while serving a call."""
    for celery_type, error_type in _CELERY_FAILURES.items():
        if isinstance(exc, celery_type):
            detail = f"method not found: {exc}" if error_type is MethodNotFound else str(exc)
            error = jsonrpc_error(error_type(detail))
            error["data"]["exception"] = type(exc).__name__
            return error
    return jsonrpc_error(exc)


class JsonRpcFailures:
    """Mixin for a Celery result backend class; see the module docstring."""

    def prepare_exception(self, exc: BaseException, serializer: str | None = None) -> Any:
        prepared = super().prepare_exception(exc, serializer)  # type: ignore[misc]
        if isinstance(prepared, dict):
            prepared["error"] = failure_as_jsonrpc(exc)
        return prepared

    def exception_to_python(self, exc: Any) -> Any:
        if isinstance(exc, dict) and isinstance(exc.get("error"), dict):
            return error_from_jsonrpc(exc["error"])
        return super().exception_to_python(exc)  # type: ignore[misc]


#: The guard every store runs first: a redelivered call never overwrites a success.
_UNLESS_SUCCEEDED = b"""
local current = redis.call('GET', KEYS[1])
if current then
    local ok, meta = pcall(cjson.decode, current)
    if ok and type(meta) == 'table' and meta['status'] == 'SUCCESS' then
        return 0
    end
end
local expires = tonumber(ARGV[2])
if expires > 0 then
    redis.call('SET', KEYS[1], ARGV[1], 'EX', expires)
else
    redis.call('SET', KEYS[1], ARGV[1])
end
"""

#: Store a result unless the call already succeeded, and announce it, in one round trip.
#: (redis-py runs it by SHA and loads it again after a Redis restart.)
_STORE_SCRIPT = Script(
    None,  # type: ignore[arg-type]  # no client of its own: each call passes one
    _UNLESS_SUCCEEDED + b"redis.call('PUBLISH', KEYS[1], ARGV[1])\nreturn 1\n",
)

#: The same, delivered to the caller's reply list (KEYS[2]) instead of announced on
#: a channel. A list its caller keeps emptying is created anew, and given its
#: expiry (ARGV[3] seconds), by the first result after each pop.
_REPLY_SCRIPT = Script(
    None,  # type: ignore[arg-type]
    _UNLESS_SUCCEEDED
    + b"""
if redis.call('RPUSH', KEYS[2], ARGV[1]) == 1 then
    redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
end
return 1
""",
)

#: What a caller with a reply list puts in ``reply_to`` (see :mod:`.replies`).
REPLY_TO_PREFIX = "reply."
_REPLY_TO = re.compile(r"reply\.[0-9a-f]{32}")
#: Seconds a reply list lives once created, unless the app sets
#: ``result_backend_transport_options["reply_expires"]`` (``COMMISSAIRE_REPLY_EXPIRES``).
DEFAULT_REPLY_EXPIRES_S = 300


def reply_key(backend: Any, reply_to: str) -> str:
    """The Redis list a caller with ``reply_to`` pops its results from.

    Beside the result keys: ``celery-reply-reply.<hex>``, under Celery's
    ``global_keyprefix`` when one is set.
    """
    prefix = bytes_to_str(backend.task_keyprefix).replace("celery-task-meta-", "celery-reply-")
    return f"{prefix}{reply_to}"


class OneTripRedisStore:
    """Mixin for Celery's Redis result backend: one round trip per stored result.

    Celery reads the stored state first (so a redelivered call cannot overwrite a
    success), then sets and publishes in a second round trip. The same rule runs
    here as one Lua script, on the Redis server, with the same keys and messages,
    so every Celery client and Flower read the results as before. A call whose
    ``reply_to`` names a reply list (a caller on the lean result path) gets its
    result pushed there instead of published, in the same script.
    """

    @property
    def reply_expires(self) -> int:
        """Seconds a reply list lives once created (its results stay under their keys)."""
        conf: Any = self.app.conf  # type: ignore[attr-defined]
        options = conf.get("result_backend_transport_options") or {}
        return int(options.get("reply_expires") or DEFAULT_REPLY_EXPIRES_S)

    def _store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: Any = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        backend: Any = self
        meta = backend._get_result_meta(
            result=result, state=state, traceback=traceback, request=request
        )
        meta["task_id"] = bytes_to_str(task_id)
        value = backend.encode(meta)
        if isinstance(value, str) and len(value) > backend._MAX_STR_VALUE_SIZE:
            raise BackendStoreError(
                "value too large for Redis backend", state=state, task_id=task_id
            )
        expires = backend.failure_expires if state == states.FAILURE else backend.expires
        key = backend.get_key_for_task(task_id)
        reply_to = getattr(request, "reply_to", None)
        if isinstance(reply_to, str) and _REPLY_TO.fullmatch(reply_to):
            args = (key, value, int(expires or 0), reply_key(self, reply_to))
            backend.ensure(self._store_and_reply, args)
        else:
            backend.ensure(self._store_unless_succeeded, (key, value, int(expires or 0)))
        return result

    def _store_unless_succeeded(self, key: str, value: Any, expires: int) -> None:
        _STORE_SCRIPT(keys=[key], args=[value, expires], client=self.client)  # type: ignore[attr-defined]

    def _store_and_reply(self, key: str, value: Any, expires: int, replies: str) -> None:
        args = [value, expires, self.reply_expires]
        _REPLY_SCRIPT(keys=[key, replies], args=args, client=self.client)  # type: ignore[attr-defined]


#: Reconnects (about one a second) a caller tries before it gives up subscribing to a
#: call's result when it is not waiting yet; Celery's 20 would make a call to a
#: stopped Redis wait about 20 s. A caller waiting in ``get()`` retries until its timeout.
SUBSCRIBE_RETRIES = 3

#: When the call this thread waits for gives up (``time.monotonic()``), while it waits.
_waiting = threading.local()


def _seconds_left() -> float | None:
    deadline = getattr(_waiting, "deadline", None)
    return None if deadline is None else deadline - time.monotonic()


class ReconnectingResultConsumer(CeleryRedisResultConsumer):  # type: ignore[misc]
    """Celery's Redis result consumer, made safe across a Redis restart.

    * After reconnecting, Celery reads the subscribed results and only then
      subscribes again: a result stored in between is neither read nor
      heard. Here they are read once more after subscribing; and again each
      time redis-py reconnects the subscription by itself (a short outage),
      which it does without reading anything.
    * Reconnecting gives up when the waiting caller's timeout does (Celery
      retries for about 20 s whatever the timeout), so the caller gets
      :class:`~commissaire_tasks.errors.BrokerUnavailable` in time.
    * After a reconnect that gave up, the next wait or call reconnects every
      subscription (Celery would only subscribe a new call's result again, and
      earlier waiters would hear nothing until their timeout).
    * Subscribing outside a wait (when a call is sent) gives up after
      :data:`SUBSCRIBE_RETRIES`; storing results keeps the backend's own retries.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ensure = partial(self.backend.ensure, max_retries=SUBSCRIBE_RETRIES)

    @property
    def awaited(self) -> set[str]:
        """The result keys this process is subscribed to."""
        return {bytes_to_str(key) for key in self.subscribed_to}

    def _reconnect(self) -> None:
        left = _seconds_left()
        policy = {} if left is None else {"max_retries": None, "timeout": max(left, 0.01)}
        self._ensure(self._reconnect_pubsub, (), **policy)

    def _reconnect_pubsub(self) -> None:
        super()._reconnect_pubsub()
        with self._locked():
            self._read_subscribed()
            self._watch_reconnects()

    def _watch_reconnects(self) -> None:
        pubsub = self._pubsub
        connection = pubsub.connection if pubsub is not None else None
        if connection is not None:
            # Called after redis-py's own callback, which subscribes again.
            connection.register_connect_callback(self._on_pubsub_connect)

    def _on_pubsub_connect(self, connection: Any) -> None:
        pubsub = self._pubsub
        if pubsub is not None and pubsub.connection is connection:
            self._read_subscribed()

    def _read_subscribed(self) -> None:
        keys = list(self.subscribed_to)
        if keys:
            for meta in self.backend.client.mget(keys):
                if meta:
                    self.on_state_change(self._decode_result(meta), None)

    def start(self, initial_task_id: str, **kwargs: Any) -> None:
        with self._locked():
            if not self.subscribed_to:  # first start: nothing subscribed yet
                super().start(initial_task_id, **kwargs)
                self._watch_reconnects()
                return
            self.subscribed_to.add(self._get_key_for_task(initial_task_id))
            self._reconnect_pubsub()

    def drain_events(self, timeout: float | None = None) -> None:
        if self._pubsub is None and self.subscribed_to:
            self._reconnect()
        super().drain_events(timeout)


@cache
def with_jsonrpc_failures(backend_cls: type[Backend]) -> type[Backend]:
    """``backend_cls`` with :class:`JsonRpcFailures` mixed in (one class per backend type).

    A Redis backend also gets :class:`OneTripRedisStore` and
    :class:`ReconnectingResultConsumer`.
    """
    mixins: tuple[type, ...] = (JsonRpcFailures,)
    attributes: dict[str, Any] = {}
    if issubclass(backend_cls, RedisBackend) and not getattr(backend_cls, "lean_replies", False):
        mixins += (OneTripRedisStore,)
        attributes["ResultConsumer"] = ReconnectingResultConsumer
    return type(backend_cls.__name__, (*mixins, backend_cls), attributes)


class BoundedResult(AsyncResult):  # type: ignore[misc]
    """An AsyncResult whose ``get()`` never waits forever.

    Without a timeout it waits the app's ``call_timeout_s``; when the time is up
    it raises :class:`~commissaire_tasks.errors.CallTimeout` naming the routing key;
    when the backend cannot be reached, :class:`~commissaire_tasks.errors.BrokerUnavailable`.
    """

    #: The routing key the call was sent to, when known.
    routing_key: str | None = None

    def get(self, timeout: float | None = None, *args: Any, **kwargs: Any) -> Any:
        if timeout is None:
            timeout = self.app.settings.call_timeout_s
        outer = getattr(_waiting, "deadline", None)
        _waiting.deadline = time.monotonic() + timeout
        try:
            return super().get(timeout, *args, **kwargs)
        except CeleryTimeoutError:
            self._stop_waiting()
            raise CallTimeout(self.routing_key or self.name or self.id, timeout) from None
        except KeyboardInterrupt:
            self._stop_waiting()
            raise
        except UNREACHABLE as exc:
            raise BrokerUnavailable(self.routing_key or self.name or self.id, str(exc)) from exc
        except RuntimeError as exc:  # Celery's "retry limit exceeded" while reconnecting
            if not isinstance(exc.__cause__, UNREACHABLE):
                raise
            cause = str(exc.__cause__)
            raise BrokerUnavailable(self.routing_key or self.name or self.id, cause) from exc
        finally:
            _waiting.deadline = outer

    def _stop_waiting(self) -> None:
        """Stop listening for this result now, while the interpreter can still talk to Redis.

        Otherwise the backend keeps it pending until the process exits, and
        ``AsyncResult.__del__`` then unsubscribes during shutdown and prints a traceback.
        """
        with contextlib.suppress(Exception):
            self.backend.remove_pending_result(self)
