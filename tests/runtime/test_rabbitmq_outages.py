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
from tests.ledger import Ledger, restart_under_load
from tests.rabbit_node import RabbitNode, private_rabbit

pytestmark = pytest.mark.reliability

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
    result = restart.figures("rabbitmq restart, 60 calls")
    assert result["completed"] == restart.sent, restart.log[-3000:]
    assert restart.seconds < BOUND_S
    restart.assert_only_calls_cut_by_the_outage_ran_twice()
