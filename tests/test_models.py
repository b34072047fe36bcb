"""Unit tests for commissaire_tasks.models: the original model API on pydantic."""

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
    HOST_STATUSES,
    SECRET,
    WATCHER_TIMESTAMP_FORMAT,
    Cluster,
    ClusterDeploy,
    ClusterRestart,
    Clusters,
    ClusterUpgrade,
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


def samples() -> list[Model]:
    """One valid, non-default instance of every registered model type."""
    host = Host.new(address="10.0.0.1", status="active", os="fedora", cpus=4, memory=8192)
    cluster = Cluster.new(name="c1", status="ok", hostset=["10.0.0.1"], container_manager="cm")
    network = Network.new(name="n1", type="flannel_server", options={"address": "10.2.0.0:8080"})
    manager = ContainerManagerConfig.new(name="cm", type="trivial", options={"verify": False})
    return [
        host,
        HostCreds.new(address="10.0.0.1", ssh_priv_key="PRIVATE", remote_user="admin"),
        HostStatus.new(type="host_only", host={"status": "active"}, container_manager={}),
        cluster,
        ClusterDeploy.new(name="c1", status="in_process", version="1.2", deployed=["a"]),
        ClusterRestart.new(name="c1", status="in_process", restarted=["a"], in_process=["b"]),
        ClusterUpgrade.new(name="c1", status="finished", upgraded=["a", "b"]),
        network,
        manager,
        WatcherRecord.new(address="10.0.0.1"),
        Hosts.new([host]),
        Clusters.new([cluster]),
        Networks.new([network]),
        ContainerManagerConfigs.new([manager]),
    ]


SAMPLES = samples()
IDS = [type(sample).__name__ for sample in SAMPLES]


def problems_of(model: Model) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        model._validate()
    return raised.value.errors


# Round trips


def test_the_samples_cover_every_registered_model_type() -> None:
    assert sorted(IDS) == sorted(model_types())


@pytest.mark.parametrize("record", SAMPLES, ids=IDS)
def test_a_record_read_back_from_its_dict_equals_the_original(record: Model) -> None:
    assert type(record).from_dict(record.to_dict()) == record


@pytest.mark.parametrize("record", SAMPLES, ids=IDS)
def test_a_record_read_back_from_its_json_equals_the_original(record: Model) -> None:
    text = record.to_json()

    assert isinstance(text, str)
    assert type(record).from_json(text) == record
    assert type(record).from_dict(json.loads(text)) == record


@pytest.mark.parametrize("record", SAMPLES, ids=IDS)
def test_every_sample_passes_coercion_and_validation_unchanged(record: Model) -> None:
    before = record.to_dict()

    record._coerce()
    record._validate()

    assert record.to_dict() == before


def test_to_json_is_compact_json_of_to_dict() -> None:
    host = Host.new(address="h", cpus=2)

    assert host.to_json() == json.dumps(host.to_dict(), separators=(",", ":"))


# new()


def test_new_fills_every_default() -> None:
    assert Host.new(address="h").to_dict() == {
        "address": "h",
        "status": "",
        "os": "",
        "cpus": 0,
        "memory": 0,
        "space": 0,
        "last_check": "",
        "source": "",
        "reason": {},
    }
    assert HostCreds.new(address="h").remote_user == "root"
    assert Network.new(name="n").type == "flannel_etcd"
    assert ContainerManagerConfig.new(name="m").type == "openshift"
    assert Cluster.new(name="c").network == "default"


def test_new_gives_each_record_its_own_mutable_defaults() -> None:
    first, second = Cluster.new(name="a"), Cluster.new(name="b")

    first.hostset.append("10.0.0.1")
    first.hosts["total"] = 1

    assert second.hostset == []
    assert second.hosts["total"] == 0


@pytest.mark.parametrize(
    ("cls", "missing"),
    [(Host, "address"), (HostCreds, "address"), (Cluster, "name"), (Network, "name")],
)
def test_new_without_a_required_field_raises_type_error_naming_it(
    cls: type[Model], missing: str
) -> None:
    with pytest.raises(TypeError, match=f"missing required field.*'{missing}'"):
        cls.new()


def test_new_with_an_unknown_field_raises_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="unknown field.*'colour'"):
        Host.new(address="h", colour="blue")


def test_new_keeps_values_as_given_until_coercion() -> None:
    host = Host.new(address="h", cpus="4")

    assert host.to_dict()["cpus"] == "4"


# _validate()


def test_validate_lists_every_problem_at_once_and_names_the_model() -> None:
    host = Host.new(address="", status="sleeping", cpus="lots")

    with pytest.raises(ValidationError, match="Host") as raised:
        host._validate()

    fields = [problem.split(":")[0] for problem in raised.value.errors]
    assert sorted(fields) == ["address", "cpus", "status"]


def test_validate_checks_values_assigned_after_construction() -> None:
    host = Host.new(address="h")

    host.status = "sleeping"

    (problem,) = problems_of(host)
    assert problem.startswith("status: must be one of")
    assert "'sleeping'" in problem


@pytest.mark.parametrize("status", ["", *HOST_STATUSES])
def test_a_host_status_may_be_empty_or_any_known_status(status: str) -> None:
    Host.new(address="h", status=status)._validate()


def test_validate_does_not_cast_so_a_numeric_string_is_a_problem() -> None:
    (problem,) = problems_of(Host.new(address="h", cpus="4"))

    assert problem.startswith("cpus:")


def test_a_cluster_deploy_needs_a_name_and_a_version() -> None:
    problems = problems_of(ClusterDeploy.new())

    assert [p.split(":")[0] for p in problems] == ["name", "version"]


@pytest.mark.parametrize("cls", [ClusterRestart, ClusterUpgrade])
def test_a_cluster_operation_needs_a_name(cls: type[Model]) -> None:
    (problem,) = problems_of(cls.new())

    assert problem.startswith("name: must not be empty")


@pytest.mark.parametrize(
    "record",
    [
        Host.new(address=""),
        HostCreds.new(address=""),
        Cluster.new(name=""),
        Network.new(name=""),
        ContainerManagerConfig.new(name=""),
    ],
    ids=lambda record: type(record).__name__,
)
def test_every_keyed_record_needs_a_non_empty_key(record: Model) -> None:
    (problem,) = problems_of(record)

    assert problem.startswith(f"{record.primary_key_field}: must not be empty")


def test_network_and_container_manager_types_are_checked() -> None:
    (network_problem,) = problems_of(Network.new(name="n", type="vxlan"))
    (manager_problem,) = problems_of(ContainerManagerConfig.new(name="m", type="k8s"))

    assert "'flannel_etcd', 'flannel_server'" in network_problem
    assert "'openshift', 'trivial'" in manager_problem


def test_a_list_model_reports_the_problems_of_its_items_by_position() -> None:
    hosts = Hosts.new([Host.new(address="ok"), Host.new(address="", status="x")])

    problems = problems_of(hosts)

    assert sorted(problems) == sorted(
        [
            "hosts.1.address: must not be empty (got '')",
            "hosts.1.status: must be one of '', 'investigating', 'bootstrapping', "
            "'disassociated', 'active', 'failed', 'unreachable' (got 'x')",
        ]
    )


# _coerce()


def test_coerce_casts_each_attribute_to_its_declared_type_in_place() -> None:
    host = Host.new(address=10, cpus="4", memory="8192", space=3)

    host._coerce()

    assert (host.address, host.cpus, host.memory, host.space) == ("10", 4, 8192, 3)
    host._validate()


def test_coerce_raises_coercion_error_naming_the_field_and_the_value() -> None:
    host = Host.new(address="h", cpus="four")

    with pytest.raises(CoercionError, match=r"cpus.*'four'"):
        host._coerce()
    assert host.to_dict()["cpus"] == "four"


def test_coerce_casts_the_items_of_a_list_model() -> None:
    hosts = Hosts.new([Host.new(address="h", cpus="2")])

    hosts._coerce()

    assert hosts.hosts[0].cpus == 2


def test_coerce_leaves_rules_to_validation() -> None:
    host = Host.new(address="h", status="sleeping")

    host._coerce()

    assert problems_of(host)


# from_dict()


def test_from_dict_casts_numeric_strings_leniently() -> None:
    assert Host.from_dict({"address": "h", "cpus": "4"}).cpus == 4


def test_from_dict_reads_a_record_that_breaks_a_rule() -> None:
    assert Host.from_dict({"address": "h", "status": "retired"}).status == "retired"


def test_from_dict_rejects_bad_data_listing_every_problem() -> None:
    with pytest.raises(ValidationError, match="Host") as raised:
        Host.from_dict({"cpus": "four", "colour": "blue"})

    fields = sorted(problem.split(":")[0] for problem in raised.value.errors)
    assert fields == ["address", "colour", "cpus"]


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
