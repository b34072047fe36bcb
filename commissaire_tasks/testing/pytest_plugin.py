"""Pytest fixtures for services: a private Redis and real worker processes.

``redis_server``
    A ``redis-server`` on a free port for the whole session (a test may stop and
    restart it). Its URL is ``redis_server.url``.
``worker_factory``
    ``worker_factory(queues=["simple"], concurrency=3, services="workers.simple")``
    starts ``celery -A commissaire_tasks worker`` against ``redis_server`` and
    waits until it answers; every worker started is stopped after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..config import ENV_SERVICES
from .processes import WorkerProcess
from .servers import RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def worker_factory(
    redis_server: RedisServer, tmp_path: Path
) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(
        *,
        queues: list[str] | tuple[str, ...] = (),
        services: str = "",
        wait: bool = True,
        broker_url: str | None = None,
        env: dict[str, str] | None = None,
        **options: Any,
    ) -> WorkerProcess:
        extra_env = dict(env or {})
        if services:
            extra_env[ENV_SERVICES] = services
        worker = WorkerProcess(
            broker_url=broker_url or redis_server.url,
            queues=queues,
            env=extra_env,
            log_dir=tmp_path,
            **options,
        )
        started.append(worker)
        return worker.start(wait=wait)

    yield start
    for worker in started:
        worker.stop()
