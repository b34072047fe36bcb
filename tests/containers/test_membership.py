"""Cluster membership drives registration, end to end through storage notifications."""

from __future__ import annotations

import pytest

from commissaire_tasks import bus
from commissaire_tasks.errors import ValidationError
from commissaire_tasks.models import Cluster, ContainerManagerConfig, Host
from commissaire_tasks.storage.client import StorageClient

from .conftest import ContainerWorkers, Save, unique_name, wait_until


def registered(manager: str, address: str) -> bool:
    return bool(bus.call("container.node_registered", manager, address))


def status(storage: StorageClient, address: str) -> str:
    return storage.get_host(address).status


def test_joining_leaving_and_deleting_a_managed_cluster(
    workers: ContainerWorkers, storage: StorageClient, saved: Save
) -> None:
    manager = unique_name("cm")
    saved(ContainerManagerConfig.new(name=manager, type="trivial"))
    ready, other, busy = (unique_name(f"10.5.0.{n}") for n in (1, 2, 3))
    saved(Host.new(address=ready, status="disassociated"))
    saved(Host.new(address=other, status="disassociated"))
    saved(Host.new(address=busy, status="bootstrapping"))
    name = unique_name("cluster")

    # Saved with ready hosts: they are registered and become active; a busy one waits.
    saved(Cluster.new(name=name, hostset=[ready, other, busy], container_manager=manager))
    wait_until(lambda: status(storage, ready) == status(storage, other) == "active")
    assert registered(manager, ready) and registered(manager, other)
    assert not registered(manager, busy) and status(storage, busy) == "bootstrapping"

    # One leaves the hostset: removed from the manager, back to disassociated.
    saved(Cluster.new(name=name, hostset=[ready, busy], container_manager=manager))
    wait_until(lambda: status(storage, other) == "disassociated")
    assert not registered(manager, other) and registered(manager, ready)

    # The cluster is deleted: every node it had is removed.
    storage.delete(Cluster.new(name=name))
    wait_until(lambda: status(storage, ready) == "disassociated")
    assert not registered(manager, ready)


def test_a_host_deleted_while_in_a_managed_cluster_is_removed(
    workers: ContainerWorkers, storage: StorageClient, saved: Save
) -> None:
    manager = unique_name("cm")
    saved(ContainerManagerConfig.new(name=manager, type="trivial"))
    address = unique_name("10.5.1.1")
    saved(Host.new(address=address, status="active"))
    saved(Cluster.new(name=unique_name("cluster"), hostset=[address], container_manager=manager))
    wait_until(lambda: registered(manager, address))

    storage.delete(Host.new(address=address))

    wait_until(lambda: not registered(manager, address))


def test_a_cluster_saved_before_its_manager_is_registered_when_the_manager_appears(
    workers: ContainerWorkers, storage: StorageClient, saved: Save
) -> None:
    manager = unique_name("cm")
    address = unique_name("10.5.2.1")
    saved(Host.new(address=address, status="disassociated"))
    saved(Cluster.new(name=unique_name("cluster"), hostset=[address], container_manager=manager))

    saved(ContainerManagerConfig.new(name=manager, type="trivial"))

    wait_until(lambda: status(storage, address) == "active")
    assert registered(manager, address)


def test_a_host_belongs_to_one_cluster_at_most(
    workers: ContainerWorkers, storage: StorageClient, saved: Save
) -> None:
    address = unique_name("10.5.3.1")
    first = unique_name("first")
    saved(Cluster.new(name=first, hostset=[address]))

    with pytest.raises(ValidationError) as caught:
        storage.save(Cluster.new(name=unique_name("second"), hostset=[address, "10.5.3.2"]))
    assert caught.value.errors == [f"hostset: host {address} is already in cluster {first!r}"]
    with pytest.raises(ValidationError):
        storage.save_many(
            [
                Cluster.new(name=unique_name("a"), hostset=["10.5.3.3"]),
                Cluster.new(name=unique_name("b"), hostset=["10.5.3.3"]),
            ]
        )
    saved(Cluster.new(name=first, hostset=[address, "10.5.3.4"]))  # its own cluster: fine
