"""Fixtures of the bridge tests: one deployment per broker, a client per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from commissaire_tasks.testing import RedisServer, WorkerProcess
from tests.bridge.deployment import (
    QUEUES,
    Deployment,
    deployment_env,
    start_bridge,
    stop_process,
)
from tests.bridge_client import OriginalClient


@pytest.fixture(
    scope="module", params=["redis", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)]
)
def deployment(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    if request.param == "redis":
        broker_url, backend = redis_server.url, None
    else:
        broker_url, backend = request.getfixturevalue("rabbitmq_url"), redis_server.url
    unique = uuid.uuid4().hex[:8]
    folder = tmp_path_factory.mktemp(f"bridge-{request.param}")
    config = folder / "services.json"
    config.write_text(json.dumps({"legacy_notifications": True}))
    env = deployment_env(broker_url, backend, redis_server.url, unique)
    env["COMMISSAIRE_CONFIG_FILE"] = str(config)
    worker = WorkerProcess(
        broker_url=broker_url,
        result_backend=backend,
        queues=[*QUEUES, f"myq{unique}"],
        concurrency=4,
        env={k: v for k, v in env.items() if k.startswith(("COMMISSAIRE_", "TEST_"))},
        log_dir=folder,
    )
    with worker:
        log = folder / "bridge.log"
        bridge = start_bridge(env, log)
        try:
            yield Deployment(
                broker_url,
                env["COMMISSAIRE_BRIDGE_EXCHANGE"],
                env,
                bridge,
                log,
                worker,
                f"queues.myq{unique}",
            )
        finally:
            stop_process(bridge)


@pytest.fixture
def client(deployment: Deployment) -> Iterator[OriginalClient]:
    caller = deployment.client()
    yield caller
    caller.close()


# -- requests -----------------------------------------------------------------------------------
