"""A message taken off its queue as Redis goes away is put back, not dropped.

kombu's Redis transport takes a message with ``BRPOP`` and then records it as
unacknowledged. Redis is stopped in between here (a real server, stopped at that
exact moment by the test's QoS), so the message is in no list and no hash: the
worker must keep it and push it back once Redis answers again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kombu
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from commissaire_tasks.app import create_app
from commissaire_tasks.config import load_settings
from commissaire_tasks.runtime import restore
from commissaire_tasks.testing import RedisServer


class _RedisGoesAwayOnTake(restore.RestoringQoS):
    """Stops the real Redis after the BRPOP, before kombu records the message."""

    server: RedisServer

    def append(self, message: Any, delivery_tag: str) -> None:
        self.server.stop()
        super().append(message, delivery_tag)


def test_a_message_taken_as_redis_stops_goes_back_on_its_queue_once_redis_is_back(
    tmp_path: Path, unique: str
) -> None:
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
        app = create_app(load_settings().replace(broker_url=server.url), services=[])
        queue = kombu.Queue(f"taken_{unique}", kombu.Exchange(""), routing_key=f"taken_{unique}")
        with app.connection_for_write() as connection:
            connection.SimpleQueue(queue).put({"call": 1}, serializer="json")
        with app.connection_for_write() as connection:
            channel = connection.channel()
            channel.QoS = type("QoS", (_RedisGoesAwayOnTake,), {"server": server})
            consumer = connection.SimpleQueue(queue, channel=channel)
            with pytest.raises(RedisConnectionError):
                consumer.get(timeout=5)
            assert restore.pending(channel.qos.broker) == 1
        server.start()
        with app.connection_for_write() as connection:
            channel = connection.channel()
            assert channel.qos.restore_remembered() == 1
            message = connection.SimpleQueue(queue, channel=channel).get(timeout=5)
            assert message.payload == {"call": 1}
            message.ack()
        assert restore.pending() == 0


def test_a_message_rejected_to_be_requeued_after_redis_went_away_goes_back_once_it_is_back(
    tmp_path: Path, unique: str
) -> None:
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
        app = create_app(load_settings().replace(broker_url=server.url), services=[])
        name = f"requeued_{unique}"
        queue = kombu.Queue(name, kombu.Exchange(""), routing_key=name)
        with app.connection_for_write() as connection:
            connection.SimpleQueue(queue).put({"call": 2}, serializer="json")
        connection = app.connection_for_write()
        channel = connection.channel()
        taken = connection.SimpleQueue(queue, channel=channel).get(timeout=5)
        server.stop()
        connection.close()  # the connection is lost: its restore fails, the tag is remembered
        assert restore.pending(channel.qos.broker) == 1
        taken.reject(requeue=True)  # the call ends asking to run again (a storage write does)
        server.start()
        with app.connection_for_write() as connection:
            channel = connection.channel()
            assert channel.qos.restore_remembered() == 1
            message = connection.SimpleQueue(queue, channel=channel).get(timeout=5)
            assert message.payload == {"call": 2}
            message.ack()
        assert server.client().hlen("unacked") == 0
        assert restore.pending() == 0
