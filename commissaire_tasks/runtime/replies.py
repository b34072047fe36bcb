"""The lean result path, caller side: one reply list per process, popped while waiting.

A caller on the lean path (:mod:`.backend`) names its reply list in each call's
``reply_to``; the worker stores the result under the task's key, as Celery
does, and pushes it onto that list in the same script (:mod:`.results`). A
waiting ``get()`` pops the list with ``BLMPOP`` (``BLPOP`` before Redis 7): one
command per result, or for every result already there, no
subscription per call, no ``sleep(0)`` loop. One thread pops at a time and hands
every result it pops to whoever waits for it (the others wait on a condition).

What the list cannot deliver, the result keys still do: a wait that hears
nothing for :data:`CHECK_KEYS_S` reads its keys (after a failover that lost a
push, a reply list that expired, a worker on Celery's path), and a result
this process did not send (``AsyncResult(id)`` of another process's call) is
polled from its key.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Any

from celery import states
from celery.backends.asynchronous import BaseResultConsumer, _waiting_on
from celery.exceptions import TimeoutError as CeleryTimeoutError
from redis.exceptions import ReadOnlyError, ResponseError

from .results import REPLY_TO_PREFIX, UNREACHABLE, reply_key

__all__ = ["CHECK_KEYS_S", "ReplyListConsumer"]

#: Seconds a wait that hears nothing on the reply list goes before it reads its keys.
CHECK_KEYS_S = 1.0
#: First and longest pause, in seconds, between reads of a result another process sent.
POLL_FIRST_S, POLL_MAX_S = 0.02, 0.5
#: Seconds between attempts to reach Redis again while a caller waits.
RECONNECT_PAUSE_S = 0.5
#: Most results one pop takes off the list (``BLMPOP``, Redis 7.0+).
POP_AT_MOST = 512
#: Call ids remembered as answered on this process's reply list (oldest forgotten first).
REMEMBERED_CALLS = 65536


class ReplyListConsumer(BaseResultConsumer):  # type: ignore[misc]
    """Celery's result consumer interface, served from one reply list (see the module)."""

    #: Celery's hook for every state a waiting call receives (set per wait).
    on_message: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A master demoted in a failover answers READONLY until the client finds the new one.
        self._connection_errors = (*UNREACHABLE, ReadOnlyError, *self.backend.connection_errors)
        self._reset()

    def _reset(self) -> None:
        """A reply list of this process's own (a forked child gets a new one)."""
        self._pid = os.getpid()
        self._reply_to = REPLY_TO_PREFIX + uuid.uuid4().hex
        self.reply_key = reply_key(self.backend, self._reply_to)
        self._expected: OrderedDict[str, None] = OrderedDict()
        #: Calls no longer awaited, forgotten from ``_expected`` at the next locked step.
        self._cancelled: deque[str] = deque()
        self._lock = threading.Lock()
        self._turn = threading.Condition(self._lock)
        self._reading = False
        self._pops_many = True

    @property
    def reply_to(self) -> str:
        """What this process's calls put in ``reply_to``."""
        if self._pid != os.getpid():
            self._reset()
        return self._reply_to

    def expect(self, task_id: str) -> None:
        """Note that ``task_id``'s result will come to this process's reply list."""
        with self._lock:
            self._forget_cancelled()
            self._expected[task_id] = None
            if len(self._expected) > REMEMBERED_CALLS:
                self._expected.popitem(last=False)

    @property
    def awaited(self) -> set[str]:
        """The calls whose results this process still expects on its reply list."""
        with self._lock:
            self._forget_cancelled()
            return set(self._expected)

    def _forget_cancelled(self) -> None:
        """Drop the calls :meth:`cancel_for` gave up on (the lock is held)."""
        while self._cancelled:
            self._expected.pop(self._cancelled.popleft(), None)

    # Celery's consumer interface: nothing to subscribe to or cancel.
    def start(self, initial_task_id: str, **kwargs: Any) -> None:
        pass

    def stop(self) -> None:
        pass

    def on_after_fork(self) -> None:
        self._reset()

    def consume_from(self, task_id: str) -> None:
        pass

    def cancel_for(self, task_id: str) -> None:
        """Stop expecting ``task_id`` (its result was fulfilled or dropped).

        ``AsyncResult.__del__`` calls this, so the garbage collector may run it in a
        thread that holds the lock already (inside :meth:`is_expected`, say): it takes
        no lock, and the next locked step forgets the call.
        """
        self._cancelled.append(task_id)

    def drain_events(self, timeout: float | None = None) -> None:
        self._pop_or_follow(timeout or CHECK_KEYS_S)

    def _wait_for_pending(
        self,
        result: Any,
        timeout: float | None = None,
        on_interval: Any = None,
        on_message: Any = None,
        **kwargs: Any,
    ) -> Iterator[None]:
        """Wait for ``result`` (an AsyncResult or a ResultSet); yield after each delivery."""
        deadline = None if timeout is None else time.monotonic() + timeout
        previous, self.on_message = self.on_message, on_message
        try:
            wait = _Wait(self, result, deadline)
            while not result.on_ready.ready:
                wait.step()
                if on_interval:
                    on_interval()
                yield
        finally:
            self.on_message = previous

    def _pop_or_follow(self, wait_s: float) -> bool:
        """Pop one result, or wait while another thread pops; False if nothing came."""
        with self._turn:
            if self._reading:
                self._turn.wait(wait_s)
                return True
            self._reading = True
        try:
            popped = self._pop(max(wait_s, 0.01))
            for raw in popped:
                self.on_state_change(self.backend.decode_result(raw), None)
            return bool(popped)
        finally:
            with self._turn:
                self._reading = False
                self._turn.notify_all()

    def _pop(self, wait_s: float) -> list[bytes]:
        """Every result waiting on the list (at most :data:`POP_AT_MOST`), once one is there."""
        client = self.backend.client
        if self._pops_many:
            try:
                popped = client.blmpop(
                    wait_s, 1, self.reply_key, direction="LEFT", count=POP_AT_MOST
                )
                return [] if popped is None else list(popped[1])
            except ResponseError as exc:
                if "unknown command" not in str(exc).lower():
                    raise
                self._pops_many = False  # before Redis 7.0: one result per pop
        popped = client.blpop([self.reply_key], timeout=wait_s)
        return [] if popped is None else [popped[1]]

    def read_keys(self, task_ids: list[str]) -> None:
        """Deliver whatever the result keys of ``task_ids`` already hold."""
        if not task_ids:
            return
        keys = [self.backend.get_key_for_task(task_id) for task_id in task_ids]
        for meta in self.backend.client.mget(keys):
            if meta:
                self.on_state_change(self.backend.decode_result(meta), None)

    def is_expected(self, task_ids: list[str]) -> bool:
        with self._lock:
            self._forget_cancelled()
            return all(task_id in self._expected for task_id in task_ids)

    def on_state_change(self, meta: dict[str, Any], message: Any) -> None:
        """Celery's delivery to waiting results, without its ``sleep(0)``."""
        if self.on_message:
            self.on_message(meta)
        if meta["status"] not in states.READY_STATES:
            return
        task_id = meta["task_id"]
        waiting = _waiting_on(self._pending_results, task_id)
        if not waiting:  # popped before its get() began: kept for it
            self._pending_messages.put(task_id, meta)
        for result in waiting:
            result._maybe_set_cache(meta)
            bucket = self.buckets.pop(result, None)
            if bucket is not None:
                bucket.append(result)


class _Wait:
    """One wait's state: its deadline, when it last read its keys, the last outage."""

    def __init__(self, consumer: ReplyListConsumer, result: Any, deadline: float | None) -> None:
        self.consumer = consumer
        self.result = result
        self.deadline = deadline
        self.expected = consumer.is_expected(self.pending_ids())
        self.keys_read_at = time.monotonic()
        self.poll_s = POLL_FIRST_S
        self.outage: BaseException | None = None

    def pending_ids(self) -> list[str]:
        results = getattr(self.result, "results", None)
        if results is None:
            return [self.result.id]
        return [r.id for r in results if getattr(r, "_cache", None) is None]

    def seconds_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def step(self) -> None:
        """Wait a little for a result; raise when the time is up."""
        left = self.seconds_left()
        if left <= 0:
            if self.outage is not None:
                raise self.outage
            raise CeleryTimeoutError("The operation timed out.")
        try:
            if self.expected:
                self._listen(left)
            else:
                self._poll(left)
            self.outage = None
        except self.consumer._connection_errors as exc:
            self.outage = exc
            self.keys_read_at = 0.0  # read the keys first thing once Redis is back
            time.sleep(min(RECONNECT_PAUSE_S, max(self.seconds_left(), 0)))

    def _listen(self, left: float) -> None:
        if time.monotonic() - self.keys_read_at >= CHECK_KEYS_S:
            self.consumer.read_keys(self.pending_ids())
            self.keys_read_at = time.monotonic()
            if self.result.on_ready.ready:
                return
        self.consumer._pop_or_follow(min(left, CHECK_KEYS_S))

    def _poll(self, left: float) -> None:
        self.consumer.read_keys(self.pending_ids())
        if not self.result.on_ready.ready:
            time.sleep(min(self.poll_s, left))
            self.poll_s = min(self.poll_s * 2, POLL_MAX_S)
