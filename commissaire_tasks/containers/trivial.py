"""The trivial manager: a set of node addresses in Redis (tests and demos).

The set lives in Redis, not in the process, so a restart of the container service
(or another of its processes) sees the same nodes: the original kept it in memory
and lost it whenever the service restarted or the config was saved again.
"""

from __future__ import annotations

from typing import Any

import redis

from .manager import ContainerManager, manager_error

__all__ = ["TrivialManager"]

#: Prefix of the Redis sets holding each trivial manager's nodes.
KEY_PREFIX = "commissaire:containers:trivial:"


class TrivialManager(ContainerManager):
    """Every operation succeeds, except asking for the status of a node that is not registered."""

    def __init__(self, name: str, client: redis.Redis) -> None:
        self.name = name
        self.client = client
        self.key = f"{KEY_PREFIX}{name}"

    def register_node(self, address: str) -> None:
        self.client.sadd(self.key, address)

    def remove_node(self, address: str) -> None:
        self.client.srem(self.key, address)  # as the original: removing any node succeeds

    def remove_all_nodes(self) -> None:
        self.client.delete(self.key)

    def node_registered(self, address: str) -> bool:
        return bool(self.client.sismember(self.key, address))

    def get_node_status(self, address: str, raw: bool = False) -> dict[str, Any]:
        if not self.node_registered(address):
            raise manager_error(self.name, f"get_node_status {address}", 404, "not registered")
        return {"node": address, "status": "ok"}

    def forget(self) -> None:
        """Drop the node set (the config was deleted)."""
        self.client.delete(self.key)
