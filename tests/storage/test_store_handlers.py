"""One contract, every store handler: memory, Redis, SQLite, PostgreSQL, secrets."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from commissaire_tasks.errors import ConfigurationError, StorageLookupError
from commissaire_tasks.storage.handlers import handler_class
from commissaire_tasks.storage.handlers.base import StoreHandler
from commissaire_tasks.testing import RedisServer

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
KINDS = [
    "memory",
    "redis",
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgres),
    "secrets",
]


def options_for(kind: str, redis_server: RedisServer, tmp_path: Path) -> tuple[str, dict[str, Any]]:
    unique = uuid.uuid4().hex[:8]
    return {
        "memory": ("memory", {}),
        "redis": ("redis", {"url": redis_server.url, "prefix": f"t{unique}"}),
        "sqlite": ("sql", {"url": f"sqlite:///{tmp_path / 'records.db'}", "table": f"r{unique}"}),
        "postgresql": ("sql", {"url": POSTGRES, "table": f"r{unique}"}),
        "secrets": ("secrets", {"url": redis_server.url, "prefix": f"s{unique}"}),
    }[kind]


def build(type_name: str, options: dict[str, Any]) -> StoreHandler:
    cls = handler_class(type_name)
    return cls(cls.check_config(options))


@pytest.fixture(params=KINDS)
def handler(
    request: pytest.FixtureRequest, redis_server: RedisServer, tmp_path: Path
) -> Iterator[StoreHandler]:
    type_name, options = options_for(request.param, redis_server, tmp_path)
    store = build(type_name, options)
    yield store
    if request.param == "postgresql":
        with store.engine.begin() as connection:  # type: ignore[attr-defined]
            connection.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{options["table"]}"'))
    store.close()


def test_a_saved_record_reads_back_equal(handler: StoreHandler) -> None:
    outcome = handler.save("Host", "h1", {"address": "h1", "cpus": 2})
    assert (outcome.event, outcome.revision, outcome.replayed) == ("created", 1, False)
    record = handler.get("Host", "h1")
    assert record.data == {"address": "h1", "cpus": 2}
    assert record.revision == 1


def test_a_missing_record_raises_a_lookup_error_naming_it(handler: StoreHandler) -> None:
    with pytest.raises(StorageLookupError) as error:
        handler.get("Host", "nope")
    assert error.value.data == {"model": "Host", "key": "nope"}


def test_every_update_bumps_the_revision_by_one(handler: StoreHandler) -> None:
    handler.save("Host", "h", {"v": 1})
    assert handler.save("Host", "h", {"v": 2}).event == "updated"
    assert handler.save("Host", "h", {"v": 3}).revision == 3


def test_revisions_survive_delete_and_recreate(handler: StoreHandler) -> None:
    handler.save("Host", "h", {"v": 1})
    deleted = handler.delete("Host", "h")
    assert (deleted.event, deleted.revision, deleted.data) == ("deleted", 2, {"v": 1})
    with pytest.raises(StorageLookupError):
        handler.get("Host", "h")
    with pytest.raises(StorageLookupError):
        handler.delete("Host", "h")
    again = handler.save("Host", "h", {"v": 2})
    assert (again.event, again.revision) == ("created", 3)


def test_a_replayed_write_is_not_written_again(handler: StoreHandler) -> None:
    first = handler.save("Host", "h", {"v": 1}, write_id="call-1")
    replay = handler.save("Host", "h", {"v": 1}, write_id="call-1")
    assert (replay.event, replay.revision, replay.replayed) == (first.event, first.revision, True)
    assert handler.get("Host", "h").revision == 1
    handler.delete("Host", "h", write_id="call-2")
    assert handler.delete("Host", "h", write_id="call-2").replayed is True


def test_list_returns_live_records_of_one_type_by_key(handler: StoreHandler) -> None:
    for key in ("b", "a", "c"):
        handler.save("Network", key, {"name": key})
    handler.save("Host", "x", {"address": "x"})
    handler.delete("Network", "c")
    assert [r.data["name"] for r in handler.list("Network")] == ["a", "b"]


def _save_concurrently(args: tuple[str, dict[str, Any], int]) -> tuple[str, int]:
    type_name, options, index = args
    store = build(type_name, options)
    outcome = store.save("Host", "contested", {"by": index})
    store.close()
    return outcome.event, outcome.revision


@pytest.mark.parametrize(
    "kind", ["redis", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "secrets"]
)
def test_concurrent_creates_of_one_record_count_one_created(
    kind: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    type_name, options = options_for(kind, redis_server, tmp_path)
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        outcomes = pool.map(_save_concurrently, [(type_name, options, i) for i in range(4)])
    assert sorted(o[0] for o in outcomes) == ["created", "updated", "updated", "updated"]
    assert sorted(o[1] for o in outcomes) == [1, 2, 3, 4]
    if kind == "postgresql":
        store = build(type_name, options)
        with store.engine.begin() as connection:  # type: ignore[attr-defined]
            connection.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{options["table"]}"'))


def test_the_secrets_handler_never_writes_plaintext(redis_server: RedisServer) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}"
    store = build("secrets", {"url": redis_server.url, "prefix": prefix})
    store.save("HostCreds", "h", {"ssh_priv_key": "PLAINTEXT-SECRET"})
    client = redis_server.client()
    for key in client.scan_iter(f"{prefix}*"):
        values = client.hvals(key) if client.type(key) == b"hash" else list(client.smembers(key))
        assert all(b"PLAINTEXT-SECRET" not in v for v in values)
    assert store.get("HostCreds", "h").data == {"ssh_priv_key": "PLAINTEXT-SECRET"}


@pytest.mark.parametrize(
    ("type_name", "options", "message"),
    [
        ("redis", {"no_such": 1}, "unknown option"),
        ("redis", {"prefix": 3}, "must be str"),
        ("sql", {}, "missing required"),
        ("sql", {"url": "not a url"}, "not a database URL"),
        ("secrets", {"key": "not-a-fernet-key"}, "not a valid Fernet key"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(
    type_name: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        handler_class(type_name).check_config(options)


def test_the_secrets_handler_refuses_to_start_without_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("COMMISSAIRE_SECRETS_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="COMMISSAIRE_SECRETS_KEY"):
        handler_class("secrets").check_config({})


def test_describe_hides_passwords_and_keys() -> None:
    store = build("secrets", {"url": "redis://:hunter2@127.0.0.1:6379/0"})
    described = str(store.describe())
    assert "hunter2" not in described
    assert "***" in described


def test_an_unknown_handler_type_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="known: .*redis"):
        handler_class("nosuch")
