"""``status`` on RabbitMQ: queues nobody here knows of, found through the management API.

AMQP cannot list queues; RabbitMQ's management plugin (enabled by
``scripts/servers.sh``) can. A retired service's queue still holding calls, and
the dead letters beside it, must show; when the API cannot be asked, ``status``
says what it could not see and how to fix that.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import pytest
from kombu.connection import Connection
from kombu.entity import Exchange, Queue

from commissaire_tasks.ops.rabbitmq_api import api_url_for
from tests.ops.test_operating import cli

pytestmark = pytest.mark.rabbitmq

#: Only the bundled ``simple`` and ``my`` services are known: the rest is unknown to ``status``.
ENV = {"COMMISSAIRE_SERVICES": "workers.simple"}


@pytest.fixture
def retired(rabbitmq_url: str, unique: str) -> Iterator[str]:
    """A retired service's queue, bound and holding 2 calls, with 1 dead letter beside it."""
    name = f"retired_{unique}"
    bound = Queue(name, Exchange("commissaire", "topic"), routing_key=f"{name}.*")
    with Connection(rabbitmq_url) as connection:
        producer = connection.Producer()
        for _ in range(2):
            producer.publish(
                "a call", exchange=bound.exchange, routing_key=f"{name}.x", declare=[bound]
            )
        producer.publish(
            "garbage",
            exchange=Exchange(""),
            routing_key=f"{name}.dead",
            declare=[Queue(f"{name}.dead")],
        )
    yield name
    with Connection(rabbitmq_url) as connection:
        for queue in (name, f"{name}.dead"):
            connection.default_channel.queue_delete(queue)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_on_rabbitmq_status_shows_a_retired_services_queue_and_its_dead_letters(
    rabbitmq_url: str, retired: str
) -> None:
    done = cli("status", url=rabbitmq_url, env=ENV)
    assert re.search(
        rf"^\?\s+{retired}\s+2\s+1\s+-\s+-\s+no service of ours$", done.stdout, re.M
    ), done.stdout + done.stderr
    assert "note:" not in done.stdout
    report = json.loads(cli("status", "--json", url=rabbitmq_url, env=ENV).stdout)
    [row] = [q for q in report["queues"] if q["queue"] == retired]
    assert (row["known"], row["depth"], row["dead"]) == (False, 2, 1)
    assert report["notes"] == []


def test_on_rabbitmq_status_says_what_it_cannot_see_when_the_management_api_is_unreachable(
    rabbitmq_url: str, retired: str
) -> None:
    api = f"http://guest:guest@127.0.0.1:{free_port()}"
    done = cli("status", url=rabbitmq_url, env={**ENV, "COMMISSAIRE_RABBITMQ_API": api})
    assert retired not in done.stdout
    [note] = [line for line in done.stdout.splitlines() if line.startswith("note:")]
    assert "management API http://guest:***@127.0.0.1:" in note
    assert "is not reachable" in note
    assert "not listed" in note
    assert "rabbitmq-plugins enable rabbitmq_management" in note
    assert "guest:guest" not in done.stdout


def test_the_management_api_url_defaults_to_the_brokers_host_and_credentials() -> None:
    plain = Connection("amqp://ops:p%40ss@rabbit.example:5672/prod")
    assert api_url_for(plain) == "http://ops:p%40ss@rabbit.example:15672"
    assert api_url_for(Connection("amqps://ops:pw@rabbit.example//", ssl=True)) == (
        "https://ops:pw@rabbit.example:15671"
    )
    assert api_url_for(plain, "http://admin:x@mgmt:8080/") == "http://admin:x@mgmt:8080"
