"""The watcher as a worker and its beat.

``celery -A workers.watcher worker`` serves ``watcher.check_all`` and ``watcher.check``;
``celery -A workers.watcher beat`` sends ``watcher.check_all`` every ``interval_s``
(from ``$COMMISSAIRE_CONFIG_FILE``, default 60 s); only one beat may run. See
:mod:`commissaire_tasks.hosts.watcher` and :mod:`commissaire_tasks.hosts.beat`.
"""

from __future__ import annotations

from commissaire_tasks.hosts.beat import configure_beat
from commissaire_tasks.hosts.watcher import WatcherService
from commissaire_tasks.worker import service_app

__all__ = ["RUNS_BEAT", "WatcherService", "app"]

#: ``commissaire-tasks up`` also starts ``celery -A workers.watcher beat``.
RUNS_BEAT = True

#: ``celery -A workers.watcher worker`` serves the watcher; ``... beat`` schedules it.
app = service_app(WatcherService)
configure_beat(app)
