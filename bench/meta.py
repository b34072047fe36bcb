"""What a bench run ran on: versions, CPUs and the broker, for the results file."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import asdict
from typing import Any

import celery
import kombu
import redis

from .plan import Plan


def is_redis(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "redis+socket://", "unix://"))


def run_meta(
    plan: Plan, options: Any, broker: str, backend: str | None, duration_s: float
) -> dict[str, Any]:
    info = redis.Redis.from_url(backend if backend and is_redis(backend) else broker)
    try:
        server = info.info("server").get("redis_version", "?")
    except redis.RedisError:
        server = "?"
    finally:
        info.close()
    plan_dict = asdict(plan)
    plan_dict["payload_calls"] = {str(k): v for k, v in plan.payload_calls.items()}
    return {
        "mode": "quick" if plan.quick else "full",
        "duration_s": duration_s,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": _cpu_count(),
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "redis_py": redis.__version__,
        "redis_server": server,
        "broker": "own redis-server" if options.broker_url is None else _redact(broker),
        "worker_loglevel": options.loglevel,
        "plan": plan_dict,
        "ratio_method": "median of per-round ratios; each round runs the systems in a new order",
    }


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}{sep}{rest}"
