"""One operation per cluster, and what a killed worker leaves behind: nothing stuck."""

from __future__ import annotations

from pathlib import Path

import pytest

from commissaire_tasks import bus
from commissaire_tasks.clusters.lock import lock_key
from commissaire_tasks.clusters.records import INTERRUPTED
from commissaire_tasks.errors import ClusterBusy
from commissaire_tasks.models import ClusterDeploy, ClusterUpgrade
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.testing import RedisServer

from .conftest import MakeCluster, Workers, wait_for_record, wait_until


def test_a_second_operation_of_any_type_is_refused_while_one_runs(
    make_cluster: MakeCluster, storage: StorageClient, out_dir: Path, redis_server: RedisServer
) -> None:
    # Given an upgrade running on a cluster (its host waits for the test)
    name, [host] = make_cluster(1)
    slow = out_dir / f"{host}.slow"
    slow.touch()
    bus.call("clusterexec.upgrade", name)

    # Then every other operation on that cluster is refused, naming the running one
    for call in (("upgrade", name), ("restart", name), ("deploy", name, "1.0")):
        with pytest.raises(ClusterBusy) as refused:
            bus.call(f"clusterexec.{call[0]}", *call[1:])
        assert refused.value.code == -32050
        assert "its upgrade is running" in str(refused.value) and name in str(refused.value)
        assert refused.value.data["running"] == "upgrade"

    # and once it has finished, its lock is released for the next one
    slow.unlink()
    final, _ = wait_for_record(storage, ClusterUpgrade, name)
    assert final["status"] == "finished" and final["upgraded"] == [host]
    assert redis_server.client().get(lock_key(name)) is None


def test_a_worker_killed_mid_operation_leaves_no_stuck_lock_nor_record_in_process(
    workers: Workers,
    make_cluster: MakeCluster,
    storage: StorageClient,
    out_dir: Path,
    redis_server: RedisServer,
) -> None:
    # Given an upgrade of two hosts whose first host is being upgraded
    name, hosts = make_cluster(2)
    slow = out_dir / f"{hosts[0]}.slow"
    slow.touch()
    bus.call("clusterexec.upgrade", name)
    wait_until((out_dir / hosts[0] / "upgrade").exists, 120, "the first host's upgrade")

    # When the clusterexec worker is SIGKILLed, and another one starts later
    workers.crash_clusterexec()
    slow.unlink()
    workers.clusterexec = workers.new_clusterexec().start()

    # Then the record is finished as failed: the host in process was interrupted
    final, _ = wait_for_record(storage, ClusterUpgrade, name)
    assert final["status"] == "failed" and final["finished_at"]
    assert final["failed"] == {hosts[0]: INTERRUPTED}
    assert final["in_process"] == [] and final["upgraded"] == []
    # and the lock is gone: the next operation is accepted
    assert redis_server.client().get(lock_key(name)) is None
    accepted = bus.call("clusterexec.deploy", name, "7")
    assert accepted["status"] == "in_process" and accepted["version"] == "7"
    final, _ = wait_for_record(storage, ClusterDeploy, name)  # nothing left running after
    assert list(final["failed"]) == [hosts[0]]  # not rpm-ostree based: the rest stopped


def test_a_host_whose_pool_process_was_killed_is_run_again_and_the_operation_finishes(
    workers: Workers, make_cluster: MakeCluster, storage: StorageClient, out_dir: Path
) -> None:
    # Given an upgrade whose host step is running in a pool process
    name, [host] = make_cluster(1)
    slow = out_dir / f"{host}.slow"
    slow.touch()
    bus.call("clusterexec.upgrade", name)
    wait_until((out_dir / host / "upgrade").exists, 120, "the host's upgrade")

    # When the pool processes are SIGKILLed (the worker itself lives on)
    workers.kill_clusterexec_pool()

    # Then the late-acknowledged task runs again and the operation finishes
    starts = lambda: (out_dir / host / "upgrade").read_text().count("start")  # noqa: E731
    wait_until(lambda: starts() == 2, 120, "the host's upgrade to run again")
    slow.unlink()
    final, _ = wait_for_record(storage, ClusterUpgrade, name)
    assert final["status"] == "finished", final
    assert final["upgraded"] == [host] and final["failed"] == {} and final["in_process"] == []
