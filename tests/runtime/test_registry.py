"""The service registry and the one queue rule, as plain units (no broker, no worker)."""

from __future__ import annotations

from typing import Any

import pytest

from commissaire_tasks.config import Settings
from commissaire_tasks.errors import ServiceDefinitionError
from commissaire_tasks.routing import QueueSpec
from commissaire_tasks.runtime.registry import ServiceRegistry, ServiceSpec


class Adder:
    pass


class OtherAdder:
    pass


def spec(cls: type[Any] = Adder, name: str = "adder") -> ServiceSpec:
    return ServiceSpec(name=name, cls=cls, methods={"add": "on_add"})


def settings(*queues: dict[str, Any]) -> Settings:
    return Settings(queues=tuple(queues))


def test_a_registered_service_is_found_by_name_and_listed() -> None:
    registry = ServiceRegistry()
    registry.register(spec())
    assert registry.get("adder").cls is Adder
    assert [s.name for s in registry] == ["adder"]


def test_an_unknown_service_name_is_a_service_definition_error() -> None:
    with pytest.raises(ServiceDefinitionError, match="'nobody'"):
        ServiceRegistry().get("nobody")


def test_a_second_class_under_a_taken_name_is_refused_naming_both() -> None:
    registry = ServiceRegistry()
    registry.register(spec())
    with pytest.raises(ServiceDefinitionError, match="OtherAdder"):
        registry.register(spec(OtherAdder))


def test_registering_the_same_class_again_is_harmless() -> None:
    registry = ServiceRegistry()
    registry.register(spec())
    registry.register(spec())
    assert len(list(registry)) == 1


def test_a_listener_hears_of_earlier_and_later_services_while_its_owner_lives() -> None:
    registry = ServiceRegistry()
    registry.register(spec())
    heard: list[str] = []

    class Owner:
        def hear(self, s: ServiceSpec) -> None:
            heard.append(s.name)

    owner = Owner()
    registry.subscribe(owner, owner.hear)
    registry.register(spec(OtherAdder, "other"))
    del owner
    registry.register(spec(OtherAdder, "third"))
    assert heard == ["adder", "other"]


def test_the_queue_rule_is_the_default_queue_when_nothing_is_configured() -> None:
    assert spec().queues(settings()) == [QueueSpec.default_for("adder")]


def test_the_queue_rule_adds_every_configured_queue_naming_the_service_and_no_other() -> None:
    mine = {"name": "adder_fast", "routing_key": "fast.*", "service": "adder"}
    theirs = {"name": "other_fast", "routing_key": "ofast.*", "service": "other"}
    unnamed = {"name": "loose", "routing_key": "loose.*"}
    names = [q.name for q in spec().queues(settings(mine, theirs, unnamed))]
    assert names == ["adder", "adder_fast"]


def test_explicit_queue_definitions_replace_the_rule() -> None:
    explicit = [{"name": "only", "routing_key": "adder.*"}]
    mine = {"name": "adder_fast", "routing_key": "fast.*", "service": "adder"}
    assert [q.name for q in spec().queues(settings(mine), explicit)] == ["only"]
