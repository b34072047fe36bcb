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
