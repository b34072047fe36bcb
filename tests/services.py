"""Services the end-to-end tests run in real worker processes."""

from __future__ import annotations

import json
import os
import time
from functools import cached_property
from typing import Any

from commissaire_tasks.errors import ContainerManagerError, StorageLookupError
from commissaire_tasks.message import Message
from commissaire_tasks.service import CommissaireService


class CustomError(Exception):
    """An exception type callers do not know."""


class IntrospectService(CommissaireService):
    """Tells the caller what its message and process look like."""

    def on_describe(self, message: Message) -> dict[str, Any]:
        return {
            "id": message.id,
            "method": message.method,
            "routing_key": message.routing_key,
            "exchange": message.exchange,
            "queue": message.queue,
            "retries": message.retries,
            "has_request": message.request is not None,
            "headers_type": type(message.headers).__name__,
            "config": self.config,
        }

    def on_pid(self, message: Message) -> int:
        return os.getpid()

    def on_sleep(self, message: Message, seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    def on_add_all(self, message: Message, pairs: list[list[int]]) -> list[Any]:
        """Calls ``simple.add`` once per pair through ``call_many`` from inside a call."""
        return self.bus.call_many("simple.add", pairs, timeout=10)

    def on_progress(self, message: Message, steps: int, delay: float = 0.2) -> int:
        for step in range(steps):
            message.progress(step, steps, {"step": step})
            time.sleep(delay)
        return steps


class ErrorService(CommissaireService):
    """Raises one error of each kind."""

    def on_lookup(self, message: Message, key: str) -> None:
        raise StorageLookupError(f"no record {key!r}", data={"model": "Host", "key": key})

    def on_container(self, message: Message) -> None:
        raise ContainerManagerError("manager unreachable", data={"manager": "m1"})

    def on_custom(self, message: Message) -> None:
        raise CustomError("something odd")

    def on_key(self, message: Message) -> None:
        raise KeyError("missing")

    def on_typed(self, message: Message, count: int) -> int:
        if not isinstance(count, int):
            raise TypeError(f"count must be an int, not {type(count).__name__}")
        return count


class LedgerService(CommissaireService):
    """Records every start and every completion in Redis, so tests can count losses and duplicates.

    ``ledger.work(run, token, seconds)`` appends ``{token, id, pid, t}`` to
    ``ledger:<run>:started`` on ``$TEST_RECORD_URL``, sleeps, then appends the same
    to ``ledger:<run>:done``. A test waits for a recorded start before it kills
    anything, so the kill is known to cut a running call off. ``ledger.tally(run,
    token)`` only counts (``ledger:<run>:count`` and the set ``ledger:<run>:tokens``),
    for the drain of many calls. With ``$TEST_LEAK_BYTES`` set, each tally keeps that
    many bytes forever: how the drain test is shown to catch a leak.
    """

    @cached_property
    def record(self) -> Any:
        import redis

        return redis.Redis.from_url(os.environ["TEST_RECORD_URL"])

    def _entry(self, message: Message, token: int) -> str:
        return json.dumps(
            {
                "token": token,
                "id": message.id,
                "pid": os.getpid(),
                "t": time.time(),
                "redelivered": message.redelivered,
            }
        )

    def on_work(self, message: Message, run: str, token: int, seconds: float = 0.0) -> int:
        self.record.rpush(f"ledger:{run}:started", self._entry(message, token))
        time.sleep(seconds)
        self.record.rpush(f"ledger:{run}:done", self._entry(message, token))
        return token

    def on_flaky(self, message: Message, run: str, times: int) -> int:
        """Asks for a retry ``times`` times, then answers how often it was retried."""
        self.record.rpush(f"ledger:{run}:retries", message.retries)
        if message.retries < times:
            message.retry(countdown=0.1, max_retries=times)
        return message.retries

    def on_tally(self, message: Message, run: str, token: int) -> int:
        leak = int(os.environ.get("TEST_LEAK_BYTES", "0"))
        if leak:
            _LEAKED.append(b"x" * leak)
        pipe = self.record.pipeline(transaction=False)
        pipe.incr(f"ledger:{run}:count")
        pipe.sadd(f"ledger:{run}:tokens", token)
        pipe.execute()
        return token


#: What ``LedgerService.on_tally`` keeps when told to leak.
_LEAKED: list[bytes] = []
