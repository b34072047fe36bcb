"""Bad input, generated with hypothesis, against one real worker: clear errors, no crash.

Every case gets its JSON-RPC error (or a logged rejection) and the worker keeps
serving. The number of inputs tried is printed (run with -s).
"""

from __future__ import annotations

import json
import pickle
import string
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kombu import Connection, Exchange, Producer, Queue

from commissaire_tasks import bus
from commissaire_tasks.app import default_app
from commissaire_tasks.errors import (
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    PayloadTooLarge,
)
from commissaire_tasks.testing import RedisServer, WorkerProcess

pytestmark = pytest.mark.reliability

TRIED: dict[str, int] = {}
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
few_examples = settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))


def tried(kind: str) -> None:
    TRIED[kind] = TRIED.get(kind, 0) + 1


@pytest.fixture(scope="module")
def worker(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    process = WorkerProcess(
        broker_url=redis_server.url,
        queues=["simple", "my", "error"],
        concurrency=2,
        env={
            "COMMISSAIRE_SERVICES": "workers.simple,tests.services",
            "COMMISSAIRE_MAX_PAYLOAD_BYTES": "200000",
        },
        log_dir=tmp_path_factory.mktemp("bad-input"),
    )
    with process:
        yield process
        assert process.process is not None and process.process.poll() is None  # never died
    print(f"\n[bad input] inputs tried: {json.dumps(TRIED)}, total {sum(TRIED.values())}")


def still_serving() -> None:
    assert bus.call("my.ping", timeout=10) == "pong"


@few_examples
@given(value=json_values)
def test_parameters_of_wrong_type_get_the_methods_error(worker: WorkerProcess, value: Any) -> None:
    tried("wrong types")
    try:
        assert bus.call("error.typed", value, timeout=10) == value
        assert isinstance(value, int)
    except TypeError as error:
        assert "count must be an int" in str(error)


@few_examples
@given(
    args=st.lists(json_values, max_size=5),
    kwargs=st.dictionaries(st.sampled_from("xyzw"), json_values, max_size=3),
)
def test_missing_and_extra_parameters_get_invalid_params(
    worker: WorkerProcess, args: list[Any], kwargs: dict[str, Any]
) -> None:
    tried("parameter shapes")
    binds = len(args) <= 2 and set(kwargs) == {"x", "y"}.difference(["x", "y"][: len(args)])
    try:
        bus.call("simple.add", *args, timeout=10, **kwargs)
        assert binds
    except InvalidParams as error:
        assert error.code == -32602
        assert not binds
    except TypeError:
        assert binds  # the parameters bound; adding them is the method's own TypeError


@few_examples
@given(method=st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=20))
def test_unknown_methods_get_method_not_found(worker: WorkerProcess, method: str) -> None:
    tried("unknown methods")
    if method in {"add", "wordy_add"} or not method[0].isalpha():
        return
    with pytest.raises(MethodNotFound):
        bus.call(f"simple.{method}", timeout=10)


def test_an_oversized_call_is_refused_by_the_client(worker: WorkerProcess) -> None:
    tried("oversized")
    with pytest.raises(PayloadTooLarge):
        bus.call("my.echo", "x" * (default_app().settings.max_payload_bytes + 1))
    still_serving()


def test_deeply_nested_parameters_fail_clearly(worker: WorkerProcess) -> None:
    tried("deep nesting")
    nested: Any = "bottom"
    for _ in range(100_000):
        nested = [nested]
    with pytest.raises((RecursionError, ValueError, PayloadTooLarge)):
        bus.call("my.echo", nested)
    still_serving()


def publish_raw(
    redis_server: RedisServer, queue: str, body: bytes, content_type: str, headers: dict[str, Any]
) -> None:
    with Connection(redis_server.url) as connection:
        producer = Producer(connection.default_channel)
        producer.publish(
            body,
            exchange=Exchange(""),
            routing_key=queue,
            content_type=content_type,
            content_encoding="utf-8",
            headers=headers,
            declare=[Queue(queue)],
        )


def raw_call(
    redis_server: RedisServer,
    body: bytes,
    content_type: str = "application/json",
    task: str | None = "my.echo",
    **extra: Any,
) -> str:
    call_id = str(uuid.uuid4())
    headers: dict[str, Any] = {"id": call_id, "lang": "py", **extra}
    if task is not None:
        headers["task"] = task
    publish_raw(redis_server, "my", body, content_type, headers)
    return call_id


def outcome(call_id: str) -> BaseException | None:
    try:
        default_app().AsyncResult(call_id).get(timeout=10)
    except BaseException as error:  # noqa: BLE001
        return error
    return None


@few_examples
@given(body=st.binary(min_size=1, max_size=64))
def test_undecodable_bodies_get_parse_error(
    worker: WorkerProcess, redis_server: RedisServer, body: bytes
) -> None:
    tried("undecodable bodies")
    try:
        json.loads(body)
        return  # valid JSON is another test's business
    except ValueError:
        pass
    assert isinstance(outcome(raw_call(redis_server, body)), ParseError)


def test_a_pickle_message_is_refused_never_deserialized(
    worker: WorkerProcess, redis_server: RedisServer, tmp_path: Path
) -> None:
    tried("pickle")
    canary = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self) -> Any:
            return (open, (str(canary), "w"))

    body = pickle.dumps(((Exploit(),), {}, {}))
    error = outcome(raw_call(redis_server, body, content_type="application/x-python-serialize"))
    assert isinstance(error, (InvalidRequest, ParseError))
    assert not canary.exists()
    still_serving()


def test_a_message_without_task_headers_is_rejected(
    worker: WorkerProcess, redis_server: RedisServer
) -> None:
    tried("missing headers")
    body = json.dumps([["hi"], {}, {}]).encode()
    error = outcome(raw_call(redis_server, body, task=None))
    assert isinstance(error, (InvalidRequest, ParseError))
    still_serving()


@few_examples
@given(name=st.text(alphabet=string.ascii_letters + "._-", min_size=1, max_size=30))
def test_unknown_task_names_get_method_not_found(
    worker: WorkerProcess, redis_server: RedisServer, name: str
) -> None:
    tried("unknown task names")
    if name in default_app().tasks:
        return
    body = json.dumps([[], {}, {}]).encode()
    assert isinstance(outcome(raw_call(redis_server, body, task=name)), MethodNotFound)


def test_an_oversized_raw_message_is_refused_by_the_worker(
    worker: WorkerProcess, redis_server: RedisServer
) -> None:
    tried("oversized raw")
    body = json.dumps([["x" * 300_000], {}, {}]).encode()
    assert isinstance(outcome(raw_call(redis_server, body)), PayloadTooLarge)
    still_serving()


def test_the_worker_still_serves_after_all_of_it(worker: WorkerProcess) -> None:
    still_serving()
    assert bus.call("simple.add", 2, 3) == 5
