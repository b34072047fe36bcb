"""A live queue under attack: raw entries pushed straight onto what a worker consumes.

Used by ``test_dead_letters``: :class:`Attack` pushes Redis list entries and
publishes AMQP messages with any properties, and checks that the worker, with a
valid call queued before and after each, answers both and dead-letters the rest.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kombu.connection import Connection

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.runtime import deadletters
from commissaire_tasks.testing import WorkerProcess


class Attack:
    """One broker's live queue, its worker, and a way to push raw entries onto it."""

    def __init__(self, kind: str, broker_url: str, backend: str | None, unique: str) -> None:
        self.kind = kind
        self.queue = f"dl_{unique}"
        self.prefix = f"dl.{unique}"
        self.spec = {"name": self.queue, "routing_key": f"{self.prefix}.*", "service": "my"}
        settings_ = load_settings().replace(
            broker_url=broker_url, result_backend=backend, queues=(self.spec,)
        )
        self.bus = Bus(create_app(settings_, services=()))
        self.broker_url = broker_url
        self.connection = Connection(broker_url)
        #: Raw inputs pushed, those whose checks all passed, and valid calls answered.
        self.tried = 0
        self.handled = 0
        self.answered = 0
        #: Names of the test functions that ran against this attack.
        self.ran: set[str] = set()
        self.worker: WorkerProcess | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``commissaire-tasks ARGS`` on this broker."""
        command = str(Path(sys.executable).parent / "commissaire-tasks")
        env = {**os.environ, "COMMISSAIRE_BROKER_URL": self.broker_url}
        return subprocess.run([command, *args], env=env, capture_output=True, text=True, timeout=60)

    def push(self, entry: bytes) -> None:
        """Redis only: push ``entry`` onto the queue's list exactly as given."""
        channel: Any = self.connection.default_channel
        with channel.conn_or_acquire() as client:
            client.lpush(self.queue, entry)

    def publish(self, body: bytes, content_type: Any, encoding: Any, headers: Any) -> None:
        """Put a message with these very properties on the queue, on either broker."""
        if self.kind == "redis":
            self.push(
                json.dumps(envelope(self.queue, body, content_type, encoding, headers)).encode()
            )
            return
        channel = self.connection.default_channel
        message = channel.prepare_message(
            body, content_type=content_type, content_encoding=encoding, headers=headers
        )
        channel.basic_publish(message, exchange="", routing_key=self.queue)

    def dead(self) -> int:
        return deadletters.count(self.connection, self.queue)

    def survives(self, push: Callable[[], None], dead_letters: int = 1) -> None:
        """Queue a call, ``push`` garbage, queue a call: both answer, the garbage is dead."""
        self.tried += 1
        before = self.dead()
        first = self.bus.send(f"{self.prefix}.echo", "before")
        push()
        second = self.bus.send(f"{self.prefix}.echo", "after")
        assert self.answer(first) == "before"
        assert self.answer(second) == "after"
        wait_for(lambda: self.dead() == before + dead_letters)
        self.assert_alive()
        self.handled += 1

    def assert_alive(self) -> None:
        assert self.worker is not None and self.worker.process is not None
        assert self.worker.process.poll() is None, self.worker.log()[-3000:]

    def answer(self, result: Any) -> Any:
        """The call's result; fails at once if the worker died meanwhile."""
        self.assert_alive()
        process: Any = self.worker.process  # type: ignore[union-attr]
        wait_for(lambda: result.ready() or process.poll() is not None, 15.0)
        self.assert_alive()
        answer = result.get(timeout=1)
        self.answered += 1
        return answer


def wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def envelope(
    queue: str, body: bytes, content_type: Any, encoding: Any, headers: Any
) -> dict[str, Any]:
    """A Redis list entry as kombu writes one."""
    return {
        "body": base64.b64encode(body).decode(),
        "content-encoding": encoding,
        "content-type": content_type,
        "headers": headers,
        "properties": {
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
            "delivery_mode": 2,
            "priority": 0,
            "delivery_info": {"exchange": "", "routing_key": queue},
        },
    }


def call_headers(task: str, **extra: Any) -> dict[str, Any]:
    return {"lang": "py", "task": task, "id": str(uuid.uuid4()), "retries": 0, **extra}


def call_body(*args: Any) -> bytes:
    return json.dumps([list(args), {}, {}]).encode()
