"""Redis Sentinel: ``sentinel://`` URLs, as kombu and Celery spell them, for our own clients.

kombu (broker) and Celery (results) take ``sentinel://[:password@]host:port[/db]``,
several joined by ``;``, and the master's name in their transport options. The
Redis store handler reads the same URL through :func:`master_client`, so one
``COMMISSAIRE_BROKER_URL`` and ``COMMISSAIRE_SENTINEL_MASTER`` serve all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.sentinel import Sentinel

from ..errors import ConfigurationError

SCHEME = "sentinel://"


def is_sentinel_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(SCHEME)


@dataclass(frozen=True)
class SentinelUrl:
    """The sentinels to ask, and the master's database and password."""

    nodes: tuple[tuple[str, int], ...]
    db: int = 0
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> SentinelUrl:
        nodes, db, password = [], 0, None
        for part in url.split(";"):
            part = part.strip()
            if not part:
                continue
            if not part.startswith(SCHEME):
                raise ConfigurationError(f"each part of a Sentinel URL must start {SCHEME!r}")
            split = urlsplit(part)
            if not split.hostname:
                raise ConfigurationError("a Sentinel URL part names no host")
            nodes.append((split.hostname, split.port or 26379))
            if split.path.strip("/"):
                db = int(split.path.strip("/"))
            if split.password:
                password = unquote(split.password)
        if not nodes:
            raise ConfigurationError("a Sentinel URL names no sentinel")
        return cls(nodes=tuple(nodes), db=db, password=password)


def master_client(url: str, master_name: str | None, **options: Any) -> redis.Redis:
    """A client that always talks to the current master (found again after a failover)."""
    if not master_name:
        raise ConfigurationError(
            "a sentinel:// URL needs the master's name: set COMMISSAIRE_SENTINEL_MASTER"
        )
    parsed = SentinelUrl.parse(url)
    sentinel = Sentinel(
        list(parsed.nodes), socket_connect_timeout=options.get("socket_connect_timeout", 5)
    )
    master: redis.Redis = sentinel.master_for(
        master_name, db=parsed.db, password=parsed.password, **options
    )
    return master
