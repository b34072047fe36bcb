"""The cluster tests' setup: a private sshd whose loopback addresses are the hosts.

A test command set (OS ``debian``) makes each host's upgrade and restart
observable: they append lines to files under ``out_dir/<address>/``, a
``<address>.fail`` file makes a host's upgrade fail, and its upgrade waits while an
``<address>.slow`` file exists. ``<address>.ostree`` is the rpm-ostree marker of that
host, and a fake ``rpm-ostree`` writes its arguments to ``<address>/rpm-ostree``.
A storage worker and a clusterexec worker live as long as the package's tests.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from commissaire_tasks.errors import StorageLookupError
from commissaire_tasks.models import Cluster, Host, HostCreds
from commissaire_tasks.models.base import Model
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.testing import RedisServer, WorkerProcess
from tests.hosts.sshd import ADDRESSES, SSHServer, key_b64

#: Seconds an operation's lock lives without a refresh in these tests.
LOCK_TTL_S = 10
#: Seconds a whole operation may take in these tests (the machine is shared and slow).
OPERATION_TIMEOUT_S = 240.0

_addresses = itertools.count()


@pytest.fixture(scope="package")
def sshd() -> Iterator[SSHServer]:
    server = SSHServer().start()
    yield server
    server.close()


@pytest.fixture(scope="package")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cluster-out")


def _script(out_dir: Path, name: str, lines: list[str]) -> str:
    path = out_dir / name
    path.write_text("#!/bin/sh\nset -e\n" + "\n".join(lines) + "\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture(scope="package")
def cluster_config(tmp_path_factory: pytest.TempPathFactory, out_dir: Path) -> Path:
    here = f'"{out_dir}/$COMMISSAIRE_ADDRESS"'
    upgrade = _script(
        out_dir,
        "upgrade.sh",
        [
            f"mkdir -p {here}",
            f'echo "start $(date +%s.%N)" >> {here}/upgrade',
            f"while [ -e {here}.slow ]; do sleep 0.1; done",
            f"if [ -e {here}.fail ]; then echo asked to fail >&2; exit 3; fi",
            "sleep 0.2",
            f'echo "end $(date +%s.%N)" >> {here}/upgrade',
        ],
    )
    restart = _script(
        out_dir,
        "restart.sh",
        [
            f"mkdir -p {here}",
            f"echo restarted >> {here}/restart",
            # <address>.sshd holds the pid of the sshd to stop, as a reboot would
            f'if [ -e {here}.sshd ]; then sleep 1; kill "$(cat {here}.sshd)"; fi',
        ],
    )
    rpm_ostree = _script(
        out_dir, "rpm-ostree", [f"mkdir -p {here}", f'echo "$@" >> {here}/rpm-ostree']
    )
    sets = tmp_path_factory.mktemp("cluster-command-sets")
    command_set = {
        "os": ["debian"],
        "steps": [{"name": "nothing to bootstrap", "command": "true"}],
        "upgrade": upgrade,
        "restart": restart,
    }
    (sets / "debian.json").write_text(json.dumps(command_set))
    config = {
        "command_sets_dir": str(sets),
        "ostree_marker": f"{out_dir}/{{{{ commissaire_address }}}}.ostree",
        "rpm_ostree": rpm_ostree,
        "ssh_timeout_s": 15,
        "operation_lock_s": LOCK_TTL_S,
        "restart_down_timeout_s": 20,
        "restart_timeout_s": 30,
    }
    path = tmp_path_factory.mktemp("cluster-config") / "clusterexec.json"
    path.write_text(json.dumps(config))
    return path


class Workers:
    """The package's storage and clusterexec workers; a test may replace the latter."""

    def __init__(self, broker_url: str, config: Path, logs: Path) -> None:
        self.broker_url = broker_url
        self.config = config
        self.logs = logs
        self.storage = WorkerProcess(
            broker_url=broker_url,
            queues=["storage"],
            env={"COMMISSAIRE_SERVICES": "workers.storage"},
            log_dir=logs,
        )
        self.clusterexec = self.new_clusterexec()

    def new_clusterexec(self) -> WorkerProcess:
        return WorkerProcess(
            broker_url=self.broker_url,
            queues=["clusterexec"],
            concurrency=3,
            env={
                "COMMISSAIRE_SERVICES": "workers.clusterexec",
                "COMMISSAIRE_CONFIG_FILE": str(self.config),
            },
            log_dir=self.logs,
        )

    def kill_clusterexec_pool(self) -> None:
        """SIGKILL the clusterexec worker's pool processes and what they started."""
        pool = [psutil.Process(pid) for pid in self.clusterexec.pool_pids()]
        _kill([*pool, *(p for child in pool for p in child.children(recursive=True))])

    def crash_clusterexec(self) -> None:
        """SIGKILL the clusterexec worker and everything it started (Ansible, ssh)."""
        descendants = psutil.Process(self.clusterexec.pid).children(recursive=True)
        self.clusterexec.kill()
        _kill(descendants)


def _kill(processes: list[psutil.Process]) -> None:
    for process in processes:  # by pid: what the test's worker had started
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="package")
def workers(
    redis_server: RedisServer, cluster_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workers]:
    group = Workers(redis_server.url, cluster_config, tmp_path_factory.mktemp("cluster-logs"))
    group.storage.start(wait=False)
    group.clusterexec.start(wait=False)
    group.storage.wait_ready()
    group.clusterexec.wait_ready()
    yield group
    group.clusterexec.stop()
    group.storage.stop()
    redis_server.client().delete("clusterexec")


@pytest.fixture
def storage() -> StorageClient:
    return StorageClient()


MakeCluster = Callable[..., tuple[str, list[str]]]


@pytest.fixture
def make_cluster(
    workers: Workers, sshd: SSHServer, storage: StorageClient, out_dir: Path, unique: str
) -> Iterator[MakeCluster]:
    """Save ``n`` hosts (with creds, OS debian) and a cluster of them; (name, addresses)."""
    saved: list[Model] = []

    def make(n: int, server: SSHServer | None = None) -> tuple[str, list[str]]:
        server = server or sshd
        addresses = []
        for _ in range(n):
            address = f"{ADDRESSES[next(_addresses) % len(ADDRESSES)]}:{server.port}"
            for path in out_dir.glob(f"{address}*"):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            creds = HostCreds.new(address=address, ssh_priv_key=key_b64(server.client_key))
            saved.append(storage.save(creds))
            saved.append(storage.save(Host.new(address=address, os="debian", status="active")))
            addresses.append(address)
        name = f"c-{unique}-{len(saved)}"
        saved.append(storage.save(Cluster.new(name=name, hostset=addresses)))
        return name, addresses

    yield make
    for model in saved:
        try:
            storage.delete(model)
        except StorageLookupError:
            pass


def wait_for_record(
    storage: StorageClient,
    record: type[Model],
    name: str,
    timeout_s: float = OPERATION_TIMEOUT_S,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll until the operation record is no longer ``in_process``; it and every change seen."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        current = storage.get(record.new(name=name)).to_dict()
        if not seen or seen[-1] != current:
            seen.append(current)
        if current["status"] != "in_process":
            return current, seen
        time.sleep(0.05)
    raise AssertionError(f"{record.__name__} {name} still in_process; seen: {seen[-3:]}")


def wait_until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def upgrade_times(out_dir: Path, address: str) -> tuple[float, float]:
    """When the test upgrade command started and ended on ``address``."""
    lines = dict(line.split() for line in (out_dir / address / "upgrade").read_text().splitlines())
    return float(lines["start"]), float(lines["end"])
