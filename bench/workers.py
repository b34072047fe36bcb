"""Real ``celery worker`` prefork subprocesses, one per system, started and stopped together.

Workers get a clean environment: no ``COMMISSAIRE_*`` variable of the calling
shell (or of a test session) leaks in, so each one talks to the broker the bench
chose. Every process is tracked by pid and stopped (SIGTERM, then SIGKILL) on
the way out, whatever happened.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

import psutil

from commissaire_tasks.testing import WorkerProcess

from .systems import System

#: The directory holding ``bench/`` and ``workers/``: the workers' cwd and import path.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
#: Seconds a worker may take to answer its first ping.
READY_TIMEOUT_S = 60.0
#: Seconds a worker gets to finish its warm shutdown before it is killed.
STOP_TIMEOUT_S = 20.0


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without ``COMMISSAIRE_*``/``BENCH_*``, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMMISSAIRE_", "BENCH_"))}
    paths = [str(PROJECT_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra)
    return env


class WorkerSet:
    """One worker per system, all with the same pool size.

    Args:
        systems: The systems whose workers to run.
        concurrency: Pool processes per worker (``-c``).
        log_dir: Where each worker's log goes.
        loglevel: The workers' ``-l``.
        extra_env: More environment for every worker.
        extra_args: More ``celery worker`` arguments for every worker.
    """

    def __init__(
        self,
        systems: Iterable[System],
        concurrency: int,
        log_dir: str | Path,
        loglevel: str = "WARNING",
        extra_env: dict[str, str] | None = None,
        extra_args: Iterable[str] = (),
    ) -> None:
        self.concurrency = concurrency
        self.workers: dict[str, WorkerProcess] = {}
        for system in systems:
            worker = WorkerProcess(
                broker_url=system.broker_url,
                app=system.worker_app,
                queues=system.worker_queues,
                concurrency=concurrency,
                log_dir=log_dir,
                extra_args=["-l", loglevel, *extra_args],
                cwd=PROJECT_ROOT,
            )
            worker.env = clean_environment({**system.worker_env(), **(extra_env or {})})
            self.workers[system.key] = worker

    def start(self) -> WorkerSet:
        """Start every worker at once, then wait until each answers a ping."""
        try:
            for worker in self.workers.values():
                worker.start(wait=False)
            for worker in self.workers.values():
                worker.wait_ready(READY_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Warm-stop every worker in parallel; kill any that does not stop in time."""
        running = [w for w in self.workers.values() if w.process is not None]
        if not running:
            return
        with ThreadPoolExecutor(max_workers=len(running)) as pool:
            list(pool.map(lambda w: w.stop(STOP_TIMEOUT_S), running))

    def hostname(self, key: str) -> str:
        return self.workers[key].hostname

    def rss_bytes(self, key: str) -> int:
        """Resident memory of the worker ``key``: main process plus pool processes."""
        worker = self.workers[key]
        total = 0
        for pid in [worker.pid, *worker.pool_pids()]:
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def pids(self) -> list[int]:
        return [
            pid
            for w in self.workers.values()
            if w.process is not None
            for pid in [w.pid, *w.pool_pids()]
        ]

    def __enter__(self) -> WorkerSet:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
