"""The subscriber of the notification-latency row: stamps the time each created Host arrives.

Its callback pushes ``<address> <time.time()>`` onto the list :data:`ARRIVALS` of
the broker it runs on; the bench pops it and subtracts the time ``save()`` returned.
"""

from __future__ import annotations

import os
import time
from functools import cached_property

import redis

from commissaire_tasks.config import ENV_BROKER_URL
from commissaire_tasks.message import Message
from commissaire_tasks.models import Host
from commissaire_tasks.service import CommissaireService
from commissaire_tasks.storage.client import NOTIFY_EVENT_CREATED, on_storage_change

#: Redis list the arrivals are pushed onto.
ARRIVALS = "bench:notified"


class BenchWatchService(CommissaireService):
    """Subscribes to created Hosts and records when each notification ran."""

    name = "bench_watch"

    @cached_property
    def arrivals(self) -> redis.Redis:
        return redis.Redis.from_url(os.environ[ENV_BROKER_URL])

    @on_storage_change(Host, NOTIFY_EVENT_CREATED)
    def host_created(self, event: str, host: Host, message: Message) -> None:
        self.arrivals.rpush(ARRIVALS, f"{host.address} {time.time()!r}")
