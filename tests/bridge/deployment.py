"""A deployment for the bridge tests: a worker, a bridge process and its settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from commissaire_tasks.testing import WorkerProcess
from tests.bridge_client import OriginalClient
from tests.conftest import ROOT

SERVICES = "workers.simple,workers.storage,tests.services"
QUEUES = ["simple", "my", "error", "introspect", "ledger", "storage"]
#: Seconds the bridge gets to say it is consuming.
READY_TIMEOUT_S = 30.0


@dataclass
class Deployment:
    """A worker and a bridge on one broker, and how to reach them as an original client."""

    broker_url: str
    exchange: str
    env: dict[str, str]
    bridge: subprocess.Popen[bytes]
    bridge_log: Path
    worker: WorkerProcess
    qkwargs_prefix: str

    def client(self) -> OriginalClient:
        return OriginalClient(self.broker_url, self.exchange)

    def log(self) -> str:
        return self.bridge_log.read_text(errors="replace")


def start_bridge(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``commissaire-tasks bridge`` in a subprocess; returns once it consumes."""
    with open(log, "ab") as file:
        process = subprocess.Popen(
            [sys.executable, "-m", "commissaire_tasks.cli", "bridge"],
            cwd=ROOT,
            env=env,
            stdout=file,
            stderr=subprocess.STDOUT,
        )
    wait_for(lambda: "Bridge ready" in log.read_text(errors="replace"), READY_TIMEOUT_S, log)
    return process


def stop_process(process: subprocess.Popen[bytes]) -> int | None:
    """SIGTERM, then SIGKILL (with any children) after 20 s; the exit code."""
    if process.poll() is not None:
        return process.returncode
    process.terminate()
    try:
        return process.wait(20)
    except subprocess.TimeoutExpired:
        for child in [*psutil.Process(process.pid).children(recursive=True)]:
            child.kill()
        process.kill()
        process.wait()
        return None


def wait_for(condition: Callable[[], bool], timeout_s: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            detail = log.read_text(errors="replace")[-3000:] if log else ""
            raise AssertionError(f"condition not met within {timeout_s} s\n{detail}")
        time.sleep(0.05)


def deployment_env(broker_url: str, backend: str | None, store_url: str, unique: str) -> dict:
    queue = f"myq{unique}"
    env = {
        **os.environ,
        "COMMISSAIRE_BROKER_URL": broker_url,
        "COMMISSAIRE_EXCHANGE": f"ct-{unique}",
        "COMMISSAIRE_BRIDGE_EXCHANGE": f"commissaire-{unique}",
        "COMMISSAIRE_BRIDGE_QUEUE": f"bridge-{unique}",
        "COMMISSAIRE_SERVICES": SERVICES,
        "COMMISSAIRE_QUEUES": json.dumps(
            [
                {"name": queue, "routing_key": f"queues.{queue}.*", "service": "my"},
                {"name": f"idle{unique}", "routing_key": f"queues.idle{unique}.*"},  # no worker
            ]
        ),
        "COMMISSAIRE_STORE_URL": store_url,
        "TEST_RECORD_URL": store_url,
    }
    if backend:
        env["COMMISSAIRE_RESULT_BACKEND"] = backend
    return env
