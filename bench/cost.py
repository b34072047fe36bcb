"""What one call costs, counted rather than timed: CPU per process and Redis commands.

On a 2-core machine the client, the worker's main process, its pool processes
and Redis share two CPUs, so collected throughput is bounded by the CPU one call
takes across all of them, and round-trip latency largely by the number of Redis
round trips on its path. Both are far steadier than times: they show *why* one
system is faster, and what a change saves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psutil
import redis

from .workers import WorkerSet


def _cpu(pid: int) -> tuple[float, float]:
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    return times.user, times.system


@dataclass
class CostMeter:
    """Reads CPU times and Redis command counts before and after a series of calls.

    Args:
        workers: The running workers.
        key: The system whose worker is measured.
        redis_url: A Redis whose ``INFO commandstats`` counts the calls' commands
            (the broker and backend when they are the same server), or None.
        redis_pid: The Redis server's pid when it runs on this machine, or None.
    """

    workers: WorkerSet
    key: str
    redis_url: str | None = None
    redis_pid: int | None = None
    _start: dict[str, Any] = field(default_factory=dict)
    _end: dict[str, Any] = field(default_factory=dict)

    def __enter__(self) -> CostMeter:
        self._start = self._read()
        return self

    def __exit__(self, *exc: object) -> None:
        self._end = self._read()

    def per_call(self, calls: int) -> dict[str, Any]:
        """CPU ms (user + system) per call by process kind, and Redis commands per call."""
        start, end = self._start, self._end
        cpu = {
            kind: (sum(end["cpu"][kind]) - sum(start["cpu"][kind])) * 1e3 / calls
            for kind in end["cpu"]
        }
        result: dict[str, Any] = {"cpu_ms": {**cpu, "total": sum(cpu.values())}}
        if end.get("commands") is not None and start.get("commands") is not None:
            deltas = {
                name: (count - start["commands"].get(name, 0)) / calls
                for name, count in end["commands"].items()
            }
            significant = {k: round(v, 2) for k, v in deltas.items() if v >= 0.05}
            result["redis_commands"] = sum(significant.values())
            result["redis_commands_by_name"] = dict(
                sorted(significant.items(), key=lambda item: -item[1])
            )
        return result

    def _read(self) -> dict[str, Any]:
        worker = self.workers.workers[self.key]
        pool = [_cpu(pid) for pid in worker.pool_pids()]
        main = _cpu(worker.pid)
        me = psutil.Process().cpu_times()
        cpu = {
            "client": (me.user, me.system),
            "worker_main": main,
            "worker_pool": (sum(p[0] for p in pool), sum(p[1] for p in pool)),
        }
        if self.redis_pid is not None:
            cpu["redis"] = _cpu(self.redis_pid)
        return {"cpu": cpu, "commands": self._commands()}

    def _commands(self) -> dict[str, int] | None:
        return command_counts(self.redis_url) if self.redis_url is not None else None


def command_counts(url: str, *, without: tuple[str, ...] = ()) -> dict[str, int] | None:
    """Calls per Redis command so far (``INFO commandstats``), or None when Redis is gone."""
    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    except redis.RedisError:
        return None
    finally:
        client.close()
    return {
        name.removeprefix("cmdstat_"): int(figures["calls"])
        for name, figures in stats.items()
        if isinstance(figures, dict)
        and "calls" in figures
        and name.removeprefix("cmdstat_") not in without
    }
