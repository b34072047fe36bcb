"""Which queues exist on the broker, how many messages each holds, and its dead letters.

Depth is a passive queue declare (Redis counts the list, priorities included;
RabbitMQ returns ``message_count``). The dead letters of queue ``Q`` live in
the queue ``Q.dead`` (where a worker moves entries it cannot read).

Queues no service of ours names are found on Redis from kombu's binding sets
(``_kombu.binding.<exchange>``, whose members end with the queue name) and from
``*.dead`` lists. AMQP offers no listing, so on RabbitMQ they come from the
management plugin's HTTP API (:mod:`.rabbitmq_api`), when it answers; the caller
also adds the queues the workers report consuming.
"""

from __future__ import annotations

import contextlib
from typing import Any

from kombu.connection import Connection

from ..runtime.deadletters import DEAD_LETTER_SUFFIX as DEAD_SUFFIX
from ..runtime.deadletters import dead_letter_queue
from . import rabbitmq_api

__all__ = ["DEAD_SUFFIX", "dead_letter_queue", "depth", "discover_queues"]

#: Exchanges of Celery's own plumbing (remote control, replies, events): not service queues.
_PLUMBING = ("celery.pidbox", "reply.celery.pidbox", "celeryev")
#: Keys examined per SCAN round trip.
_SCAN_COUNT = 500


def depth(connection: Connection, queue: str) -> int:
    """Messages waiting in ``queue`` (0 when it does not exist)."""
    channel = connection.channel()
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except connection.channel_errors:
        return 0
    finally:
        with contextlib.suppress(Exception):  # AMQP closed the channel after a 404
            channel.close()


def discover_queues(
    connection: Connection, api_url: str | None = None, timeout_s: float = 2.0
) -> set[str]:
    """Names of the queues the broker itself can tell of.

    On RabbitMQ they come from the management API at ``api_url`` (default: derived
    from the connection); raises :class:`.rabbitmq_api.ManagementApiUnavailable`
    when it cannot be asked. Other transports that cannot list queues give none.
    """
    if connection.transport.driver_type == "amqp":
        api = rabbitmq_api.api_url_for(connection, api_url)
        return rabbitmq_api.list_queues(api, str(connection.virtual_host or "/"), timeout_s)
    channel = connection.default_channel
    client = getattr(channel, "client", None)
    prefix = getattr(channel, "keyprefix_queue", None)
    if client is None or not isinstance(prefix, str) or "%s" not in prefix:
        return set()
    sep = str(getattr(channel, "sep", "\x06\x16"))
    found: set[str] = set()
    for key in _scan(client, prefix.replace("%s", "*")):
        exchange = key[len(prefix.replace("%s", "")) :]
        if exchange in _PLUMBING or exchange.endswith(".pidbox"):
            continue
        for member in client.smembers(key):
            queue = _text(member).rpartition(sep)[2]
            if queue:
                found.add(queue)
    for key in _scan(client, f"*{DEAD_SUFFIX}"):
        if client.type(key) in (b"list", "list"):
            found.add(key[: -len(DEAD_SUFFIX)])
    return found


def _scan(client: Any, pattern: str) -> list[str]:
    return [_text(key) for key in client.scan_iter(match=pattern, count=_SCAN_COUNT)]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
