"""Rolling upgrades: batches in order, the record always current, a failed host stops them."""

from __future__ import annotations

from pathlib import Path

import pytest

from commissaire_tasks import bus
from commissaire_tasks.models import ClusterUpgrade
from commissaire_tasks.storage.client import StorageClient

from .conftest import MakeCluster, upgrade_times, wait_for_record


def test_a_rolling_upgrade_upgrades_one_host_at_a_time_in_cluster_order(
    make_cluster: MakeCluster, storage: StorageClient, out_dir: Path
) -> None:
    # Given a cluster of three hosts, the last one rpm-ostree based
    name, hosts = make_cluster(3)
    (out_dir / f"{hosts[2]}.ostree").touch()

    # When it is upgraded with the default batch size (1)
    started = bus.call("clusterexec.upgrade", name)

    # Then the call answers at once with the record in process
    assert started["name"] == name
    assert started["status"] == "in_process"
    assert started["started_at"] and not started["finished_at"]
    final, seen = wait_for_record(storage, ClusterUpgrade, name)

    # and every host was upgraded, in order, never two at once
    assert final["status"] == "finished", final
    assert final["upgraded"] == hosts
    assert final["failed"] == {} and final["in_process"] == [] and final["finished_at"]
    assert max(len(record["in_process"]) for record in seen) == 1
    assert _order_in_process(seen) == hosts
    first, second = upgrade_times(out_dir, hosts[0]), upgrade_times(out_dir, hosts[1])
    assert first[1] <= second[0]
    # and the rpm-ostree host ran `rpm-ostree upgrade`, not the OS command
    assert (out_dir / hosts[2] / "rpm-ostree").read_text() == "upgrade\n"
    assert not (out_dir / hosts[2] / "upgrade").exists()


def _order_in_process(seen: list[dict]) -> list[str]:
    """The hosts in the order they first appeared in ``in_process``."""
    order: list[str] = []
    for record in seen:
        order += [h for h in record["in_process"] if h not in order]
    return order


def test_batches_of_two_start_the_next_batch_only_after_the_first(
    make_cluster: MakeCluster, storage: StorageClient, out_dir: Path
) -> None:
    # Given three hosts upgraded two at a time
    name, hosts = make_cluster(3)
    bus.call("clusterexec.upgrade", name, batch_size=2)
    final, seen = wait_for_record(storage, ClusterUpgrade, name)

    # Then all are upgraded, at most two in process at once
    assert final["status"] == "finished", final
    assert sorted(final["upgraded"][:2]) == sorted(hosts[:2])
    assert final["upgraded"][2] == hosts[2]
    assert max(len(record["in_process"]) for record in seen) <= 2
    # and the third started after both of the first batch ended
    third_start = upgrade_times(out_dir, hosts[2])[0]
    assert all(upgrade_times(out_dir, h)[1] <= third_start for h in hosts[:2])


def test_a_failed_host_stops_the_remaining_batches(
    make_cluster: MakeCluster, storage: StorageClient, out_dir: Path
) -> None:
    # Given two hosts, the first of which fails its upgrade
    name, hosts = make_cluster(2)
    (out_dir / f"{hosts[0]}.fail").touch()

    # When the cluster is upgraded one host at a time (on_failure="stop", the default)
    bus.call("clusterexec.upgrade", name)
    final, _ = wait_for_record(storage, ClusterUpgrade, name)

    # Then the record says which host failed and why
    assert final["status"] == "failed"
    assert list(final["failed"]) == [hosts[0]]
    assert "upgrade packages (exit status 3)" in final["failed"][hosts[0]]
    assert "asked to fail" in final["failed"][hosts[0]]
    assert final["in_process"] == [] and final["finished_at"]
    # and the other batch never ran (on_failure="continue" is in the deploy test)
    assert final["upgraded"] == []
    assert not (out_dir / hosts[1]).exists()


def test_bad_parameters_are_refused_with_clear_errors(make_cluster: MakeCluster) -> None:
    from commissaire_tasks.errors import InvalidParams, StorageLookupError

    name, _ = make_cluster(1)
    with pytest.raises(StorageLookupError):
        bus.call("clusterexec.upgrade", "no-such-cluster")
    with pytest.raises(InvalidParams, match="on_failure"):
        bus.call("clusterexec.upgrade", name, on_failure="retry")
    with pytest.raises(InvalidParams, match="batch_size"):
        bus.call("clusterexec.restart", name, batch_size=0)
    with pytest.raises(InvalidParams, match="version"):
        bus.call("clusterexec.deploy", name, "")
