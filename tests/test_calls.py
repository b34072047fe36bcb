"""Calling services in a real prefork worker over the session's Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import (
    CallTimeout,
    ContainerManagerError,
    InvalidParams,
    MethodNotFound,
    NoRouteError,
    PayloadTooLarge,
    RemoteProcedureCallError,
    StorageLookupError,
)
from commissaire_tasks.testing import RedisServer, WorkerProcess
from workers.simple import SimpleService

SERVICES = "workers.simple,tests.services"


@pytest.fixture(
    scope="module", params=["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)]
)
def broker(request: pytest.FixtureRequest, redis_server: RedisServer) -> tuple[str, str | None]:
    """(broker URL, result backend): the session's Redis, or RabbitMQ with Redis results."""
    if request.param == "redis":
        return redis_server.url, None
    return request.getfixturevalue("rabbitmq_url"), redis_server.url


@pytest.fixture(scope="module")
def worker(
    broker: tuple[str, str | None], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    broker_url, backend = broker
    process = WorkerProcess(
        broker_url=broker_url,
        result_backend=backend,
        queues=["simple", "my", "introspect", "error"],
        concurrency=2,
        env={"COMMISSAIRE_SERVICES": SERVICES},
        log_dir=tmp_path_factory.mktemp("worker"),
    )
    with process:
        yield process


@pytest.fixture(scope="module")
def bus(broker: tuple[str, str | None]) -> Bus:
    """A caller on the module's broker."""
    broker_url, backend = broker
    return Bus(create_app(load_settings().replace(broker_url=broker_url, result_backend=backend)))


def test_parameters_may_be_positional_or_keyword(worker: WorkerProcess, bus: Bus) -> None:
    assert bus.call("simple.add", 1, 2) == 3
    assert bus.call("simple.add", x=1, y=2) == 3
    assert bus.call("simple.add", params=[1, 2]) == 3
    assert bus.call("simple.add", params={"x": "a", "y": "b"}) == "ab"


def test_send_returns_an_async_result(worker: WorkerProcess, bus: Bus) -> None:
    assert bus.send("simple.add", 2, 2).get() == 4


def test_plain_send_task_reaches_the_service(worker: WorkerProcess, bus: Bus) -> None:
    assert bus.app.send_task("simple.add", args=[1, 2]).get(timeout=10) == 3


# The class's tasks use the default app, which is on the session's Redis: Redis only.
@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_delay_on_the_imported_class_works(
    worker: WorkerProcess, broker: tuple[str, str | None]
) -> None:
    assert SimpleService.add.delay(1, 2).get() == 3


def test_request_answers_in_json_rpc_shape_with_the_call_id(
    worker: WorkerProcess, bus: Bus
) -> None:
    response = bus.request("my.echo", params={"words": "hello"})
    assert response["jsonrpc"] == "2.0"
    assert response["result"] == "hello"
    described = bus.request("introspect.describe")
    assert described["id"] == described["result"]["id"]  # the id the worker ran it under


def test_a_service_calling_itself_over_the_bus_gets_the_answer(
    worker: WorkerProcess, bus: Bus
) -> None:
    assert bus.call("simple.wordy_add", 1, 2, timeout=10) == "1 plus 2 is 3"


def test_message_describes_the_call(worker: WorkerProcess, bus: Bus) -> None:
    result = bus.send("introspect.describe")
    described = result.get()
    assert described["id"] == result.id
    assert described["method"] == "describe"
    assert described["routing_key"] == "introspect.describe"
    assert described["exchange"] == "commissaire"
    assert described["queue"] == "introspect"
    assert described["retries"] == 0
    assert described["has_request"] is True


def test_a_builtin_exception_arrives_as_itself(worker: WorkerProcess, bus: Bus) -> None:
    with pytest.raises(NotImplementedError, match="I was never created"):
        bus.call("my.fail")
    with pytest.raises(NotImplementedError, match="I was never created"):
        bus.app.send_task("my.fail").get(timeout=10)


def test_rpc_errors_arrive_with_code_and_data(worker: WorkerProcess, bus: Bus) -> None:
    with pytest.raises(StorageLookupError) as lookup:
        bus.call("error.lookup", "h1")
    assert lookup.value.code == -20000
    assert lookup.value.data["key"] == "h1"
    with pytest.raises(ContainerManagerError) as container:
        bus.call("error.container")
    assert container.value.code == -20001
    assert container.value.data["manager"] == "m1"


def test_an_unknown_exception_arrives_as_rpc_error_naming_its_type(
    worker: WorkerProcess, bus: Bus
) -> None:
    with pytest.raises(RemoteProcedureCallError) as error:
        bus.call("error.custom")
    assert type(error.value) is RemoteProcedureCallError
    assert error.value.code == -32603
    assert error.value.exception_type == "CustomError"
    assert "something odd" in str(error.value)


def test_an_unknown_method_fails_with_method_not_found(worker: WorkerProcess, bus: Bus) -> None:
    with pytest.raises(MethodNotFound) as error:
        bus.call("my.no_such_method", timeout=10)
    assert error.value.code == -32601


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, 2, 3), {}), ((), {"x": 1, "z": 2})],
    ids=["missing", "extra", "unknown-keyword"],
)
def test_wrong_parameters_fail_with_invalid_params(
    worker: WorkerProcess, args: tuple[int, ...], kwargs: dict[str, int], bus: Bus
) -> None:
    with pytest.raises(InvalidParams) as error:
        bus.call("simple.add", *args, **kwargs)
    assert error.value.code == -32602


def test_the_worker_keeps_serving_after_errors(worker: WorkerProcess, bus: Bus) -> None:
    for key in ("my.fail", "error.custom", "error.key"):
        with pytest.raises(Exception):  # noqa: B017 - any error; the point is what follows
            bus.call(key)
    assert bus.call("my.ping") == "pong"


def test_a_routing_key_no_queue_is_bound_to_fails_at_once(bus: Bus) -> None:
    with pytest.raises(NoRouteError, match="queues.unknown.ping"):
        bus.call("queues.unknown.ping")
    with pytest.raises(NoRouteError):
        bus.call("no_method_segment")


def unserved(broker: tuple[str, str | None], unique: str) -> Bus:
    """A caller configured with a queue ``nobody_<unique>`` that no worker serves."""
    queue = {"name": f"nobody_{unique}", "routing_key": f"nobody_{unique}.*"}
    broker_url, backend = broker
    settings = load_settings().replace(broker_url=broker_url, result_backend=backend)
    return Bus(create_app(settings.replace(queues=(queue,)), services=()))


def test_a_call_nobody_serves_times_out_naming_the_routing_key(
    unique: str, broker: tuple[str, str | None]
) -> None:
    with pytest.raises(CallTimeout, match=f"nobody_{unique}.ping"):
        unserved(broker, unique).call(f"nobody_{unique}.ping", timeout=0.5)


def test_a_call_to_a_key_nothing_is_bound_to_fails_at_once(unique: str, bus: Bus) -> None:
    with pytest.raises(NoRouteError, match=f"nobody_{unique}.ping"):
        bus.call(f"nobody_{unique}.ping", timeout=0.5)


def test_oversized_parameters_are_refused_before_sending(worker: WorkerProcess, bus: Bus) -> None:
    limit = bus.app.settings.max_payload_bytes
    with pytest.raises(PayloadTooLarge):
        bus.call("my.echo", "x" * (limit + 1))


def test_a_call_waits_in_its_queue_until_a_worker_starts(
    redis_server: RedisServer, tmp_path: Path, unique: str
) -> None:
    queue = {"name": f"kept_{unique}", "routing_key": f"kept.{unique}.*", "service": "my"}
    caller = Bus(create_app(load_settings().replace(queues=(queue,))))
    pending = caller.send(f"kept.{unique}.echo", "kept")
    assert redis_server.client().llen(f"kept_{unique}") == 1
    env = {"COMMISSAIRE_SERVICES": SERVICES, "COMMISSAIRE_QUEUES": json.dumps([queue])}
    with WorkerProcess(
        broker_url=redis_server.url, queues=[queue["name"]], env=env, log_dir=tmp_path
    ):
        assert pending.get(timeout=15) == "kept"


def test_call_many_returns_every_result_in_order(worker: WorkerProcess, bus: Bus) -> None:
    params: list[Any] = [[i, i] if i % 2 else {"x": i, "y": 1} for i in range(200)]
    expected = [2 * i if i % 2 else i + 1 for i in range(200)]
    assert bus.call_many("simple.add", params) == expected
    assert bus.call_many("simple.add", []) == []


def test_call_many_raises_the_first_failure_or_returns_each_in_place(
    worker: WorkerProcess, bus: Bus
) -> None:
    params: list[Any] = [[1, 2], [1], {"x": 1, "z": 2}, [3, 4]]
    with pytest.raises(InvalidParams):
        bus.call_many("simple.add", params)
    outcome = bus.call_many("simple.add", params, return_exceptions=True)
    assert outcome[0] == 3 and outcome[3] == 7
    assert all(isinstance(error, InvalidParams) for error in outcome[1:3])
    assert bus.call("my.ping") == "pong"


def test_call_many_from_inside_a_call_returns_every_result_in_order(
    worker: WorkerProcess, bus: Bus
) -> None:
    assert bus.call("introspect.add_all", [[1, 2], [3, 4], [5, 6]], timeout=15) == [3, 7, 11]


def test_call_many_is_bounded_by_one_timeout_naming_the_routing_key(
    unique: str, broker: tuple[str, str | None]
) -> None:
    with pytest.raises(CallTimeout, match=f"nobody_{unique}.ping"):
        unserved(broker, unique).call_many(f"nobody_{unique}.ping", [[], [], []], timeout=0.5)


def test_notify_many_queues_one_call_per_parameter_set(
    redis_server: RedisServer, unique: str
) -> None:
    queue = {"name": f"fire_{unique}", "routing_key": f"fire.{unique}.*", "service": "my"}
    caller = Bus(create_app(load_settings().replace(queues=(queue,))))
    caller.notify_many(f"fire.{unique}.echo", [["a"], {"words": "b"}, ["c"]])
    queued = redis_server.client().lrange(f"fire_{unique}", 0, -1)
    assert len(queued) == 3
    assert all(json.loads(body)["headers"]["ignore_result"] for body in queued)


def test_calls_to_itself_with_one_worker_process_do_not_deadlock(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    # Given a worker with a single pool process, on a database no other worker uses
    broker_url = redis_server.url.rsplit("/", 1)[0] + "/5"
    caller = Bus(create_app(load_settings().replace(broker_url=broker_url)))
    with WorkerProcess(
        broker_url=broker_url,
        queues=["simple", "introspect"],
        concurrency=1,
        env={"COMMISSAIRE_SERVICES": SERVICES},
        log_dir=tmp_path,
    ):
        # When its only process calls simple.add over the bus, once and as a batch,
        # then both answer (waiting on the queue would time out: nobody else serves it)
        assert caller.call("simple.wordy_add", 1, 2, timeout=10) == "1 plus 2 is 3"
        assert caller.call("introspect.add_all", [[1, 2], [3, 4]], timeout=10) == [3, 7]
