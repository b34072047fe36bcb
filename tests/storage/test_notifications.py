"""Storage change notifications, end to end with real storage and subscriber workers."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from commissaire_tasks import models
from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.storage.broadcast import CHANNEL
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.storage.ordering import RevisionGate
from commissaire_tasks.testing import RedisServer, WorkerProcess
from tests.ledger import wait_until
from tests.report import record

SUBSCRIBERS = "tests.subscribers"


@dataclass
class Stack:
    url: str
    client: StorageClient
    record: redis.Redis
    log_dir: Path
    workers: dict[str, WorkerProcess]

    def subscriber(self, queue: str, concurrency: int = 1) -> WorkerProcess:
        return WorkerProcess(
            broker_url=self.url,
            queues=[queue],
            concurrency=concurrency,
            log_dir=self.log_dir,
            env={"COMMISSAIRE_SERVICES": SUBSCRIBERS, "TEST_RECORD_URL": self.record_url},
        )

    @property
    def record_url(self) -> str:
        return self.url.rsplit("/", 1)[0] + "/6"

    def deliveries(self, model: models.Model) -> list[list[str]]:
        key = f"deliveries:{type(model).__name__}:{model.primary_key}"
        return [entry.decode().split() for entry in self.record.lrange(key, 0, -1)]

    def wait_for(self, model: models.Model, count: int, timeout_s: float = 20) -> list[list[str]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.deliveries(model)
            if len(found) >= count:
                time.sleep(0.5)  # catch duplicates that would arrive just after
                return self.deliveries(model)
            time.sleep(0.1)
        return self.deliveries(model)


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("notify")
    url = redis_server.url.rsplit("/", 1)[0] + "/5"
    redis_server.client().execute_command("SELECT", 5)
    storage = WorkerProcess(broker_url=url, app="workers.storage", concurrency=2, log_dir=log_dir)
    client = StorageClient(Bus(create_app(load_settings().replace(broker_url=url))))
    record = redis.Redis.from_url(url.rsplit("/", 1)[0] + "/6")
    stack = Stack(url=url, client=client, record=record, log_dir=log_dir, workers={})
    audit_a = stack.subscriber("audit", concurrency=3)
    audit_b = stack.subscriber("audit", concurrency=1)
    watch = stack.subscriber("watch")
    with storage, audit_a, audit_b, watch:
        stack.workers.update(storage=storage, audit_a=audit_a, audit_b=audit_b, watch=watch)
        probe = client.save(new_host())  # subscriptions travel through the storage queue
        wait_until(lambda: len(stack.deliveries(probe)) == 2, 30, "audit and watch to subscribe")
        yield stack


def new_host(status: str = "investigating", os: str = "") -> models.Host:
    return models.Host.new(address=f"h-{uuid.uuid4().hex[:8]}", status=status, os=os)


def test_each_subscribing_service_gets_one_delivery_per_change(stack: Stack) -> None:
    host = stack.client.save(new_host())
    host.status = "active"
    stack.client.save(host)
    stack.client.delete(host)
    deliveries = stack.wait_for(host, 4)
    audit = [d for d in deliveries if d[0] == "audit"]
    watch = [d for d in deliveries if d[0] == "watch"]
    assert [(d[1], d[2]) for d in sorted(audit, key=lambda d: int(d[2]))] == [
        ("created", "1"),
        ("updated", "2"),
        ("deleted", "3"),
    ]
    assert [(d[1], d[2]) for d in watch] == [("created", "1")]


def test_every_change_of_many_reaches_each_service_exactly_once(stack: Stack) -> None:
    hosts = [stack.client.save(new_host()) for _ in range(30)]
    for host in hosts:
        deliveries = stack.wait_for(host, 2, timeout_s=30)
        assert sorted(d[0] for d in deliveries) == ["audit", "watch"], deliveries
    pids = {d[3] for h in hosts for d in stack.deliveries(h) if d[0] == "audit"}
    assert len(pids) > 1  # spread over the audit service's processes


def test_wildcards_match_every_model_and_event(stack: Stack) -> None:
    network = stack.client.save(models.Network.new(name=f"n-{uuid.uuid4().hex[:8]}"))
    assert [d[:2] for d in stack.wait_for(network, 1)] == [["audit", "created"]]


def test_a_stopped_subscriber_gets_changes_when_it_starts_again(stack: Stack) -> None:
    watch = stack.workers["watch"]
    watch.stop()
    try:
        started = time.monotonic()
        host = stack.client.save(new_host())
        assert time.monotonic() - started < 2  # the save does not wait for subscribers
        wait_until(lambda: stack.deliveries(host), 20, "audit's delivery")
        assert [d for d in stack.deliveries(host) if d[0] == "watch"] == []
    finally:
        watch.start()
    deliveries = stack.wait_for(host, 2)
    assert sorted(d[0] for d in deliveries) == ["audit", "watch"]


def test_bad_notification_bodies_are_dropped_and_the_worker_carries_on(stack: Stack) -> None:
    app = stack.client.bus.app
    host = new_host()
    bad_bodies = [
        {"event": "exploded", "class": "Host", "model": host.to_dict(), "revision": 1},
        {"event": "created", "class": "NoSuchModel", "model": {}, "revision": 1},
        {
            "event": "created",
            "class": "Host",
            "model": {"address": host.address, "cpus": "many"},
            "revision": 1,
        },
    ]
    from kombu import Exchange, Queue

    def dropped() -> int:
        log = stack.workers["audit_a"].log() + stack.workers["audit_b"].log()
        return log.count("Dropped notification")

    dropped_before = dropped()
    queue = Queue("audit", Exchange(""), routing_key="audit")
    for body in bad_bodies:
        app.send_task(
            "audit.notify.storage.Host.created",
            kwargs=body,
            queue=queue,
            exchange="",
            routing_key="audit",
            ignore_result=True,
        )
    wait_until(lambda: dropped() >= dropped_before + 3, 20, "three dropped notifications")
    assert dropped() == dropped_before + 3  # each bad body dropped once, none retried
    assert stack.deliveries(host) == []
    fresh = stack.client.save(new_host())
    assert any(d[0] == "audit" for d in stack.wait_for(fresh, 2))


def test_a_failing_callback_is_logged_not_retried_and_others_keep_flowing(stack: Stack) -> None:
    boom = stack.client.save(new_host(os="explode"))
    after = stack.client.save(new_host())
    assert any(d[0] == "audit" for d in stack.wait_for(after, 2))

    def audit_log() -> str:
        return stack.workers["audit_a"].log() + stack.workers["audit_b"].log()

    wait_until(lambda: "callback exploded on purpose" in audit_log(), 20, "the failure logged")
    assert [d for d in stack.deliveries(boom) if d[0] == "audit"] == []
    log = audit_log()
    assert "callback exploded on purpose" in log
    assert "Traceback" in log
    failures = [
        line for line in log.splitlines() if ".notify.storage.Host." in line and "failed in" in line
    ]
    assert len(failures) == 1  # failed once, not retried


def test_with_no_subscribers_nothing_piles_up(redis_server: RedisServer, tmp_path: Path) -> None:
    url = redis_server.url.rsplit("/", 1)[0] + "/7"
    broker = redis.Redis.from_url(url)
    broker.flushdb()
    client = StorageClient(Bus(create_app(load_settings().replace(broker_url=url))))
    with WorkerProcess(broker_url=url, app="workers.storage", log_dir=tmp_path):
        for _ in range(20):
            client.save(new_host())
    queues = [k for k in broker.keys("*") if broker.type(k) == b"list"]
    assert [(k, broker.llen(k)) for k in queues if broker.llen(k)] == []


def test_a_subscriber_started_before_storage_ever_ran_gets_its_notifications(
    tmp_path: Path,
) -> None:
    # Given a broker no storage worker has ever used, and a subscriber started first
    with RedisServer(directory=tmp_path / "redis") as server:
        record_url = server.url.rsplit("/", 1)[0] + "/6"
        subscriber = WorkerProcess(
            broker_url=server.url,
            queues=["watch"],
            log_dir=tmp_path,
            env={"COMMISSAIRE_SERVICES": SUBSCRIBERS, "TEST_RECORD_URL": record_url},
        )
        with subscriber:
            # Then it starts, and its subscription waits in the storage queue
            wait_until(lambda: server.client().llen("storage") == 1, 10, "the subscription")
            # And once storage starts, a created host reaches the subscriber
            client = StorageClient(Bus(create_app(load_settings().replace(broker_url=server.url))))
            with WorkerProcess(broker_url=server.url, app="workers.storage", log_dir=tmp_path):
                host = client.save(new_host())
                key = f"deliveries:Host:{host.address}"
                record = redis.Redis.from_url(record_url)
                wait_until(lambda: record.llen(key) == 1, 20, "the watch delivery")


@pytest.mark.reliability
def test_revision_gate_admits_each_newer_revision_once(redis_server: RedisServer) -> None:
    gate = RevisionGate(f"test-{uuid.uuid4().hex[:6]}", url=redis_server.url)
    assert gate.admit("Host", "a", 2) is True
    assert gate.admit("Host", "a", 1) is False  # stale
    assert gate.admit("Host", "a", 2) is False  # duplicate
    assert gate.admit("Host", "a", 3) is True
    assert gate.admit("Host", "b", 1) is True
    gate.forget()


def test_broadcast_reaches_every_running_process_once(stack: Stack) -> None:
    listening = stack.record.pubsub_numsub(CHANNEL)[0][1]
    with stack.subscriber("cache", concurrency=3) as cache:
        wait_until(  # listeners subscribe right after the fork
            lambda: stack.record.pubsub_numsub(CHANNEL)[0][1] >= listening + 3,
            20,
            "each cache process to listen",
        )
        host = stack.client.save(new_host())
        deliveries = [d for d in stack.wait_for(host, 5) if d[0] == "cache"]
        pool = set(map(str, cache.pool_pids()))
    assert len(deliveries) == 3
    assert {d[3] for d in deliveries} == pool  # each process once


@pytest.mark.reliability
def test_a_subscriber_killed_mid_callback_gets_the_change_again_exactly_once(stack: Stack) -> None:
    def subscriber() -> WorkerProcess:
        worker = stack.subscriber("slow_subscriber")
        worker.env["COMMISSAIRE_VISIBILITY_TIMEOUT"] = "3"
        return worker

    first = subscriber().start()
    probe = stack.client.save(new_host())  # a delivery proves the subscription is live
    assert [d for d in stack.wait_for(probe, 3, timeout_s=30) if d[0] == "slow"]
    host = stack.client.save(new_host(os="slow"))
    started = f"started:Host:{host.address}"
    wait_until(lambda: stack.record.llen(started), 20, "the slow callback to start")
    assert [int(pid) for pid in stack.record.lrange(started, 0, -1)] == first.pool_pids()
    first.kill()
    assert [d for d in stack.deliveries(host) if d[0] == "slow"] == []  # cut off mid-callback
    with subscriber() as second:
        deliveries = [d for d in stack.wait_for(host, 3, timeout_s=30) if d[0] == "slow"]
        rerun_by = second.pool_pids()
    assert [int(pid) for pid in stack.record.lrange(started, 0, -1)][1:] == rerun_by
    assert len(deliveries) == 1
    record(
        "subscriber_kill",
        sent="1 notification",
        completed=len(deliveries),
        lost=1 - len(deliveries),
        duplicated=len(deliveries) - 1,
        notes="the callback was cut off, then ran once in the next worker",
    )


@pytest.mark.reliability
def test_a_save_replayed_with_its_call_id_reports_the_first_revision_without_writing(
    stack: Stack,
) -> None:
    # Given a save that runs twice under one call id, as a redelivered call would
    host = new_host()
    call_id = str(uuid.uuid4())
    app = stack.client.bus.app
    for _ in range(2):
        app.send_task("storage.save", args=["Host", host.to_dict()], task_id=call_id)
    # Then both runs announce "created" at revision 1 (the second one re-sends, never writes)
    deliveries = stack.wait_for(host, 4)
    audit = sorted((d[1], d[2]) for d in deliveries if d[0] == "audit")
    assert audit == [("created", "1"), ("created", "1")]
    # And the next change is revision 2: the replay wrote nothing
    host.status = "active"
    stack.client.save(host)
    latest = [(d[1], d[2]) for d in stack.wait_for(host, 6) if d[0] == "audit"]
    assert sorted(latest)[-1] == ("updated", "2")


def send_notification(app: Any, service: str, body: dict[str, Any]) -> None:
    """Put one notification task straight on ``service``'s queue, as storage would."""
    from kombu import Exchange, Queue

    app.send_task(
        f"{service}.notify.storage.{body['class']}.{body['event']}",
        kwargs=body,
        queue=Queue(service, Exchange(""), routing_key=service),
        exchange="",
        routing_key=service,
        ignore_result=True,
    )


@pytest.mark.reliability
def test_hoststatus_keeps_the_latest_status_and_its_revision_gate_refuses_a_stale_change(
    tmp_path: Path,
) -> None:
    with RedisServer(directory=tmp_path / "redis") as server:
        bus = Bus(create_app(load_settings().replace(broker_url=server.url)))
        client = StorageClient(bus)
        storage = WorkerProcess(broker_url=server.url, app="workers.storage", log_dir=tmp_path)
        # One process: its queue runs in order, so a call made after a notification
        # answers only once the notification was handled.
        hoststatus = WorkerProcess(
            broker_url=server.url, app="workers.hoststatus", log_dir=tmp_path
        )
        with storage, hoststatus:
            host = client.save(new_host(status="investigating"))
            wait_until(
                lambda: bus.call("host_status.status", host.address) == "investigating",
                30,
                "hoststatus to see the new host",
            )
            host.status = "active"
            client.save(host)  # revision 2
            wait_until(lambda: bus.call("host_status.status", host.address) == "active", 30, "r2")
            stale = {**host.to_dict(), "status": "failed"}
            send_notification(
                bus.app, "host_status",
                {"event": "updated", "class": "Host", "model": stale, "revision": 1},
            )  # fmt: skip
            assert bus.call("host_status.status", host.address) == "active"  # refused
            assert bus.call("host_status.counts") == {"active": 1}
            client.delete(host)  # revision 3
            wait_until(lambda: bus.call("host_status.counts") == {}, 30, "the delete")
            assert bus.call("host_status.status", host.address) is None
