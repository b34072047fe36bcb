"""A private RabbitMQ node for tests that stop, restart or reconfigure their broker.

The shared RabbitMQ on 5672 serves other tests and other sessions, so a test that
restarts RabbitMQ starts a node of its own (own name, ports and folders) with
:func:`private_rabbit`, which stops it (by its pid if ``rabbitmqctl stop`` fails)
and removes its folders afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from commissaire_tasks.testing import free_port


class RabbitNode:
    """A private ``rabbitmq-server`` node on loopback ports of its own."""

    def __init__(self, directory: Path) -> None:
        self.name = f"ct{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.directory = directory
        self.pid_file = directory / "pid"
        (directory / "mnesia").mkdir(parents=True)
        (directory / "log").mkdir()
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (directory / "enabled_plugins").write_text("[].\n")
        self.env = {
            **os.environ,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(directory / "log"),
            "RABBITMQ_CONFIG_FILE": str(directory / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(directory / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
        }
        if os.geteuid() == 0:  # the server script runs itself as the rabbitmq user
            for path in [directory.parent, directory, *directory.rglob("*")]:
                shutil.chown(path, "rabbitmq", "rabbitmq")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def ctl(self, *args: str, timeout_s: float = 60) -> str:
        done = subprocess.run(
            ["rabbitmqctl", "-q", "-n", self.name, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        )
        return done.stdout

    def start(self) -> RabbitNode:
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env, check=True, timeout=30)
        self.ctl("wait", str(self.pid_file), "--timeout", "60", timeout_s=90)
        return self

    def stop(self) -> None:
        pid = self.pid_file.read_text().strip() if self.pid_file.exists() else ""
        try:
            self.ctl("stop", timeout_s=60)
        except (subprocess.SubprocessError, OSError):
            pass
        if pid:  # never leave the node behind
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass

    def queue_types(self) -> dict[str, str]:
        lines = self.ctl("list_queues", "name", "type", "--no-table-headers").splitlines()
        return dict(line.split("\t")[:2] for line in lines if "\t" in line)


@contextmanager
def private_rabbit() -> Iterator[RabbitNode]:
    """A started private node, stopped (and its folders removed) afterwards."""
    if shutil.which("rabbitmq-server") is None:
        pytest.skip("rabbitmq-server is not installed")
    # Not under pytest's tmp_path: its folders are private to this user, and the
    # node runs as the rabbitmq user.
    directory = Path(tempfile.mkdtemp(prefix="ct-rabbit-"))
    node = RabbitNode(directory / "node")
    try:
        node.start()
        yield node
    finally:
        node.stop()
        shutil.rmtree(directory, ignore_errors=True)
