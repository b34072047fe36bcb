"""Whether a configured queue is bound on the broker yet, before calling through it.

A call to a queue the caller knows from configuration (``COMMISSAIRE_QUEUES``)
waits in that queue for a worker, even one that never comes. The original
callers give up after 10 s, so the bridge answers "method not found" (-32601)
at once instead while no queue of that name is bound on the broker. Answers
are cached briefly: a service that starts is found within seconds.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kombu.exceptions import InconsistencyError

__all__ = ["QueueDirectory"]

#: Seconds a queue found on the broker is remembered.
FOUND_TTL_S = 30.0
#: Seconds a queue missing from the broker is remembered.
MISSING_TTL_S = 1.0


class QueueDirectory:
    """Answers "is queue ``name`` bound on ``exchange``?" from the broker, with a short cache.

    Args:
        app: The Celery app whose broker connections are used.
        exchange: The exchange the services' queues are bound to.
    """

    def __init__(self, app: Any, exchange: str) -> None:
        self._app = app
        self._exchange = exchange
        self._cache: dict[str, tuple[bool, float]] = {}
        self._lock = threading.Lock()

    def exists(self, queue: str) -> bool:
        now = time.monotonic()
        with self._lock:
            known = self._cache.get(queue)
        if known is not None and known[1] > now:
            return known[0]
        found = self._ask_broker(queue)
        with self._lock:
            self._cache[queue] = (found, now + (FOUND_TTL_S if found else MISSING_TTL_S))
        return found

    def _ask_broker(self, queue: str) -> bool:
        with self._app.pool.acquire(block=True) as connection:
            connection.ensure_connection(max_retries=3)
            channel = connection.channel()
            try:
                table = getattr(channel, "get_table", None)
                if table is not None:  # kombu's virtual transports (Redis) keep the bindings
                    try:
                        return any(bound == queue for _, _, bound in table(self._exchange))
                    except InconsistencyError:  # nothing at all is bound to the exchange
                        return False
                try:
                    channel.queue_declare(queue=queue, passive=True)
                except connection.channel_errors:
                    return False
                return True
            finally:
                _close_quietly(channel)


def _close_quietly(channel: Any) -> None:
    try:
        channel.close()
    except Exception:  # noqa: BLE001, S110 - a channel the broker already closed
        pass
