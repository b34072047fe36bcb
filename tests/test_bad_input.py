"""Bad input, generated with hypothesis, against one real worker: one clear error each.

Every input goes all the way to the worker (the few the client refuses first say
so and prove nothing was sent). For each one the test asserts the error class and
JSON-RPC code the README names for its kind, that the worker logged the call id
but not the input's body, and that the message was acknowledged (nothing left in
kombu's ``unacked`` hash). Only inputs that passed every check are counted; the
last test asserts that every input tried was counted, that each kind tried exactly
as many inputs as planned (:data:`PLANNED`: the README's total), and that no worker
process, main or pool, died, and writes the reliability row.

Raw messages are valid broker envelopes, as kombu publishes them.
"""

from __future__ import annotations

import json
import pickle
import string
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from celery.signals import before_task_publish
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
from tests.ledger import wait_until
from tests.report import record

pytestmark = pytest.mark.reliability

#: The error class and JSON-RPC code the README gives each kind of bad input.
EXPECTED: dict[str, tuple[type[BaseException], int]] = {
    "wrong types": (TypeError, -32603),  # the method's own check: a built-in exception
    "parameter shapes": (InvalidParams, -32602),
    "unknown methods": (MethodNotFound, -32601),
    "undecodable bodies": (ParseError, -32700),
    "unknown task names": (MethodNotFound, -32601),
    "pickle": (InvalidRequest, -32600),  # refused by content type, never deserialized
    "missing headers": (InvalidRequest, -32600),
    "deep nesting": (ParseError, -32700),
    "oversized raw": (PayloadTooLarge, -32010),
    "oversized call": (PayloadTooLarge, -32010),  # refused by the client, nothing sent
}
#: Inputs each hypothesis-driven kind tries (hypothesis's example database is off, so
#: no replayed example adds to it); the other kinds try one input each.
EXAMPLES = 40
GENERATED = {
    "wrong types",
    "parameter shapes",
    "unknown methods",
    "undecodable bodies",
    "unknown task names",
}
PLANNED = {kind: EXAMPLES if kind in GENERATED else 1 for kind in EXPECTED}
LIMIT = 200_000
TRIED: Counter[str] = Counter()
ANSWERED: Counter[str] = Counter()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
not_ints = json_values.filter(lambda v: not isinstance(v, int))  # bool is an int too
few_examples = settings(
    max_examples=EXAMPLES, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)


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
            "COMMISSAIRE_MAX_PAYLOAD_BYTES": str(LIMIT),
        },
        log_dir=tmp_path_factory.mktemp("bad-input"),
    )
    with process:
        process.initial_pool = process.pool_pids()  # type: ignore[attr-defined]
        yield process


def marker() -> str:
    """A unique string to hide in an input, so the log can be searched for its body."""
    return f"BODY-{uuid.uuid4().hex}"


def stored_code(redis_server: RedisServer, call_id: str) -> int:
    """The JSON-RPC code stored for ``call_id`` (read raw, not through the client)."""
    raw = redis_server.client().get(f"celery-task-meta-{call_id}")
    assert raw is not None, f"no result stored for {call_id}"
    return int(json.loads(raw)["result"]["error"]["code"])


def outcome(call_id: str) -> BaseException:
    try:
        value = default_app().AsyncResult(call_id).get(timeout=10)
    except BaseException as error:  # noqa: BLE001 - the error is what is under test
        return error
    raise AssertionError(f"call {call_id} returned {value!r} instead of failing")


def check_answered(
    kind: str,
    call_id: str,
    worker: WorkerProcess,
    redis_server: RedisServer,
    body_marker: str | None = None,
) -> None:
    """Assert the README's answer to one bad input, then count it as answered."""
    cls, code = EXPECTED[kind]
    error = outcome(call_id)
    assert type(error) is cls, f"{kind}: {type(error).__name__}: {error}"
    assert getattr(error, "code", code) == code
    assert stored_code(redis_server, call_id) == code
    wait_until(lambda: call_id in worker.log(), 10, f"the worker to log {call_id}")
    if body_marker is not None:
        assert body_marker not in worker.log(), "the input's body reached the log"
    broker = redis_server.client()
    wait_until(
        lambda: not any(call_id.encode() in entry for entry in broker.hvals("unacked")),
        10,
        f"{call_id} to be acknowledged",
    )
    ANSWERED[kind] += 1


def still_serving() -> None:
    assert bus.call("my.ping", timeout=10) == "pong"


@contextmanager
def published() -> Iterator[list[str]]:
    """The name of each call this process publishes meanwhile.

    Celery's ``before_task_publish`` fires for every message our one publish path
    (``runtime.publish.send``) hands to the broker, so an empty list means nothing left.
    """
    names: list[str] = []

    def seen(sender: str | None = None, **_: Any) -> None:
        names.append(str(sender))

    before_task_publish.connect(seen, weak=False)
    try:
        yield names
    finally:
        before_task_publish.disconnect(seen)


def carrying(value: Any, secret: str) -> Any:
    """``value`` with ``secret`` inside it and still not an int (scalars go in a list)."""
    if isinstance(value, str):
        return secret + value
    if isinstance(value, list):
        return [*value, secret]
    if isinstance(value, dict):
        return {**value, "marker": secret}
    return [value, secret]


@few_examples
@given(value=not_ints)
def test_parameters_of_wrong_type_get_the_methods_type_error(
    worker: WorkerProcess, redis_server: RedisServer, value: Any
) -> None:
    secret = marker()
    TRIED["wrong types"] += 1
    result = bus.send("error.typed", carrying(value, secret))
    check_answered("wrong types", result.id, worker, redis_server, secret)


def binds(args: list[Any], kwargs: dict[str, Any]) -> bool:
    """True when ``args, kwargs`` would bind to ``simple.add(x, y)``."""
    return len(args) <= 2 and set(kwargs) == {"x", "y"}.difference(["x", "y"][: len(args)])


@few_examples
@given(
    args=st.lists(json_values, max_size=5),
    kwargs=st.dictionaries(st.sampled_from("xyzw"), json_values, max_size=3),
)
def test_missing_and_extra_parameters_get_invalid_params_without_their_values(
    worker: WorkerProcess, redis_server: RedisServer, args: list[Any], kwargs: dict[str, Any]
) -> None:
    secret = marker()
    args = [*args, secret]  # every shape carries a value the log must not show
    if binds(args, kwargs):
        kwargs = {**kwargs, "w": secret}
    TRIED["parameter shapes"] += 1
    result = bus.send("simple.add", *args, **kwargs)
    check_answered("parameter shapes", result.id, worker, redis_server, secret)
    assert secret not in str(outcome(result.id))


@few_examples
@given(
    method=st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=20).filter(
        lambda m: m[0].isalpha() and m not in {"add", "wordy_add"}
    )
)
def test_unknown_methods_reach_the_worker_and_get_method_not_found(
    worker: WorkerProcess, redis_server: RedisServer, method: str
) -> None:
    TRIED["unknown methods"] += 1
    result = bus.send(f"simple.{method}")
    check_answered("unknown methods", result.id, worker, redis_server)


def test_an_oversized_call_is_refused_by_the_client_and_nothing_is_sent(
    worker: WorkerProcess, redis_server: RedisServer
) -> None:
    # The client knows the limit, so it refuses before publishing: the worker never sees it.
    TRIED["oversized call"] += 1
    with published() as sent:
        with pytest.raises(PayloadTooLarge) as error:
            bus.call("my.echo", "x" * (default_app().settings.max_payload_bytes + 1))
        assert sent == []
        still_serving()
        assert sent == ["my.ping"]  # the recorder does see a call that is sent
    assert error.value.code == EXPECTED["oversized call"][1]
    ANSWERED["oversized call"] += 1


def test_deeply_nested_parameters_are_refused_by_the_client_before_sending(
    worker: WorkerProcess, redis_server: RedisServer
) -> None:
    # JSON encoding recurses, so the client cannot even build the message; the raw
    # deep-nesting test below sends such a body to the worker.
    nested: Any = "bottom"
    for _ in range(100_000):
        nested = [nested]
    with published() as sent:
        with pytest.raises(RecursionError):
            bus.call("my.echo", nested)
        assert sent == []
        still_serving()
        assert sent == ["my.ping"]


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
) -> str:
    call_id = str(uuid.uuid4())
    headers: dict[str, Any] = {"id": call_id, "lang": "py"}
    if task is not None:
        headers["task"] = task
    publish_raw(redis_server, "my", body, content_type, headers)
    return call_id


def is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


@few_examples
@given(body=st.binary(min_size=1, max_size=64).filter(lambda b: not is_json(b)))
def test_undecodable_bodies_get_parse_error_and_are_not_logged(
    worker: WorkerProcess, redis_server: RedisServer, body: bytes
) -> None:
    secret = marker()
    body = secret.encode() + body  # never JSON: it starts with a bare word
    TRIED["undecodable bodies"] += 1
    call_id = raw_call(redis_server, body)
    check_answered("undecodable bodies", call_id, worker, redis_server, secret)


def test_a_pickle_message_is_refused_never_deserialized(
    worker: WorkerProcess, redis_server: RedisServer, tmp_path: Path
) -> None:
    canary = tmp_path / "unpickled"
    secret = marker()

    class Exploit:
        def __reduce__(self) -> Any:
            return (open, (str(canary), "w"))

    TRIED["pickle"] += 1
    body = pickle.dumps(((Exploit(), secret), {}, {}))
    call_id = raw_call(redis_server, body, content_type="application/x-python-serialize")
    check_answered("pickle", call_id, worker, redis_server, secret)
    assert not canary.exists()


def test_a_message_without_task_headers_gets_invalid_request(
    worker: WorkerProcess, redis_server: RedisServer
) -> None:
    secret = marker()
    TRIED["missing headers"] += 1
    call_id = raw_call(redis_server, json.dumps([[secret], {}, {}]).encode(), task=None)
    check_answered("missing headers", call_id, worker, redis_server, secret)


def test_a_deeply_nested_body_sent_raw_gets_parse_error(
    worker: WorkerProcess, redis_server: RedisServer
) -> None:
    depth = 40_000  # far past the decoder's recursion limit, well under the size limit
    secret = marker()
    body = ("[" * depth + json.dumps(secret) + "]" * depth).encode()
    body = b"[" + body + b", {}, {}]"
    assert len(body) < LIMIT
    TRIED["deep nesting"] += 1
    call_id = raw_call(redis_server, body)
    check_answered("deep nesting", call_id, worker, redis_server, secret)


@few_examples
@given(
    name=st.text(alphabet=string.ascii_letters + "._-", min_size=1, max_size=30).filter(
        lambda n: n not in default_app().tasks
    )
)
def test_unknown_task_names_get_method_not_found(
    worker: WorkerProcess, redis_server: RedisServer, name: str
) -> None:
    secret = marker()
    TRIED["unknown task names"] += 1
    call_id = raw_call(redis_server, json.dumps([[secret], {}, {}]).encode(), task=name)
    check_answered("unknown task names", call_id, worker, redis_server, secret)


def test_an_oversized_raw_message_is_refused_by_the_worker_before_decoding(
    worker: WorkerProcess, redis_server: RedisServer
) -> None:
    secret = marker()
    TRIED["oversized raw"] += 1
    body = json.dumps([[secret + "x" * (LIMIT + 100)], {}, {}]).encode()
    call_id = raw_call(redis_server, body)
    check_answered("oversized raw", call_id, worker, redis_server, secret)


def test_every_bad_input_got_its_error_and_no_worker_process_died(worker: WorkerProcess) -> None:
    still_serving()
    assert bus.call("simple.add", 2, 3) == 5
    assert worker.process is not None and worker.process.poll() is None  # the main process
    assert worker.pool_pids() == worker.initial_pool  # type: ignore[attr-defined]
    assert ANSWERED == TRIED, f"answered {dict(ANSWERED)} of {dict(TRIED)}"
    assert dict(TRIED) == {kind: PLANNED[kind] for kind in TRIED}, "inputs tried per kind"
    if set(TRIED) == set(EXPECTED):  # the whole module ran
        total = sum(TRIED.values())
        answered = sum(ANSWERED.values())
        record(
            "bad_input",
            sent=total,
            completed=answered,
            lost=total - answered,
            duplicated="-",
            notes="completed = answered with the error and code specified; worker processes "
            "died or replaced: 0; " + ", ".join(f"{kind} {n}" for kind, n in sorted(TRIED.items())),
        )
