"""A save validates its record once on each side: one pydantic pass in the client, one
in the storage service, and none for what the storage service answers.

Counted with a wrapper around pydantic's ``model_validate`` on the Host class; the
storage service runs in-process over the memory handler (its notifier with no one
subscribed and a broadcast channel no one listens on).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.fernet import Fernet

from commissaire_tasks.errors import CoercionError, ValidationError
from commissaire_tasks.models import Host
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.storage.routing import HandlerTable
from commissaire_tasks.storage.service import StorageService
from commissaire_tasks.testing import RedisServer, call_method, make_service

MEMORY = {"storage_handlers": [{"type": "memory", "models": ["Host"]}]}


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    seen: list[str] = []
    original = Host.model_validate.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Host], *args: Any, **kwargs: Any) -> Any:
        seen.append(cls.__name__)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Host, "model_validate", classmethod(counting))
    yield seen


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer) -> StorageService:
    monkeypatch.setenv("COMMISSAIRE_SECRETS_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("COMMISSAIRE_STORE_URL", redis_server.url)
    return make_service(StorageService, handlers=HandlerTable(MEMORY))


def host(**changes: Any) -> Host:
    fields = {"address": "10.9.0.1", "status": "active", "os": "fedora", "cpus": 4}
    return Host.new(**{**fields, **changes})


def test_the_storage_service_checks_a_saved_record_in_one_pass(
    service: StorageService, passes: list[str]
) -> None:
    saved = call_method(service, "save", "Host", {**host().to_dict(), "cpus": "4"})
    assert saved["cpus"] == 4
    assert passes == ["Host"]


def test_the_client_checks_once_and_trusts_the_answer(passes: list[str]) -> None:
    answer = {**host().to_dict(), "memory": 8192}

    class Answering:
        def call(self, routing_key: str, *args: Any, **kwargs: Any) -> Any:
            return answer

    stored = StorageClient(Answering()).save(host(cpus="4"))  # type: ignore[arg-type]
    assert (stored.memory, passes) == (8192, ["Host"])


def test_bad_data_still_gets_the_error_that_names_every_problem(
    service: StorageService,
) -> None:
    with pytest.raises(CoercionError, match="cpus"):
        StorageClient(object()).save(host(cpus="four"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="address"):
        call_method(service, "save", "Host", host(address="").to_dict())
