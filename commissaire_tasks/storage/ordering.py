"""Applying changes of one record in revision order.

Notifications for one record may reach different processes of a service and
run at the same time, so a callback can see revision 7 after revision 8. A
callback that must not go back in time asks a :class:`RevisionGate` first::

    gate = RevisionGate("hostcount")

    @on_storage_change(Host)
    def host_changed(self, event, host, message):
        if not gate.admit("Host", host.address, message.headers["revision"]):
            return  # an older change than one already applied
        ...

``admit`` is one atomic Redis operation shared by every process of the service:
it answers True exactly once per newer revision of a record.
"""

from __future__ import annotations

from typing import Any

import redis

from ..config import load_settings

_ADMIT = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local revision = tonumber(ARGV[2])
if revision > current then
  redis.call('HSET', KEYS[1], ARGV[1], revision)
  return 1
end
return 0
"""


class RevisionGate:
    """Admits each record's revisions only in increasing order, across processes.

    Args:
        name: A name of the consumer (usually the service name); gates with
            different names are independent.
        url: Redis URL (the broker's when it is Redis, by default).
    """

    def __init__(self, name: str, url: str | None = None) -> None:
        self.key = f"commissaire:revisions:{name}"
        self._url = url or load_settings().broker_url
        self._client: redis.Redis | None = None
        self._script: Any = None

    def admit(self, model_name: str, key: str, revision: int) -> bool:
        """True when ``revision`` is newer than every revision admitted for this record."""
        if self._client is None:
            self._client = redis.Redis.from_url(self._url)
            self._script = self._client.register_script(_ADMIT)
        return bool(self._script(keys=[self.key], args=[f"{model_name}:{key}", int(revision)]))

    def forget(self) -> None:
        """Drop every remembered revision (tests, resets)."""
        if self._client is None:
            self._client = redis.Redis.from_url(self._url)
        self._client.delete(self.key)
