"""Model definitions: keys, secrets, list models, the type registry, errors on the wire."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import pytest

from commissaire_tasks import models
from commissaire_tasks.errors import (
    CoercionError,
    ValidationError,
    error_from_jsonrpc,
    jsonrpc_error,
)
from commissaire_tasks.models import (
    SECRET,
    WATCHER_TIMESTAMP_FORMAT,
    Cluster,
    Clusters,
    ContainerManagerConfig,
    ContainerManagerConfigs,
    Host,
    HostCreds,
    Hosts,
    HostStatus,
    ListModel,
    Model,
    Network,
    Networks,
    SecretModel,
    WatcherRecord,
    model_class,
    model_types,
)
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.testing import RecordingBus
from tests.models.samples import IDS, problems_of

# Hidden, secret and computed fields


def test_a_clusters_hostset_is_hidden_from_safe_renderings() -> None:
    cluster = Cluster.new(name="c", hostset=["10.0.0.1"])

    assert Cluster.hidden_fields() == frozenset({"hostset"})
    assert cluster.to_dict()["hostset"] == ["10.0.0.1"]
    assert "hostset" not in cluster.to_dict_safe()
    assert "hostset" not in json.loads(cluster.to_json_safe())
    assert cluster.to_dict_safe()["name"] == "c"


def test_host_creds_is_a_secret_model_whose_key_is_never_shown() -> None:
    creds = HostCreds.new(address="h", ssh_priv_key="PRIVATE")

    assert isinstance(creds, SecretModel) and HostCreds.secret and not Host.secret
    assert HostCreds.secret_fields() == frozenset({"ssh_priv_key"})
    assert creds.to_dict()["ssh_priv_key"] == "PRIVATE"
    assert creds.to_dict_safe() == {"address": "h", "remote_user": "root"}
    assert "PRIVATE" not in creds.to_json_safe()
    assert "PRIVATE" not in repr(creds)


def test_errors_about_a_secret_model_never_quote_its_values() -> None:
    with pytest.raises(ValidationError) as raised:
        HostCreds.from_dict({"address": "h", "ssh_key": "PRIVATE"})

    assert "PRIVATE" not in str(raised.value)
    assert "PRIVATE" not in " ".join(raised.value.errors)


def test_cluster_host_counts_are_rendered_but_never_stored() -> None:
    cluster = Cluster.new(name="c")
    cluster.hosts = {"total": 2, "available": 1, "unavailable": 1}

    assert "hosts" not in Cluster.stored_fields()
    assert "hosts" not in cluster.stored_dict()
    assert cluster.to_dict()["hosts"] == {"total": 2, "available": 1, "unavailable": 1}
    assert Cluster.new(name="d").hosts == {"total": 0, "available": 0, "unavailable": 0}


def test_stored_fields_are_every_field_but_the_computed_ones_in_order() -> None:
    assert Cluster.stored_fields() == ("name", "status", "network", "hostset", "container_manager")
    assert Host.stored_fields() == tuple(Host.model_fields)


def test_a_secret_field_on_an_ordinary_model_fails_at_definition() -> None:
    with pytest.raises(TypeError, match="SecretModel"):

        class Leaky(Model):
            password: Annotated[str, SECRET] = ""


# Keys


def test_primary_key_is_the_value_of_the_key_field() -> None:
    assert Host.new(address="h").primary_key == "h"
    assert Cluster.new(name="c").primary_key == "c"
    assert HostCreds.primary_key_field == "address"


@pytest.mark.parametrize("cls", [HostStatus, WatcherRecord, Hosts])
def test_a_model_without_a_key_has_no_primary_key(cls: type[Model]) -> None:
    assert cls.primary_key_field is None
    assert cls.new().primary_key is None


def test_a_key_field_that_is_not_a_field_fails_at_definition() -> None:
    with pytest.raises(TypeError, match="primary_key_field"):

        class Keyless(Model):
            primary_key_field = "id"

            name: str = ""


# List models


@pytest.mark.parametrize(
    ("list_cls", "child", "field"),
    [
        (Hosts, Host, "hosts"),
        (Clusters, Cluster, "clusters"),
        (Networks, Network, "networks"),
        (ContainerManagerConfigs, ContainerManagerConfig, "container_managers"),
    ],
)
def test_a_list_model_names_its_child_model_and_items_field(
    list_cls: type[ListModel], child: type[Model], field: str
) -> None:
    assert (list_cls.child_model, list_cls.items_field) == (child, field)
    assert list_cls.new().to_dict() == {field: []}


def test_a_list_model_renders_its_items() -> None:
    clusters = Clusters.new([Cluster.new(name="a", hostset=["h"]), Cluster.new(name="b")])

    assert [c["name"] for c in clusters.to_dict()["clusters"]] == ["a", "b"]
    assert clusters.to_dict()["clusters"][0]["hostset"] == ["h"]
    assert clusters.items == clusters.clusters


def test_a_list_model_renders_its_items_safely() -> None:
    clusters = Clusters.new([Cluster.new(name="a", hostset=["h"])])

    (safe,) = clusters.to_dict_safe()["clusters"]
    assert "hostset" not in safe and safe["name"] == "a"
    assert '"hostset"' not in clusters.to_json_safe()


def test_a_list_model_can_be_built_from_keywords_or_dicts() -> None:
    by_keyword = Networks.new(networks=[Network.new(name="n")])

    assert Networks.from_dict({"networks": [{"name": "n"}]}) == by_keyword


def test_a_list_model_rejects_its_items_given_twice() -> None:
    with pytest.raises(TypeError, match="twice"):
        Hosts.new([], hosts=[])


def test_a_list_model_with_other_fields_fails_at_definition() -> None:
    with pytest.raises(TypeError, match="exactly one field"):

        class Bad(ListModel):
            hosts: list[Host]
            count: int = 0


# Registry


@pytest.mark.parametrize("name", IDS)
def test_model_class_finds_every_model_by_class_name(name: str) -> None:
    cls = model_class(name)

    assert cls.__name__ == name and issubclass(cls, Model)


def test_model_class_rejects_an_unknown_name() -> None:
    with pytest.raises(ValidationError, match="unknown model type 'Hostt'"):
        model_class("Hostt")


def test_abstract_bases_are_not_registered() -> None:
    assert {"Model", "ListModel", "SecretModel"}.isdisjoint(model_types())


def test_model_types_is_a_copy() -> None:
    types: dict[str, Any] = model_types()
    types.clear()

    assert model_class("Host") is Host


def test_a_second_model_with_a_taken_name_fails_at_definition() -> None:
    with pytest.raises(TypeError, match="'Host' is taken"):

        class Host(Model):  # noqa: F811 - the clash is the point
            address: str = ""

    assert model_class("Host").__module__ == "commissaire_tasks.models.domain"


# WatcherRecord


def test_a_watcher_record_defaults_to_now_in_the_timestamp_format() -> None:
    record = WatcherRecord.new(address="h")

    parsed = datetime.strptime(record.last_check, WATCHER_TIMESTAMP_FORMAT)
    assert abs((datetime.now(UTC).replace(tzinfo=None) - parsed).total_seconds()) < 60
    record._validate()


def test_a_watcher_record_rejects_a_timestamp_in_another_format() -> None:
    record = WatcherRecord.new(address="h", last_check="2024-01-02 03:04:05")

    (problem,) = problems_of(record)
    assert problem.startswith("last_check: must be a timestamp")


# Errors the guide's code catches


def test_a_coercion_error_is_a_models_validation_error_naming_the_field() -> None:
    host = Host.new(address="h", cpus="many")

    with pytest.raises(models.ValidationError) as raised:
        host._coerce()

    assert isinstance(raised.value, models.CoercionError)
    assert [problem.split(":")[0] for problem in raised.value.errors] == ["cpus"]


@pytest.mark.reliability
def test_storage_client_save_names_every_bad_field_before_sending() -> None:
    bus = RecordingBus()
    storage = StorageClient(bus)
    host = Host.new(address="h", cpus="many", memory="lots", status="sleeping")

    with pytest.raises(models.ValidationError) as raised:
        storage.save(host)

    fields = sorted(problem.split(":")[0] for problem in raised.value.errors)
    assert fields == ["cpus", "memory", "status"]
    assert bus.calls == []


def test_storage_client_save_many_raises_validation_error_for_a_rule_broken() -> None:
    bus = RecordingBus()
    storage = StorageClient(bus)

    with pytest.raises(models.ValidationError, match="status"):
        storage.save_many([Host.new(address="a"), Host.new(address="b", status="sleeping")])
    assert bus.calls == []


def test_a_coercion_error_reaches_a_remote_caller_as_a_validation_error() -> None:
    error = jsonrpc_error(CoercionError("cannot coerce Host: cpus: bad", errors=["cpus: bad"]))

    rebuilt = error_from_jsonrpc(error)

    assert error["code"] == -32602
    assert isinstance(rebuilt, CoercionError) and isinstance(rebuilt, ValidationError)
    assert rebuilt.errors == ["cpus: bad"]
