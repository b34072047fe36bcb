"""A caller watching ``message.progress(...)`` of a call running in a real worker."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import CallTimeout, RemoteProcedureCallError
from commissaire_tasks.ops.progress import progress_of, wait_with_progress
from commissaire_tasks.testing import RedisServer, WorkerProcess

SUFFIX = uuid.uuid4().hex[:8]
QUEUES = (
    {"name": f"progress_{SUFFIX}", "routing_key": f"progress_{SUFFIX}.*", "service": "introspect"},
    {"name": f"progerr_{SUFFIX}", "routing_key": f"progerr_{SUFFIX}.*", "service": "error"},
)
INTROSPECT = f"progress_{SUFFIX}"
ERRORS = f"progerr_{SUFFIX}"


@pytest.fixture(scope="module")
def caller(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    worker = WorkerProcess(
        broker_url=redis_server.url,
        queues=[q["name"] for q in QUEUES],
        concurrency=2,
        env={"COMMISSAIRE_SERVICES": "tests.services", "COMMISSAIRE_QUEUES": json.dumps(QUEUES)},
        log_dir=tmp_path_factory.mktemp("progress-worker"),
    )
    with worker:
        yield Bus(create_app(load_settings().replace(queues=QUEUES), services=()))


def test_the_caller_reads_progress_while_the_call_runs(caller: Bus) -> None:
    result = caller.send(f"{INTROSPECT}.progress", 5, 0.3)
    seen: list[dict[str, Any]] = []
    states = set()
    deadline = time.monotonic() + 20
    while not result.ready() and time.monotonic() < deadline:
        states.add(result.state)
        progress = progress_of(result)
        if progress is not None and progress not in seen:
            seen.append(progress)
        time.sleep(0.05)
    assert "PROGRESS" in states
    assert len(seen) >= 2
    assert all(p["total"] == 5 and p["info"] == {"step": p["done"]} for p in seen)
    assert [p["done"] for p in seen] == sorted(p["done"] for p in seen)
    assert wait_with_progress(result, bar=False) == 5
    assert progress_of(result) is None  # finished: no progress any more


def test_wait_with_progress_draws_a_bar_and_returns_the_result(
    caller: Bus, capsys: pytest.CaptureFixture[str]
) -> None:
    result = caller.send(f"{INTROSPECT}.progress", 4, 0.3)
    assert wait_with_progress(result, timeout=20) == 4
    err = capsys.readouterr().err
    assert f"{INTROSPECT}.progress" in err  # the bar is labelled with the routing key
    assert "/4" in err and "{'step': " in err


def test_without_tqdm_the_wait_prints_nothing(
    caller: Bus, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if the `progress` extra were missing
    assert wait_with_progress(caller.send(f"{INTROSPECT}.progress", 2, 0.2), timeout=20) == 2
    assert capsys.readouterr().err == ""


def test_wait_with_progress_raises_the_calls_error(caller: Bus) -> None:
    with pytest.raises(RemoteProcedureCallError) as raised:
        wait_with_progress(caller.send(f"{ERRORS}.custom"), timeout=20, bar=False)
    assert raised.value.exception_type == "CustomError"


def test_wait_with_progress_times_out(caller: Bus) -> None:
    result = caller.send(f"{INTROSPECT}.sleep", 1.5)
    with pytest.raises(CallTimeout):
        wait_with_progress(result, timeout=0.3, bar=False)
    assert result.get(timeout=20) == 1.5  # the call itself goes on
