"""A Flower opened after the workers shows the calls that follow (task events on demand)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from commissaire_tasks import bus
from commissaire_tasks.testing import WorkerProcess, free_port
from tests.ops.test_flower import get, task_events_on, wait_until


def test_a_flower_started_after_the_workers_shows_the_calls_that_follow_within_seconds(
    worker_factory: Callable[..., WorkerProcess],
    background: Callable[..., tuple[subprocess.Popen[bytes], Path]],
) -> None:
    worker = worker_factory(queues=["simple"], services="workers.simple")
    assert bus.send("simple.add", 0, 0).get() == 0
    assert not task_events_on(worker.hostname)  # no monitor yet: no task events

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    _, log = background(
        [sys.executable, "-m", "commissaire_tasks.cli", "flower", f"--port={port}",
         "--basic-auth=u:p"],
        {**os.environ, "COMMISSAIRE_SERVICES": "workers.simple"},
    )  # fmt: skip
    wait_until(lambda: get(f"{base}/healthcheck")[0] == 200, f"Flower to listen: {log}")
    opened = time.monotonic()

    def shown(call_id: str) -> bool:
        task = get(f"{base}/api/tasks", "u:p")[1].get(call_id)
        return bool(task) and task["state"] == "SUCCESS"

    def call_until_shown() -> bool:
        call = bus.send("simple.add", 1, 2)
        assert call.get() == 3
        return wait_until_or_false(lambda: shown(call.id), 1)

    # Flower's receiver subscribes as it starts: within seconds a call shows, then all do.
    wait_until(call_until_shown, "Flower to show a call made after it opened", timeout_s=30)
    print(f"first call shown {time.monotonic() - opened:.1f} s after Flower listened")
    later = [bus.send("simple.add", i, i) for i in range(3)]
    assert [c.get() for c in later] == [0, 2, 4]
    wait_until(lambda: all(shown(c.id) for c in later), "Flower to show every later call")
    assert "Task events on: requested by" in worker.log()


def wait_until_or_false(check: Callable[[], bool], timeout_s: float) -> bool:
    try:
        wait_until(check, "", timeout_s)
    except AssertionError:
        return False
    return True
