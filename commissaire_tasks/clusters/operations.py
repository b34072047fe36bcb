"""The three cluster operations and how one run of them is described.

An :class:`Operation` is what a caller asked for (kind, cluster, batches of host
addresses, what to do on a failure, the version to deploy); it travels as JSON
(:meth:`Operation.to_json`) in every task of the operation's canvas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from commissaire_tasks.errors import InvalidParams
from commissaire_tasks.models import ClusterDeploy, ClusterRestart, ClusterUpgrade
from commissaire_tasks.models.base import Model

__all__ = ["FINISHED_FIELDS", "KINDS", "ON_FAILURE", "RECORDS", "Operation", "batches"]

#: The operation types, as the bus names them.
KINDS = ("upgrade", "restart", "deploy")
#: Each kind's record model (stored under the cluster's name).
RECORDS: dict[str, type[Model]] = {
    "upgrade": ClusterUpgrade,
    "restart": ClusterRestart,
    "deploy": ClusterDeploy,
}
#: Each kind's list of finished hosts in its record.
FINISHED_FIELDS = {"upgrade": "upgraded", "restart": "restarted", "deploy": "deployed"}
#: What a failed host does to the batches after it: ``stop`` them, or ``continue``.
ON_FAILURE = ("stop", "continue")


def batches(addresses: Sequence[str], size: int) -> list[list[str]]:
    """``addresses`` in order, ``size`` at a time (the last batch may be smaller)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InvalidParams(f"batch_size must be a positive integer (got {size!r})")
    return [list(addresses[i : i + size]) for i in range(0, len(addresses), size)]


@dataclass(frozen=True)
class Operation:
    """One run of an operation on a cluster.

    Attributes:
        kind: One of :data:`KINDS`.
        cluster: The cluster's name.
        token: The operation's identity (its lock's token).
        batches: Host addresses, batch by batch, in the cluster's order.
        on_failure: One of :data:`ON_FAILURE`.
        version: The version to deploy ('' for the other kinds).
    """

    kind: str
    cluster: str
    token: str
    batches: list[list[str]]
    on_failure: str = "stop"
    version: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidParams(f"unknown cluster operation {self.kind!r} (known: {KINDS})")
        if self.on_failure not in ON_FAILURE:
            raise InvalidParams(f"on_failure must be one of {ON_FAILURE} (got {self.on_failure!r})")

    @property
    def record_type(self) -> type[Model]:
        return RECORDS[self.kind]

    @property
    def finished_field(self) -> str:
        return FINISHED_FIELDS[self.kind]

    @property
    def hosts(self) -> list[str]:
        return [address for batch in self.batches for address in batch]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operation:
        try:
            return cls(**data)
        except TypeError as exc:
            raise InvalidParams(f"not a cluster operation: {exc}") from None
