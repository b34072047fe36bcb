"""Dead letters: entries of a service's queue that no worker can run, kept for a person.

A worker that pops something that is not a call it can run (bytes that are not
JSON, JSON that is not a message envelope, a foreign content type, an unknown
task...) logs one line naming the queue and the reason, moves the entry here and
goes on serving. The dead-letter place of queue ``Q`` is the queue ``Q.dead``:

* on Redis, the list ``Q.dead``, holding each entry exactly as it was read;
* on RabbitMQ, a durable queue ``Q.dead`` reached through the default exchange,
  holding each message's body and properties.

No binding routes to it and no worker consumes it. :func:`count`, :func:`peek`
and :func:`purge` work through any kombu connection to the broker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kombu.connection import Connection
from kombu.entity import Queue
from kombu.utils.json import dumps

__all__ = [
    "DEAD_LETTER_SUFFIX",
    "DeadLetter",
    "count",
    "dead_letter_queue",
    "is_dead_letter_queue",
    "peek",
    "purge",
    "store_entry",
    "store_message",
]

logger = logging.getLogger(__name__)

#: Appended to a queue's name to name its dead-letter queue.
DEAD_LETTER_SUFFIX = ".dead"
#: Properties an AMQP message carries outside its ``properties`` table.
_AMQP_OWN = ("content_type", "content_encoding", "application_headers", "priority")


def dead_letter_queue(queue: str) -> str:
    """The name of the queue that holds ``queue``'s dead letters."""
    return f"{queue}{DEAD_LETTER_SUFFIX}"


def is_dead_letter_queue(name: str) -> bool:
    return name.endswith(DEAD_LETTER_SUFFIX)


@dataclass(frozen=True)
class DeadLetter:
    """One dead letter. On Redis ``body`` is the whole entry as it was read."""

    body: bytes
    content_type: str | None = None
    headers: dict[str, Any] = field(default_factory=dict)


def _redis_channel(connection: Connection) -> Any:
    return connection.default_channel


def _on_redis(connection: Connection) -> bool:
    return connection.transport.driver_type == "redis"  # type: ignore[no-any-return]


def count(connection: Connection, queue: str) -> int:
    """How many dead letters ``queue`` has (0 when it never had any)."""
    name = dead_letter_queue(queue)
    if _on_redis(connection):
        with _redis_channel(connection).conn_or_acquire() as client:
            return int(client.llen(name))
    try:
        with connection.channel() as channel:
            return int(channel.queue_declare(queue=name, passive=True).message_count)
    except connection.channel_errors:  # no such queue: nothing was ever dead-lettered
        return 0


def peek(connection: Connection, queue: str, limit: int = 10) -> list[DeadLetter]:
    """Up to ``limit`` of ``queue``'s dead letters, oldest first, leaving them in place."""
    name = dead_letter_queue(queue)
    if _on_redis(connection):
        with _redis_channel(connection).conn_or_acquire() as client:
            entries = client.lrange(name, -limit, -1) if limit > 0 else []
        return [DeadLetter(body=bytes(entry)) for entry in reversed(entries)]
    letters: list[DeadLetter] = []
    try:
        with connection.channel() as channel:  # closing it requeues what was read
            bound = Queue(name, durable=True, no_declare=True).bind(channel)
            while len(letters) < limit:
                message = bound.get(no_ack=False)
                if message is None:
                    break
                body = _as_bytes(message.body)
                letters.append(DeadLetter(body, message.content_type, dict(message.headers or {})))
    except connection.channel_errors:
        return letters
    return letters


def purge(connection: Connection, queue: str) -> int:
    """Delete ``queue``'s dead letters; return how many there were."""
    name = dead_letter_queue(queue)
    if _on_redis(connection):
        with _redis_channel(connection).conn_or_acquire() as client:
            removed = client.pipeline().llen(name).delete(name).execute()
        return int(removed[0])
    try:
        with connection.channel() as channel:
            return int(channel.queue_purge(name) or 0)
    except connection.channel_errors:
        return 0


def store_entry(client: Any, queue: str, entry: bytes) -> str:
    """Push a raw Redis list entry onto ``queue``'s dead letters, as it was read."""
    name = dead_letter_queue(queue)
    client.lpush(name, entry)
    return name


def store_message(message: Any, queue: str) -> str:
    """Move a message a consumer received onto ``queue``'s dead letters (before its ack)."""
    channel = message.channel
    name = dead_letter_queue(queue)
    raw = getattr(message, "_raw", None)
    if isinstance(raw, dict):  # kombu's virtual transports (Redis): keep the envelope
        with channel.conn_or_acquire() as client:
            client.lpush(name, dumps(raw))
        return name
    properties = dict(message.properties or {})
    body = _as_bytes(message.body)
    channel.queue_declare(queue=name, durable=True, auto_delete=False)
    channel.basic_publish(
        channel.prepare_message(
            body,
            priority=properties.get("priority"),
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            headers=message.headers,
            properties={k: v for k, v in properties.items() if k not in _AMQP_OWN},
        ),
        exchange="",
        routing_key=name,
    )
    return name


def _as_bytes(body: Any) -> bytes:
    """py-amqp hands out a body with a content encoding, and an empty one, as str."""
    if isinstance(body, str):
        return body.encode("utf-8", "surrogateescape")
    return bytes(body or b"")
