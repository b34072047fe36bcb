"""The notifier's copy of the subscription table: cheap to consult, never stale for long.

A save must not read every subscription from the store: each storage process keeps
a copy and looks at the table's version record at most every RECHECK_S seconds.
"""

from __future__ import annotations

from typing import Any

from commissaire_tasks.storage.handlers.memory import MemoryStoreHandler
from commissaire_tasks.storage.subscriptions import (
    RECHECK_S,
    SUBSCRIPTION_TYPE,
    Subscription,
    SubscriptionTable,
)


class CountingStore(MemoryStoreHandler):
    """The memory handler, counting the reads a caller makes."""

    def __init__(self) -> None:
        super().__init__({})
        self.lists = 0
        self.gets = 0

    def list(self, model_type: str) -> Any:
        self.lists += 1
        return super().list(model_type)

    def get(self, model_type: str, key: str) -> Any:
        self.gets += 1
        return super().get(model_type, key)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def watch(service: str) -> dict[str, Any]:
    return {"service": service, "queue": service, "filters": [["Host", "*"]]}


def test_a_thousand_lookups_within_the_recheck_interval_read_the_store_once() -> None:
    store, clock = CountingStore(), Clock()
    table = SubscriptionTable(store, [], clock)
    table.subscribe(watch("audit"))
    for _ in range(1000):
        assert [s.service for s in table.current()] == ["audit"]
    assert (store.lists, store.gets) == (1, 1)


def test_a_change_made_by_another_process_is_seen_after_the_recheck_interval() -> None:
    store, clock = CountingStore(), Clock()
    mine, theirs = SubscriptionTable(store, [], clock), SubscriptionTable(store, [], clock)
    assert mine.current() == []
    theirs.subscribe(watch("audit"))
    assert mine.current() == []  # still within the interval: the copy is used
    clock.now += RECHECK_S
    assert [s.service for s in mine.current()] == ["audit"]
    theirs.unsubscribe("audit")
    clock.now += RECHECK_S
    assert mine.current() == []


def test_an_unchanged_version_costs_one_small_read_per_interval_not_a_listing() -> None:
    store, clock = CountingStore(), Clock()
    table = SubscriptionTable(store, [], clock)
    table.subscribe(watch("audit"))
    table.current()
    for _ in range(5):
        clock.now += RECHECK_S
        table.current()
    assert (store.lists, store.gets) == (1, 6)


def test_a_change_made_in_this_process_is_seen_at_once() -> None:
    table = SubscriptionTable(CountingStore(), [], Clock())
    assert table.current() == []
    table.subscribe(watch("audit"))
    assert [s.service for s in table.current()] == ["audit"]


def test_configured_subscriptions_are_in_the_copy_and_stored_ones_win() -> None:
    configured = Subscription.from_dict({**watch("audit"), "queue": "configured"})
    store = CountingStore()
    table = SubscriptionTable(store, [configured], Clock())
    assert [s.queue for s in table.current()] == ["configured"]
    table.subscribe(watch("audit"))
    assert [s.queue for s in table.current()] == ["audit"]
    assert [r.data["service"] for r in store.list(SUBSCRIPTION_TYPE)] == ["audit"]
