"""Cluster membership drives registration with the cluster's container manager.

* A host in a managed cluster's ``hostset`` that is ready (``disassociated`` or
  ``active``) is registered and becomes ``active``; one still being investigated is
  registered by the investigator when it is ready.
* A host that left the hostset (or whose cluster changed manager, or was deleted)
  is removed from the manager it was registered with; an ``active`` one goes back
  to ``disassociated``.
* A deleted host is removed from the manager of the cluster it was in.

Cluster notifications carry the safe rendering, which has no ``hostset``, and the
previous hostset is not in them at all: so this module keeps, per cluster, the
members and manager it last applied (a JSON value in Redis) and reconciles that
record with the cluster as storage has it now. Working from the stored state, not
from the event, makes overlapping or repeated notifications harmless; a Redis lock
per cluster keeps two reconciliations of one cluster apart. A removal the manager
could not answer is kept in the record and tried again at the next change. Nodes registered by
hand (``container.register_node``) for hosts in no cluster are never touched.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from ..errors import ContainerManagerError, StorageLookupError
from ..models import Cluster, Host
from ..storage.client import StorageClient
from .manager import ContainerManager

__all__ = ["Membership", "Reconciled"]

#: Prefix of the per-cluster records of applied membership.
RECORD_PREFIX = "commissaire:containers:members:"
#: Prefix of the per-cluster reconciliation locks.
LOCK_PREFIX = "commissaire:containers:lock:"
#: Seconds a reconciliation may hold its cluster's lock (it expires if its process dies).
LOCK_TTL_S = 120
#: Host statuses ready to be registered.
READY = ("disassociated", "active")


@dataclass
class Reconciled:
    """What one reconciliation did (logged, and returned to tests)."""

    registered: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class Membership:
    """Applies cluster membership to container managers.

    Args:
        storage: The storage client (clusters and hosts are read and saved through it).
        client: The Redis holding membership records and locks.
        manager: Looks a manager up by name (raises as ``ManagerTable.get`` does).
    """

    def __init__(
        self,
        storage: StorageClient,
        client: redis.Redis,
        manager: Callable[[str], ContainerManager],
        logger: logging.Logger,
    ) -> None:
        self.storage = storage
        self.client = client
        self.manager = manager
        self.logger = logger

    def reconcile(self, cluster_name: str) -> Reconciled:
        """Bring the cluster's manager in line with the cluster as stored (or deleted)."""
        with self.client.lock(f"{LOCK_PREFIX}{cluster_name}", timeout=LOCK_TTL_S):
            cluster = self._cluster(cluster_name)
            before = self._record(cluster_name)
            manager = cluster.container_manager if cluster else ""
            members = list(cluster.hostset) if cluster and manager else []
            done = Reconciled()
            old_manager = before.get("manager", "")
            kept = set(members) if old_manager == manager else set()
            leaving = [(old_manager, a) for a in before.get("hosts", []) if a not in kept]
            leftover = []
            for manager_name, address in [*map(tuple, before.get("leftover", [])), *leaving]:
                if not self._remove(manager_name, address, done):
                    leftover.append([manager_name, address])  # retried next time
            for address in members:
                self._register(manager, address, done)
            self._save_record(cluster_name, manager, members, leftover)
        self._log(cluster_name, done)
        return done

    def host_deleted(self, address: str) -> Reconciled:
        """Remove a deleted host from the manager of the cluster it was in."""
        done = Reconciled()
        for key in self.client.scan_iter(match=f"{RECORD_PREFIX}*"):
            cluster_name = key[len(RECORD_PREFIX) :]
            with self.client.lock(f"{LOCK_PREFIX}{cluster_name}", timeout=LOCK_TTL_S):
                record = self._record(cluster_name)
                if address in record.get("hosts", []):
                    leftover = list(record.get("leftover", []))
                    if not self._remove(record["manager"], address, done, host_gone=True):
                        leftover.append([record["manager"], address])
                    hosts = [a for a in record["hosts"] if a != address]
                    self._save_record(cluster_name, record["manager"], hosts, leftover)
        self._log(f"(host {address} deleted)", done)
        return done

    def _register(self, manager_name: str, address: str, done: Reconciled) -> None:
        host = self._host(address)
        if host is None or host.status not in READY:
            return  # not ready: the investigator registers it when it is
        try:
            manager = self.manager(manager_name)
            if not manager.node_registered(address):
                manager.register_node(address)
                done.registered.append(address)
            if host.status != "active":
                self.storage.save(Host.new(**{**host.to_dict(), "status": "active"}))
        except (ContainerManagerError, StorageLookupError) as exc:
            done.failed[address] = exc.message

    def _remove(
        self, manager_name: str, address: str, done: Reconciled, host_gone: bool = False
    ) -> bool:
        """Remove the node if registered; False when the manager could not be asked."""
        try:
            manager = self.manager(manager_name)
            if manager.node_registered(address):
                manager.remove_node(address)
                done.removed.append(address)
        except StorageLookupError:
            pass  # the manager's config is gone: nothing left to remove it from
        except ContainerManagerError as exc:
            done.failed[address] = exc.message
            return False
        host = None if host_gone else self._host(address)
        if host is not None and host.status == "active":
            self.storage.save(Host.new(**{**host.to_dict(), "status": "disassociated"}))
        return True

    def _cluster(self, name: str) -> Cluster | None:
        try:
            return self.storage.get_cluster(name)
        except StorageLookupError:
            return None

    def _host(self, address: str) -> Host | None:
        try:
            return self.storage.get_host(address)
        except StorageLookupError:
            return None

    def _record(self, cluster_name: str) -> dict[str, Any]:
        raw = self.client.get(f"{RECORD_PREFIX}{cluster_name}")
        return dict(json.loads(raw)) if raw else {}

    def _save_record(
        self, cluster_name: str, manager: str, hosts: list[str], leftover: list[list[str]]
    ) -> None:
        """Members applied, and removals that failed (``[manager, address]``, retried)."""
        key = f"{RECORD_PREFIX}{cluster_name}"
        if (manager and hosts) or leftover:
            record = {"manager": manager, "hosts": hosts, "leftover": leftover}
            self.client.set(key, json.dumps(record))
        else:
            self.client.delete(key)

    def _log(self, what: str, done: Reconciled) -> None:
        if done.registered or done.removed or done.failed:
            self.logger.info(
                "membership %s: registered %s, removed %s, failed %s",
                what,
                done.registered,
                done.removed,
                sorted(done.failed),
            )
        for address, reason in done.failed.items():
            self.logger.warning("membership %s: %s: %s", what, address, reason)
