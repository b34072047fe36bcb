"""Opt-in broadcast notifications: every running process of a service, at most once each.

For in-process caches only. Unlike the default delivery (a durable task per
subscribing service, see :mod:`.notifications`), a broadcast is a Redis
PUBLISH on one channel: every process that is running and listening gets it
once; a process that is stopped, starting or disconnected misses it, and
nothing is stored or retried. Declare with ``broadcast=True``::

    @on_storage_change(Cluster, broadcast=True)
    def forget_cluster(self, event, cluster, message):
        self.cache.pop(cluster.name, None)

The callback runs in a listener thread of each pool process, next to the calls
that process serves: guard shared state with a lock.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import redis

from .handlers.redis import default_store_url

logger = logging.getLogger(__name__)

#: The Redis channel every change is published on.
CHANNEL = "commissaire:storage:changes"


def publish(body: Mapping[str, Any], url: str | None = None) -> None:
    """Publish one change to whoever listens (no-one listening costs nothing)."""
    client = _publisher(url or default_store_url())
    try:
        client.publish(CHANNEL, json.dumps(body, separators=(",", ":")))
    except redis.RedisError:
        logger.warning("Could not broadcast a storage change", exc_info=True)


_publishers: dict[str, redis.Redis] = {}

#: Seconds a storage process trusts its last look at whether anyone listens.
RECOUNT_S = 0.5
#: url -> (when looked, someone listened)
_listening: dict[str, tuple[float, bool]] = {}


def someone_listens(url: str | None = None) -> bool:
    """Whether a broadcast listener is subscribed (``PUBSUB NUMSUB``, asked every 0.5 s at most).

    A listener that just started may miss up to half a second of changes: broadcasts
    are for caches, best effort, as the module says.
    """
    url = url or default_store_url()
    now = time.monotonic()
    seen = _listening.get(url)
    if seen is None or now - seen[0] >= RECOUNT_S:
        try:
            counts = dict(_publisher(url).pubsub_numsub(CHANNEL))
            listens = any(int(n) > 0 for n in counts.values())
        except redis.RedisError:
            listens = True  # let publish() try, and log why it cannot
        seen = (now, listens)
        _listening[url] = seen
    return seen[1]


def _publisher(url: str) -> redis.Redis:
    if url not in _publishers:
        _publishers[url] = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    return _publishers[url]


class Listener:
    """A daemon thread handing every broadcast change to ``deliver(body)``."""

    def __init__(self, deliver: Callable[[dict[str, Any]], None], url: str | None = None) -> None:
        self._deliver = deliver
        self._url = url or default_store_url()
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commissaire-broadcast", daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                pubsub = redis.Redis.from_url(self._url).pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                self.ready.set()
                for item in pubsub.listen():
                    self._handle(item.get("data"))
            except redis.RedisError:
                self.ready.clear()
                logger.warning("Broadcast listener lost Redis; reconnecting", exc_info=True)
                threading.Event().wait(1.0)

    def _handle(self, raw: Any) -> None:
        try:
            body = json.loads(raw)
        except (TypeError, ValueError):
            logger.warning("Dropped a broadcast that is not JSON")
            return
        try:
            self._deliver(body)
        except Exception:  # noqa: BLE001 - a failing callback must not kill the listener
            logger.error("Broadcast callback failed", exc_info=True)
