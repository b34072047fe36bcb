"""Reading and updating Host records the way the host services need.

Every update re-reads the host first and changes only the fields given, so a
service never writes back a stale copy, and a host deleted meanwhile is never
re-created (:class:`HostGone`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from commissaire_tasks.errors import StorageLookupError
from commissaire_tasks.models import Cluster, Clusters, Host, HostCreds, Network
from commissaire_tasks.storage.client import StorageClient

__all__ = ["HostGone", "HostRecords", "now", "reason"]

#: Timestamp format of Host.last_check and Host.reason["at"] (UTC, as the original).
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"
#: The network a host outside any cluster is bootstrapped for.
DEFAULT_NETWORK = {"name": "default", "type": "flannel_etcd", "options": {}}


class HostGone(LookupError):
    """Raised when the host was deleted while a service was working on it."""


def now() -> str:
    return datetime.now(UTC).strftime(TIMESTAMP_FORMAT)


def reason(step: str, exit_status: int | None, output: str) -> dict[str, Any]:
    """A Host.reason: the failed step, its exit status, the end of its output, when."""
    return {"step": step, "exit_status": exit_status, "output": output, "at": now()}


class HostRecords:
    """The storage calls of the host services."""

    def __init__(self, storage: StorageClient) -> None:
        self.storage = storage

    def host(self, address: str) -> Host | None:
        try:
            return self.storage.get_host(address)
        except StorageLookupError:
            return None

    def update(self, address: str, **changes: Any) -> Host:
        """Re-read the host, apply ``changes`` and save it; HostGone if it was deleted."""
        current = self.host(address)
        if current is None:
            raise HostGone(f"host {address} was deleted")
        return self.storage.save(Host.new(**{**current.to_dict(), **changes}))

    def creds(self, address: str) -> HostCreds | None:
        try:
            return self.storage.get(HostCreds.new(address=address))
        except StorageLookupError:
            return None

    def cluster_of(self, address: str) -> Cluster | None:
        """The first cluster whose hostset holds ``address`` (a host is in one at most)."""
        for cluster in self.storage.list(Clusters).clusters:
            if address in cluster.hostset:
                return cluster
        return None

    def network_for(self, cluster: Cluster | None) -> Network:
        """The network a host of ``cluster`` (None: of no cluster) is bootstrapped for.

        The cluster's network record; the built-in default for a host in no cluster,
        and for a cluster whose network is ``default`` when no record of that name is
        stored (a cluster's network is ``default`` unless it names one, and the REST
        front replaces an unknown name with it). Any other missing record raises
        StorageLookupError.
        """
        default = Network.new(**DEFAULT_NETWORK)
        if cluster is None:
            return default
        try:
            return self.storage.get_network(cluster.network)
        except StorageLookupError:
            if cluster.network == default.name:
                return default
            raise
