"""Processes the side-by-side run starts: each in a session of its own, stopped by its id.

Workers of every family (``celery worker``, ``nameko run``, ``dramatiq``) and the
peers' callers run as subprocesses; their CPU time is read over the whole
process tree (a prefork or Dramatiq worker forks children), and stopping one
signals its process group only: SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psutil

#: Seconds a process group gets to exit after SIGTERM before it is killed.
STOP_GRACE_S = 10.0


def tree_pids(pid: int) -> list[int]:
    """``pid`` and every descendant still running."""
    try:
        root = psutil.Process(pid)
        return [pid, *(child.pid for child in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def cpu_seconds(pids: Sequence[int]) -> float:
    """User plus system CPU seconds of ``pids`` (vanished ones count 0)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


class Spawned:
    """One command in its own session, its output in ``log``.

    Args:
        command: The program and its arguments.
        log: The file stdout and stderr go to (stderr only when ``pipe`` is set).
        env: Its whole environment.
        cwd: Its working directory.
        pipe: Give it a stdin and stdout pipe (the callers speak JSON lines on them).
    """

    def __init__(
        self,
        command: Sequence[str],
        log: Path,
        env: dict[str, str],
        cwd: Path,
        pipe: bool = False,
    ) -> None:
        self.command = list(command)
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.PIPE if pipe else subprocess.DEVNULL,
                stdout=subprocess.PIPE if pipe else out,
                stderr=out,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        return tree_pids(self.pid)

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL if it has not exited in time; never raises."""
        if self.process.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(STOP_GRACE_S)
        else:  # the leader is gone; children of its group may not be
            self._signal(signal.SIGKILL)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)
