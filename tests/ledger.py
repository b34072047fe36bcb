"""A ledger of calls for fault tests: what started where, what completed, how often.

The ``ledger`` service (``tests.services.LedgerService``) records each start and
each completion of ``work`` with the call id and the pid that ran it, on a Redis
database the broker under test does not own (so a broker outage does not erase
the evidence). Tests wait on these records instead of sleeping: a kill happens
only once a call is known to be running, and the outcome of every call sent is
counted afterwards.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.testing import RedisServer, WorkerProcess


def done_tokens(record: redis.Redis, run: str) -> list[int]:
    """The token of every completed ``ledger.work`` of ``run``, in completion order."""
    return [json.loads(entry)["token"] for entry in record.lrange(f"ledger:{run}:done", 0, -1)]


@dataclass(frozen=True)
class Outcome:
    """What happened to the calls sent: the figures a reliability row asserts."""

    sent: int
    completed: int
    lost: int
    duplicated: int
    runs: dict[int, int]

    def figures(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "completed": self.completed,
            "lost": self.lost,
            "duplicated": self.duplicated,
        }


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


class Ledger:
    """A private queue served by the ledger service, and the records of its calls."""

    def __init__(
        self,
        broker: Any,
        log_dir: Path,
        visibility_s: int = 30,
        record_server: RedisServer | None = None,
        extra_env: dict[str, str] | None = None,
        result_backend: str | None = None,
        **settings: Any,
    ) -> None:
        """``broker``: anything with a ``url`` (a RedisServer, a RabbitMQ node); records go
        to ``record_server`` (the broker's server by default), database 8."""
        self.run = uuid.uuid4().hex[:8]
        self.queue = {
            "name": f"ledger_{self.run}",
            "routing_key": f"ledger_{self.run}.*",
            "service": "ledger",
        }
        self.url = broker.url
        self.result_backend = result_backend
        self.record_url = (record_server or broker).url.rsplit("/", 1)[0] + "/8"
        self.log_dir = log_dir
        self.env = {
            "COMMISSAIRE_SERVICES": "tests.services",
            "COMMISSAIRE_QUEUES": json.dumps([self.queue]),
            "COMMISSAIRE_VISIBILITY_TIMEOUT": str(visibility_s),
            "TEST_RECORD_URL": self.record_url,
            **(extra_env or {}),
        }
        caller = load_settings().replace(
            broker_url=self.url,
            result_backend=result_backend,
            queues=(self.queue,),
            visibility_timeout_s=visibility_s,
            **settings,
        )
        self.bus = Bus(create_app(caller))
        self.record = redis.Redis.from_url(self.record_url)

    def key(self, method: str) -> str:
        """The routing key of ``method`` on this ledger's queue."""
        return f"ledger_{self.run}.{method}"

    def worker(self, concurrency: int = 2) -> WorkerProcess:
        return WorkerProcess(
            broker_url=self.url,
            result_backend=self.result_backend,
            queues=[self.queue["name"]],
            concurrency=concurrency,
            env=self.env,
            log_dir=self.log_dir,
        )

    def send(self, token: int, seconds: float = 0.0) -> Any:
        return self.bus.send(self.key("work"), self.run, token, seconds)

    def tokens(self) -> list[int]:
        """The token of every completion, in completion order (a token twice: it ran twice)."""
        return done_tokens(self.record, self.run)

    def started(self) -> list[dict[str, Any]]:
        return self._entries("started")

    def done(self) -> list[dict[str, Any]]:
        return self._entries("done")

    def _entries(self, kind: str) -> list[dict[str, Any]]:
        raw = self.record.lrange(f"ledger:{self.run}:{kind}", 0, -1)
        return [json.loads(entry) for entry in raw]

    def running(self) -> list[dict[str, Any]]:
        """Starts with no completion by the same process: calls running right now."""
        finished = {(d["id"], d["pid"]) for d in self.done()}
        return [s for s in self.started() if (s["id"], s["pid"]) not in finished]

    def wait_running(
        self, pids: set[int], fresh_s: float, timeout_s: float = 30
    ) -> list[dict[str, Any]]:
        """Wait until each of ``pids`` runs a call that started less than ``fresh_s`` ago.

        A fresh start means the call is in its sleep, far from its completion and
        acknowledgement, so a kill now cuts it off (and cannot race its ack).
        """

        def fresh() -> list[dict[str, Any]]:
            now = time.time()
            calls = [c for c in self.running() if now - c["t"] < fresh_s and c["pid"] in pids]
            return calls if {c["pid"] for c in calls} == pids else []

        return wait_until(fresh, timeout_s, f"a fresh call running on each of {sorted(pids)}")

    def outcome(self, tokens: range) -> Outcome:
        """Count completions of ``tokens``: completed once or more, never, more than once."""
        runs = Counter(d["token"] for d in self.done() if d["token"] in tokens)
        return Outcome(
            sent=len(tokens),
            completed=sum(1 for t in tokens if runs[t]),
            lost=sum(1 for t in tokens if not runs[t]),
            duplicated=sum(n - 1 for n in runs.values() if n > 1),
            runs=dict(runs),
        )

    def last_first_completion(self, tokens: range) -> float:
        """When (``time.time()``) the last of ``tokens`` to complete first completed."""
        first: dict[int, float] = {}
        for entry in self.done():
            if entry["token"] in tokens:
                first.setdefault(entry["token"], entry["t"])
        return max(first.values(), default=0.0)

    def wait_all_done(self, tokens: range, timeout_s: float) -> Outcome:
        """Wait until every token completed at least once (or time runs out), then count."""
        try:
            wait_until(lambda: self.outcome(tokens).lost == 0, timeout_s, "every call to complete")
        except AssertionError:
            pass  # the caller asserts lost == 0 with the counts in the message
        return self.outcome(tokens)


def token_figures(name: str, sent: int, tokens: list[int], **extra: float) -> dict[str, float]:
    """Sent, completed and duplicated calls among ``tokens`` (plus ``extra``), printed."""
    counts = Counter(tokens)
    result: dict[str, float] = {
        "sent": sent,
        "completed": len(counts),
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
        **extra,
    }
    print(f"\n[outages] {name}: {json.dumps(result)}")
    return result


@dataclass(frozen=True)
class Restart:
    """What a broker restart under load did to the calls of :func:`restart_under_load`."""

    sent: int
    #: Completions in order; a token twice ran twice.
    tokens: list[int]
    done_at_stop: int
    done_at_start: int
    #: Seconds from the broker's start until the last call sent completed for the first
    #: time (a call never completed is left out: it counts as lost).
    seconds: float
    log: str
    #: The callers' handles of the calls sent (``AsyncResult``), in token order.
    results: list[Any]

    @property
    def lost(self) -> int:
        return self.sent - len(set(self.tokens))

    @property
    def duplicated(self) -> int:
        return len(self.tokens) - len(set(self.tokens))

    def figures(self, name: str) -> dict[str, float]:
        return token_figures(
            name,
            self.sent,
            self.tokens,
            lost=self.lost,
            done_at_stop=self.done_at_stop,
            done_during_outage=self.done_at_start - self.done_at_stop,
            seconds_after_restart=round(self.seconds, 2),
        )

    def assert_only_calls_cut_by_the_outage_ran_twice(self, at_most: int) -> None:
        """At most ``at_most`` calls ran twice, none more, and only calls whose first run
        ended around the outage (their acknowledgement could not reach the broker)."""
        first_runs = {token: self.tokens.index(token) for token in set(self.tokens)}
        counts = Counter(self.tokens)
        assert self.duplicated <= at_most, (self.duplicated, self.tokens)
        assert max(counts.values(), default=1) <= 2, counts
        for token, count in counts.items():
            if count > 1:
                assert self.done_at_stop - 2 <= first_runs[token] < self.done_at_start + 2, (
                    token,
                    self.tokens,
                )


#: Calls a broker restart may run twice in :func:`restart_under_load`: per pool process
#: (2), the call it was running and the one it had just finished when the broker went
#: away (their acknowledgements could not reach it).
DUPLICATED_AT_MOST = 4
#: Completions a restart test waits for before it stops the broker: the worker is
#: then in full flow (its prefetch filled, its pool busy).
DONE_BEFORE_STOP = 10


def restart_under_load(
    ledger: Ledger,
    stop: Callable[[], Any],
    start: Callable[[], Any],
    sent: int = 60,
    bound_s: float = 30.0,
) -> Restart:
    """Send ``sent`` short calls to two worker processes, ``stop`` the broker mid-load
    for 2 s, ``start`` it, and wait (up to ``bound_s``) until every call completed.

    The stop comes at a proven moment: once :data:`DONE_BEFORE_STOP` calls completed
    and the ledger shows one running (started, not completed), never after a guessed
    delay; a stop after the last call would prove nothing, so it fails the test.
    """
    with ledger.worker(concurrency=2) as worker:
        results = [ledger.send(token, seconds=0.05) for token in range(sent)]
        wait_until(
            lambda: len(ledger.tokens()) >= DONE_BEFORE_STOP and ledger.running(),
            30,
            f"{DONE_BEFORE_STOP} calls completed and one running",
        )
        done_at_stop = len(ledger.tokens())
        stop()
        assert done_at_stop < sent, "the broker stopped after the load had ended"
        time.sleep(2)
        done_at_start = len(ledger.tokens())
        start()
        started = time.time()
        ledger.wait_all_done(range(sent), bound_s)
        time.sleep(1)  # let a late duplicate show itself
        return Restart(
            sent,
            ledger.tokens(),
            done_at_stop,
            done_at_start,
            ledger.last_first_completion(range(sent)) - started,
            worker.log(),
            results,
        )
