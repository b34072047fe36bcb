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

from commissaire_tasks.errors import ConfigurationError

from .coordination import RedisLock, coordination_redis
from .watcher import DEFAULT_INTERVAL_S

__all__ = ["LOCK_TTL_S", "LockedScheduler", "configure_beat"]

#: Seconds the beat lock outlives the last tick of a beat that died.
LOCK_TTL_S = 30.0
#: Longest sleep between ticks, in seconds (the lock is refreshed every tick).
MAX_TICK_S = 5.0


def configure_beat(app: Celery, config: Mapping[str, Any]) -> None:
    """Give ``app`` the watcher's schedule and the locked scheduler."""
    interval = float(config.get("interval_s", DEFAULT_INTERVAL_S))
    app.conf.beat_schedule = {
        "watcher.check_all": {"task": "watcher.check_all", "schedule": interval},
    }
    app.conf.beat_scheduler = f"{__name__}:LockedScheduler"
    app.conf.beat_max_loop_interval = min(MAX_TICK_S, interval)
    app.conf.commissaire_hosts_config = dict(config)


class LockedScheduler(Scheduler):
    """Celery's in-memory scheduler, run only while it holds the beat lock."""

    lock: RedisLock | None = None

    def setup_schedule(self) -> None:
        config = getattr(self.app.conf, "commissaire_hosts_config", None) or {}
        lock = RedisLock(coordination_redis(config), "watcher-beat", LOCK_TTL_S)
        if not lock.acquire():
            raise ConfigurationError(
                f"another watcher beat is running (lock {lock.key}, expires in "
                f"{lock.holder_ttl_s():.0f} s if it died); only one beat may run"
            )
        self.lock = lock
        super().setup_schedule()

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self.lock is not None and not self.lock.refresh():
            raise SystemExit("watcher beat lost its lock; stopping so that only one beat runs")
        return float(super().tick(*args, **kwargs))

    def close(self) -> None:
        super().close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None
