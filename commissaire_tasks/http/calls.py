"""Bus calls from the event loop: in worker threads, at most ``max_threads`` at once.

The bus is synchronous: a call publishes with kombu and waits on the Redis
result subscription that every caller of the project uses (reconnects, timeouts,
error rebuilding). An asyncio bus would need a second implementation of all of
that; a thread per waiting call keeps the one tested path. So every route runs
its bus work with :meth:`Calls.run`, which hands it to anyio's thread pool under
a :class:`anyio.CapacityLimiter` of its own: the loop keeps serving other
requests while calls wait, and a flood of slow calls queues at the limiter
instead of starting unbounded threads (each waiting call holds one thread, for
at most the call timeout).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread

__all__ = ["Calls", "DEFAULT_MAX_THREADS"]

#: Bus calls in flight at once, per server process (each holds one thread while it waits).
DEFAULT_MAX_THREADS = 64

T = TypeVar("T")


class Calls:
    """Runs blocking bus work off the event loop, bounded by one limiter."""

    def __init__(self, max_threads: int = DEFAULT_MAX_THREADS) -> None:
        self.max_threads = max_threads
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        # Created on first use, inside the running loop (anyio binds it to that loop).
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_threads)
        return self._limiter

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function(*args, **kwargs)`` in a worker thread; its result or its error."""
        return await anyio.to_thread.run_sync(
            partial(function, *args, **kwargs), limiter=self.limiter
        )
