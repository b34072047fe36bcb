"""The Redis transport of our apps: same messages and URLs as kombu's, fewer client objects."""

from __future__ import annotations

import kombu
from kombu.transport import redis as kombu_redis

from commissaire_tasks.app import create_app
from commissaire_tasks.runtime.transport import Transport
from commissaire_tasks.testing import RedisServer


def test_every_connection_of_an_app_on_redis_uses_it_and_keeps_the_redis_url(
    redis_server: RedisServer,
) -> None:
    app = create_app(services=[])
    with app.connection_for_write() as direct, app.pool.acquire() as pooled:
        for connection in (direct, pooled):
            assert isinstance(connection.transport, Transport)
            # Flower and `status` pick their broker client by this scheme
            assert connection.as_uri().startswith("redis://")


def test_a_plain_kombu_consumer_reads_what_our_producer_publishes(
    redis_server: RedisServer, unique: str
) -> None:
    app = create_app(services=[])
    queue = kombu.Queue(f"plain_{unique}", kombu.Exchange(f"x_{unique}", "direct"), unique)
    with app.producer_or_acquire() as producer:
        for number in range(50):
            producer.publish(
                {"n": number},
                exchange=queue.exchange,
                routing_key=unique,
                declare=[queue],
                serializer="json",
            )
    received = []
    with kombu.Connection(redis_server.url) as plain:
        assert type(plain.transport) is kombu_redis.Transport
        with plain.SimpleQueue(queue) as simple:
            for _ in range(50):
                message = simple.get(timeout=5)
                received.append(message.payload["n"])
                message.ack()
    assert received == list(range(50))


def test_a_channel_reuses_one_client_until_its_pool_is_replaced(redis_server: RedisServer) -> None:
    app = create_app(services=[])
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second
        channel._disconnect_pools()  # what kombu does after a fork
        with channel.conn_or_acquire() as after_fork:
            assert after_fork is not first
            assert after_fork.ping()
