"""The servers, systems and folders a bench run sets up, each closed with the run's stack."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import redis

from commissaire_tasks.testing import RedisServer

from .measure import percentile, time_calls
from .plan import Plan
from .rabbitmq import RabbitUnavailable, RabbitVhost
from .systems import BARE_DEFAULT, FRAMEWORK, RABBITMQ_SUFFIX, System, build_systems

#: The systems also run with RabbitMQ as broker.
RABBITMQ_SYSTEMS = (FRAMEWORK, BARE_DEFAULT)
Progress = Callable[[str], None]


def redis_ping(url: str, count: int) -> dict[str, Any]:
    client = redis.Redis.from_url(url)
    try:
        samples = time_calls(client.ping, count, warmup=min(50, count))
    finally:
        client.close()
    return {
        "unit": "ms",
        "p50": percentile(samples, 50) * 1e3,
        "p99": percentile(samples, 99) * 1e3,
        "calls": count,
    }


def rabbitmq(
    stack: contextlib.ExitStack, options: Any, results_redis: str, plan: Plan, say: Progress
) -> tuple[list[System], str | None]:
    if not options.rabbitmq:
        return [], "disabled with --no-rabbitmq"
    say("creating a RabbitMQ vhost")
    vhost = RabbitVhost()
    try:
        url = vhost.create()
    except RabbitUnavailable as exc:
        vhost.delete()
        return [], str(exc)
    stack.callback(vhost.delete)
    systems = build_systems(url, results_redis, plan.call_timeout_s, suffix=RABBITMQ_SUFFIX)
    keep = {k + RABBITMQ_SUFFIX for k in RABBITMQ_SYSTEMS}
    chosen = [s for s in systems if s.key in keep]
    close([s for s in systems if s.key not in keep])
    return chosen, None


def broker(stack: contextlib.ExitStack, options: Any) -> tuple[str, RedisServer | None]:
    if options.broker_url:
        return options.broker_url, None
    server = start_redis(stack)
    return server.url, server


def start_redis(stack: contextlib.ExitStack) -> RedisServer:
    server = RedisServer().start()
    stack.callback(server.close)
    return server


def make_log_dir(stack: contextlib.ExitStack, options: Any) -> Path:
    if options.log_dir:
        path = Path(options.log_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ct-bench-")))


def close(systems: Sequence[System]) -> None:
    for system in systems:
        with contextlib.suppress(Exception):
            system.close()
