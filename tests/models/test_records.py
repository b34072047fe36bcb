"""Models as records: round trips, construction, validation and coercion (the original API)."""

from __future__ import annotations

import json

import pytest

from commissaire_tasks.errors import (
    CoercionError,
    ValidationError,
)
from commissaire_tasks.models import (
    HOST_STATUSES,
    Cluster,
    ClusterDeploy,
    ClusterRestart,
    ClusterUpgrade,
    ContainerManagerConfig,
    Host,
    HostCreds,
    Hosts,
    Model,
    Network,
    model_types,
)
from tests.models.samples import IDS, SAMPLES, problems_of

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
        ContainerManagerConfig.new(name="", type="trivial"),  # openshift needs server_url
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
