"""The host tests' setup: one sshd, one storage worker and one host-services worker.

They live as long as the tests of this package (package scope), so the investigator
is unsubscribed before other tests create hosts. Each test takes a host address of
its own (``127.0.0.N:port`` on the shared sshd), so records, locks and known host
keys never mix between tests.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from commissaire_tasks import bus
from commissaire_tasks.errors import StorageLookupError
from commissaire_tasks.models import Host, HostCreds
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.storage.subscriptions import unsubscribe
from commissaire_tasks.testing import RedisServer, WorkerProcess

from .sshd import ADDRESSES, SSHServer, key_b64

#: Host services config of the test worker: test command sets, values the templates show.
FLANNEL_PREFIX = "/test/flannel"
REGISTRY_MIRROR = "http://mirror.test:5000"
FAILURES_BEFORE_UNREACHABLE = 2
#: Seconds an investigation gets in these tests (facts and bootstrap take a few).
INVESTIGATION_TIMEOUT_S = 90.0

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
            "name": "fail when asked",
            "command": f"if [ -e '{here}.fail' ]; then echo asked to fail; exit 3; fi",
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
def host_workers(
    redis_server: RedisServer, hosts_config: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, WorkerProcess]]:
    """A storage worker, and one worker serving the investigator and the watcher."""
    logs = tmp_path_factory.mktemp("host-worker-logs")
    storage = WorkerProcess(
        broker_url=redis_server.url,
        queues=["storage"],
        env={"COMMISSAIRE_SERVICES": "workers.storage"},
        log_dir=logs,
    ).start()
    services = WorkerProcess(
        broker_url=redis_server.url,
        queues=["investigator", "watcher"],
        concurrency=3,
        env={
            "COMMISSAIRE_SERVICES": "workers.investigator,workers.watcher",
            "COMMISSAIRE_CONFIG_FILE": str(hosts_config),
        },
        log_dir=logs,
    ).start()
    _wait_for_subscriptions({"investigator", "watcher"})
    yield {"storage": storage, "services": services}
    services.stop()
    unsubscribe("investigator")
    unsubscribe("watcher")
    storage.stop()
    redis_server.client().delete("investigator", "watcher")  # their queues


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
        for model in (Host.new(address=address), HostCreds.new(address=address)):
            try:
                storage.delete(model)
            except StorageLookupError:
                pass


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


def key_texts(key_file: Path) -> list[str]:
    """What would give a private key away: its base64 (as in HostCreds) and its body lines."""
    lines = key_file.read_text().splitlines()
    body = [line for line in lines if line and not line.startswith("-----")]
    return [key_b64(key_file), *body]


def assert_key_nowhere(
    key_file: Path,
    redis_server: RedisServer,
    workers: dict[str, WorkerProcess],
    *results: Any,
) -> None:
    """No run folder is left, and the key is in no worker log, Redis value or result."""
    from commissaire_tasks.hosts.keys import key_base

    assert list(key_base().glob("run-*")) == []
    texts = key_texts(key_file)
    places = {name: worker.log() for name, worker in workers.items()}
    places["results"] = json.dumps(results)
    places["redis"] = _everything_in(redis_server)
    for name, content in places.items():
        for text in texts:
            assert text not in content, f"the private key is in {name}"


def _everything_in(redis_server: RedisServer) -> str:
    """Every key and value in Redis, with queued messages' base64 bodies decoded too."""
    client = redis_server.client()
    values: list[Any] = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"string":
            values.append(client.get(key) or b"")
        elif kind == b"hash":
            values += [f for pair in client.hgetall(key).items() for f in pair]
        elif kind in (b"list", b"set", b"zset"):
            members = _members(client, key, kind)
            values += [*members, *(_message_body(m) for m in members)]
        values.append(key)
    return "\n".join(v.decode(errors="replace") for v in values)


def _members(client: Any, key: bytes, kind: bytes) -> list[Any]:
    if kind == b"list":
        return list(client.lrange(key, 0, -1))
    if kind == b"set":
        return list(client.smembers(key))
    return list(client.zrange(key, 0, -1))


def _message_body(member: Any) -> bytes:
    try:
        return base64.b64decode(json.loads(member)["body"])
    except (ValueError, KeyError, TypeError):
        return b""
