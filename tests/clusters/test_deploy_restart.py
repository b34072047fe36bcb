"""Deploy (rpm-ostree hosts only) and restart (waits for SSH to come back)."""

from __future__ import annotations

import time
from pathlib import Path

from commissaire_tasks import bus
from commissaire_tasks.models import ClusterDeploy, ClusterRestart
from commissaire_tasks.storage.client import StorageClient
from tests.hosts.sshd import SSHServer

from .conftest import MakeCluster, wait_for_record, wait_until


def test_deploy_runs_rpm_ostree_deploy_and_fails_clearly_on_other_hosts(
    make_cluster: MakeCluster, storage: StorageClient, out_dir: Path
) -> None:
    # Given two hosts of which only the second is rpm-ostree based
    name, hosts = make_cluster(2)
    (out_dir / f"{hosts[1]}.ostree").touch()

    # When version 42.1 is deployed one host at a time, going on after a failure
    started = bus.call("clusterexec.deploy", name, "42.1", on_failure="continue")
    assert started["version"] == "42.1" and started["status"] == "in_process"
    final, _ = wait_for_record(storage, ClusterDeploy, name)

    # Then the first host failed saying why, and the batch after it still ran
    assert list(final["failed"]) == [hosts[0]]
    assert "is not rpm-ostree based" in final["failed"][hosts[0]]
    assert final["deployed"] == [hosts[1]]
    assert (out_dir / hosts[1] / "rpm-ostree").read_text() == "deploy 42.1\n"
    assert not (out_dir / hosts[0]).exists()  # nothing ran on the other host
    assert final["status"] == "failed" and final["version"] == "42.1"


def test_a_restart_waits_until_the_host_answers_on_ssh_again(
    make_cluster: MakeCluster, storage: StorageClient, out_dir: Path
) -> None:
    # Given a host on an sshd of its own, whose restart command stops that sshd
    server = SSHServer().start()
    try:
        name, [host] = make_cluster(1, server=server)
        assert server.process is not None
        (out_dir / f"{host}.sshd").write_text(str(server.process.pid))

        # When the cluster is restarted and the host "goes down"
        bus.call("clusterexec.restart", name)
        wait_until(lambda: server.process.poll() is not None, 120, "the restart to stop sshd")
        assert (out_dir / host / "restart").read_text() == "restarted\n"

        # Then the host stays in process while its SSH port is closed
        time.sleep(1.5)  # the waiter's chance to give up or finish too early
        record = storage.get(ClusterRestart.new(name=name)).to_dict()
        assert record["status"] == "in_process" and record["in_process"] == [host]

        # and is restarted once SSH answers again
        server.start()
        final, _ = wait_for_record(storage, ClusterRestart, name)
        assert final["status"] == "finished", final
        assert final["restarted"] == [host] and final["in_process"] == []
    finally:
        server.close()
