"""The investigator service: ``investigator.investigate(address)`` and every created Host.

A Host saved for the first time reaches it as a storage notification, which is a
durable task in its queue: a host created while no investigator runs is
investigated when one starts. ``investigate`` runs an investigation again (after
credentials were fixed, say) and returns the host as saved; a second one for a host
while one runs is refused (:class:`~commissaire_tasks.errors.InvestigationInProgress`,
-32051), and a created host whose investigation is already running is left to it
(coalesced).

Config (JSON file): ``command_sets_dir`` (replaces the packaged command sets),
``registry_mirror``, ``flannel_key_prefix``, ``etcd_endpoints``, ``ssh_timeout_s``
(10), ``investigation_lock_s`` (1800), ``python_interpreter`` (``/usr/bin/python3``),
``register_with_container_manager`` (true; see :meth:`register`), ``redis_url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from commissaire_tasks.errors import ConfigurationError
from commissaire_tasks.message import Message
from commissaire_tasks.models import Cluster, Host
from commissaire_tasks.service import CommissaireService
from commissaire_tasks.storage.client import NOTIFY_EVENT_CREATED, StorageClient, on_storage_change

from .commands import load_command_sets
from .coordination import coordination_redis
from .investigation import Investigation, InvestigationInProgress
from .keys import remove_leftovers_at_start
from .known_hosts import KnownHosts
from .records import HostRecords

__all__ = ["InvestigatorService"]


class InvestigatorService(CommissaireService):
    """Exposed as ``investigator.investigate`` and ``investigator.forget_host_key``."""

    name = "investigator"

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> None:
        load_command_sets(config.get("command_sets_dir"))
        for key in ("ssh_timeout_s", "investigation_lock_s"):
            value = config.get(key, 1)
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigurationError(f"investigator: {key} must be a positive number")

    @cached_property
    def storage(self) -> StorageClient:
        return StorageClient(self)

    @cached_property
    def investigation(self) -> Investigation:
        return Investigation(
            records=HostRecords(self.storage),
            client=coordination_redis(self.config),
            command_sets=lambda: load_command_sets(self.config.get("command_sets_dir")),
            config=self.config,
            logger=self.logger,
            register=self.register,
        )

    @on_storage_change(Host, NOTIFY_EVENT_CREATED)
    def host_created(self, event: str, host: Host, message: Message) -> None:
        try:
            self.investigation.run(host.address, message.progress)
        except InvestigationInProgress:
            self.logger.info("investigate %s: already running; coalesced", host.address)

    def on_investigate(self, message: Message, address: str) -> dict[str, Any]:
        """Investigate and bootstrap ``address`` now; return the host as saved."""
        return self.investigation.run(address, message.progress).to_dict_safe()

    def on_forget_host_key(self, message: Message, address: str) -> bool:
        """Forget the host key recorded for ``address`` (after it was replaced on purpose)."""
        return KnownHosts(self.investigation.client).forget(address)

    def register(self, host: Host, cluster: Cluster) -> bool:
        """Hook: register a ready host with its cluster's container manager.

        Calls ``container.register_node(manager, address)`` (the original's call,
        with its parameters fixed) and the host becomes ``active``; a failure fails
        the ``register`` step. With ``register_with_container_manager`` false (no
        container service runs) the host stays ``disassociated`` and this logs why.
        """
        if not self.config.get("register_with_container_manager", True):
            self.logger.info(
                "investigate %s: cluster %s has container manager %s; not registered "
                "(register_with_container_manager is false)",
                host.address,
                cluster.name,
                cluster.container_manager,
            )
            return False
        self.bus.call("container.register_node", cluster.container_manager, host.address)
        return True


remove_leftovers_at_start(InvestigatorService.name)
