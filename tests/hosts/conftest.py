"""The host tests' setup: one sshd, a storage and container worker, a host-services worker.

They live as long as the tests of this package (package scope), so the investigator,
the watcher and the container service are unsubscribed before other tests create
hosts. Each test takes a host address of its own (``127.0.0.N:port`` on the shared
sshd), so records, locks and known host keys never mix between tests. The workers
get a temporary folder of their own (``TMPDIR``), so their key folders are apart from
any other test run's on the machine; when the package ends, every key the tests
generated is looked for in Redis, the workers' logs and every file the tests and
workers wrote.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from commissaire_tasks import bus
from commissaire_tasks.errors import StorageLookupError
from commissaire_tasks.models import Cluster, ContainerManagerConfig, Host, HostCreds, Model
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.storage.subscriptions import unsubscribe
from commissaire_tasks.testing import RedisServer, WorkerProcess

from .leaks import assert_no_key_anywhere
from .sshd import ADDRESSES, SSHServer, key_b64

#: Host services config of the test worker: test command sets, values the templates show.
FLANNEL_PREFIX = "/test/flannel"
REGISTRY_MIRROR = "http://mirror.test:5000"
FAILURES_BEFORE_UNREACHABLE = 2
#: Seconds an investigation gets in these tests (facts and bootstrap take a few).
INVESTIGATION_TIMEOUT_S = 90.0
#: Seconds a worker gets to answer its first ping (a loaded machine needs more than 30).
READY_TIMEOUT_S = 120.0
#: Seconds a bootstrap waits at most while its host's ``.hold`` marker exists.
HOLD_MAX_S = 90

#: The checkout's root, where `celery -A workers...` runs.
ROOT_DIR = Path(__file__).resolve().parents[2]

_addresses = itertools.count()


@pytest.fixture(scope="package")
def sshd() -> Iterator[SSHServer]:
    server = SSHServer().start()
    yield server
    server.close()


@pytest.fixture(scope="package")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the test command set's steps write, one folder per host address."""
    return tmp_path_factory.mktemp("bootstrap-out")


@pytest.fixture(scope="package")
def command_sets_dir(tmp_path_factory: pytest.TempPathFactory, out_dir: Path) -> Path:
    """A debian command set whose steps are harmless and observable, and one that can fail."""
    folder = tmp_path_factory.mktemp("command-sets")
    here = f"{out_dir}/{{{{ commissaire_address }}}}"
    steps = [
        {"name": "make the output folder", "command": f"mkdir -p '{here}'"},
        {"name": "configure flannel", "template": "flanneld.j2", "dest": f"{here}/flanneld"},
        {"name": "configure docker", "template": "docker.j2", "dest": f"{here}/docker"},
        {
            "name": "enable and restart services",
            "services": ["flanneld-test", "docker-test"],
            "command": f"echo enabled {{{{ service }}}} >> '{here}/services'",
        },
        {
            "name": "wait or fail when asked",
            "command": (
                f"for i in $(seq {HOLD_MAX_S * 10}); do [ -e '{here}.hold' ] || break; "
                f"sleep 0.1; done; if [ -e '{here}.fail' ]; then echo asked to fail; exit 3; fi"
            ),
        },
    ]
    (folder / "debian.json").write_text(json.dumps({"os": ["debian"], "steps": steps}))
    return folder


@pytest.fixture(scope="package")
def hosts_config(tmp_path_factory: pytest.TempPathFactory, command_sets_dir: Path) -> Path:
    config = {
        "command_sets_dir": str(command_sets_dir),
        "flannel_key_prefix": FLANNEL_PREFIX,
        "registry_mirror": REGISTRY_MIRROR,
        "failures_before_unreachable": FAILURES_BEFORE_UNREACHABLE,
        "ssh_timeout_s": 5,
        "interval_s": 1,
    }
    path = tmp_path_factory.mktemp("config") / "hosts.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="package")
def worker_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The host workers' TMPDIR."""
    return tmp_path_factory.mktemp("worker-tmp")


@pytest.fixture(scope="package")
def key_dir(worker_tmp: Path) -> Path:
    """Where the host workers' run folders (keys, Ansible's files) live."""
    return worker_tmp / f"commissaire-hosts-{os.getuid()}"


@pytest.fixture(scope="package")
def host_workers(
    redis_server: RedisServer,
    hosts_config: Path,
    worker_tmp: Path,
    key_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, WorkerProcess]]:
    """A worker serving storage and the container service (the trivial manager registers
    hosts), and one serving the investigator and the watcher; both started at once."""
    logs = tmp_path_factory.mktemp("host-worker-logs")
    storage = WorkerProcess(
        broker_url=redis_server.url,
        queues=["storage", "container"],
        concurrency=3,  # container calls storage: never all processes waiting on it
        env={
            "COMMISSAIRE_SERVICES": "workers.storage,workers.container",
            "TMPDIR": str(worker_tmp),
        },
        log_dir=logs,
    ).start(wait=False)
    services = services_worker(redis_server, hosts_config, worker_tmp, logs).start(wait=False)
    for worker in (storage, services):
        worker.wait_ready(READY_TIMEOUT_S)
    _wait_for_subscriptions({"investigator", "watcher", "container"})
    yield {"storage": storage, "services": services}
    services.stop()
    for service in ("investigator", "watcher", "container"):
        unsubscribe(service)
    storage.stop()
    redis_server.client().delete("investigator", "watcher", "container")  # their queues
    ansible_home = Path.home() / ".ansible"  # the remote side's files: the sshd runs here
    assert_no_key_anywhere(redis_server, [tmp_path_factory.getbasetemp(), ansible_home], key_dir)


def services_worker(
    redis_server: RedisServer, hosts_config: Path, worker_tmp: Path, logs: Path
) -> WorkerProcess:
    """The worker serving the investigator and the watcher (not started)."""
    return WorkerProcess(
        broker_url=redis_server.url,
        queues=["investigator", "watcher"],
        concurrency=3,
        env={
            "COMMISSAIRE_SERVICES": "workers.investigator,workers.watcher",
            "COMMISSAIRE_CONFIG_FILE": str(hosts_config),
            "TMPDIR": str(worker_tmp),
        },
        log_dir=logs,
    )


def _wait_for_subscriptions(services: set[str], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        subscribed = {s["service"] for s in bus.call("storage.subscriptions")}
        if services <= subscribed:
            return
        time.sleep(0.1)
    raise AssertionError(f"{services} did not subscribe within {timeout_s} s")


@pytest.fixture
def address(sshd: SSHServer) -> str:
    """A host address of this test's own on the shared sshd."""
    return f"{ADDRESSES[next(_addresses)]}:{sshd.port}"


@pytest.fixture
def other_address(sshd: SSHServer, address: str) -> str:
    """A second host address of this test's own."""
    return f"{ADDRESSES[next(_addresses)]}:{sshd.port}"


@pytest.fixture
def storage() -> StorageClient:
    return StorageClient()


AddHost = Callable[..., Host]


@pytest.fixture
def add_host(storage: StorageClient, sshd: SSHServer) -> Iterator[AddHost]:
    """Save creds (the sshd's client key unless told otherwise), then the Host."""
    added: list[str] = []

    def add(address: str, key: str | None = None, **fields: Any) -> Host:
        creds = HostCreds.new(address=address, ssh_priv_key=key or key_b64(sshd.client_key))
        storage.save(creds)
        added.append(address)
        return storage.save(Host.new(address=address, **fields))

    yield add
    for address in added:
        delete_quietly(storage, Host.new(address=address), HostCreds.new(address=address))


Save = Callable[[Model], Model]


@pytest.fixture
def saved(storage: StorageClient, add_host: AddHost) -> Iterator[Save]:
    """Save clusters, networks, manager configs; delete them afterwards (before the hosts)."""
    records: list[Model] = []

    def save(model: Model) -> Model:
        records.append(model)
        return storage.save(model)

    yield save
    order: dict[type[Model], int] = {Cluster: 0, ContainerManagerConfig: 2}  # no members left
    delete_quietly(storage, *sorted(records, key=lambda m: order.get(type(m), 1)))


def delete_quietly(storage: StorageClient, *models: Model) -> None:
    for model in models:
        try:
            storage.delete(model)
        except StorageLookupError:
            pass


def dead_pid() -> int:
    """The pid of a process that has just exited."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(dead.stdout)


def leftover_folder(base: Path) -> Path:
    """A run folder with a key in ``base``, as a process that died mid-run leaves it."""
    left = base / f"run-{dead_pid()}-left"
    left.mkdir(parents=True)
    (left / "id_key").write_text("not a real key")
    return left


def wait_for_status(
    storage: StorageClient,
    address: str,
    statuses: tuple[str, ...],
    timeout_s: float = INVESTIGATION_TIMEOUT_S,
) -> tuple[Host, list[str]]:
    """Poll until the host has one of ``statuses``; the host and every status seen."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        host = storage.get_host(address)
        if not seen or seen[-1] != host.status:
            seen.append(host.status)
        if host.status in statuses:
            return host, seen
        time.sleep(0.1)
    raise AssertionError(f"{address} never reached {statuses}; statuses seen: {seen}")
