"""RabbitMQ: quorum service queues, and a restart of RabbitMQ under load.

The shared RabbitMQ on 5672 serves other tests, so these start a private node of
their own (own name, ports and folders under the test's temporary directory)
and restart that one (``rabbitmqctl stop_app`` / ``start_app``). Results go to
the session's Redis. Each test prints its figures (run with ``-s``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from commissaire_tasks.testing import RedisServer, free_port
from tests.ledger import Ledger, restart_under_load

pytestmark = [pytest.mark.reliability, pytest.mark.rabbitmq]

#: Seconds every call sent before the restart gets to complete once RabbitMQ is back.
BOUND_S = 30.0


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


@pytest.fixture
def rabbit() -> Iterator[RabbitNode]:
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


def quorum_ledger(rabbit: RabbitNode, results: RedisServer, log_dir: Path) -> Ledger:
    """A ledger on quorum queues of the private node; results and records in Redis."""
    return Ledger(
        rabbit,
        log_dir,
        record_server=results,
        result_backend=results.url,
        extra_env={"COMMISSAIRE_QUEUE_TYPE": "quorum"},
        queue_type="quorum",
    )


def test_service_queues_are_quorum_queues_when_configured_and_calls_work(
    rabbit: RabbitNode, redis_server: RedisServer, tmp_path: Path
) -> None:
    ledger = quorum_ledger(rabbit, redis_server, tmp_path)
    with ledger.worker(concurrency=2):
        results = [ledger.send(token, seconds=0.05) for token in range(20)]
        assert [r.get(timeout=30) for r in results] == list(range(20))
    assert rabbit.queue_types()[ledger.queue["name"]] == "quorum"


def test_a_rabbitmq_restart_under_load_completes_every_call_soon_after(
    rabbit: RabbitNode, redis_server: RedisServer, tmp_path: Path
) -> None:
    ledger = quorum_ledger(rabbit, redis_server, tmp_path)
    restart = restart_under_load(
        ledger, lambda: rabbit.ctl("stop_app"), lambda: rabbit.ctl("start_app"), bound_s=BOUND_S
    )
    result = restart.figures("rabbitmq restart, 60 calls")
    assert result["completed"] == restart.sent, restart.log[-3000:]
    assert restart.seconds < BOUND_S
    restart.assert_only_calls_cut_by_the_outage_ran_twice()
