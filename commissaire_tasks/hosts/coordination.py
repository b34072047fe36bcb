"""The Redis the host services coordinate through: locks and small shared state.

The host services run in many processes (and machines); what must be shared
(one investigation per host, failed-check counts, known host keys, one beat) lives
in Redis: the service config's ``redis_url``, else the result backend or broker
when it is Redis.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from typing import Any

import redis

from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import ConfigurationError

from .keys import process_gone

__all__ = ["RedisLock", "coordination_redis"]

#: Prefix of every key the host services write.
KEY_PREFIX = "commissaire:hosts:"

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_TAKE_OVER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) and 1 or 0
end
return 0
"""
_REFRESH = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


def coordination_url(config: Mapping[str, Any]) -> str:
    """The Redis URL to use, or a ConfigurationError saying how to give one."""
    settings = load_settings()
    for url in (config.get("redis_url"), settings.backend_url, settings.broker_url):
        if isinstance(url, str) and url.startswith(("redis://", "rediss://", "redis+socket://")):
            return url
    raise ConfigurationError(
        "this service needs Redis for its locks and state: set redis_url in its config file"
    )


def coordination_redis(config: Mapping[str, Any]) -> redis.Redis:
    """A client of :func:`coordination_url` (strings, not bytes)."""
    return redis.Redis.from_url(coordination_url(config), decode_responses=True)


class RedisLock:
    """A lock held by one owner at a time, that expires if its owner dies.

    Args:
        client: The Redis to hold it in.
        name: What is locked (the key is ``commissaire:hosts:lock:<name>``).
        ttl_s: Seconds it lives without a :meth:`refresh`.
    """

    def __init__(self, client: redis.Redis, name: str, ttl_s: float) -> None:
        self.client = client
        self.key = f"{KEY_PREFIX}lock:{name}"
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"

    def acquire(self) -> bool:
        """Take it if nobody holds it, or if its holder was a process of this machine
        that died (a killed pool process whose call is run again); True when taken."""
        if self.client.set(self.key, self.token, nx=True, px=self.ttl_ms):
            return True
        holder = self.client.get(self.key)
        if not isinstance(holder, str) or not _dead_here(holder):
            return False
        return bool(self.client.eval(_TAKE_OVER, 1, self.key, holder, self.token, self.ttl_ms))

    def refresh(self) -> bool:
        """Extend it by its ttl; False when it was lost (expired, or taken by another)."""
        return bool(self.client.eval(_REFRESH, 1, self.key, self.token, self.ttl_ms))

    def release(self) -> None:
        """Give it up, only if still ours."""
        self.client.eval(_RELEASE, 1, self.key, self.token)

    def holder_ttl_s(self) -> float:
        """Seconds left on the lock, whoever holds it (0 when free)."""
        return max(0.0, float(self.client.pttl(self.key)) / 1000)


def _dead_here(token: str) -> bool:
    """True when ``token`` names a process of this machine that no longer runs."""
    host, _, rest = token.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and process_gone(int(pid))
