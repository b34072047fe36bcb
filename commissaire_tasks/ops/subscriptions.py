"""Storage subscriptions whose service has no live worker: its notifications pile up unread.

Read from the storage service (``storage.subscriptions``) when it has a live
worker; otherwise the check is skipped and says why. Remove a retired
subscriber with ``commissaire-tasks unsubscribe SERVICE``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SubscriptionCheck", "check_subscriptions"]

#: The service that keeps the subscriptions.
STORAGE = "storage"


@dataclass(frozen=True)
class SubscriptionCheck:
    """The subscriptions found, and those whose service has no live worker."""

    checked: bool = False
    reason: str = "not checked"
    #: (service, queue) of every subscription
    found: tuple[tuple[str, str], ...] = field(default=())
    #: (service, queue) of the subscriptions nobody serves
    orphans: tuple[tuple[str, str], ...] = field(default=())

    def limited_to(self, services: Iterable[str]) -> SubscriptionCheck:
        wanted = set(services)
        return SubscriptionCheck(
            self.checked,
            self.reason,
            tuple(s for s in self.found if s[0] in wanted),
            tuple(s for s in self.orphans if s[0] in wanted),
        )

    def lines(self) -> list[str]:
        if not self.checked:
            return [f"subscriptions: {self.reason}"]
        return [
            f"subscription without a live worker: {service} (notifications pile up in queue "
            f"{queue}; `commissaire-tasks unsubscribe {service}` if it is retired)"
            for service, queue in self.orphans
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "reason": self.reason,
            "subscriptions": [{"service": s, "queue": q} for s, q in self.found],
            "without_worker": [{"service": s, "queue": q} for s, q in self.orphans],
        }


def check_subscriptions(
    app: Any, serving: Mapping[str, bool], timeout_s: float
) -> SubscriptionCheck:
    """Ask storage for its subscriptions; flag those no live worker serves.

    ``serving`` maps queue names and ``service:<name>`` to whether a live worker serves them.
    """
    if not (serving.get(STORAGE) or serving.get(f"service:{STORAGE}")):
        return SubscriptionCheck(reason="not checked (storage has no live worker)")
    from ..bus import Bus
    from ..storage.subscriptions import list_subscriptions

    try:
        found = list_subscriptions(Bus(app), timeout=max(timeout_s, 2.0))
    except Exception as exc:  # noqa: BLE001 - any failure (old storage, timeout): unchecked
        return SubscriptionCheck(reason=f"not checked (storage.subscriptions failed: {exc})")
    pairs = tuple(sorted({(s.service, s.queue) for s in found}))
    orphans = tuple(
        (service, queue)
        for service, queue in pairs
        if not (serving.get(queue) or serving.get(f"service:{service}"))
    )
    return SubscriptionCheck(True, "checked", pairs, orphans)
