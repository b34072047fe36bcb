"""The notifier's deliveries wait in a subscriber's queue until its worker runs.

No worker consumes here: each delivery must be found in the queue itself, on
Redis (a push onto the queue's list) and on RabbitMQ (the durable queue is
declared by the first delivery).
"""

from __future__ import annotations

import pytest
from kombu import Connection

from commissaire_tasks import models
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.runtime.app import create_app
from commissaire_tasks.storage.handlers.base import WriteOutcome
from commissaire_tasks.storage.notifier import Notifier
from commissaire_tasks.storage.routing import HandlerTable
from commissaire_tasks.testing import RedisServer


def queued(url: str, queue: str) -> int:
    """Messages waiting in ``queue`` (declared passively: it must exist already)."""
    with Connection(url) as connection:
        return int(connection.default_channel.queue_declare(queue, passive=True).message_count)


@pytest.mark.parametrize("broker", ["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def test_every_delivery_waits_in_the_subscribers_queue_before_its_worker_ever_ran(
    broker: str, request: pytest.FixtureRequest, redis_server: RedisServer, unique: str
) -> None:
    url = redis_server.url if broker == "redis" else request.getfixturevalue("rabbitmq_url")
    app = create_app(
        load_settings().replace(broker_url=url, result_backend=redis_server.url), services=()
    )
    queue = f"idle_watcher_{unique}"
    config = {
        "subscribers": [{"service": f"w{unique}", "queue": queue, "filters": [["Host", "updated"]]}]
    }
    handlers = HandlerTable({})
    try:
        notifier = Notifier(handlers, Bus(app), config)
        host = models.Host.new(address=f"10.0.0-{unique}")
        for revision in (1, 2, 3):
            outcome = WriteOutcome("updated", revision, host.stored_dict())
            assert notifier.announce(models.Host, outcome, host) == 1

        assert queued(url, queue) == 3
    finally:
        with Connection(url) as connection:
            connection.default_channel.queue_delete(queue)
        handlers.close()
        app.close()
