"""The storage service in a real worker, driven through StorageClient, per store handler."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from commissaire_tasks import models
from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import ConfigurationError, StorageLookupError, ValidationError
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.storage.routing import HandlerTable
from commissaire_tasks.storage.service import StorageService
from commissaire_tasks.testing import RedisServer, WorkerProcess, call_method, make_service

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "-----BEGIN KEY----- super-secret-" + uuid.uuid4().hex


def broker_db(redis_server: RedisServer, db: int) -> str:
    return redis_server.url.rsplit("/", 1)[0] + f"/{db}"


#: Every plain (non-secret) model, for the SQL handler configs.
SQL_MODELS = ["Host*", "Cluster*", "Network", "ContainerManagerConfig", "WatcherRecord"]


def handler_configs(tmp: Path) -> dict[str, dict[str, Any]]:
    def sql(url: str, **options: str) -> dict[str, Any]:
        return {"storage_handlers": [{"type": "sql", "models": SQL_MODELS, "url": url, **options}]}

    return {
        "redis": {},
        "postgresql": sql(POSTGRES, table=f"records_{uuid.uuid4().hex[:8]}"),
        "sqlite": sql(f"sqlite:///{tmp / 'records.db'}"),
    }


@pytest.fixture(
    scope="module",
    params=["redis", pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"],
)
def storage(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[StorageClient, WorkerProcess, str]]:
    tmp = tmp_path_factory.mktemp(f"storage-{request.param}")
    db = {"redis": 1, "postgresql": 2, "sqlite": 3}[request.param]
    url = broker_db(redis_server, db)
    config = tmp / "storage.json"
    config.write_text(json.dumps(handler_configs(tmp)[request.param]))
    worker = WorkerProcess(
        broker_url=url,
        app="workers.storage",
        concurrency=2,
        log_dir=tmp,
        extra_args=["--config-file", str(config)],
    )
    with worker:
        client = StorageClient(Bus(create_app(load_settings().replace(broker_url=url))))
        yield client, worker, url
    if request.param == "postgresql":
        import sqlalchemy

        engine = sqlalchemy.create_engine(POSTGRES)
        table = json.loads(config.read_text())["storage_handlers"][0]["table"]
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP TABLE IF EXISTS "{table}"'))
        engine.dispose()


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def sample_records() -> list[models.Model]:
    name = unique_name("c")
    return [
        models.Host.new(
            address=unique_name("10.0.0"),
            status="active",
            os="fedora",
            cpus=4,
            memory=8192,
            space=100,
        ),
        models.HostCreds.new(
            address=unique_name("10.0.1"), ssh_priv_key=SECRET, remote_user="admin"
        ),
        models.Cluster.new(name=name, status="ok", network="default", hostset=["10.1.1.1"]),
        models.ClusterDeploy.new(name=name, status="in_process", version="1.2", deployed=["a"]),
        models.ClusterRestart.new(
            name=name, status="in_process", restarted=["a"], in_process=["b"]
        ),
        models.ClusterUpgrade.new(name=name, status="finished", upgraded=["a"]),
        models.Network.new(
            name=unique_name("net"), type="flannel_server", options={"address": "10.2.0.0"}
        ),
        models.ContainerManagerConfig.new(name=unique_name("cm"), type="trivial", options={"x": 1}),
    ]


def test_every_model_round_trips(storage: tuple[StorageClient, WorkerProcess, str]) -> None:
    client, _, _ = storage
    for record in sample_records():
        saved = client.save(record)
        fetched = client.get(type(record).new(**{record.primary_key_field: record.primary_key}))
        assert fetched.to_dict() == saved.to_dict(), type(record).__name__
        for field, value in record.to_dict().items():
            if field != "hosts":
                assert getattr(fetched, field) == value, (type(record).__name__, field)


def test_an_update_is_read_back(storage: tuple[StorageClient, WorkerProcess, str]) -> None:
    client, _, _ = storage
    host = client.save(models.Host.new(address=unique_name("h"), status="investigating"))
    host.status = "active"
    client.save(host)
    assert client.get_host(host.address).status == "active"


def test_a_missing_record_raises_storage_lookup_error_naming_the_model(
    storage: tuple[StorageClient, WorkerProcess, str],
) -> None:
    client, _, _ = storage
    with pytest.raises(StorageLookupError) as error:
        client.get_cluster(unique_name("absent"))
    assert error.value.code == -20000
    assert "Cluster" in str(error.value)


def test_invalid_data_is_refused_locally_before_sending(
    storage: tuple[StorageClient, WorkerProcess, str],
) -> None:
    client, _, _ = storage
    network = models.Network.new(name=unique_name("n"), type="not-a-type")
    with pytest.raises(ValidationError) as error:
        client.save(network)
    assert [e.split(":")[0] for e in error.value.errors] == ["type"]


@pytest.mark.reliability
def test_invalid_data_sent_anyway_gets_validation_error_32602_from_the_worker_naming_each_field(
    storage: tuple[StorageClient, WorkerProcess, str],
) -> None:
    client, _, url = storage
    results = redis.Redis.from_url(url)

    def refused(model: str, data: dict[str, Any]) -> list[str]:
        """The fields the worker's ValidationError names; its code as stored must be -32602."""
        call = client.bus.send("storage.save", model, data)  # past the client's own check
        with pytest.raises(ValidationError) as error:
            call.get(timeout=20)
        stored = json.loads(results.get(f"celery-task-meta-{call.id}"))
        assert stored["result"]["error"]["code"] == -32602, stored
        return sorted(e.split(":")[0] for e in error.value.errors)

    # Data that does not fit the fields is refused, every such field named, before the
    # rules are checked...
    assert refused("Host", {"address": "", "cpus": "many", "memory": "lots"}) == ["cpus", "memory"]
    # ...and data that fits them gets every broken rule listed.
    assert refused("Network", {"name": "", "type": "not-a-type"}) == ["name", "type"]
    assert refused("NoSuchModel", {"name": "x"}) == ["unknown model type 'NoSuchModel'"]


def test_a_batch_with_one_bad_record_writes_nothing(
    storage: tuple[StorageClient, WorkerProcess, str],
) -> None:
    client, _, _ = storage
    good = models.Host.new(address=unique_name("good"))
    with pytest.raises(ValidationError):
        client.bus.call(
            "storage.save", "Host", [good.to_dict(), {"address": unique_name("bad"), "cpus": "x"}]
        )
    with pytest.raises(StorageLookupError):
        client.get(good)


def test_batches_save_get_and_delete_together(
    storage: tuple[StorageClient, WorkerProcess, str],
) -> None:
    client, _, _ = storage
    hosts = [models.Host.new(address=unique_name("b")) for _ in range(3)]
    assert [h.address for h in client.save_many(hosts)] == [h.address for h in hosts]
    assert [h.address for h in client.get_many(hosts)] == [h.address for h in hosts]
    client.delete_many(hosts)
    for host in hosts:
        with pytest.raises(StorageLookupError):
            client.get(host)


def test_list_returns_every_record_of_the_type(
    storage: tuple[StorageClient, WorkerProcess, str],
) -> None:
    client, _, _ = storage
    networks = [client.save(models.Network.new(name=unique_name("ln"))) for _ in range(2)]
    listed = client.list(models.Networks)
    names = {n.name for n in listed.networks}
    assert {n.name for n in networks} <= names


def test_a_cluster_carries_computed_host_counts(
    storage: tuple[StorageClient, WorkerProcess, str],
) -> None:
    client, _, _ = storage
    up = client.save(models.Host.new(address=unique_name("up"), status="active"))
    down = client.save(models.Host.new(address=unique_name("down"), status="failed"))
    cluster = client.save(
        models.Cluster.new(name=unique_name("cc"), hostset=[up.address, down.address])
    )
    fetched = client.get_cluster(cluster.name)
    assert fetched.hosts == {"total": 2, "available": 1, "unavailable": 1}


def test_list_store_handlers_describes_handlers_without_secrets(
    storage: tuple[StorageClient, WorkerProcess, str],
) -> None:
    client, _, _ = storage
    described = client.list_store_handlers()
    types = {d["type"] for d in described}
    assert "secrets" in types
    assert "HostCreds" in next(d for d in described if d["type"] == "secrets")["models"]
    assert os.environ["COMMISSAIRE_SECRETS_KEY"] not in json.dumps(described)


@pytest.mark.reliability
def test_list_store_handlers_shows_every_password_and_the_secrets_key_as_stars(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given handlers whose URLs carry a password (redis-py and SQLAlchemy connect lazily)
    password = "pw-" + uuid.uuid4().hex
    monkeypatch.setenv("COMMISSAIRE_STORE_URL", f"redis://:{password}@127.0.0.1:1/3")
    config = {
        "storage_handlers": [
            {"type": "redis", "name": "lab", "models": ["Network"],
             "url": f"redis://:{password}@127.0.0.1:1/2"},
            {"type": "sql", "models": ["Cluster"],
             "url": f"postgresql+psycopg://postgres:{password}@127.0.0.1:1/test"},
        ]
    }  # fmt: skip
    service = make_service(StorageService, handlers=HandlerTable(config))

    # When the service describes them
    described = call_method(service, "list_store_handlers")

    # Then no password or key is shown, and every URL shows its password as ***
    text = json.dumps(described)
    assert password not in text
    assert os.environ["COMMISSAIRE_SECRETS_KEY"] not in text
    urls = {d["name"]: d["config"]["url"] for d in described}
    assert set(urls) == {"lab", "sql", "secrets", "redis"}
    assert all(":***@127.0.0.1:1/" in url for url in urls.values()), urls


def test_bad_handler_configs_stop_the_service_at_start() -> None:
    bad = [
        {"storage_handlers": [{"type": "nosuch", "models": ["Host"]}]},
        {"storage_handlers": [{"type": "redis", "models": ["Nothing*"]}]},
        {
            "storage_handlers": [
                {"type": "redis", "models": ["Host"]},
                {"type": "redis", "name": "two", "models": ["Host"]},
            ]
        },
        {"storage_handlers": [{"type": "redis", "models": ["Host"], "no_such_option": 1}]},
        {"storage_handlers": [{"type": "redis", "models": ["HostCreds"]}]},
    ]
    for config in bad:
        with pytest.raises(ConfigurationError):
            StorageService.check_config(config)


def test_a_worker_with_a_bad_config_refuses_to_start(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps({"storage_handlers": [{"type": "nosuch", "models": ["Host"]}]}))
    worker = WorkerProcess(
        broker_url=broker_db(redis_server, 4),
        app="workers.storage",
        log_dir=tmp_path,
        extra_args=["--config-file", str(config)],
    )
    worker.start(wait=False)
    assert worker.process is not None
    assert worker.process.wait(30) != 0
    assert "nosuch" in worker.log()
