"""kombu's Redis transport with one Redis client per channel, not one per command.

kombu builds a new ``redis.Redis`` object for every publish, acknowledgement and
queue check (each one copies redis-py's table of some 170 response callbacks),
although the connections underneath always come from the channel's pool. A
client object is safe to share between threads, so each channel here keeps one
per pool and hands it out again. The commands, keys and messages are unchanged:
plain Celery workers and clients, and Flower, work alongside.

Only kombu's plain Redis transport is replaced (``redis://``, ``rediss://``,
``redis+socket://``; Sentinel and every other transport stay kombu's), and the
URL and ``as_uri()`` stay as kombu has them. Apps pick it up through :class:`AMQP`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from celery.app.amqp import AMQP as CeleryAMQP
from kombu import connection as kombu_connection
from kombu.transport import redis as kombu_redis

from ._restore import RestoringQoS


class Channel(kombu_redis.Channel):
    """Reuses one client per connection pool (pools are replaced after a fork)."""

    #: Retries a restore that failed while Redis was down (see :mod:`._restore`).
    QoS = RestoringQoS
    _reused_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool
        reused = self._reused_client
        if reused is None or reused.connection_pool is not pool:
            reused = self._reused_client = self._create_client()  # type: ignore[no-untyped-call]
        yield reused


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelChannel(kombu_redis.SentinelChannel):
    """kombu's Sentinel channel, with the restore retried once Redis is back."""

    QoS = RestoringQoS


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


class Connection(kombu_connection.Connection):
    """A kombu connection that uses :class:`Transport` where kombu's Redis one was chosen."""

    def get_transport_cls(self) -> type[Any]:
        transport_cls = super().get_transport_cls()  # type: ignore[no-untyped-call]
        if transport_cls is kombu_redis.SentinelTransport:
            return SentinelTransport
        return Transport if transport_cls is kombu_redis.Transport else transport_cls

    def Pool(self, limit: int | None = None, **kwargs: Any) -> ConnectionPool:  # noqa: N802
        return ConnectionPool(self, limit, **kwargs)  # type: ignore[no-untyped-call]


class PooledConnection(Connection, kombu_connection.PooledConnection):
    """kombu's pooled connection (closed on error), with :class:`Transport` too."""


class ConnectionPool(kombu_connection.ConnectionPool):
    """The pool Celery publishes through (``app.pool``), of :class:`PooledConnection` s."""

    def new(self) -> PooledConnection:
        info = self.connection._info(resolve=False)
        return PooledConnection(self, **dict(info))  # type: ignore[no-untyped-call]


class AMQP(CeleryAMQP):  # type: ignore[misc]
    """Celery's AMQP helper, opening :class:`Connection` s (the app's ``amqp_cls``)."""

    Connection = Connection
