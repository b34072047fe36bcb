"""Child processes the CLI owns: started apart from the terminal, stopped in order.

Children run in their own session, so Ctrl-C reaches only the CLI, which then
stops them in the order it chooses (workers before the broker they drain into).
Each child also gets SIGTERM if the CLI dies without stopping it (Linux), so
nothing outlives a killed ``commissaire-tasks up``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import FrameType

__all__ = ["ProcessGroup", "stop_signals_interrupt"]

#: Signals that ask the CLI to stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Seconds between checks while waiting, where the kernel cannot wake us (no pidfd).
_CHECK_INTERVAL_S = 0.2
_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, loaded up front: a child must not load libraries between fork and exec."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        return libc.prctl
    except (OSError, AttributeError):
        return None


_prctl = _load_prctl()


def _child_setup(parent_pid: int) -> Callable[[], None]:
    def setup() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
            if os.getppid() != parent_pid:  # the parent died before prctl took effect
                os._exit(1)

    return setup


class ProcessGroup:
    """The children one command started, each with a label for messages."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []
        self.labels: dict[int, str] = {}

    def spawn(
        self, label: str, args: Sequence[str], env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        """Start ``args`` (output to ours); it is recorded before a stop signal can interrupt us."""
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            process = subprocess.Popen(
                list(args),
                env=dict(env),
                start_new_session=True,
                preexec_fn=_child_setup(os.getpid()),  # noqa: PLW1509 - the CLI runs no threads
            )
            self.processes.append(process)
            self.labels[process.pid] = label
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return process

    def label(self, process: subprocess.Popen[bytes]) -> str:
        return self.labels.get(process.pid, str(process.pid))

    def exited(self) -> list[subprocess.Popen[bytes]]:
        """The children that have exited (and are now reaped)."""
        return [p for p in self.processes if p.poll() is not None]

    def wait_any(self) -> subprocess.Popen[bytes]:
        """Block until a child exits and return it (a stop signal interrupts the wait)."""
        while True:
            exited = self.exited()
            if exited:
                return exited[0]
            _wait_for_exit(self.processes, None)

    def stop(
        self,
        processes: Iterable[subprocess.Popen[bytes]],
        timeout_s: float,
        hurry: threading.Event | None = None,
    ) -> None:
        """SIGTERM ``processes``, wait up to ``timeout_s``, then SIGKILL their process groups.

        ``hurry`` (set by a second Ctrl-C) skips the rest of the wait.
        """
        running = [p for p in processes if p.poll() is None]
        for process in running:
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while running and time.monotonic() < deadline and not (hurry and hurry.is_set()):
            _wait_for_exit(running, min(_CHECK_INTERVAL_S, deadline - time.monotonic()))
            running = [p for p in running if p.poll() is None]
        for process in running:  # the whole group: a worker's pool processes too
            _kill_group(process)
            process.wait()


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signum)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole session (it leads its process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _wait_for_exit(processes: Sequence[subprocess.Popen[bytes]], timeout_s: float | None) -> None:
    """Sleep until one of ``processes`` exits, or ``timeout_s`` passes (signals still interrupt)."""
    fds: list[int] = []
    try:
        for process in processes:
            fds.append(os.pidfd_open(process.pid))
    except (AttributeError, OSError):  # no pidfd (old kernel, seccomp): check periodically
        for fd in fds:
            os.close(fd)
        time.sleep(_CHECK_INTERVAL_S if timeout_s is None else min(timeout_s, _CHECK_INTERVAL_S))
        return
    try:
        select.select(fds, [], [], None if timeout_s is None else max(timeout_s, 0))
    finally:
        for fd in fds:
            os.close(fd)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM stops the CLI as Ctrl-C does (KeyboardInterrupt)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def stop_signals_hurry() -> Iterator[threading.Event]:
    """Inside the block, a stop signal sets the yielded event instead of interrupting cleanup."""
    hurry = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield hurry
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, frame: hurry.set())
    try:
        yield hurry
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
