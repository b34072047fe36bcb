"""The contract every container manager implements, and how its failures are raised."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ..errors import ContainerManagerError

__all__ = ["ContainerManager", "manager_error"]


class ContainerManager(ABC):
    """Registers hosts as nodes of a container manager (Kubernetes, OpenShift, trivial).

    Every method raises :class:`~commissaire_tasks.errors.ContainerManagerError`
    on failure, with the HTTP status (or None when there was no answer) in
    ``data["http_status"]``.
    """

    #: The ContainerManagerConfig name this manager was built from.
    name: str

    @abstractmethod
    def register_node(self, address: str) -> None:
        """Register ``address`` as a node; registering a registered node is no error."""

    @abstractmethod
    def remove_node(self, address: str) -> None:
        """Remove the node ``address`` (Kubernetes answers 404 for an unknown one)."""

    @abstractmethod
    def remove_all_nodes(self) -> None:
        """Remove every node of the manager."""

    @abstractmethod
    def node_registered(self, address: str) -> bool:
        """True when ``address`` is a registered node, False when it is not.

        The original raised for an unregistered node and returned nothing
        otherwise; here the answer is the return value and only a failure to
        find out (no answer, 403, 500 ...) raises.
        """

    @abstractmethod
    def get_node_status(self, address: str, raw: bool = False) -> dict[str, Any]:
        """The node's status; an unregistered node raises with status 404."""


def manager_error(
    manager: str, operation: str, http_status: int | None, reason: str
) -> ContainerManagerError:
    """The error a manager raises: what failed, where, and the HTTP status in ``data``."""
    status = f"HTTP {http_status}" if http_status is not None else "no answer"
    return ContainerManagerError(
        f"container manager {manager!r}: {operation} failed ({status}): {reason}",
        data={"http_status": http_status, "manager": manager, "operation": operation},
    )
