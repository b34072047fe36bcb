"""Hosts in clusters over real SSH: the cluster's network and container manager decide the end."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from commissaire_tasks import bus
from commissaire_tasks.models import Cluster, ContainerManagerConfig, Network
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.testing import RedisServer, WorkerProcess

from .conftest import FLANNEL_PREFIX, AddHost, Save, wait_for_status
from .leaks import assert_key_nowhere
from .sshd import SSHServer

pytestmark = pytest.mark.usefixtures("host_workers")
DONE = ("active", "disassociated", "failed")
FLANNEL_SERVER = "10.9.0.1:8888"
FLANNEL_ETCD_KEY = f'FLANNEL_ETCD_KEY="{FLANNEL_PREFIX}"'


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_a_host_of_a_cluster_with_a_container_manager_is_registered_and_ends_active(
    add_host: AddHost,
    saved: Save,
    address: str,
    storage: StorageClient,
    out_dir: Path,
    sshd: SSHServer,
    key_dir: Path,
    redis_server: RedisServer,
    host_workers: dict[str, WorkerProcess],
) -> None:
    manager, network = unique("cm"), unique("net")
    saved(ContainerManagerConfig.new(name=manager, type="trivial"))
    saved(Network.new(name=network, type="flannel_server", options={"address": FLANNEL_SERVER}))
    saved(
        Cluster.new(name=unique("c"), network=network, container_manager=manager, hostset=[address])
    )

    add_host(address)
    host, seen = wait_for_status(storage, address, DONE)

    assert host.status == "active", host.reason
    assert "disassociated" not in seen  # bootstrapping until the manager registered it
    assert host.reason == {}
    assert bus.call("container.node_registered", manager, address) is True
    assert f"investigate {address}: register" in host_workers["services"].log()  # not membership
    flanneld = (out_dir / address / "flanneld").read_text()
    assert f'FLANNEL_OPTIONS="--remote={FLANNEL_SERVER}"' in flanneld
    assert "FLANNEL_ETCD" not in flanneld
    assert_key_nowhere(sshd.client_key, key_dir, redis_server, host_workers, host.to_dict())


def test_a_failed_registration_and_a_missing_cluster_network_fail_the_host_naming_the_step(
    add_host: AddHost,
    saved: Save,
    address: str,
    other_address: str,
    storage: StorageClient,
    out_dir: Path,
) -> None:
    unknown_manager, missing_network = unique("no-such-cm"), unique("no-such-net")
    # Network 'default', with no record of that name: the built-in default (flannel_etcd).
    saved(Cluster.new(name=unique("c"), container_manager=unknown_manager, hostset=[address]))
    saved(Cluster.new(name=unique("c"), network=missing_network, hostset=[other_address]))

    add_host(address)  # both are investigated at once
    add_host(other_address)
    unregistered, seen = wait_for_status(storage, address, DONE)
    no_network, _ = wait_for_status(storage, other_address, DONE)

    assert unregistered.status == "failed"
    assert "disassociated" not in seen
    assert unregistered.reason["step"] == "register"
    assert "StorageLookupError" in unregistered.reason["output"]
    assert unknown_manager in unregistered.reason["output"]
    assert FLANNEL_ETCD_KEY in (out_dir / address / "flanneld").read_text()  # bootstrapped first
    assert no_network.status == "failed"
    assert no_network.reason["step"] == "read cluster network"
    assert missing_network in no_network.reason["output"]
    assert no_network.os  # the facts were saved
    assert not (out_dir / other_address).exists()  # no bootstrap without the network
