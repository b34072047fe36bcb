"""Routing a call no known queue claims by the bindings the broker holds.

This is how the original's topic exchange routed: any worker that bound a queue
to a pattern (``qkwargs=[{'name': 'my_queue', 'routing_key': 'queues.my_queue.*'}]``)
is reachable by a caller that imports nothing and configures nothing.

* On Redis, kombu keeps each exchange's bindings in the set
  ``_kombu.binding.<exchange>``. :class:`BindingTable` reads it, caches it and reads
  it again on a miss (a queue bound a moment ago is reachable at once). The call
  is then published straight to the queue found, on the default exchange, as
  calls to known queues are: a message kombu restores after a crash finds its
  queue again, and a call is one message.
* On RabbitMQ the exchange routes itself: the call goes to the topic exchange,
  published mandatory with a publisher confirm (:mod:`._unroutable`), so a key
  no queue is bound to raises NoRouteError instead of being dropped.

A key nothing matches fails with NoRouteError before anything is published, so
nothing is left behind (no message, no queue, no binding).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from kombu.entity import Exchange, Queue

from .errors import NoRouteError
from .routing import topic_matches

__all__ = ["BindingTable", "BrokerRoutes"]

#: Seconds a cached binding table is trusted before it is read again on a hit.
MAX_AGE_S = 30.0

Binding = tuple[str, str]  # (pattern, queue)


class BindingTable:
    """The bindings of one exchange, cached, read again on a miss or when old.

    Args:
        read: Returns the current ``(pattern, queue)`` pairs.
        max_age_s: After this long a hit reads the table again too.
    """

    def __init__(self, read: Callable[[], Iterable[Binding]], max_age_s: float = MAX_AGE_S) -> None:
        self._read = read
        self._max_age_s = max_age_s
        self._bindings: tuple[Binding, ...] = ()
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def queue_for(self, routing_key: str) -> str | None:
        """The queue ``routing_key`` reaches, or None if no binding matches it."""
        fresh = time.monotonic() - self._read_at < self._max_age_s
        queue = self._match(routing_key) if fresh else None
        if queue is None:
            self.refresh()
            queue = self._match(routing_key)
        return queue

    def refresh(self) -> None:
        bindings = tuple(sorted(set(self._read()), key=lambda b: (b[1], b[0])))
        with self._lock:
            self._bindings = bindings
            self._read_at = time.monotonic()

    def _match(self, routing_key: str) -> str | None:
        """One queue (the first by name): a call stays one message, never a fan-out."""
        for pattern, queue in self._bindings:
            if topic_matches(pattern, routing_key):
                return queue
        return None


class BrokerRoutes:
    """Celery route options for a key no known queue claims, by the app's broker."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._driver: str | None = None
        self._table = BindingTable(self._read_redis_bindings)

    @property
    def driver(self) -> str:
        if self._driver is None:
            with self.app.connection_for_write() as connection:
                self._driver = str(connection.transport.driver_type)
        return self._driver

    def route(self, routing_key: str) -> dict[str, Any]:
        exchange = self.app.settings.exchange
        if self.driver == "redis":
            queue = self._table.queue_for(routing_key)
            if queue is None:
                reason = f"no binding on exchange {exchange!r} matches it"
                raise NoRouteError(routing_key, f"{reason} and no known service claims it")
            return {
                "queue": _plain_queue(queue),
                "exchange": "",
                "routing_key": queue,
                "declare": [],
            }
        if self.driver == "amqp":
            topic = _topic_exchange(exchange)
            return {
                "queue": Queue(routing_key, topic, routing_key=routing_key, no_declare=True),
                "exchange": exchange,
                "routing_key": routing_key,
                "declare": [topic],
                "mandatory": True,
            }
        raise NoRouteError(routing_key, "no known service or configured queue claims it")

    def _read_redis_bindings(self) -> list[Binding]:
        with self.app.pool.acquire(block=True) as connection:
            table = connection.default_channel.get_table(self.app.settings.exchange)
        # kombu's rows are (binding key, header pattern, queue)
        return [(row[0], row[2]) for row in table if len(row) == 3 and row[0]]


@lru_cache(maxsize=1024)
def _plain_queue(name: str) -> Queue:
    return Queue(name, no_declare=True)


@lru_cache(maxsize=16)
def _topic_exchange(name: str) -> Exchange:
    return Exchange(name, type="topic", durable=True)
