"""Garbage pushed onto a live queue, at the transport level, on Redis and on RabbitMQ.

Raw entries (not calls made through our client) go straight onto the list or
queue a real worker consumes. Each is moved to ``<queue>.dead`` with one log line
naming the queue and the reason, and the worker keeps serving: a valid call
queued before and one queued after every entry are both answered. The last test
of each broker's run asserts how many raw inputs were tried (at least
:data:`MINIMUM_TRIED`) and writes the count to the reliability report.
"""

from __future__ import annotations

import base64
import inspect
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commissaire_tasks.app import create_app
from commissaire_tasks.runtime import deadletters
from commissaire_tasks.testing import RedisServer, WorkerProcess
from tests.attack import Attack, call_body, call_headers, envelope
from tests.report import record

pytestmark = pytest.mark.reliability

SECRET = f"SECRET-{uuid.uuid4().hex}"
EXAMPLES = 80
many = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
#: The fewest raw inputs a whole run of this module tries per broker: every hypothesis
#: test's examples (5 tests on Redis, 2 on RabbitMQ); the README quotes these.
MINIMUM_TRIED = {"redis": 5 * EXAMPLES, "rabbitmq": 2 * EXAMPLES}
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**31), 2**31)  # AMQP header tables hold 64-bit integers at most
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
not_text = st.none() | st.booleans() | st.integers() | st.lists(st.integers(), max_size=2)
foreign_types = st.sampled_from(
    ["application/x-python-serialize", "application/x-yaml", "text/plain", "application/x-msgpack"]
)


@pytest.fixture(
    scope="module", params=["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)]
)
def attack(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Attack]:
    if request.param == "redis":
        broker_url, backend = redis_server.url, None
    else:
        broker_url, backend = request.getfixturevalue("rabbitmq_url"), redis_server.url
    target = Attack(request.param, broker_url, backend, uuid.uuid4().hex[:8])
    target.worker = WorkerProcess(
        broker_url=broker_url,
        result_backend=backend,
        queues=[target.queue],
        concurrency=2,
        env={
            "COMMISSAIRE_SERVICES": "workers.simple",
            "COMMISSAIRE_QUEUES": json.dumps([target.spec]),
        },
        log_dir=tmp_path_factory.mktemp(f"dead-{request.param}"),
    )
    with target.worker:
        yield target
        assert target.worker.process is not None and target.worker.process.poll() is None
        log = target.worker.log()
        assert SECRET not in log
        assert "Unrecoverable error" not in log
    deadletters.purge(target.connection, target.queue)
    target.connection.release()


@pytest.fixture(autouse=True)
def _note_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Tell the attack which test ran against it (for the count of the whole run)."""
    yield
    target = request.node.funcargs.get("attack")
    if isinstance(target, Attack):
        target.ran.add(request.node.originalname)


@pytest.fixture
def redis_attack(attack: Attack) -> Attack:
    """The attack on Redis, where the raw list entry itself can be garbage."""
    if attack.kind != "redis":
        pytest.skip("a RabbitMQ message is always a well-formed AMQP message")
    return attack


redis_garbage = st.one_of(
    st.binary(max_size=200).filter(lambda b: not _is_json(b)),
    json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.text(max_size=10), json_values, max_size=5).map(
        lambda v: json.dumps(v).encode()
    ),
    st.just(f'{{"body": "{SECRET}", "properties": {{}}}}'.encode()),
)


def _is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


@many
@given(entry=redis_garbage)
def test_a_redis_entry_that_is_not_an_envelope_is_dead_lettered(
    redis_attack: Attack, entry: bytes
) -> None:
    attack = redis_attack
    attack.survives(lambda: attack.push(entry))


ENVELOPE_FIELDS = [
    ("properties",),
    ("properties", "delivery_tag"),
    ("properties", "delivery_info"),
    ("properties", "delivery_info", "exchange"),
    ("properties", "delivery_info", "routing_key"),
    ("properties", "body_encoding"),
    ("body",),
    ("headers",),
    ("content-type",),
    ("content-encoding",),
]


@many
@given(path=st.sampled_from(ENVELOPE_FIELDS), value=not_text, remove=st.booleans())
def test_a_redis_envelope_with_a_field_of_the_wrong_type_is_dead_lettered(
    redis_attack: Attack, path: tuple[str, ...], value: Any, remove: bool
) -> None:
    attack = redis_attack
    entry = envelope(
        attack.queue, call_body(SECRET), "application/json", "utf-8", call_headers("nosuch.task")
    )
    parent = entry
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        parent.pop(path[-1])
    else:
        parent[path[-1]] = value
    attack.survives(lambda: attack.push(json.dumps(entry).encode()))


@many
@given(body=st.text(alphabet="abcdefghijklmnopqrstuvwxyz=!*", min_size=1, max_size=41))
def test_a_redis_body_that_is_not_base64_or_in_an_unknown_encoding_is_dead_lettered(
    redis_attack: Attack, body: str
) -> None:
    attack = redis_attack
    entry = envelope(
        attack.queue, b"", "application/json", "utf-8", call_headers(f"{attack.prefix}.echo")
    )
    try:
        base64.b64decode(body)
        entry["properties"]["body_encoding"] = "rot13"  # decodes as base64: use a codec kombu lacks
    except ValueError:
        pass
    entry["body"] = body
    attack.survives(lambda: attack.push(json.dumps(entry).encode()))


def rabbit_or_redis_garbage(prefix: str) -> st.SearchStrategy[tuple[bytes, Any, Any, Any]]:
    """(body, content type, encoding, headers) of a message that is not a call we run."""
    bodies = st.binary(max_size=100) | st.just(SECRET.encode())
    encodings = st.sampled_from(["utf-8", "binary", "latin-1", "rot13"]) | st.none()
    no_task = st.dictionaries(
        st.text(max_size=8).filter(lambda k: k != "task"), json_values, max_size=3
    )
    return st.one_of(
        # no task header at all, any body and properties
        st.tuples(
            bodies, foreign_types | st.just("application/json") | st.none(), encodings, no_task
        ),
        # a task header naming no task
        st.tuples(
            st.just(call_body(1)),
            st.just("application/json"),
            st.just("utf-8"),
            st.text(min_size=1, max_size=20).map(lambda name: call_headers(f"nosuch.{name}")),
        ),
        # a real task with a body that is not JSON
        st.tuples(
            st.binary(max_size=60).filter(lambda b: not _is_json(b)),
            st.just("application/json"),
            st.just("utf-8"),
            st.just(prefix).map(lambda p: call_headers(f"{p}.echo")),
        ),
        # a real task with a valid JSON body in an encoding nobody knows
        st.tuples(
            st.just(call_body("x")),
            st.just("application/json"),
            st.sampled_from(["no-such-codec", "rot13", "latin-1", "x-\u00e9"]),
            st.just(prefix).map(lambda p: call_headers(f"{p}.echo")),
        ),
        # a real task in a content type we never accept
        st.tuples(
            bodies,
            foreign_types,
            encodings,
            st.just(prefix).map(lambda p: call_headers(f"{p}.echo")),
        ),
    )


@many
@given(data=st.data())
def test_a_message_that_is_not_a_call_we_run_is_dead_lettered(
    attack: Attack, data: st.DataObject
) -> None:
    body, content_type, encoding, headers = data.draw(rabbit_or_redis_garbage(attack.prefix))
    attack.survives(lambda: attack.publish(body, content_type, encoding, headers))


@many
@given(
    name=st.sampled_from(["id", "eta", "expires", "retries", "argsrepr", "group", "root_id"]),
    value=json_values,
)
def test_a_call_with_a_header_of_the_wrong_type_never_stops_the_worker(
    attack: Attack, name: str, value: Any
) -> None:
    headers = call_headers(f"{attack.prefix}.echo", **{name: value})
    before = attack.dead()
    attack.tried += 1
    attack.publish(call_body("odd"), "application/json", "utf-8", headers)
    # It either runs (the value was acceptable) or is dead-lettered; the worker serves on.
    assert attack.answer(attack.bus.send(f"{attack.prefix}.echo", "after")) == "after"
    assert attack.dead() >= before
    attack.handled += 1


def test_a_huge_entry_is_dead_lettered(attack: Attack) -> None:
    huge = b"x" * (9 * 1024 * 1024)  # over the 8 MiB payload limit
    attack.survives(
        lambda: attack.publish(
            huge, "application/json", "utf-8", call_headers(f"{attack.prefix}.echo")
        )
    )
    if attack.kind == "redis":
        attack.survives(lambda: attack.push(b"[" + b"1," * (4 * 1024 * 1024) + b"1]"))
    deadletters.purge(attack.connection, attack.queue)


def test_dead_letters_can_be_counted_inspected_and_purged(attack: Attack) -> None:
    deadletters.purge(attack.connection, attack.queue)
    attack.survives(lambda: attack.publish(b"first", "text/plain", "utf-8", {}))
    attack.survives(lambda: attack.publish(b"second", "text/plain", "utf-8", {}))
    letters = deadletters.peek(attack.connection, attack.queue)
    assert len(letters) == 2
    if attack.kind == "redis":
        bodies = [base64.b64decode(json.loads(letter.body)["body"]) for letter in letters]
    else:
        bodies = [letter.body for letter in letters]
        assert letters[0].content_type == "text/plain"
    assert bodies == [b"first", b"second"]
    assert attack.dead() == 2  # peeking leaves them in place
    assert deadletters.purge(attack.connection, attack.queue) == 2
    assert attack.dead() == 0


def test_the_dead_letter_log_line_names_the_queue_and_the_reason(attack: Attack) -> None:
    attack.survives(lambda: attack.publish(SECRET.encode(), "text/plain", "utf-8", {"x": SECRET}))
    if attack.kind == "redis":
        attack.survives(lambda: attack.push(SECRET.encode()))
    assert attack.worker is not None
    log = attack.worker.log()
    assert f"of queue '{attack.queue}'" in log
    assert f"'{deadletters.dead_letter_queue(attack.queue)}'" in log
    assert SECRET not in log


def test_the_command_line_counts_shows_and_purges_dead_letters(attack: Attack) -> None:
    deadletters.purge(attack.connection, attack.queue)
    attack.survives(lambda: attack.publish(b"not a call", "text/plain", "utf-8", {}))
    shown = attack.cli("dead-letters", attack.queue, "--show", "5")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == f"{attack.queue}.dead: 1 dead letter(s)"
    letter = json.loads(lines[1])
    assert "not a call" in letter["body"] or "bm90IGEgY2FsbA" in letter["body"]  # Redis: base64
    purged = attack.cli("dead-letters", attack.queue, "--show", "0", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert purged.stdout.splitlines() == [f"{attack.queue}.dead: 1 dead letter(s)", "deleted 1"]
    assert attack.dead() == 0


def test_a_one_message_read_skips_garbage_and_dead_letters_it(
    redis_server: RedisServer, unique: str
) -> None:
    queue = f"get_{unique}"
    client = redis_server.client()
    with create_app(services=()).connection_for_write() as connection:
        with connection.SimpleQueue(queue) as simple:
            client.lpush(queue, b"not json")
            simple.put({"n": 1})
            message = simple.get_nowait()  # basic_get: the transport's one-message read
            assert message.payload == {"n": 1}
            message.ack()
    assert client.lrange(f"{queue}.dead", 0, -1) == [b"not json"]
    client.delete(f"{queue}.dead")


@pytest.mark.parametrize("call_id", [None, 5, "", ["x"], {"id": "x"}])
def test_a_call_whose_id_is_not_a_string_is_dead_lettered_not_run(
    attack: Attack, call_id: Any
) -> None:
    headers = call_headers(f"{attack.prefix}.echo", id=call_id)
    attack.survives(
        lambda: attack.publish(call_body("never"), "application/json", "utf-8", headers)
    )
    assert attack.worker is not None
    assert "must not be empty" not in attack.worker.log()  # it never ran to store a result


def attacking_tests(kind: str) -> set[str]:
    """This module's tests that attack ``kind`` (Redis also runs the Redis-only ones)."""
    wanted = {"attack", "redis_attack"} if kind == "redis" else {"attack"}
    return {
        name
        for name, function in globals().items()
        if name.startswith("test_")
        and name != "test_hundreds_of_raw_inputs_were_tried_with_the_worker_alive_throughout"
        and wanted & set(inspect.signature(function).parameters)
    }


def test_hundreds_of_raw_inputs_were_tried_with_the_worker_alive_throughout(
    attack: Attack,
) -> None:
    attack.assert_alive()
    assert attack.handled == attack.tried
    missing = attacking_tests(attack.kind) - attack.ran
    if missing:
        pytest.skip(f"the count is for a whole run; not run here: {', '.join(sorted(missing))}")
    assert attack.tried >= MINIMUM_TRIED[attack.kind]
    record(
        f"dead_letters_{attack.kind}",
        sent=attack.tried,
        completed=attack.handled,
        lost=0,
        duplicated="-",
        notes=f"completed = dead-lettered (or, a header of an odd type, run) between two valid "
        f"calls that were both answered ({attack.answered} valid calls, none lost); the worker "
        f"stayed alive throughout; at least {MINIMUM_TRIED[attack.kind]} asserted",
    )
