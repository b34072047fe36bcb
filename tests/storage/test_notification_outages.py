"""Storage change notifications across a Redis restart: every stored change reaches its
subscriber, and a ``RevisionGate`` admits exactly one delivery per record.

Saves run one after the other while Redis (append-only file on) is stopped for 2 s
and started again. A save whose notification could not be published (Redis went
away after the write) is run again once Redis is back: its replay writes nothing
and announces the same revision (``StorageService._announce``). Deliveries are
recorded in the session's Redis, which the outage does not touch.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.exceptions import Reject

from commissaire_tasks import models
from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import BrokerUnavailable, StorageLookupError
from commissaire_tasks.message import Message
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.storage.ordering import RevisionGate
from commissaire_tasks.storage.routing import HandlerTable
from commissaire_tasks.storage.service import StorageService
from commissaire_tasks.testing import RedisServer, WorkerProcess, make_service
from tests.ledger import token_figures, wait_until

pytestmark = pytest.mark.reliability

#: Records saved one after the other around the restart.
SAVES = 40
#: Of them, at least this many are stored: only the saves sent while Redis is down
#: (2 s) may fail, and they fail fast with BrokerUnavailable (measured: 1 to 3).
STORED_AT_LEAST = 30
#: Seconds every stored change gets to reach the subscriber once Redis is back.
BOUND_S = 30.0
#: Notifications a Redis that exits may take with it: the subscriber's last BRPOP
#: (executed, its reply never sent: see tests/runtime/test_broker_outages.py).
LOST_TO_THE_LAST_BRPOP_AT_MOST = 1


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(appendonly=True, directory=tmp_path / "redis") as server:
        yield server


def last_growth(count: Callable[[], int], done: Callable[[], bool], timeout_s: float) -> float:
    """Poll ``count`` until ``done()`` (or ``timeout_s``); return when (monotonic) it last
    grew, or when the polling started if it never did."""
    started = time.monotonic()
    seen, grew_at = count(), started
    while not done() and time.monotonic() - started < timeout_s:
        time.sleep(0.1)
        now = count()
        if now > seen:
            seen, grew_at = now, time.monotonic()
    return grew_at


def test_storage_notifications_sent_around_a_redis_restart_all_reach_the_subscriber(
    aof_redis: RedisServer, redis_server: RedisServer, tmp_path: Path
) -> None:
    url = aof_redis.url
    record_url = redis_server.url.rsplit("/", 1)[0] + "/10"
    record = redis.Redis.from_url(record_url)
    storage = WorkerProcess(broker_url=url, app="workers.storage", concurrency=2, log_dir=tmp_path)
    watch = WorkerProcess(
        broker_url=url,
        queues=["watch"],
        log_dir=tmp_path,
        env={"COMMISSAIRE_SERVICES": "tests.subscribers", "TEST_RECORD_URL": record_url},
    )
    client = StorageClient(Bus(create_app(load_settings().replace(broker_url=url))), timeout=20)

    def deliveries(host: models.Host) -> list[list[str]]:
        entries = record.lrange(f"deliveries:Host:{host.address}", 0, -1)
        return [entry.decode().split() for entry in entries]

    run = uuid.uuid4().hex[:8]
    hosts = [models.Host.new(address=f"o{run}-{index}") for index in range(SAVES)]

    def delivered() -> int:
        return len(record.keys(f"deliveries:Host:o{run}-*"))

    with storage, watch:
        probe = client.save(models.Host.new(address=f"probe-{uuid.uuid4().hex[:8]}"))
        wait_until(lambda: deliveries(probe), 20, "the subscription to be in")
        outcomes: list[Any] = []
        saving = threading.Thread(
            target=lambda: outcomes.extend(_save_or_error(client, h) for h in hosts), daemon=True
        )
        saving.start()
        wait_until(lambda: delivered() >= 10, 20, "10 deliveries")
        aof_redis.stop()
        time.sleep(2)
        aof_redis.start()
        restarted = time.monotonic()
        last = last_growth(delivered, lambda: not saving.is_alive(), 60)
        stored = [h for h in hosts if _exists(client, h)]
        last = max(last, last_growth(delivered, lambda: delivered() >= len(stored), BOUND_S))
        seconds = last - restarted
        time.sleep(1)  # let a late duplicate show itself
        broker = aof_redis.client()
        left = broker.hlen("unacked") + broker.llen("watch") + broker.llen("storage")
        log = watch.log() + storage.log()
    found = {h.address: deliveries(h) for h in stored}
    gate = RevisionGate(f"outage-{uuid.uuid4().hex[:8]}", url=record_url)
    admitted = {
        address: [e for e in entries if gate.admit("Host", address, int(e[2]))]
        for address, entries in found.items()
    }
    figures = token_figures(
        "storage notifications across a restart",
        len(stored),
        [i for i, h in enumerate(stored) for _ in found[h.address]],
        attempted=len(hosts),
        admitted=sum(len(a) for a in admitted.values()),
        seconds_after_restart=round(seconds, 2),
    )
    print(f"[outages] save outcomes: {dict(Counter(type(o).__name__ for o in outcomes))}")
    assert len(stored) >= STORED_AT_LEAST, outcomes
    assert left == 0, "a notification or save left for the visibility timeout"
    missing = [address for address, entries in found.items() if not entries]
    assert len(missing) <= LOST_TO_THE_LAST_BRPOP_AT_MOST, (missing, log[-3000:])
    assert seconds < BOUND_S
    for entries in found.values():  # a duplicate is the same change again...
        assert {(e[0], e[1], e[2]) for e in entries} == {("watch", "created", "1")}
    # ...which the gate refuses: exactly one delivery admitted per record delivered.
    assert all(len(a) == 1 for address, a in admitted.items() if address not in missing)
    assert figures["completed"] == len(stored) - len(missing)


def _save_or_error(client: StorageClient, host: models.Host) -> Any:
    try:
        return client.save(host)
    except Exception as exc:  # noqa: BLE001 - counted by the test
        return exc


def _exists(client: StorageClient, host: models.Host) -> bool:
    try:
        client.get(host)
    except StorageLookupError:
        return False
    return True


class _Announcements:
    """A notifier whose broker is gone for the first ``failures`` announcements."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[tuple[str, int]] = []

    def announce(self, cls: type[models.Model], outcome: Any, model: Any = None) -> int:
        if self.failures:
            self.failures -= 1
            raise BrokerUnavailable(f"watch.notify.storage.{cls.__name__}.created", "refused")
        self.sent.append((outcome.event, outcome.revision))
        return 1


def test_a_save_whose_notification_cannot_be_published_is_requeued_and_its_replay_announces(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    # Given a storage service whose broker goes away between the write and the announcement
    monkeypatch.setenv("COMMISSAIRE_STORE_URL", redis_server.url)
    notifier = _Announcements(failures=1)
    memory = {"storage_handlers": [{"type": "memory", "models": ["Host"]}]}
    service = make_service(StorageService, handlers=HandlerTable(memory), notifier=notifier)
    message = Message.stand_in(method="save", routing_key="storage.save")
    host = {"address": f"r-{uuid.uuid4().hex[:8]}"}

    # When the save runs: its message is rejected to be requeued, not acknowledged as failed
    with pytest.raises(Reject) as refused:
        service.on_save(message, "Host", host)
    assert refused.value.requeue is True
    assert notifier.sent == []

    # Then its replay (the same call id) writes nothing and announces the same revision
    assert service.on_save(message, "Host", host)["address"] == host["address"]
    assert notifier.sent == [("created", 1)]
