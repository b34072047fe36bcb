"""Real worker processes for end-to-end tests: start, wait until ready, stop, kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

import psutil

from ..config import ENV_BROKER_URL, ENV_RESULT_BACKEND, load_settings
from ..ops.readiness import wait_for_workers
from ..runtime.app import CommissaireCelery, create_app

#: Seconds a worker gets to answer its first ping.
READY_TIMEOUT_S = 30.0


class WorkerProcess:
    """``celery -A <app> worker`` in a subprocess, with its log in a file.

    Args:
        app: What ``-A`` gets (default ``commissaire_tasks``).
        queues: Queues to consume (``-Q``); the app's defaults when empty.
        concurrency: Pool processes (``-c``).
        env: Extra environment (broker URL, services to import, ...).
        log_dir: Where the log file goes.
        extra_args: More worker arguments.
    """

    def __init__(
        self,
        *,
        broker_url: str,
        result_backend: str | None = None,
        app: str = "commissaire_tasks",
        queues: Sequence[str] = (),
        concurrency: int = 1,
        pool: str = "prefork",
        env: Mapping[str, str] | None = None,
        log_dir: str | Path = ".",
        extra_args: Sequence[str] = (),
        cwd: str | Path | None = None,
    ) -> None:
        self.hostname = f"test-{uuid.uuid4().hex[:8]}@{os.uname().nodename}"
        self.log_path = Path(log_dir) / f"{self.hostname.split('@')[0]}.log"
        self.broker_url = broker_url
        self.env = {**os.environ, ENV_BROKER_URL: broker_url, **(env or {})}
        if result_backend:
            self.env[ENV_RESULT_BACKEND] = result_backend
        self.args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "-n",
            self.hostname,
            "-c",
            str(concurrency),
            "-P",
            pool,
            "-l",
            "INFO",
            "--without-mingle",
            "--without-gossip",
            *extra_args,
        ]
        if queues:
            self.args += ["-Q", ",".join(queues)]
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def _check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"worker exited early; log:\n{self.log()}")

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Block until the worker answers a ping (its consumers are running)."""
        control = _control_app(self.broker_url).control
        if not wait_for_workers(control, [self.hostname], timeout_s, self._check_alive):
            return
        raise RuntimeError(f"worker not ready in {timeout_s} s; log:\n{self.log()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pool_pids(self) -> list[int]:
        """The pids of the worker's pool processes."""
        try:
            return [child.pid for child in psutil.Process(self.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """Warm shutdown (SIGTERM): running calls finish. Returns the exit code."""
        return self._end(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes, as a crash would."""
        if self.process is None:
            return
        for pid in [*self.pool_pids(), self.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        self.process = None

    def _end(self, signum: int, timeout_s: float) -> int | None:
        if self.process is None:
            return None
        children = self.pool_pids()
        self.process.send_signal(signum)
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        for pid in children:  # never leave an orphaned pool process behind
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process = None
        return code

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@cache
def _control_app(broker_url: str) -> CommissaireCelery:
    return create_app(load_settings().replace(broker_url=broker_url), services=())
