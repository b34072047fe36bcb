"""The container service in a real worker on real Redis, driven over the bus."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis

from commissaire_tasks import bus
from commissaire_tasks.containers.table import ManagerTable
from commissaire_tasks.containers.trivial import TrivialManager
from commissaire_tasks.errors import ContainerManagerError, InvalidParams, StorageLookupError
from commissaire_tasks.models import ContainerManagerConfig
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.testing import RedisServer

from .apiserver import FakeNodeAPIServer
from .conftest import ContainerWorkers, Save, unique_name, wait_until

TOKEN = "service-test-token-91c2"


def registered(manager: str, address: str) -> bool:
    return bool(bus.call("container.node_registered", manager, address))


def test_a_trivial_manager_registers_reports_and_removes_nodes(
    workers: ContainerWorkers, saved: Save
) -> None:
    name = unique_name("cm")
    saved(ContainerManagerConfig.new(name=name, type="trivial"))

    assert bus.call("container.register_node", name, "10.4.0.1") is None
    bus.call("container.register_node", container_manager_name=name, address="10.4.0.2")

    assert registered(name, "10.4.0.1") and registered(name, "10.4.0.2")
    assert not registered(name, "10.4.0.3")
    status = bus.call("container.get_node_status", container_manager_name=name, address="10.4.0.1")
    assert status == {"node": "10.4.0.1", "status": "ok"}
    bus.call("container.remove_node", name, "10.4.0.1")
    assert not registered(name, "10.4.0.1")
    with pytest.raises(ContainerManagerError) as caught:
        bus.call("container.get_node_status", name, "10.4.0.1")
    assert caught.value.code == -20001 and caught.value.data["http_status"] == 404
    bus.call("container.remove_all_nodes", name)
    assert not registered(name, "10.4.0.2")


def test_an_unknown_manager_is_a_lookup_error_and_bad_params_are_refused(
    workers: ContainerWorkers,
) -> None:
    with pytest.raises(StorageLookupError) as caught:
        bus.call("container.register_node", unique_name("nobody"), "10.4.1.1")
    assert caught.value.code == -20000 and "no container manager" in caught.value.message
    with pytest.raises(InvalidParams):
        bus.call("container.register_node", "", "10.4.1.1")
    with pytest.raises(InvalidParams):
        bus.call("container.get_node_status", "x", "10.4.1.1", raw="yes")


def test_a_config_saved_a_moment_ago_is_found_before_its_notification_is_handled(
    workers: ContainerWorkers, saved: Save, redis_server: RedisServer
) -> None:
    # A process whose generation counter never moves: the notification "has not arrived".
    quiet = redis.Redis(host="127.0.0.1", port=redis_server.port, db=1)
    table = ManagerTable(StorageClient(), quiet, logging.getLogger("test"))
    table.names()  # loaded before the save
    name = unique_name("cm")
    saved(ContainerManagerConfig.new(name=name, type="trivial"))

    assert isinstance(table.get(name), TrivialManager)
    with pytest.raises(StorageLookupError) as caught:
        table.get(unique_name("nobody"))
    assert caught.value.code == -20000 and "no container manager" in caught.value.message
    assert quiet.dbsize() == 0  # no counter moved: storage answered the miss
    quiet.close()


def test_managers_and_their_nodes_survive_a_restart_of_the_service(
    workers: ContainerWorkers, saved: Save
) -> None:
    name = unique_name("cm")
    saved(ContainerManagerConfig.new(name=name, type="trivial"))
    bus.call("container.register_node", name, "10.4.2.1")
    late = unique_name("late")
    saved(ContainerManagerConfig.new(name=late, type="trivial"))
    workers.container.kill()  # before its notification may even have been handled

    workers.container = workers.start_container()

    assert registered(name, "10.4.2.1")
    bus.call("container.register_node", late, "10.4.2.2")
    assert registered(late, "10.4.2.2")


def test_every_process_follows_config_updates_and_deletes(
    workers: ContainerWorkers, saved: Save, tmp_path: Path
) -> None:
    name = unique_name("cm")
    config = ContainerManagerConfig.new(name=name, type="trivial")
    saved(config)
    bus.call("container.register_node", name, "10.4.3.1")

    with FakeNodeAPIServer() as server:
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN)
        options = {"server_url": server.url, "token_file": str(token_file)}
        saved(ContainerManagerConfig.new(name=name, type="kubernetes", options=options))
        # Calls land on both pool processes; each must have reloaded.
        wait_until(lambda: all(not registered(name, "10.4.3.1") for _ in range(6)))
        bus.call("container.register_node", name, "10.4.3.2")
        assert set(server.store.nodes) == {"10.4.3.2"}
        assert server.store.seen[-1].authorization == f"Bearer {TOKEN}"
    assert TOKEN not in workers.container.log()

    saved(config)  # back to trivial: its nodes were kept in Redis

    def back_to_trivial() -> bool:
        try:
            return all(registered(name, "10.4.3.1") for _ in range(6))
        except ContainerManagerError:  # a process that has not seen the change yet
            return False  # still asks the (stopped) API server

    wait_until(back_to_trivial)
    bus.call("storage.delete", "ContainerManagerConfig", {"name": name})

    def forgotten() -> bool:
        try:
            registered(name, "10.4.3.1")
        except StorageLookupError:
            return True
        return False

    wait_until(lambda: all(forgotten() for _ in range(6)))
