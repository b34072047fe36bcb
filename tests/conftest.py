"""Test session setup: a private Redis for the whole session, named in the environment.

The server starts before test modules are imported, so every app created while
importing (``workers.simple.app``, the default app) points at it.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from commissaire_tasks.testing import RedisServer
from tests import report

_SESSION_REDIS: RedisServer | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _SESSION_REDIS
    _SESSION_REDIS = RedisServer().start()
    os.environ["COMMISSAIRE_BROKER_URL"] = _SESSION_REDIS.url
    os.environ.pop("COMMISSAIRE_RESULT_BACKEND", None)
    os.environ.setdefault("COMMISSAIRE_CALL_TIMEOUT", "20")
    os.environ.setdefault("COMMISSAIRE_SECRETS_KEY", "8c4cOlEihStQz1A0l7Q8a6BJIf9uXiL4v7zE2bkZp2s=")
    if not hasattr(config, "workerinput"):  # the controller, under pytest-xdist
        report.reset(full_run=report.runs_whole_suite(config))  # this session's figures only


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SESSION_REDIS is not None:
        _SESSION_REDIS.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's Redis (started in pytest_configure)."""
    assert _SESSION_REDIS is not None
    yield _SESSION_REDIS


@pytest.fixture
def unique() -> str:
    """A unique suffix for queue, exchange and table names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """A RabbitMQ virtual host of this session's own, removed afterwards."""
    vhost = f"ct-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True)


#: The checkout's root: where subprocesses run, so ``workers`` and ``tests`` import.
ROOT = Path(__file__).resolve().parent.parent
Background = Callable[..., tuple[subprocess.Popen[bytes], Path]]


@pytest.fixture
def background(tmp_path: Path) -> Iterator[Background]:
    """Start a command with its output in a file; kill what is left of it afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        args: list[str], env: dict[str, str] | None = None
    ) -> tuple[subprocess.Popen[bytes], Path]:
        output = tmp_path / f"output-{len(started)}.log"
        with open(output, "wb") as file:
            process = subprocess.Popen(
                args, cwd=ROOT, env=env, stdout=file, stderr=subprocess.STDOUT
            )
        started.append(process)
        return process, output

    yield start
    for process in started:
        if process.poll() is None:
            descendants = psutil.Process(process.pid).children(recursive=True)
            for child in [*descendants, psutil.Process(process.pid)]:
                child.kill()
            process.wait()
