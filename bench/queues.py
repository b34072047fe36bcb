"""Broker queues of the systems: size, purge, and loading many calls at once.

Purging and loading go through kombu (or, for loading on Redis, a pipeline of
copies of one real message) so they work on every broker the bench uses.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import redis
from kombu.exceptions import ChannelError

from .systems import System

#: Messages per pipeline round trip when loading a Redis queue.
LOAD_BATCH = 1000


def queue_size(system: System, queue: str) -> int:
    """Messages ready in ``queue`` (0 when it does not exist)."""
    with system.app.connection_for_write() as connection:
        with connection.channel() as channel:
            try:
                return int(channel.queue_declare(queue, passive=True).message_count)
            except ChannelError:
                return 0
            except Exception as exc:  # amqp reports a missing queue as NotFound
                if type(exc).__name__ == "NotFound":
                    return 0
                raise


def purge(system: System) -> None:
    """Drop every message waiting in the system's queues."""
    with system.app.connection_for_write() as connection:
        for queue in system.queues:
            with connection.channel() as channel:
                try:
                    channel.queue_purge(queue)
                except ChannelError:
                    pass
                except Exception as exc:  # amqp: NotFound for a queue never declared
                    if type(exc).__name__ != "NotFound":
                        raise


def load_calls(system: System, count: int) -> None:
    """Put ``count`` fire-and-forget ``add`` calls in the system's queue.

    The first is published with the system's own ``notify``; on Redis the others
    are copies of it (each with a fresh call id and delivery tag) pushed through
    a pipeline, so loading 100,000 calls takes seconds, not minutes. The queue
    must not be consumed meanwhile, or the message to copy may be gone.
    """
    if count <= 0:
        return
    system.notify_add()
    if not system.broker_url.startswith(("redis://", "rediss://", "unix://")):
        for _ in range(count - 1):
            system.notify_add()
        return
    client = redis.Redis.from_url(system.broker_url)
    try:
        raw = client.lindex(system.add_queue, 0)
        if raw is None:
            raise RuntimeError(f"the call just sent is not in queue {system.add_queue!r}")
        envelope = json.loads(raw)
        pipe = client.pipeline(transaction=False)
        for index in range(1, count):
            pipe.lpush(system.add_queue, json.dumps(_copy(envelope)))
            if index % LOAD_BATCH == 0:
                pipe.execute()
        pipe.execute()
    finally:
        client.close()


def _copy(envelope: dict[str, Any]) -> dict[str, Any]:
    call_id = str(uuid.uuid4())
    headers = {**envelope["headers"], "id": call_id, "root_id": call_id}
    properties = {
        **envelope["properties"],
        "correlation_id": call_id,
        "delivery_tag": str(uuid.uuid4()),
    }
    return {**envelope, "headers": headers, "properties": properties}
