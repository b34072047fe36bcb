"""Subscribing services for the notification tests; deliveries are recorded in Redis.

Each delivery appends ``<service> <event> <revision> <pid>`` to the list
``deliveries:<model>:<key>`` on ``$TEST_RECORD_URL``.
"""

from __future__ import annotations

import os
import time
from functools import cached_property

import redis

from commissaire_tasks.message import Message
from commissaire_tasks.models import Host, Model
from commissaire_tasks.service import CommissaireService
from commissaire_tasks.storage import client
from commissaire_tasks.storage.client import NOTIFY_EVENT_CREATED, on_storage_change


class _Recorder:
    @cached_property
    def record(self) -> redis.Redis:
        return redis.Redis.from_url(os.environ["TEST_RECORD_URL"])

    def remember(self, service: str, event: str, model: Model, message: Message) -> None:
        key = f"deliveries:{type(model).__name__}:{model.primary_key}"
        self.record.rpush(key, f"{service} {event} {message.headers.get('revision')} {os.getpid()}")


class AuditService(CommissaireService, _Recorder):
    """Registers a callback for every change of every model, as the guide shows."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.storage = client.StorageClient(self)
        self.storage.register_callback(self.changed, None, client.NOTIFY_EVENT_ANY)

    @client.NotifyCallback
    def changed(self, event: str, model: Model, message: Message) -> None:
        if getattr(model, "os", "") == "slow":
            time.sleep(3)
        if getattr(model, "os", "") == "explode":
            raise RuntimeError("callback exploded on purpose")
        if type(model).__name__ == "HostCreds":  # what a subscriber sees of a secret model
            self.record.rpush(f"received:HostCreds:{model.primary_key}", model.to_json())
        self.remember("audit", event, model, message)


class WatchService(CommissaireService, _Recorder):
    """Declares interest in created Hosts only."""

    @on_storage_change(Host, NOTIFY_EVENT_CREATED)
    def host_created(self, event: str, host: Host, message: Message) -> None:
        self.remember("watch", event, host, message)


class CacheService(CommissaireService, _Recorder):
    """Keeps an in-process cache fresh with broadcast notifications."""

    @on_storage_change(Host, broadcast=True)
    def host_changed(self, event: str, host: Host, message: Message) -> None:
        self.remember("cache", event, host, message)


class SlowSubscriberService(CommissaireService, _Recorder):
    """Takes 3 s over Hosts whose os is 'slow', so a test can kill it mid-callback.

    Before sleeping it appends its pid to ``started:Host:<address>``: the test
    kills only once the callback is known to be running.
    """

    name = "slow_subscriber"

    @on_storage_change(Host, NOTIFY_EVENT_CREATED)
    def host_created(self, event: str, host: Host, message: Message) -> None:
        if host.os == "slow":
            self.record.rpush(f"started:Host:{host.address}", os.getpid())
            time.sleep(3)
        self.remember("slow", event, host, message)
