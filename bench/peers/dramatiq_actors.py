"""Dramatiq's side of the bench: one ``add`` actor storing its result in Redis.

Imported by ``dramatiq dramatiq_actors --processes 2`` (the workers) and by
:mod:`dramatiq_client` (the caller), both in the Dramatiq virtual environment.
The broker is Redis or RabbitMQ by the scheme of ``$BENCH_PEER_BROKER``;
results go to the Redis at ``$BENCH_PEER_RESULTS`` (Dramatiq's Results middleware).
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

BROKER_URL = os.environ["BENCH_PEER_BROKER"]
RESULTS_URL = os.environ["BENCH_PEER_RESULTS"]


def _broker() -> dramatiq.Broker:
    if BROKER_URL.startswith("amqp://"):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=BROKER_URL)
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(url=BROKER_URL)


broker = _broker()
results = RedisBackend(url=RESULTS_URL)
broker.add_middleware(Results(backend=results))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True, max_retries=0)
def add(x: int, y: int) -> int:
    return x + y
