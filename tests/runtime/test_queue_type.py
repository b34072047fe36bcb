"""COMMISSAIRE_QUEUE_TYPE: the service queues' RabbitMQ type (pure logic; RabbitMQ in
``test_rabbitmq_outages.py``)."""

from __future__ import annotations

import pytest

from commissaire_tasks.app import create_app
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import ConfigurationError
from commissaire_tasks.routing import QueueSpec

QUEUE = {"name": "qt_orders", "routing_key": "qt_orders.*", "service": "orders"}


def test_service_queues_are_classic_and_declared_without_arguments_by_default() -> None:
    settings = load_settings({})
    assert settings.queue_type == "classic"
    assert QueueSpec.default_for("simple").to_kombu("commissaire").queue_arguments is None


def test_quorum_queues_are_declared_with_x_queue_type_quorum() -> None:
    settings = load_settings({"COMMISSAIRE_QUEUE_TYPE": "Quorum"}).replace(queues=(QUEUE,))
    app = create_app(settings, services=())
    [queue] = app.conf.task_queues
    assert queue.queue_arguments == {"x-queue-type": "quorum"}
    route = app.conf.task_routes[0]("qt_orders.ship", (), {}, {})
    assert route["queue"].queue_arguments == {"x-queue-type": "quorum"}


def test_an_unknown_queue_type_is_refused_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="COMMISSAIRE_QUEUE_TYPE"):
        load_settings({"COMMISSAIRE_QUEUE_TYPE": "stream"})
