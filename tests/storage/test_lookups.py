"""Get and delete name a record by its key (and ``source``): the client sends no more.

The client talks to a storage service running in-process over memory handlers
(one named ``lab``, for Hosts whose ``source`` names it), through a bus that hands
each call to the service's method and keeps what was sent.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet

from commissaire_tasks.config import ENV_SECRETS_KEY
from commissaire_tasks.errors import StorageLookupError
from commissaire_tasks.models import Cluster, Host
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.storage.routing import HandlerTable
from commissaire_tasks.storage.service import StorageService
from commissaire_tasks.testing import RedisServer, call_method, make_service

HANDLERS = {
    "storage_handlers": [
        {"type": "memory", "models": ["Host", "Cluster"]},
        {"type": "memory", "name": "lab", "models": []},
    ]
}


class InProcessBus:
    """Runs ``storage.<method>`` calls on ``service`` here, keeping each call's parameters."""

    def __init__(self, service: StorageService) -> None:
        self.service = service
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    def call(self, routing_key: str, *args: Any, timeout: float | None = None) -> Any:
        method = routing_key.removeprefix("storage.")
        self.sent.append((method, args))
        return call_method(self.service, method, *args)


@pytest.fixture
def bus(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> InProcessBus:
    monkeypatch.setenv(ENV_SECRETS_KEY, Fernet.generate_key().decode())
    monkeypatch.setenv("COMMISSAIRE_STORE_URL", redis_server.url)  # its broadcast channel
    return InProcessBus(make_service(StorageService, handlers=HandlerTable(HANDLERS)))


def test_get_and_delete_send_the_key_alone(bus: InProcessBus) -> None:
    client = StorageClient(bus)
    client.save(Cluster.new(name="c1", hostset=["10.1.0.1"]))

    assert client.get(Cluster.new(name="c1")).hostset == ["10.1.0.1"]
    client.delete(Cluster.new(name="c1"))

    assert [sent for sent in bus.sent if sent[0] != "save"] == [
        ("get", ("Cluster", {"name": "c1"})),
        ("delete", ("Cluster", {"name": "c1"})),
    ]
    with pytest.raises(StorageLookupError):
        client.get(Cluster.new(name="c1"))


def test_a_host_with_a_source_is_read_and_deleted_where_that_source_keeps_it(
    bus: InProcessBus,
) -> None:
    client = StorageClient(bus)
    client.save(Host.new(address="10.2.0.1", source="lab", os="fedora"))
    lab = bus.service.handlers.for_model(Host, "lab").handler

    found = client.get_many([Host.new(address="10.2.0.1", source="lab")])

    assert [host.os for host in found] == ["fedora"]
    assert bus.sent[-1] == ("get", ("Host", [{"address": "10.2.0.1", "source": "lab"}]))
    with pytest.raises(StorageLookupError):  # not on the default handler
        client.get(Host.new(address="10.2.0.1"))
    client.delete(Host.new(address="10.2.0.1", source="lab"))
    with pytest.raises(StorageLookupError):
        lab.get("Host", "10.2.0.1")


def test_a_source_on_a_model_without_one_is_ignored(bus: InProcessBus) -> None:
    call_method(bus.service, "save", "Cluster", {"name": "c2"})
    assert (
        call_method(bus.service, "get", "Cluster", {"name": "c2", "source": "lab"})["name"] == "c2"
    )
