"""The ``container`` service: register hosts with the container manager a config names.

``container.register_node(container_manager_name, address)``, ``remove_node``,
``remove_all_nodes(container_manager_name)``, ``node_registered`` (True/False) and
``get_node_status(container_manager_name, address, raw=False)``, with the
original's parameters, as a list or as keywords. A manager's failure is a
:class:`~commissaire_tasks.errors.ContainerManagerError` (-20001) with the HTTP
status in ``data["http_status"]`` (None when the manager did not answer); an
unknown manager name is a :class:`~commissaire_tasks.errors.StorageLookupError`
(-20000): no ContainerManagerConfig of that name is stored.

Managers come from storage (see :mod:`.table`) and follow every change of a
ContainerManagerConfig; cluster changes and host deletions drive registration
(see :mod:`.membership`). Config (JSON file): ``redis_url`` (default: the result
backend or broker when it is Redis).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from ..errors import InvalidParams
from ..message import Message
from ..models import Cluster, Clusters, ContainerManagerConfig, Host
from ..service import CommissaireService
from ..storage.client import (
    NOTIFY_EVENT_ANY,
    NOTIFY_EVENT_DELETED,
    StorageClient,
    on_storage_change,
)
from .manager import ContainerManager
from .membership import Membership
from .table import ManagerTable, containers_redis

__all__ = ["ContainerService"]


class ContainerService(CommissaireService):
    """Exposed as ``container.register_node``, ``remove_node``, ``remove_all_nodes``,
    ``node_registered`` and ``get_node_status``."""

    name = "container"

    @cached_property
    def storage(self) -> StorageClient:
        return StorageClient(self)

    @cached_property
    def managers(self) -> ManagerTable:
        return ManagerTable(self.storage, containers_redis(self.config), self.logger)

    @cached_property
    def membership(self) -> Membership:
        return Membership(self.storage, self.managers.client, self.managers.get, self.logger)

    def on_register_node(self, message: Message, container_manager_name: str, address: str) -> None:
        """Register ``address`` with the manager; registering it twice is no error."""
        self._manager(container_manager_name).register_node(_address(address))

    def on_remove_node(self, message: Message, container_manager_name: str, address: str) -> None:
        """Remove the node ``address`` from the manager."""
        self._manager(container_manager_name).remove_node(_address(address))

    def on_remove_all_nodes(self, message: Message, container_manager_name: str) -> None:
        """Remove every node of the manager."""
        self._manager(container_manager_name).remove_all_nodes()

    def on_node_registered(
        self, message: Message, container_manager_name: str, address: str
    ) -> bool:
        """True when ``address`` is registered (the original raised when it was not)."""
        return self._manager(container_manager_name).node_registered(_address(address))

    def on_get_node_status(
        self, message: Message, container_manager_name: str, address: str, raw: bool = False
    ) -> dict[str, Any]:
        """The node's status as the manager reports it (404 error when not registered)."""
        if not isinstance(raw, bool):
            raise InvalidParams("raw must be true or false")
        return self._manager(container_manager_name).get_node_status(_address(address), raw)

    @on_storage_change(ContainerManagerConfig, NOTIFY_EVENT_ANY)
    def config_changed(self, event: str, config: ContainerManagerConfig, message: Message) -> None:
        self.managers.changed(event, config)
        if event != NOTIFY_EVENT_DELETED:  # clusters saved before their manager existed
            for cluster in self.storage.list(Clusters).clusters:
                if cluster.container_manager == config.name:
                    self.membership.reconcile(cluster.name)

    @on_storage_change(Cluster, NOTIFY_EVENT_ANY)
    def cluster_changed(self, event: str, cluster: Cluster, message: Message) -> None:
        self.membership.reconcile(cluster.name)

    @on_storage_change(Host, NOTIFY_EVENT_DELETED)
    def host_deleted(self, event: str, host: Host, message: Message) -> None:
        self.membership.host_deleted(host.address)

    def _manager(self, name: Any) -> ContainerManager:
        if not isinstance(name, str) or not name:
            raise InvalidParams("container_manager_name must be a non-empty string")
        return self.managers.get(name)


def _address(address: Any) -> str:
    if not isinstance(address, str) or not address:
        raise InvalidParams("address must be a non-empty string")
    return address
