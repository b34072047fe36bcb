"""The three ways to run a service, clean shutdown, process replacement and brokers."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import CallTimeout
from commissaire_tasks.testing import RedisServer, WorkerProcess
from tests.conftest import Background

ROOT = Path(__file__).resolve().parent.parent


def bus_for(broker_url: str, exchange: str = "commissaire", **settings: object) -> Bus:
    return Bus(
        create_app(load_settings().replace(broker_url=broker_url, exchange=exchange, **settings))
    )


def wait_for_answer(call: Callable[[], object], timeout_s: float = 30.0) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return call()
        except CallTimeout:
            if time.monotonic() > deadline:
                raise


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_service_manager_runs_n_processes_on_custom_queues(
    redis_server: RedisServer, background: Background, unique: str
) -> None:
    exchange = f"my_exchange_{unique}"
    qkwargs = [{"name": f"my_queue_{unique}", "routing_key": f"queues.my_queue_{unique}.*"}]
    manager, _ = background(
        python(
            "from commissaire_tasks.worker import ServiceManager\n"
            "from tests.services import IntrospectService\n"
            "ServiceManager(service_class=IntrospectService, process_count=3,"
            f" exchange_name={exchange!r},"
            f" connection_url={redis_server.url!r}, qkwargs={qkwargs!r}).run()\n"
        )
    )
    caller = bus_for(redis_server.url, exchange, queues=tuple(qkwargs))
    key = f"queues.my_queue_{unique}"
    described = wait_for_answer(lambda: caller.call(f"{key}.describe", timeout=1))
    assert described["routing_key"] == f"{key}.describe"  # type: ignore[index]
    assert described["queue"] == f"my_queue_{unique}"  # type: ignore[index]
    assert described["exchange"] == exchange  # type: ignore[index]
    pool = psutil.Process(manager.pid).children()
    assert len(pool) == 3

    os.kill(pool[0].pid, signal.SIGKILL)  # a pool process dies...
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        children = psutil.Process(manager.pid).children()
        if len(children) == 3 and pool[0].pid not in {c.pid for c in children}:
            break
        time.sleep(0.2)
    assert len(psutil.Process(manager.pid).children()) == 3  # ...and is replaced
    assert caller.call(f"{key}.pid", timeout=10) != pool[0].pid

    manager.send_signal(signal.SIGTERM)
    assert manager.wait(30) == 0


def test_run_serves_one_process_in_the_foreground(
    redis_server: RedisServer,
    background: Background,
    tmp_path: Path,
    unique: str,
) -> None:
    config = tmp_path / "service.json"
    config.write_text(json.dumps({"greeting": "hello"}))
    qkwargs = [{"name": f"solo_{unique}", "routing_key": f"solo_{unique}.*"}]
    process, _ = background(
        python(
            "from tests.services import IntrospectService\n"
            f"IntrospectService(connection_url={redis_server.url!r}, qkwargs={qkwargs!r},"
            f" config_file={str(config)!r}).run()\n"
        )
    )
    caller = bus_for(redis_server.url, queues=tuple(qkwargs))
    described = wait_for_answer(lambda: caller.call(f"solo_{unique}.describe", timeout=1))
    assert described["config"] == {"greeting": "hello"}  # type: ignore[index]
    assert caller.call(f"solo_{unique}.pid") == process.pid  # no pool: the process itself
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0


def test_warm_shutdown_finishes_the_call_in_flight(
    redis_server: RedisServer, tmp_path: Path, unique: str
) -> None:
    queue = {"name": f"slow_{unique}", "routing_key": f"slow_{unique}.*", "service": "introspect"}
    env = {"COMMISSAIRE_SERVICES": "tests.services", "COMMISSAIRE_QUEUES": json.dumps([queue])}
    worker = WorkerProcess(
        broker_url=redis_server.url, queues=[queue["name"]], env=env, log_dir=tmp_path
    )
    caller = bus_for(redis_server.url, queues=(queue,))
    with worker:
        in_flight = caller.send(f"slow_{unique}.sleep", 2)
        queued = [caller.send(f"slow_{unique}.sleep", 0) for _ in range(5)]
        time.sleep(0.8)
        assert worker.stop() == 0
    assert in_flight.get(timeout=5) == 2
    with WorkerProcess(
        broker_url=redis_server.url, queues=[queue["name"]], env=env, log_dir=tmp_path
    ):
        assert [r.get(timeout=15) for r in queued] == [0] * 5
