"""One operation per cluster: a Redis lock that names the operation holding it.

The lock's value is ``<kind>:<token>`` (``upgrade:3f2a...``): the token is the
operation's identity, carried by every task of its canvas, so any process can
refresh it while it works on the operation, and a task of an operation that lost
its lock (it expired, or a newer operation holds it) knows it must stop. It lives
``ttl_s`` without a refresh, so a worker killed mid-operation holds it at most that
long; :func:`keep_alive` refreshes it from a thread while a host step runs.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

__all__ = ["KEY_PREFIX", "OperationLock", "holder", "keep_alive", "lock_key"]

#: Prefix of every key the cluster operations write in Redis.
KEY_PREFIX = "commissaire:clusters:"

_REFRESH = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class OperationLock:
    """The lock of cluster ``cluster`` as operation ``kind``/``token`` holds it.

    Attributes:
        client: The coordination Redis (strings, not bytes).
        cluster: The cluster's name.
        kind: The operation type (``upgrade``, ``restart``, ``deploy``).
        token: The operation's identity (:func:`new_token`).
        ttl_s: Seconds it lives without a refresh.
    """

    client: redis.Redis
    cluster: str
    kind: str
    token: str
    ttl_s: float

    @staticmethod
    def new_token() -> str:
        return uuid.uuid4().hex

    @property
    def key(self) -> str:
        return lock_key(self.cluster)

    @property
    def value(self) -> str:
        return f"{self.kind}:{self.token}"

    def acquire(self) -> bool:
        """Take it if no operation holds it; True when taken."""
        return bool(self.client.set(self.key, self.value, nx=True, px=self._ttl_ms))

    def refresh(self) -> bool:
        """Extend it by its ttl; False when this operation no longer holds it."""
        return bool(self.client.eval(_REFRESH, 1, self.key, self.value, self._ttl_ms))

    def held(self) -> bool:
        """True while this operation holds it."""
        return self.client.get(self.key) == self.value

    def release(self) -> None:
        """Give it up, only if still ours."""
        self.client.eval(_RELEASE, 1, self.key, self.value)

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl_s * 1000))


def lock_key(cluster: str) -> str:
    return f"{KEY_PREFIX}lock:{cluster}"


def holder(client: redis.Redis, cluster: str) -> tuple[str, float] | None:
    """The kind of operation holding ``cluster``'s lock and the seconds it has left."""
    value = client.get(lock_key(cluster))
    if not isinstance(value, str):
        return None
    return value.partition(":")[0], max(0.0, client.pttl(lock_key(cluster)) / 1000)


@contextmanager
def keep_alive(lock: OperationLock) -> Iterator[threading.Event]:
    """Refresh ``lock`` every third of its ttl until the block ends.

    Yields an event that is set when a refresh found the lock lost.
    """
    lost = threading.Event()
    done = threading.Event()

    def refresh() -> None:
        while not done.wait(lock.ttl_s / 3):
            try:
                if not lock.refresh():
                    lost.set()
                    return
            except redis.RedisError:
                continue  # Redis away for a moment: try again at the next tick

    thread = threading.Thread(target=refresh, name=f"lock:{lock.cluster}", daemon=True)
    thread.start()
    try:
        yield lost
    finally:
        done.set()
        thread.join(5)
