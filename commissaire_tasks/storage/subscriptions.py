"""Subscription records: who wants which storage changes, and the table they are kept in.

Both sides share these: the subscriber side builds a :class:`Subscription` when
its worker starts; the storage service keeps them in its default handler
(:class:`SubscriptionTable`) and the notifier matches changes against them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..bus import Bus
from ..errors import InvalidParams, StorageLookupError
from ..models import ListModel, Model, model_class, model_types

NOTIFY_EVENT_CREATED = "created"
NOTIFY_EVENT_UPDATED = "updated"
NOTIFY_EVENT_DELETED = "deleted"
NOTIFY_EVENT_ANY = "*"
#: The events a change can be.
EVENTS = (NOTIFY_EVENT_CREATED, NOTIFY_EVENT_UPDATED, NOTIFY_EVENT_DELETED)
#: Model filter meaning "every model type".
ANY_MODEL = "*"
#: The storage service's name: subscriptions are sent to its queue.
STORAGE_SERVICE = "storage"
#: Record type (and key) of the table's version: a new one at every change.
VERSION_TYPE = "_SubscriptionVersion"
VERSION_KEY = "current"
#: Seconds a storage process trusts its copy of the table before looking at the version.
RECHECK_S = 0.5
#: Record type the storage service keeps subscriptions under.
SUBSCRIPTION_TYPE = "_Subscription"


def notification_address(model_name: str, event: str) -> str:
    return f"notify.storage.{model_name}.{event}"


def notification_task_name(service: str, model_name: str, event: str) -> str:
    return f"{service}.{notification_address(model_name, event)}"


@dataclass(frozen=True)
class Subscription:
    """A service's standing interest in changes, kept by the storage service."""

    service: str
    queue: str
    #: (model name or "*", event or "*") pairs
    filters: tuple[tuple[str, str], ...]

    def matches(self, model_name: str, event: str) -> bool:
        return any(
            m in (ANY_MODEL, model_name) and e in (NOTIFY_EVENT_ANY, event) for m, e in self.filters
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "queue": self.queue,
            "filters": [list(f) for f in self.filters],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Subscription:
        filters = tuple((str(m), str(e)) for m, e in data.get("filters", []))
        for model, event in filters:
            check_filter(model, event)
        return cls(service=str(data["service"]), queue=str(data["queue"]), filters=filters)


def model_name_of(model_type: type[Model] | None) -> str:
    return ANY_MODEL if model_type is None else model_type.__name__


def check_filter(model_name: str, event: str) -> None:
    if event not in (*EVENTS, NOTIFY_EVENT_ANY):
        raise ValueError(f"unknown notification event {event!r}; use one of {EVENTS} or '*'")
    if model_name != ANY_MODEL:
        model_class(model_name)


def record_model_names() -> list[str]:
    return sorted(n for n, c in model_types().items() if not issubclass(c, ListModel))


class SubscriptionTable:
    """The subscriptions the storage service keeps: stored ones, then configured ones.

    Each storage process keeps a copy (:meth:`current`) and re-reads the table only
    when its version record changed, looking at that record at most every
    :data:`RECHECK_S` seconds: a change made in another process is seen within that.
    """

    def __init__(
        self,
        store: Any,
        configured: list[Subscription],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._configured = configured
        self._clock = clock
        self._copy: list[Subscription] | None = None
        self._version: Any = None
        self._checked_at = 0.0

    def subscribe(self, data: Mapping[str, Any]) -> None:
        subscription = Subscription.from_dict(data)
        self._store.save(SUBSCRIPTION_TYPE, subscription.service, subscription.to_dict())
        self._bump()

    def unsubscribe(self, service: str) -> bool:
        """Forget ``service``'s stored subscription; False when it had none.

        Raises:
            InvalidParams: The subscription comes from the storage config, which wins.
        """
        if any(s.service == service for s in self._configured):
            raise InvalidParams(
                f"{service!r} is subscribed by the storage service's config (`subscribers`); "
                "remove it there"
            )
        try:
            self._store.delete(SUBSCRIPTION_TYPE, service)
        except StorageLookupError:
            return False
        self._bump()
        return True

    def all(self) -> list[Subscription]:
        """The table as stored now (one read of every subscription)."""
        stored = [Subscription.from_dict(r.data) for r in self._store.list(SUBSCRIPTION_TYPE)]
        known = {s.service for s in stored}
        return stored + [s for s in self._configured if s.service not in known]

    def current(self) -> list[Subscription]:
        """This process's copy: the version record is read at most every RECHECK_S seconds."""
        now = self._clock()
        if self._copy is None or now - self._checked_at >= RECHECK_S:
            version = self._read_version()
            self._checked_at = now
            if self._copy is None or version != self._version:
                self._copy, self._version = self.all(), version
        return self._copy

    def _bump(self) -> None:
        """Give the table a new version, so every process re-reads it."""
        self._store.save(VERSION_TYPE, VERSION_KEY, {"version": uuid.uuid4().hex})
        self._copy = None

    def _read_version(self) -> Any:
        try:
            return self._store.get(VERSION_TYPE, VERSION_KEY).data.get("version")
        except StorageLookupError:
            return None


def unsubscribe(service: str, bus: Any = None, timeout: float | None = None) -> bool:
    """Remove ``service``'s subscription, so changes are no longer queued for it.

    Stop the service's workers first: a worker that starts subscribes again.
    Returns False when the storage service kept no subscription for it.
    """
    caller = bus if bus is not None else Bus()
    return bool(caller.call("storage.unsubscribe", service, timeout=timeout))


def list_subscriptions(bus: Any = None, timeout: float | None = None) -> list[Subscription]:
    """Every subscription the storage service holds (stored and configured)."""
    caller = bus if bus is not None else Bus()
    return [
        Subscription.from_dict(s) for s in caller.call("storage.subscriptions", timeout=timeout)
    ]
