"""Defining services: names, exposed methods and definition errors (no broker needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from commissaire_tasks.errors import ServiceDefinitionError
from commissaire_tasks.message import Message
from commissaire_tasks.service import CommissaireService, ServiceManager, service_name_for
from commissaire_tasks.testing import RecordingBus, call_method, make_service
from workers.simple import MyService, SimpleService


@pytest.mark.parametrize(
    ("class_name", "service_name"),
    [
        ("SimpleService", "simple"),
        ("MyService", "my"),
        ("Storage", "storage"),
        ("ContainerManagerService", "container_manager"),
        ("HTTPProxyService", "http_proxy"),
        ("Service", "service"),
    ],
)
def test_service_name_is_the_class_name_in_snake_case_without_service(
    class_name: str, service_name: str
) -> None:
    assert service_name_for(class_name) == service_name


def test_every_on_method_becomes_a_task_named_service_dot_method() -> None:
    assert SimpleService.name == "simple"
    assert dict(SimpleService.__exposed__) == {"add": "on_add", "wordy_add": "on_wordy_add"}
    assert SimpleService.add.name == "simple.add"
    assert MyService.ping.name == "my.ping"


def test_the_name_attribute_overrides_the_derived_name() -> None:
    class Renamed(CommissaireService):
        name = "renamed_for_test"

        def on_hello(self, message: Message) -> str:
            return "hi"

    assert Renamed.hello.name == "renamed_for_test.hello"


def test_methods_without_the_on_prefix_are_not_exposed() -> None:
    class Helpers(CommissaireService):
        name = "helpers_for_test"

        def on_visible(self, message: Message) -> None: ...

        def hidden(self) -> None: ...

    assert set(Helpers.__exposed__) == {"visible"}


def test_two_services_with_one_name_fail_at_definition() -> None:
    class First(CommissaireService):
        name = "clash_for_test"

    with pytest.raises(ServiceDefinitionError, match="clash_for_test"):

        class Second(CommissaireService):
            name = "clash_for_test"


def test_a_bad_service_name_fails_at_definition() -> None:
    with pytest.raises(ServiceDefinitionError, match="must match"):

        class Bad(CommissaireService):
            name = "Not-Valid"


def test_a_method_can_be_unit_tested_without_a_broker() -> None:
    bus = RecordingBus({"simple.add": 5})
    service = make_service(SimpleService, bus=bus)
    assert call_method(service, "add", 2, 3) == 5
    assert call_method(service, "wordy_add", 2, 3) == "2 plus 3 is 5"
    assert bus.calls == [("simple.add", [2, 3])]


def test_dependencies_can_be_replaced() -> None:
    fake_storage = object()
    service = make_service(MyService, storage=fake_storage)
    assert service.storage is fake_storage
    assert call_method(service, "echo", words="hi") == "hi"


def test_a_direct_call_of_the_task_still_gets_a_message() -> None:
    class Direct(CommissaireService):
        name = "direct_for_test"

        def on_kind(self, message: Message) -> str:
            return type(message).__name__

    assert Direct.kind() == "Message"


# -- the guide's imports and constructor ------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    ["commissaire_tasks.service", "commissaire_tasks.guide", "commissaire_tasks.worker"],
)
def test_service_manager_imports_from_the_service_module_in_either_order(first: str) -> None:
    code = (
        f"import {first}\n"
        "from commissaire_tasks.service import CommissaireService, ServiceManager, service_app\n"
        "from commissaire_tasks import guide, worker\n"
        "assert guide.ServiceManager is ServiceManager and worker.service_app is service_app\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_guides_forms_are_one_module_apart_from_the_primary_api() -> None:
    from commissaire_tasks import guide

    assert issubclass(CommissaireService, guide.GuideService)
    for form in ("request", "notify", "run"):
        assert form not in CommissaireService.__dict__, form
        assert form in guide.GuideService.__dict__, form


def test_the_guides_constructor_parameters_are_kept_on_the_service() -> None:
    queue_kwargs = [{"name": "my_queue", "routing_key": "queues.my_queue.*"}]
    service = MyService(
        exchange_name="my_exchange",
        connection_url="redis://127.0.0.1:6379/",
        qkwargs=queue_kwargs,
    )
    manager = ServiceManager(
        service_class=MyService,
        process_count=3,
        exchange_name="my_exchange",
        connection_url="redis://127.0.0.1:6379/",
        qkwargs=queue_kwargs,
    )

    assert (service.exchange_name, service.connection_url) == (
        "my_exchange",
        "redis://127.0.0.1:6379/",
    )
    assert service.qkwargs == queue_kwargs
    assert manager.options["qkwargs"] == queue_kwargs
    assert manager.process_count == 3
