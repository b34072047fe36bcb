"""The default store handler: one Redis hash per record, written by Lua scripts.

Each record lives at ``<prefix>:<model type>:<key>`` (fields ``data``,
``revision``, ``write_id``, ``last_event``, ``deleted``) and each model type has
an index set of live keys. A script reads and writes a record in one atomic
step, so "created or updated" and the revision are decided inside Redis.
"""

from __future__ import annotations

import builtins
import json
import os
from typing import Any, cast

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ...config import DEFAULT_BROKER_URL, ENV_BROKER_URL, ENV_SENTINEL_MASTER, ENV_STORE_URL
from ...runtime.sentinel import is_sentinel_url, master_client
from .base import Event, Record, StoreHandler, WriteOutcome, not_found

# KEYS: record, index. ARGV: data, write_id ('' for none), key.
_SAVE = """
local last = redis.call('HMGET', KEYS[1], 'write_id', 'last_event', 'revision', 'data', 'deleted')
if ARGV[2] ~= '' and last[1] == ARGV[2] then
  return {1, last[2], last[3], last[4]}
end
local event = 'created'
if last[4] and last[5] ~= '1' then event = 'updated' end
local revision = redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'write_id', ARGV[2],
           'last_event', event, 'deleted', '0')
redis.call('SADD', KEYS[2], ARGV[3])
return {0, event, revision, ARGV[1]}
"""

# KEYS: record, index. ARGV: write_id ('' for none), key.
_DELETE = """
local last = redis.call('HMGET', KEYS[1], 'write_id', 'last_event', 'revision', 'data', 'deleted')
if ARGV[1] ~= '' and last[1] == ARGV[1] then
  return {1, last[2], last[3], last[4]}
end
if not last[4] or last[5] == '1' then return {-1} end
local revision = redis.call('HINCRBY', KEYS[1], 'revision', 1)
redis.call('HSET', KEYS[1], 'write_id', ARGV[1], 'last_event', 'deleted', 'deleted', '1')
redis.call('SREM', KEYS[2], ARGV[2])
return {0, 'deleted', revision, last[4]}
"""


def default_store_url() -> str:
    return os.environ.get(ENV_STORE_URL) or os.environ.get(ENV_BROKER_URL) or DEFAULT_BROKER_URL


class RedisStoreHandler(StoreHandler):
    """Keeps records in Redis (the broker's server unless ``url`` says otherwise).

    A ``sentinel://`` URL (as the broker's) reaches the master Sentinel names
    ``master_name`` (default ``$COMMISSAIRE_SENTINEL_MASTER``), again after a failover.
    """

    type_name = "redis"
    options = {
        "url": (str, None),
        "prefix": (str, "commissaire:store"),
        "master_name": (str, None),
    }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.config["url"] = self.config.get("url") or default_store_url()
        self.config["master_name"] = self.config.get("master_name") or os.environ.get(
            ENV_SENTINEL_MASTER
        )
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Any] = {}

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            options: dict[str, Any] = {
                "socket_connect_timeout": 5,
                "health_check_interval": 10,
                "retry": Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=8),
                "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
            }
            url = self.config["url"]
            if is_sentinel_url(url):
                self._client = master_client(url, self.config["master_name"], **options)
            else:
                self._client = redis.Redis.from_url(url, **options)
            self._scripts = {
                "save": self._client.register_script(_SAVE),
                "delete": self._client.register_script(_DELETE),
            }
        return self._client

    def save(
        self, model_type: str, key: str, data: dict[str, Any], write_id: str | None = None
    ) -> WriteOutcome:
        self.client  # noqa: B018 - opens the connection and loads the scripts
        keys = [self._record_key(model_type, key), self._index_key(model_type)]
        reply = self._scripts["save"](keys=keys, args=[self._encode(data), write_id or "", key])
        return self._outcome(reply, written=data)

    def get(self, model_type: str, key: str) -> Record:
        data, revision, deleted = self.client.hmget(
            self._record_key(model_type, key), "data", "revision", "deleted"
        )
        if data is None or deleted == b"1":
            raise not_found(model_type, key)
        return Record(self._decode(data), int(revision or 0))

    def delete(self, model_type: str, key: str, write_id: str | None = None) -> WriteOutcome:
        self.client  # noqa: B018
        keys = [self._record_key(model_type, key), self._index_key(model_type)]
        reply = self._scripts["delete"](keys=keys, args=[write_id or "", key])
        if reply[0] == -1:
            raise not_found(model_type, key)
        return self._outcome(reply)

    def list(self, model_type: str) -> list[Record]:
        members: set[bytes] = self.client.smembers(self._index_key(model_type))  # type: ignore[assignment]
        keys = sorted(member.decode() for member in members)
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(self._record_key(model_type, key), "data", "revision", "deleted")
            rows = pipe.execute()
        return [
            Record(self._decode(data), int(revision))
            for data, revision, deleted in rows
            if data is not None and deleted != b"1"
        ]

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _record_key(self, model_type: str, key: str) -> str:
        return f"{self.config['prefix']}:{model_type}:{key}"

    def _index_key(self, model_type: str) -> str:
        return f"{self.config['prefix']}:{model_type}"

    def _outcome(
        self, reply: builtins.list[Any], written: dict[str, Any] | None = None
    ) -> WriteOutcome:
        """The script's reply; a fresh write's data is ``written`` itself (no decode of
        what was just encoded), a replayed or deleted record's is decoded from Redis."""
        replayed, event, revision, data = reply
        kind = cast(Event, event.decode() if isinstance(event, bytes) else event)
        if written is None or replayed:
            written = self._decode(data)
        return WriteOutcome(kind, int(revision), written, replayed=bool(replayed))

    def _encode(self, data: dict[str, Any]) -> str:
        """How a record's data is written (the secrets handler encrypts here)."""
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    def _decode(self, raw: bytes | str) -> dict[str, Any]:
        return json.loads(raw)  # type: ignore[no-any-return]
