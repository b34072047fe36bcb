"""The router and queue definitions: which queue a routing key reaches, with no broker."""

from __future__ import annotations

import pytest

from commissaire_tasks.errors import ConfigurationError, NoRouteError
from commissaire_tasks.routing import QueueSpec, Router, split_routing_key, topic_matches


def test_a_service_default_queue_is_its_name_bound_with_name_dot_star() -> None:
    queue = QueueSpec.default_for("simple")
    assert (queue.name, queue.binding) == ("simple", "simple.*")
    assert queue.task_name("add") == "simple.add"


def test_a_queue_definition_without_a_routing_key_is_bound_to_its_own_name() -> None:
    queue = QueueSpec.from_kwargs({"name": "fast", "service": "simple"})
    assert (queue.prefix, queue.service) == ("fast", "simple")


@pytest.mark.parametrize(
    "qkwargs",
    [{}, {"name": "q", "routing_key": "q.#"}, {"name": "q", "service": "Bad-Name"}],
    ids=["no name", "not prefix.*", "bad service"],
)
def test_a_bad_queue_definition_is_a_configuration_error(qkwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        QueueSpec.from_kwargs(qkwargs)


def test_a_known_service_is_routed_to_its_default_queue_before_any_worker_ran() -> None:
    router = Router()
    router.add_service("simple")
    assert router.route("simple.add") == QueueSpec.default_for("simple")


def test_a_configured_queue_wins_over_a_service_default_for_its_prefix() -> None:
    fast = QueueSpec.from_kwargs({"name": "fast", "routing_key": "simple.*"})
    router = Router([fast])
    router.add_service("simple")
    assert router.route("simple.add") == fast


def test_an_unknown_key_is_none_for_known_and_no_route_for_route() -> None:
    router = Router()
    assert router.known("nobody.add") is None
    with pytest.raises(NoRouteError):
        router.route("nobody.add")


def test_two_queues_claiming_one_prefix_is_a_configuration_error() -> None:
    router = Router([QueueSpec.from_kwargs({"name": "a", "routing_key": "x.*"})])
    with pytest.raises(ConfigurationError, match="'x'"):
        router.add(QueueSpec.from_kwargs({"name": "b", "routing_key": "x.*"}))


@pytest.mark.parametrize("key", ["", "add", "simple.", ".add", "a b.c", 42])
def test_a_malformed_routing_key_is_a_no_route_error(key: object) -> None:
    with pytest.raises(NoRouteError):
        split_routing_key(key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("simple.*", "simple.add", True),
        ("simple.*", "simple.a.b", False),
        ("simple.#", "simple.a.b", True),
        ("#", "anything.at.all", True),
        ("*.add", "simple.add", True),
        ("other.*", "simple.add", False),
    ],
)
def test_topic_bindings_match_as_on_a_rabbitmq_topic_exchange(
    pattern: str, key: str, matches: bool
) -> None:
    assert topic_matches(pattern, key) is matches
