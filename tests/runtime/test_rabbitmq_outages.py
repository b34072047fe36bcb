"""RabbitMQ: quorum service queues, and a restart of RabbitMQ under load.

The shared RabbitMQ on 5672 serves other tests, so these start a private node of
their own (own name, ports and folders under the test's temporary directory)
and restart that one (``rabbitmqctl stop_app`` / ``start_app``). Results go to
the session's Redis. Each test prints its figures (run with ``-s``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from commissaire_tasks.testing import RedisServer
from tests.ledger import DUPLICATED_AT_MOST, Ledger, Restart, restart_under_load
from tests.rabbit_node import RabbitNode, private_rabbit
from tests.report import record

pytestmark = [pytest.mark.reliability, pytest.mark.rabbitmq]

#: Seconds every call sent before the restart gets to complete once RabbitMQ is back.
BOUND_S = 30.0


@pytest.fixture
def rabbit() -> Iterator[RabbitNode]:
    with private_rabbit() as node:
        yield node


def quorum_ledger(rabbit: RabbitNode, results: RedisServer, log_dir: Path) -> Ledger:
    """A ledger on quorum queues of the private node; results and records in Redis."""
    return Ledger(
        rabbit,
        log_dir,
        record_server=results,
        result_backend=results.url,
        extra_env={"COMMISSAIRE_QUEUE_TYPE": "quorum"},
        queue_type="quorum",
    )


def test_service_queues_are_quorum_queues_when_configured_and_calls_work(
    rabbit: RabbitNode, redis_server: RedisServer, tmp_path: Path
) -> None:
    ledger = quorum_ledger(rabbit, redis_server, tmp_path)
    with ledger.worker(concurrency=2):
        results = [ledger.send(token, seconds=0.05) for token in range(20)]
        assert [r.get(timeout=30) for r in results] == list(range(20))
    assert rabbit.queue_types()[ledger.queue["name"]] == "quorum"


def test_a_rabbitmq_restart_under_load_completes_every_call_soon_after(
    rabbit: RabbitNode, redis_server: RedisServer, tmp_path: Path
) -> None:
    ledger = quorum_ledger(rabbit, redis_server, tmp_path)
    restart = restart_under_load(
        ledger, lambda: rabbit.ctl("stop_app"), lambda: rabbit.ctl("start_app"), bound_s=BOUND_S
    )
    figures = restart.figures("rabbitmq restart, 60 calls")
    assert_nothing_lost_and_done_in_time(restart)
    record("rabbitmq_restart_load", **figures, notes=restart_notes(restart))


def assert_nothing_lost_and_done_in_time(restart: Restart) -> None:
    """Durable queues and persistent messages: every call completes, soon after."""
    assert restart.lost == 0, restart.log[-3000:]
    assert restart.seconds < BOUND_S, restart.seconds
    restart.assert_only_calls_cut_by_the_outage_ran_twice(DUPLICATED_AT_MOST)


def restart_notes(restart: Restart) -> str:
    return (
        f"every call done {restart.seconds:.1f} s after RabbitMQ answered again (asserted: "
        f"under {BOUND_S:.0f} s); duplicates: calls running when it stopped"
    )


def test_a_rabbitmq_restart_under_load_with_classic_durable_queues_completes_every_call(
    rabbit: RabbitNode, redis_server: RedisServer, tmp_path: Path
) -> None:
    ledger = Ledger(rabbit, tmp_path, record_server=redis_server, result_backend=redis_server.url)
    restart = restart_under_load(
        ledger, lambda: rabbit.ctl("stop_app"), lambda: rabbit.ctl("start_app"), bound_s=BOUND_S
    )
    figures = restart.figures("rabbitmq restart, classic queues, 60 calls")
    assert rabbit.queue_types()[ledger.queue["name"]] == "classic"
    assert_nothing_lost_and_done_in_time(restart)
    record("rabbitmq_restart_classic", **figures, notes=restart_notes(restart))
