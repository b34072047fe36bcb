"""The operation records (ClusterUpgrade, ClusterRestart, ClusterDeploy), kept current.

Hosts of one batch finish together, in different processes, and each one's update
is read-modify-write through the storage service. So every change of a record runs
under a per-record Redis mutex (``commissaire:clusters:record:<Model>:<cluster>``):
re-read, change, save, release. Under the same mutex a change first checks that its
operation still holds the cluster's lock, so a task of an operation that lost its
lock (expired, or replaced by a newer operation) never writes into a record that was
finished or started again meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis

from commissaire_tasks.errors import StorageLookupError
from commissaire_tasks.hosts.records import now
from commissaire_tasks.models.base import Model
from commissaire_tasks.storage.client import StorageClient

from .lock import KEY_PREFIX, OperationLock, holder
from .operations import KINDS, RECORDS, Operation

__all__ = ["INTERRUPTED", "OperationRecords"]

#: The reason a host gets when its operation's worker died while it was in process.
INTERRUPTED = (
    "interrupted: the operation's worker stopped while this host was in process "
    "(its lock expired); the host's state is unknown: check it, then run the operation again"
)
#: Seconds a record mutex lives if its holder dies; seconds a change waits for it.
MUTEX_TTL_S = 30.0


class OperationRecords:
    """Reads and changes the records of cluster operations, one change at a time."""

    def __init__(self, storage: StorageClient, client: redis.Redis) -> None:
        self.storage = storage
        self.client = client

    def get(self, kind: str, cluster: str) -> Model | None:
        try:
            return self.storage.get(RECORDS[kind].new(name=cluster))
        except StorageLookupError:
            return None

    def start(self, operation: Operation) -> Model:
        """Save the operation's new record (it replaces the previous one of its type)."""
        fields: dict[str, Any] = {"name": operation.cluster, "status": "in_process"}
        fields["started_at"] = now()
        if operation.kind == "deploy":
            fields["version"] = operation.version
        record = operation.record_type.new(**fields)
        with self._mutex(operation.kind, operation.cluster):
            return self.storage.save(record)

    def host_started(self, operation: Operation, lock: OperationLock, address: str) -> bool:
        """Add ``address`` to ``in_process``; False when the operation lost its lock."""

        def change(fields: dict[str, Any]) -> None:
            if address not in fields["in_process"]:
                fields["in_process"].append(address)

        return self._change(operation, lock, change) is not None

    def host_done(
        self, operation: Operation, lock: OperationLock, address: str, reason: str | None
    ) -> bool:
        """Move ``address`` to the finished list, or to ``failed`` with ``reason``."""

        def change(fields: dict[str, Any]) -> None:
            fields["in_process"] = [a for a in fields["in_process"] if a != address]
            if reason is None:
                if address not in fields[operation.finished_field]:
                    fields[operation.finished_field].append(address)
            else:
                fields["failed"][address] = reason

        return self._change(operation, lock, change) is not None

    def outcome(self, operation: Operation, address: str) -> tuple[bool, str] | None:
        """How ``address`` already ended in this operation (a re-run task), or None."""
        record = self.get(operation.kind, operation.cluster)
        if record is None:
            return None
        fields = record.to_dict()
        if address in fields[operation.finished_field]:
            return True, ""
        if address in fields["failed"]:
            return False, str(fields["failed"][address])
        return None

    def finish(self, operation: Operation, lock: OperationLock) -> Model | None:
        """Set the outcome: ``failed`` if a host failed, else ``finished``; and ``finished_at``."""

        def change(fields: dict[str, Any]) -> None:
            fields["status"] = "failed" if fields["failed"] else "finished"
            fields["finished_at"] = now()

        return self._change(operation, lock, change)

    def recover(self, cluster: str) -> list[str]:
        """Finish the records of ``cluster`` left ``in_process`` by an operation that died.

        A record is stale when no operation of its kind holds the cluster's lock: its
        hosts in process get :data:`INTERRUPTED` in ``failed``, and it becomes
        ``failed`` with ``finished_at``. Returns the kinds it finished.
        """
        recovered = []
        for kind in KINDS:
            with self._mutex(kind, cluster):
                running = holder(self.client, cluster)
                if running is not None and running[0] == kind:
                    continue
                record = self.get(kind, cluster)
                if record is None or record.to_dict()["status"] != "in_process":
                    continue
                fields = record.to_dict()
                for address in fields["in_process"]:
                    fields["failed"][address] = INTERRUPTED
                fields.update(in_process=[], status="failed", finished_at=now())
                self.storage.save(type(record).new(**fields))
                recovered.append(kind)
        return recovered

    def _change(
        self, operation: Operation, lock: OperationLock, change: Callable[[dict[str, Any]], None]
    ) -> Model | None:
        with self._mutex(operation.kind, operation.cluster):
            if not lock.held():
                return None
            record = self.get(operation.kind, operation.cluster)
            if record is None:
                return None
            fields = record.to_dict()
            change(fields)
            return self.storage.save(type(record).new(**fields))

    @contextmanager
    def _mutex(self, kind: str, cluster: str) -> Iterator[None]:
        name = f"{KEY_PREFIX}record:{RECORDS[kind].__name__}:{cluster}"
        with self.client.lock(name, timeout=MUTEX_TTL_S, blocking_timeout=MUTEX_TTL_S * 2):
            yield
