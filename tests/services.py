"""Services the end-to-end tests run in real worker processes."""

from __future__ import annotations

import os
import time
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
    """Records every completed execution in Redis, so tests can count losses and duplicates.

    ``ledger.work(token, seconds)`` sleeps, then appends ``token`` to the list
    ``ledger:<run>`` on ``$TEST_RECORD_URL``.
    """

    def on_work(self, message: Message, run: str, token: int, seconds: float = 0.0) -> int:
        import redis

        time.sleep(seconds)
        redis.Redis.from_url(os.environ["TEST_RECORD_URL"]).rpush(f"ledger:{run}", token)
        return token
