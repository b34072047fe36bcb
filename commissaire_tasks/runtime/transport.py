"""kombu's Redis transport with one Redis client per channel, not one per command.

kombu builds a new ``redis.Redis`` object for every publish, acknowledgement and
queue check (each one copies redis-py's table of some 170 response callbacks),
although the connections underneath always come from the channel's pool. A
client object is safe to share between threads, so each channel here keeps one
per pool and hands it out again. The commands, keys and messages are unchanged:
plain Celery workers and clients, and Flower, work alongside.

Only kombu's plain Redis transport is replaced (``redis://``, ``rediss://``,
``redis+socket://``; Sentinel and every other transport stay kombu's), and the
URL and ``as_uri()`` stay as kombu has them. Apps pick it up through :class:`AMQP`.

An entry of a queue's list that is not a deliverable message envelope (see
:mod:`._envelope`) would stop kombu's event loop; this channel moves it to the
queue's dead letters (:mod:`.deadletters`) with one log line instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from queue import Empty
from typing import Any

from celery.app.amqp import AMQP as CeleryAMQP
from kombu import connection as kombu_connection
from kombu.transport import redis as kombu_redis
from kombu.utils.encoding import bytes_to_str
from kombu.utils.objects import cached_property

from ..errors import NoRouteError
from . import deadletters
from ._envelope import BadEntry, parse_entry
from ._unroutable import send_mandatory
from .restore import RestoringQoS

logger = logging.getLogger(__name__)


class Channel(kombu_redis.Channel):
    """Reuses one client per connection pool (pools are replaced after a fork)."""

    #: Retries a restore that failed while Redis was down (see :mod:`._restore`).
    QoS = RestoringQoS
    _reused_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool
        reused = self._reused_client
        if reused is None or reused.connection_pool is not pool:
            reused = self._reused_client = self._create_client()  # type: ignore[no-untyped-call]
        yield reused

    def basic_consume(
        self, queue: str, no_ack: bool, callback: Any, consumer_tag: str, **kwargs: Any
    ) -> Any:
        """Consume as kombu does; each message also records the queue it came from."""

        def deliver(message: Any) -> Any:
            message.consumed_from = queue
            return callback(message)

        return super().basic_consume(queue, no_ack, deliver, consumer_tag, **kwargs)  # type: ignore[no-untyped-call]

    def _brpop_read(self, **options: Any) -> bool:
        """kombu's BRPOP reply handling, with entries that are not envelopes moved aside."""
        try:
            try:
                reply = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # the next poll reconnects
                raise
            if not reply:
                raise Empty()
            key, entry = reply
            queue = bytes_to_str(key).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(queue)
            payload = self._envelope_or_dead_letter(queue, entry)
            if payload is None:
                raise Empty()
            self.connection._deliver(payload, queue)
            return True
        finally:
            self._in_poll = None  # type: ignore[assignment]
            flush_reauth = getattr(self, "_flush_brpop_reauth", None)  # kombu 5.7+
            if flush_reauth is not None:
                flush_reauth()  # the BRPOP connection is idle: kombu's moment to re-auth

    def _get(self, queue: str, timeout: Any = None) -> Any:
        """kombu's one-message read (``basic_get``), skipping entries that are not envelopes."""
        with self.conn_or_acquire() as client:
            for priority in self.priority_steps:
                key = self._q_for_pri(queue, priority)  # type: ignore[no-untyped-call]
                while (entry := client.rpop(key)) is not None:
                    payload = self._envelope_or_dead_letter(queue, entry)
                    if payload is not None:
                        self._maybe_update_queues_expire(client, queue)  # type: ignore[no-untyped-call]
                        return payload
            self._maybe_update_queues_expire(client, queue)  # type: ignore[no-untyped-call]
            raise Empty()

    def _envelope_or_dead_letter(self, queue: str, entry: bytes) -> dict[str, Any] | None:
        try:
            return parse_entry(entry, self.decode_body)
        except BadEntry as reason:
            self._dead_letter(queue, entry, str(reason))
            return None

    def _dead_letter(self, queue: str, entry: bytes, reason: str) -> None:
        try:
            with self.conn_or_acquire() as client:
                place = deadletters.store_entry(client, queue, entry)
        except self.connection_errors:
            logger.error(
                "Dropped an entry of queue %r (%s): could not dead-letter it", queue, reason
            )
            raise
        logger.warning("Moved an entry of queue %r to %r: %s", queue, place, reason)


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(kombu_redis.SentinelChannel):
    """kombu's Sentinel channel, with the restore retried once Redis is back."""

    QoS = RestoringQoS


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


class Connection(kombu_connection.Connection):
    """A kombu connection that uses :class:`Transport` where kombu's Redis one was chosen."""

    def get_transport_cls(self) -> type[Any]:
        transport_cls = super().get_transport_cls()  # type: ignore[no-untyped-call]
        if transport_cls is kombu_redis.SentinelTransport:
            return SentinelTransport
        return Transport if transport_cls is kombu_redis.Transport else transport_cls

    def Pool(self, limit: int | None = None, **kwargs: Any) -> ConnectionPool:  # noqa: N802
        return ConnectionPool(self, limit, **kwargs)  # type: ignore[no-untyped-call]


class PooledConnection(Connection, kombu_connection.PooledConnection):
    """kombu's pooled connection (closed on error), with :class:`Transport` too."""


class ConnectionPool(kombu_connection.ConnectionPool):
    """The pool Celery publishes through (``app.pool``), of :class:`PooledConnection` s."""

    def new(self) -> PooledConnection:
        info = self.connection._info(resolve=False)
        return PooledConnection(self, **dict(info))  # type: ignore[no-untyped-call]


#: ``send_task`` option: publish the call without its ``task-sent`` event (the notifier's
#: deliveries; workers still send received/started/succeeded events for them).
WITHOUT_SENT_EVENT = "commissaire_without_sent_event"


class AMQP(CeleryAMQP):  # type: ignore[misc]
    """Celery's AMQP helper, opening :class:`Connection` s (the app's ``amqp_cls``).

    A call routed with ``mandatory`` (by RabbitMQ's topic exchange, see
    :mod:`._bindings`) is published with a confirm, and raises NoRouteError when
    the broker returns it (:mod:`._unroutable`).
    """

    Connection = Connection

    @cached_property
    def send_task_message(self) -> Any:
        send = self._create_task_sender()

        def send_task_message(producer: Any, name: str, message: Any, **options: Any) -> Any:
            if options.pop(WITHOUT_SENT_EVENT, False) and isinstance(message, tuple):
                message = (*message[:3], None)  # no task-sent event: one publish, not two
            if options.get("mandatory") and producer.connection.transport.driver_type == "amqp":
                try:
                    return send_mandatory(send, producer, name, message, **options)
                except NoRouteError:
                    self._forget_result(message)
                    raise
            return send(producer, name, message, **options)

        return send_task_message

    def _forget_result(self, message: Any) -> None:
        """Stop waiting for the result of a call that was returned (Celery subscribed to it)."""
        call_id = (message[0] or {}).get("id") if isinstance(message, tuple) else None
        consumer: Any = getattr(self.app.backend, "result_consumer", None)
        if isinstance(call_id, str) and hasattr(consumer, "cancel_for"):
            consumer.cancel_for(call_id)
