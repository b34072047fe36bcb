"""``call_many`` in chunks: the split (pure), and chunks served by a real prefork worker."""

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
    InternalError,
    InvalidParams,
    MethodNotFound,
    PayloadTooLarge,
    StorageLookupError,
)
from commissaire_tasks.runtime.batches import MAX_MESSAGES, chunk_size, split, values_of
from commissaire_tasks.testing import RedisServer, WorkerProcess

SERVICES = "workers.simple,tests.services"


def test_up_to_max_messages_calls_go_one_per_message_and_more_share_them() -> None:
    assert chunk_size(MAX_MESSAGES, None) == 1
    assert chunk_size(MAX_MESSAGES + 1, None) == 2
    assert chunk_size(1000, None) == 63
    assert chunk_size(1000, 5) == 5
    for wrong in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="chunk_size"):
            chunk_size(10, wrong)  # type: ignore[arg-type]


def test_a_chunk_stays_under_the_payload_limit_and_an_oversized_call_names_its_key() -> None:
    calls: list[tuple[list[Any], dict[str, Any]]] = [(["x" * 100], {}) for _ in range(30)]
    chunks = split("simple.echo", calls, 20, 1000)
    assert sum(len(chunk) for chunk in chunks) == 30
    for chunk in chunks:
        assert len(json.dumps(["simple.echo", chunk])) <= 1000
    assert len(chunks) > 3  # the byte budget, not the 20 calls, cut them
    with pytest.raises(PayloadTooLarge, match="simple.echo"):
        split("simple.echo", [(["y" * 2000], {})], 20, 1000)


def test_a_chunk_answered_with_anything_but_its_outcomes_fails_each_call() -> None:
    assert values_of([{"result": 1}, {"error": {"code": -32601, "message": "m"}}], 2)[0] == 1
    assert isinstance(values_of([{"result": 1}], 2)[1], InternalError)
    assert isinstance(values_of("nonsense", 1)[0], InternalError)
    assert isinstance(values_of([3], 1)[0], InternalError)


@pytest.fixture(scope="module")
def worker(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    log_dir = tmp_path_factory.mktemp("batches")
    with WorkerProcess(
        broker_url=redis_server.url,
        queues=["simple", "error", "introspect"],
        concurrency=2,
        env={"COMMISSAIRE_SERVICES": SERVICES},
        log_dir=log_dir,
    ):
        yield log_dir


@pytest.fixture(scope="module")
def bus(redis_server: RedisServer) -> Bus:
    return Bus(create_app(load_settings().replace(broker_url=redis_server.url)))


def test_chunked_calls_keep_their_order_and_each_failure_its_place(worker: Path, bus: Bus) -> None:
    params: list[Any] = [[i] if i % 7 else ["not a number"] for i in range(100)]
    for size in (None, 1, 9):
        values = bus.call_many("error.typed", params, return_exceptions=True, chunk_size=size)
        for i, value in enumerate(values):
            if i % 7:
                assert value == i
            else:
                assert isinstance(value, TypeError) and "count must be an int" in str(value)
    with pytest.raises(TypeError, match="count must be an int"):
        bus.call_many("error.typed", params)


def test_chunked_calls_get_the_errors_single_calls_get(worker: Path, bus: Bus) -> None:
    wrong = bus.call_many("simple.add", [[1, 2]] * 20 + [[1]], return_exceptions=True)
    assert wrong[:20] == [3] * 20 and isinstance(wrong[20], InvalidParams)
    missing = bus.call_many("simple.nosuch", [[1]] * 40, return_exceptions=True)
    assert all(isinstance(error, MethodNotFound) for error in missing)
    typed = bus.call_many("error.lookup", [["k"]] * 20, return_exceptions=True)
    assert all(isinstance(error, StorageLookupError) for error in typed)
    assert typed[0].code == -20000 and typed[0].data["key"] == "k"
    assert bus.call("simple.add", 1, 2) == 3  # and the worker goes on


def test_a_call_in_a_chunk_has_an_id_derived_from_its_chunk(worker: Path, bus: Bus) -> None:
    # A redelivered chunk repeats these ids: storage's writes stay idempotent per call id.
    described = bus.call_many("introspect.describe", [[]] * 20, chunk_size=10)
    chunks = [described[:10], described[10:]]
    for chunk in chunks:
        prefix = chunk[0]["id"].rsplit(".", 1)[0]
        assert [d["id"] for d in chunk] == [f"{prefix}.{i}" for i in range(10)]
        assert {d["routing_key"] for d in chunk} == {"introspect.describe"}
        assert {d["method"] for d in chunk} == {"describe"}
    assert chunks[0][0]["id"] != chunks[1][0]["id"]


def test_each_call_of_a_chunk_gets_its_own_log_line(worker: Path, bus: Bus) -> None:
    before = _log_text(worker).count("Call simple.add[")
    assert bus.call_many("simple.add", [[n, 0] for n in range(40)]) == list(range(40))
    assert _log_text(worker).count("Call simple.add[") - before == 40


def test_many_calls_travel_in_at_most_max_messages(redis_server: RedisServer, unique: str) -> None:
    queue = {"name": f"chunks_{unique}", "routing_key": f"chunks_{unique}.*"}
    caller = Bus(create_app(load_settings().replace(queues=(queue,)), services=()))
    with pytest.raises(CallTimeout, match=f"chunks_{unique}.ping"):
        caller.call_many(f"chunks_{unique}.ping", [[n] for n in range(500)], timeout=0.5)
    queued = redis_server.client().lrange(f"chunks_{unique}", 0, -1)
    assert len(queued) == MAX_MESSAGES
    redis_server.client().delete(f"chunks_{unique}")


def _log_text(log_dir: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in log_dir.glob("*"))
