"""The one worker-readiness wait: ping worker nodes until each has answered.

A worker answers a ping once its consumers run, so an answer means it serves.
``commissaire-tasks up`` and :class:`commissaire_tasks.testing.WorkerProcess` use it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["wait_for_workers"]


def wait_for_workers(
    control: Any,
    nodenames: Iterable[str],
    timeout_s: float,
    check_alive: Callable[[], None] = lambda: None,
) -> set[str]:
    """Ping ``nodenames`` until all answered; return those that had not after ``timeout_s``.

    ``check_alive()`` runs before every round and raises when a worker has died, so a
    crash is reported at once instead of after the timeout.
    """
    pending = set(nodenames)
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        check_alive()
        for reply in control.ping(destination=sorted(pending), timeout=0.5) or []:
            pending.difference_update(reply)
    return pending
