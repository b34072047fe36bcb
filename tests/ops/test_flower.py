"""Flower as a real process on the session broker, watching a real worker, behind basic auth."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from commissaire_tasks import bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.runtime.app import create_app
from commissaire_tasks.runtime.events import task_events_state
from commissaire_tasks.testing import RedisServer, WorkerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
SERVICES = "workers.simple,tests.services"


def get(url: str, auth: str | None = None, timeout: float = 10) -> tuple[int, Any]:
    """GET ``url``; return the status and the decoded JSON body (or text)."""
    request = urllib.request.Request(url)
    if auth is not None:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    try:
        return status, json.loads(body)
    except json.JSONDecodeError:
        return status, body


def wait_until(check: Callable[[], Any], what: str, timeout_s: float = 20) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = check()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def task_events_on(hostname: str) -> bool:
    """Whether the worker sends task events now (workers send them while a monitor asks)."""
    app = create_app(load_settings(), services=())
    return bool(task_events_state(app, [hostname], timeout_s=2).get(hostname, {}).get("on"))


def test_flower_shows_workers_tasks_states_arguments_and_errors(
    redis_server: RedisServer,
    worker_factory: Callable[..., WorkerProcess],
    background: Callable[..., tuple[subprocess.Popen[bytes], Path]],
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    flower, log = background(
        [sys.executable, "-m", "celery", "-A", "commissaire_tasks", "flower",
         f"--port={port}", "--address=127.0.0.1", "--basic-auth=u:p"],
        {**os.environ, "COMMISSAIRE_SERVICES": SERVICES},
    )  # fmt: skip
    worker = worker_factory(queues=["simple", "my", "introspect"], services=SERVICES)
    wait_until(
        lambda: get(f"{base}/healthcheck")[0] == 200, f"Flower to listen; log:\n{log.read_text()}"
    )
    workers = wait_until(
        lambda: (
            (w := get(f"{base}/api/workers?refresh=1", "u:p")[1]) and worker.hostname in w and w
        ),
        "Flower to see the worker",
    )
    queues = {q["name"] for q in workers[worker.hostname]["active_queues"]}
    assert queues == {"simple", "my", "introspect"}
    # A worker started after Flower sends task events from Flower's next request (every 5 s).
    wait_until(lambda: task_events_on(worker.hostname), "Flower to ask for task events")

    added = bus.send("simple.add", 1, 2)
    failed = bus.send("my.fail")
    progressed = bus.send("introspect.progress", 3, 0.1)
    assert added.get() == 3 and progressed.get() == 3
    with pytest.raises(NotImplementedError):
        failed.get()

    def finished() -> dict[str, Any] | None:
        tasks = get(f"{base}/api/tasks", "u:p")[1]
        ours = {i: tasks.get(i) for i in (added.id, failed.id, progressed.id)}
        done = all(t and t["state"] in ("SUCCESS", "FAILURE") for t in ours.values())
        return ours if done else None

    tasks = wait_until(finished, "Flower to see the three calls finish")
    add, fail, progress = tasks[added.id], tasks[failed.id], tasks[progressed.id]
    assert (add["name"], add["state"], add["args"], add["result"]) == (
        "simple.add",
        "SUCCESS",
        "[1, 2]",
        "3",
    )
    assert add["worker"] == worker.hostname
    assert (fail["name"], fail["state"]) == ("my.fail", "FAILURE")
    assert "NotImplementedError" in fail["exception"] and "I was never created" in fail["exception"]
    assert "I was never created" in fail["traceback"]
    assert (progress["name"], progress["state"], progress["args"]) == (
        "introspect.progress",
        "SUCCESS",
        "[3, 0.1]",
    )

    assert get(f"{base}/api/workers")[0] == 401
    assert get(f"{base}/api/tasks", "u:wrong")[0] == 401
    assert get(f"{base}/", "u:wrong")[0] == 401
    assert flower.poll() is None


def test_the_flower_command_generates_a_password_and_hides_the_broker_password(
    redis_server: RedisServer, background: Callable[..., tuple[subprocess.Popen[bytes], Path]]
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COMMISSAIRE_FLOWER_AUTH", "FLOWER_BASIC_AUTH")
    }
    env["COMMISSAIRE_SERVICES"] = "workers.simple"
    # The password is wrong for this broker; Flower still serves its pages (and keeps retrying).
    url = redis_server.url.replace("redis://", "redis://:s3cr3t-broker@")
    command, log = background(
        [
            sys.executable,
            "-m",
            "commissaire_tasks.cli",
            "--bus-uri",
            url,
            "flower",
            f"--port={port}",
        ],
        env,
    )
    text = wait_until(lambda: "password" in (t := log.read_text()) and t, "the password line")
    password = re.search(r"Log in as 'admin' with password '([^']+)'", text)
    assert password is not None, text
    assert text.count(password.group(1)) == 1
    wait_until(
        lambda: get(f"{base}/healthcheck")[0] == 200, f"Flower to listen; log:\n{log.read_text()}"
    )
    assert get(f"{base}/", f"admin:{password.group(1)}")[0] == 200
    assert get(f"{base}/")[0] == 401
    flower_pids = [c.pid for c in psutil.Process(command.pid).children(recursive=True)]
    assert flower_pids
    assert "--basic-auth" not in " ".join(psutil.Process(flower_pids[0]).cmdline())

    command.send_signal(signal.SIGINT)
    assert command.wait(30) == 0
    assert not any(psutil.pid_exists(pid) for pid in flower_pids)
    assert "s3cr3t-broker" not in log.read_text()


def test_flower_without_auth_warns(
    redis_server: RedisServer, background: Callable[..., tuple[subprocess.Popen[bytes], Path]]
) -> None:
    port = free_port()
    command, log = background(
        [sys.executable, "-m", "commissaire_tasks.cli", "flower", f"--port={port}", "--no-auth"],
        {**os.environ, "COMMISSAIRE_SERVICES": "workers.simple"},
    )
    wait_until(lambda: "WITHOUT authentication" in log.read_text(), "the warning")
    wait_until(lambda: get(f"http://127.0.0.1:{port}/healthcheck")[0] == 200, "Flower to listen")
    assert get(f"http://127.0.0.1:{port}/")[0] == 200  # open, as asked
    command.send_signal(signal.SIGTERM)
    assert command.wait(30) == 0
