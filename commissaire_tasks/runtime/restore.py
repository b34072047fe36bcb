"""Unacknowledged messages restored when Redis is back, not at the visibility timeout.

When a worker's connection to Redis drops, kombu closes the channel and puts
every message the worker had taken but not acknowledged back on its queue
(``restore_unacked``). Redis is down at that moment, so the restore fails and
the messages stay in kombu's ``unacked`` hash until the visibility timeout
(30 minutes by default) hands them out again.

:class:`RestoringQoS` remembers the tags it could not restore, per process and
per broker, and restores them by tag from the next channel of this process that
reaches the same broker: on its periodic sweep (``restore_visible``, every
``unacked_restore_interval`` seconds, so within seconds of the reconnect).
Retrying is safe where shortening the visibility timeout is not: a restore by
tag moves a message from ``unacked`` back to its queue in one transaction and
does nothing once the message is gone from ``unacked`` (acknowledged, or
restored already), whereas a short visibility timeout would hand every long
call to a second worker while the first still runs it.

A message still running in this worker is left for a later sweep. When it
ends, its acknowledgement reaches the old, closed channel, which kombu cannot
send through (the worker died of it: ``AttributeError`` in ``_connparams``):
here it goes through this process's live channel to the same broker instead, and
the message is forgotten. A call whose acknowledgement was lost in the outage,
or whose message was restored before it ended, runs again, as the README's
guarantees allow. Tags remembered by a process that exits before Redis returns
still wait for the visibility timeout.

One more window: kombu takes a message off its queue (``BRPOP``) and only then
records it as unacknowledged. When Redis goes away between the two, the message
is in no list and no hash, only in this process: kombu drops it. Such a message
is kept here too and pushed back on its queue by the same sweep.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from redis.exceptions import ConnectionError as RedisConnectionError

logger = logging.getLogger(__name__)

#: broker (URL without password, unacked hash) -> delivery tag -> kombu message
_unrestored: dict[str, dict[str, Any]] = {}
#: broker -> messages taken off their queue but never recorded as unacknowledged
_untracked: dict[str, list[Any]] = {}
#: broker -> the QoS of this process's newest channel to it
_newest: dict[str, weakref.ref[RestoringQoS]] = {}
_lock = threading.Lock()


def remember(broker: str, messages: dict[str, Any]) -> None:
    """Keep ``messages`` (tag -> message) to restore once ``broker`` answers again."""
    if messages:
        with _lock:
            _unrestored.setdefault(broker, {}).update(messages)


def take(broker: str) -> dict[str, Any]:
    """Remove and return the messages remembered for ``broker``."""
    with _lock:
        return _unrestored.pop(broker, {})


def take_one(broker: str, tag: str) -> Any:
    """Remove and return the message remembered under ``tag``, or None."""
    with _lock:
        return _unrestored.get(broker, {}).pop(tag, None)


def keep_untracked(broker: str, messages: list[Any]) -> None:
    """Keep ``messages`` that are nowhere in Redis, to put back on their queues."""
    if messages:
        with _lock:
            _untracked.setdefault(broker, []).extend(messages)


def take_untracked(broker: str) -> list[Any]:
    """Remove and return the untracked messages kept for ``broker``."""
    with _lock:
        return _untracked.pop(broker, [])


def pending(broker: str | None = None) -> int:
    """How many messages wait to be restored (for ``broker``, or for any)."""
    with _lock:
        brokers = [broker] if broker is not None else {*_unrestored, *_untracked}
        return sum(len(_unrestored.get(b, {})) + len(_untracked.get(b, [])) for b in brokers)


def running_task_ids() -> set[str]:
    """Ids of the calls this worker process is running now (empty outside a worker)."""
    from celery.worker import state

    return {request.id for request in list(state.active_requests)}


def broker_of(channel: Any) -> str:
    """The key a channel's unacknowledged messages are remembered under."""
    return f"{channel.connection.client.as_uri()}#{channel.unacked_key}"


#: kombu's Redis QoS, untyped: its methods are called here as ``Any``.
_KombuRedisQoS: Any = kombu_redis.QoS


class RestoringQoS(_KombuRedisQoS):  # type: ignore[misc]
    """kombu's Redis QoS that retries a failed restore once Redis is back."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.broker = broker_of(self.channel)
        with _lock:
            _newest[self.broker] = weakref.ref(self)

    @contextmanager
    def pipe_or_acquire(self, pipe: Any = None, client: Any = None) -> Iterator[Any]:
        """kombu's, without MULTI/EXEC around the bookkeeping of one message.

        Recording a message as taken (ZADD, HSET) and forgetting it (ZREM, HDEL) need
        no transaction: a restore sweep only takes index entries older than the
        visibility timeout and restores each under WATCH of the hash (kombu's
        ``restore_by_tag``, which passes its own transaction here). Four commands less
        per call.
        """
        if pipe is not None:
            yield pipe
            return
        with self.channel.conn_or_acquire(client) as connected:
            yield connected.pipeline(transaction=False)

    def attached(self) -> bool:
        """Whether this channel still belongs to an open connection."""
        transport = self.channel.connection
        return transport is not None and transport.client is not None

    def append(self, message: Any, delivery_tag: str) -> None:
        """Record a message just taken as unacknowledged; keep it if Redis went away."""
        try:
            super().append(message, delivery_tag)
        except live_errors(self):
            keep_untracked(self.broker, [message])
            logger.warning("Redis went away as a message was taken: it goes back when Redis does")
            raise

    def ack(self, delivery_tag: str) -> None:
        if self.attached():
            return super().ack(delivery_tag)  # type: ignore[no-any-return]
        self._settle_detached(delivery_tag)
        return virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-any-return]

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if self.attached():
            return super().reject(delivery_tag, requeue)  # type: ignore[no-any-return]
        if not requeue:  # (a requeued one stays remembered: the next sweep requeues it)
            self._settle_detached(delivery_tag)
        return virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-any-return]

    def _settle_detached(self, tag: str) -> None:
        """Acknowledge, through a live channel, a message taken by this closed one."""
        message = take_one(self.broker, tag)
        if message is None:
            return  # restored already: it runs again (or it was never left behind)
        with _lock:
            newest = _newest.get(self.broker)
        live = newest() if newest is not None else None
        try:
            if live is None or not live.attached():
                raise RedisConnectionError("no open connection to the broker yet")
            live._remove_from_indices(tag).execute()
        except live_errors(live):
            remember(self.broker, {tag: message})
            raise

    def restore_unacked(self, client: Any = None) -> None:
        """Restore every unacknowledged message; remember those Redis was not there for."""
        delivered = dict(self._delivered)
        self._delivered.clear()
        left = self._restore_each(delivered, client)
        if left:
            remember(self.broker, left)
            logger.warning(
                "Redis unreachable: %d unacknowledged message(s) will be restored once it is back",
                len(left),
            )

    def restore_visible(self, *args: Any, **kwargs: Any) -> Any:
        """Restore what a lost connection left behind, then kombu's visibility sweep."""
        self.restore_remembered()
        return super().restore_visible(*args, **kwargs)

    def restore_remembered(self) -> int:
        """Restore the messages remembered for this broker; return how many were."""
        restored = self._requeue_untracked()
        remembered = take(self.broker)
        if not remembered:
            return restored
        running = running_task_ids()
        later = {t: m for t, m in remembered.items() if _task_id(m) in running}
        due = {t: m for t, m in remembered.items() if t not in later and not _acked(m)}
        left = self._restore_each(due, None)
        remember(self.broker, {**later, **left})
        restored += len(due) - len(left)
        if restored:
            logger.info("Restored %d unacknowledged message(s) after a lost connection", restored)
        return restored

    def _requeue_untracked(self) -> int:
        """Put the messages Redis never recorded back on their queues; return how many."""
        messages = take_untracked(self.broker)
        if not messages or not self.attached():
            keep_untracked(self.broker, messages)
            return 0
        try:
            with self.channel.conn_or_acquire() as client, client.pipeline() as pipe:
                for message in messages:
                    info = message.delivery_info
                    self.channel._do_restore_message(
                        message._raw, info["exchange"], info["routing_key"], pipe
                    )
                pipe.execute()
        except self.channel.connection_errors:
            keep_untracked(self.broker, messages)
            return 0
        return len(messages)

    def _restore_each(self, messages: dict[str, Any], client: Any) -> dict[str, Any]:
        """Restore ``messages`` by tag; return those left when Redis stopped answering."""
        tags = list(messages)
        if not self.attached():
            return messages  # this channel's connection was closed: another channel will
        done = 0
        try:
            with self.channel.conn_or_acquire(client) as conn:
                for tag in tags:
                    self.restore_by_tag(tag, client=conn)
                    done += 1
        except self.channel.connection_errors:
            return {tag: messages[tag] for tag in tags[done:]}
        return {}


def live_errors(qos: RestoringQoS | None) -> tuple[type[BaseException], ...]:
    """The errors meaning Redis cannot be reached (kombu's list, or redis-py's own)."""
    errors = getattr(getattr(qos, "channel", None), "connection_errors", ())
    return (RedisConnectionError, *errors)


def _acked(message: Any) -> bool:
    """Acknowledged for good. A rejected message is restored: one rejected to be requeued
    on a closed channel waits for this (kombu could not requeue it), and for any other
    the restore by tag does nothing (the broker took the reject)."""
    return getattr(message, "_state", None) == "ACK"


def _task_id(message: Any) -> str | None:
    headers = getattr(message, "headers", None) or {}
    return headers.get("id")
