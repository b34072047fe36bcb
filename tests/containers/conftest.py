"""The container tests' setup: one storage worker and one container worker (real processes).

They live as long as this package's tests; the container service is unsubscribed
afterwards, so later tests' cluster and host changes are not queued for it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from commissaire_tasks import bus
from commissaire_tasks.errors import StorageLookupError
from commissaire_tasks.models import Cluster, ContainerManagerConfig, Host, Model
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.storage.subscriptions import unsubscribe
from commissaire_tasks.testing import RedisServer, WorkerProcess

#: Seconds a notification-driven change gets to show (generous: the machine is shared).
SETTLE_S = 30.0
#: Seconds a worker gets to answer its first ping (a loaded machine needs more than 30).
READY_TIMEOUT_S = 120.0


class ContainerWorkers:
    """One worker serving storage and the container service (one start is cheaper than
    two on a shared machine); tests may restart it, which restarts the container service."""

    def __init__(self, redis_server: RedisServer, logs: Path) -> None:
        self.redis_server = redis_server
        self.logs = logs
        self.container = self.start_container()

    def start_container(self) -> WorkerProcess:
        worker = WorkerProcess(
            broker_url=self.redis_server.url,
            queues=["storage", "container"],
            concurrency=2,
            env={"COMMISSAIRE_SERVICES": "workers.storage,workers.container"},
            log_dir=self.logs,
        ).start(wait=False)
        worker.wait_ready(timeout_s=READY_TIMEOUT_S)
        wait_until(lambda: "container" in {s["service"] for s in bus.call("storage.subscriptions")})
        return worker

    def close(self) -> None:
        unsubscribe("container")
        self.container.stop()
        self.redis_server.client().delete("container")


@pytest.fixture(scope="package")
def workers(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContainerWorkers]:
    started = ContainerWorkers(redis_server, tmp_path_factory.mktemp("container-logs"))
    yield started
    started.close()


@pytest.fixture
def storage() -> StorageClient:
    return StorageClient()


Save = Callable[[Model], Model]


@pytest.fixture
def saved(storage: StorageClient) -> Iterator[Save]:
    """Save records; delete them afterwards (clusters first, so no membership is left)."""
    records: list[Model] = []

    def save(model: Model) -> Model:
        records.append(model)
        return storage.save(model)

    yield save
    order = {Cluster: 0, Host: 1, ContainerManagerConfig: 2}
    for model in sorted(records, key=lambda m: order.get(type(m), 3)):
        try:
            storage.delete(model)
        except StorageLookupError:
            pass


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(condition: Callable[[], object], timeout_s: float = SETTLE_S) -> None:
    """Poll ``condition`` until it is true; fail with its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        time.sleep(0.1)
