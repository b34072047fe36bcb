"""The watcher's beat: Celery beat sending ``watcher.check_all`` every ``interval_s``.

Only one beat may run, or rounds would double: :class:`LockedScheduler` holds a
Redis lock (``commissaire:hosts:lock:watcher-beat``) that it refreshes on every
tick and that expires :data:`LOCK_TTL_S` seconds after a beat dies; a second beat
refuses to start with a ConfigurationError naming the lock. Run it with
``celery -A workers.watcher beat`` (the app sets this scheduler and the schedule).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery
from celery.beat import Scheduler

from commissaire_tasks.config import load_settings, read_config_file
from commissaire_tasks.errors import ConfigurationError

from .coordination import RedisLock, coordination_redis
from .watcher import DEFAULT_INTERVAL_S, WatcherService

__all__ = ["LOCK_TTL_S", "LockedScheduler", "configure_beat", "watch_schedule"]

#: Seconds the beat lock outlives the last tick of a beat that died.
LOCK_TTL_S = 30.0
#: Longest sleep between ticks, in seconds (the lock is refreshed every tick).
MAX_TICK_S = 5.0


def configure_beat(app: Celery) -> None:
    """Make ``celery -A <app> beat`` run the watcher's locked scheduler.

    The schedule itself is read when the beat starts (from the watcher's config
    file), so importing the app never reads a config file.
    """
    app.conf.beat_scheduler = f"{__name__}:LockedScheduler"


def watch_schedule(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The beat entries: ``watcher.check_all`` every ``interval_s`` seconds."""
    interval = float(config.get("interval_s", DEFAULT_INTERVAL_S))
    return {"watcher.check_all": {"task": "watcher.check_all", "schedule": interval}}


class LockedScheduler(Scheduler):  # type: ignore[misc]  # celery.beat has no annotations
    """Celery's in-memory scheduler, run only while it holds the beat lock."""

    lock: RedisLock | None = None

    def setup_schedule(self) -> None:
        config = read_config_file(load_settings().config_file)
        WatcherService.check_config(config)
        lock = RedisLock(coordination_redis(config), "watcher-beat", LOCK_TTL_S)
        if not lock.acquire():
            raise ConfigurationError(
                f"another watcher beat is running (lock {lock.key}, expires in "
                f"{lock.holder_ttl_s():.0f} s if it died); only one beat may run"
            )
        self.lock = lock
        super().setup_schedule()
        schedule = watch_schedule(config)
        self.merge_inplace(schedule)
        interval = float(schedule["watcher.check_all"]["schedule"])
        self.max_interval = min(MAX_TICK_S, interval)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self.lock is not None and not self.lock.refresh():
            raise SystemExit("watcher beat lost its lock; stopping so that only one beat runs")
        return float(super().tick(*args, **kwargs))

    def close(self) -> None:
        super().close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None
