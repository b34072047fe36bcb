"""Stand-ins for the clusterexec and container services, run in real workers by these tests.

The real services are built elsewhere; these answer the same routing keys with
the same shapes, so the REST front is tested over the bus as it will run:
``clusterexec.upgrade/restart/deploy`` save and return the operation's first
record; ``container.get_node_status`` answers a node status, fails for the
manager ``broken`` and outlasts any caller's timeout for ``stuck``; for
``gate-<id>`` it says it started (Redis key ``gate:<id>:started``) and waits
until the test opens the gate (``gate:<id>:open``).
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import redis

from commissaire_tasks.errors import ContainerManagerError
from commissaire_tasks.message import Message
from commissaire_tasks.models import (
    WATCHER_TIMESTAMP_FORMAT,
    ClusterDeploy,
    ClusterRestart,
    ClusterUpgrade,
    Model,
)
from commissaire_tasks.service import CommissaireService
from commissaire_tasks.storage.client import StorageClient

#: Seconds the ``stuck`` manager takes: longer than the test server's call timeout.
STUCK_S = 10.0
#: Seconds a gate waits to be opened at most (less than the server's call timeout).
GATE_MAX_S = 7.0


class ClusterexecStandIn(CommissaireService):
    """Starts operations by recording them as in process, with every member still to do."""

    name = "clusterexec"

    @cached_property
    def storage(self) -> StorageClient:
        return StorageClient(self)

    def on_upgrade(self, message: Message, name: str) -> dict[str, Any]:
        return self._start(ClusterUpgrade, name)

    def on_restart(self, message: Message, name: str) -> dict[str, Any]:
        return self._start(ClusterRestart, name)

    def on_deploy(self, message: Message, name: str, version: str) -> dict[str, Any]:
        return self._start(ClusterDeploy, name, version=version)

    def _start(self, model: type[Model], name: str, **fields: Any) -> dict[str, Any]:
        members = self.storage.get_cluster(name).hostset
        done = members[:1]  # one member done already, so progress shows
        done_field = {ClusterUpgrade: "upgraded", ClusterRestart: "restarted"}.get(
            model, "deployed"
        )
        record = model.new(
            name=name,
            status="in_process",
            started_at=datetime.now(UTC).strftime(WATCHER_TIMESTAMP_FORMAT),
            in_process=members[1:],
            **{done_field: done},
            **fields,
        )
        return self.storage.save(record).to_dict()


class ContainerStandIn(CommissaireService):
    """Answers node statuses as a container manager service would."""

    name = "container"

    def on_get_node_status(
        self, message: Message, container_manager_name: str, address: str
    ) -> dict[str, Any]:
        if container_manager_name == "broken":
            raise ContainerManagerError(f"manager {container_manager_name!r} cannot be reached")
        if container_manager_name == "stuck":
            time.sleep(STUCK_S)
        if container_manager_name.startswith("gate-"):
            self._wait_at_gate(container_manager_name.removeprefix("gate-"))
        return {"node": address, "manager": container_manager_name, "ready": True}

    def _wait_at_gate(self, gate: str) -> None:
        store = redis.Redis.from_url(os.environ["COMMISSAIRE_BROKER_URL"])
        store.set(f"gate:{gate}:started", 1, ex=60)
        deadline = time.monotonic() + GATE_MAX_S
        while not store.exists(f"gate:{gate}:open") and time.monotonic() < deadline:
            time.sleep(0.05)


__all__ = ["ClusterexecStandIn", "ContainerStandIn"]
