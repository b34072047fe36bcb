"""The managers of the stored ContainerManagerConfigs, current in every process.

Each process of the container service builds its managers from storage
(``storage.list ContainerManagerConfigs``) on its first call, so a restart forgets
nothing (the original only learnt managers from notifications). A change
notification reaches one process of the service; it bumps a generation counter
in Redis, and every process compares its generation with Redis's (one GET) before
each call and reloads when they differ. So every process sees an updated or
deleted config from the call after its notification was handled. A name it does
not know is asked of storage before it is called unknown, so a call right after
a config's save finds the manager even before the notification is handled.
"""

from __future__ import annotations

import logging

import redis

from ..errors import ConfigurationError, ContainerManagerError, StorageLookupError
from ..models import ContainerManagerConfig, ContainerManagerConfigs
from ..models.manager_options import KUBERNETES_TYPES
from ..storage.client import StorageClient
from .manager import ContainerManager
from .trivial import TrivialManager

__all__ = ["ManagerTable"]

#: Redis key of the counter bumped on every ContainerManagerConfig change.
GENERATION_KEY = "commissaire:containers:config-generation"


def build_manager(config: ContainerManagerConfig, client: redis.Redis) -> ContainerManager:
    """The manager a config describes (ConfigurationError when it cannot be built)."""
    if config.type == "trivial":
        return TrivialManager(config.name, client)
    if config.type in KUBERNETES_TYPES:
        from .kubernetes import KubernetesManager

        return KubernetesManager(config.name, config.options)
    raise ConfigurationError(f"unknown container manager type {config.type!r}")


class ManagerTable:
    """Manager name -> manager, loaded from storage and reloaded after each change."""

    def __init__(self, storage: StorageClient, client: redis.Redis, logger: logging.Logger) -> None:
        self.storage = storage
        self.client = client
        self.logger = logger
        self._managers: dict[str, ContainerManager | ConfigurationError] = {}
        self._generation: str | None = None

    def get(self, name: str) -> ContainerManager:
        """The manager called ``name``.

        Raises:
            StorageLookupError: no ContainerManagerConfig of that name is stored (-20000).
            ContainerManagerError: it is stored but cannot be used (a file it names is missing).
        """
        self.refresh()
        entry = self._managers.get(name)
        if entry is None:
            entry = self._load(name)
        if isinstance(entry, ConfigurationError):
            raise ContainerManagerError(
                f"container manager {name!r} cannot be used: {entry}",
                data={"http_status": None, "manager": name, "operation": "load"},
            )
        return entry

    def names(self) -> list[str]:
        self.refresh()
        return sorted(self._managers)

    def refresh(self) -> None:
        """Reload every manager when the generation in Redis moved (or on first use)."""
        generation = str(self.client.get(GENERATION_KEY) or "0")
        if generation == self._generation:
            return
        configs = self.storage.list(ContainerManagerConfigs).container_managers
        self._managers = {config.name: self._build(config) for config in configs}
        self._generation = generation

    def changed(self, event: str, config: ContainerManagerConfig) -> None:
        """A config was created, updated or deleted: every process reloads before its next call."""
        if event == "deleted" and config.type == "trivial":
            TrivialManager(config.name, self.client).forget()
        self.client.incr(GENERATION_KEY)
        self.logger.info("container manager %s %s; managers reload", config.name, event)

    def _load(self, name: str) -> ContainerManager | ConfigurationError:
        """A config saved since the last reload, its notification not handled yet."""
        try:
            config = self.storage.get(ContainerManagerConfig.new(name=name))
        except StorageLookupError:
            raise StorageLookupError(
                f"no container manager {name!r}: no ContainerManagerConfig of that name is stored",
                data={"model": "ContainerManagerConfig", "name": name},
            ) from None
        entry = self._managers[name] = self._build(config)
        return entry

    def _build(self, config: ContainerManagerConfig) -> ContainerManager | ConfigurationError:
        try:
            return build_manager(config, self.client)
        except ConfigurationError as exc:
            self.logger.warning("container manager %s cannot be used: %s", config.name, exc)
            return exc
