"""An example subscriber: keeps a count of hosts by status current, from notifications.

It listens to Host changes and keeps each host's latest status in Redis (shared
by all its processes), admitting each host's changes in revision order with a
RevisionGate, so an old notification that arrives late never overwrites a newer
one. ``host_status.counts`` answers from that table without touching storage.

Run: ``celery -A workers.hoststatus worker`` (next to the storage worker).
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property
from typing import Any

import redis

from commissaire_tasks.config import load_settings
from commissaire_tasks.message import Message
from commissaire_tasks.models import Host
from commissaire_tasks.service import CommissaireService
from commissaire_tasks.storage.client import NOTIFY_EVENT_DELETED, on_storage_change
from commissaire_tasks.storage.ordering import RevisionGate
from commissaire_tasks.worker import service_app

#: Redis hash: host address -> status.
STATUS_KEY = "commissaire:hoststatus:status"


class HostStatusService(CommissaireService):
    """Exposed as ``host_status.counts`` and ``host_status.status`` (snake_case class name)."""

    @cached_property
    def gate(self) -> RevisionGate:
        return RevisionGate(self.name)

    @cached_property
    def table(self) -> redis.Redis:
        return redis.Redis.from_url(load_settings().broker_url, decode_responses=True)

    @on_storage_change(Host)
    def host_changed(self, event: str, host: Host, message: Message) -> None:
        if not self.gate.admit("Host", host.address, message.headers["revision"]):
            return
        if event == NOTIFY_EVENT_DELETED:
            self.table.hdel(STATUS_KEY, host.address)
        else:
            self.table.hset(STATUS_KEY, host.address, host.status or "unknown")

    def on_counts(self, message: Message) -> dict[str, int]:
        """How many hosts are in each status."""
        return dict(Counter(self.table.hvals(STATUS_KEY)))

    def on_status(self, message: Message, address: str) -> Any:
        """The latest status seen for one host, or None."""
        return self.table.hget(STATUS_KEY, address)


#: ``celery -A workers.hoststatus worker`` serves this service.
app = service_app(HostStatusService)
