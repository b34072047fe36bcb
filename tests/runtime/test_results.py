"""The Redis result store: one round trip per result, same keys and rules as Celery's.

Runs against the session's real Redis; no worker needed, the backend is called
as a worker calls it after a task returns or raises.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import redis
from celery import states

from commissaire_tasks.app import create_app
from commissaire_tasks.errors import InvalidParams
from commissaire_tasks.testing import RedisServer


def new_backend(redis_server: RedisServer) -> Any:
    """The result backend of an app on the session's Redis, as a worker has it."""
    return create_app(services=[]).backend


def commands_run(client: redis.Redis) -> Counter[str]:
    """How many times the server ran each command so far."""
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def test_a_result_is_stored_with_its_expiry_and_published_to_waiting_clients(
    redis_server: RedisServer,
) -> None:
    # Given a client subscribed to a call's result channel, as Celery's result consumer is
    backend = new_backend(redis_server)
    task_id = str(uuid.uuid4())
    key = backend.get_key_for_task(task_id)
    raw = redis.Redis.from_url(redis_server.url)
    subscriber = raw.pubsub()
    subscriber.subscribe(key)
    subscriber.get_message(timeout=1)  # the subscribe confirmation

    # When the worker stores the result (once Redis has the script cached)
    backend.store_result(str(uuid.uuid4()), 0, states.SUCCESS)
    before = commands_run(raw)
    backend.store_result(task_id, 3, states.SUCCESS)
    after = commands_run(raw)

    # Then it is stored as Celery's JSON meta, expires, and was published
    stored = json.loads(raw.get(key))
    assert stored["status"] == "SUCCESS" and stored["result"] == 3
    assert stored["task_id"] == task_id
    assert 0 < raw.ttl(key) <= backend.expires
    published = subscriber.get_message(timeout=2)
    assert published is not None and json.loads(published["data"])["result"] == 3
    assert backend.get_task_meta(task_id)["result"] == 3
    # ... in one round trip: one script call (Celery's own path is a GET, then MULTI ... EXEC)
    assert after["evalsha"] - before["evalsha"] == 1
    assert after["multi"] == before["multi"]


def test_a_redelivered_call_never_overwrites_a_success(redis_server: RedisServer) -> None:
    # Given a call whose result was stored as a success
    backend = new_backend(redis_server)
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, "first", states.SUCCESS)

    # When a second delivery of the same call stores a failure, then another success
    backend.store_result(task_id, InvalidParams("late"), states.FAILURE)
    backend.store_result(task_id, "second", states.SUCCESS)

    # Then the first success stands
    meta = backend.get_task_meta(task_id)
    assert meta["status"] == "SUCCESS" and meta["result"] == "first"


def test_a_failure_is_replaced_by_a_later_success(redis_server: RedisServer) -> None:
    # Given a call that failed (a retry will run it again)
    backend = new_backend(redis_server)
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, InvalidParams("bad x"), states.FAILURE)
    assert backend.get_task_meta(task_id)["status"] == "FAILURE"

    # When the retry succeeds, then the success is what the caller reads
    backend.store_result(task_id, 7, states.SUCCESS)
    meta = backend.get_task_meta(task_id)
    assert meta["status"] == "SUCCESS" and meta["result"] == 7


def test_the_store_script_is_loaded_again_after_redis_forgets_it(
    redis_server: RedisServer,
) -> None:
    # Given a backend that stored once (its script is cached by Redis)
    backend = new_backend(redis_server)
    backend.store_result(str(uuid.uuid4()), 1, states.SUCCESS)

    # When Redis forgets every script (as after a restart)
    redis.Redis.from_url(redis_server.url).script_flush()

    # Then the next result is still stored
    task_id = str(uuid.uuid4())
    backend.store_result(task_id, 2, states.SUCCESS)
    assert backend.get_task_meta(task_id)["result"] == 2
