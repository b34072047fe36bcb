"""Sample records of every model type, shared by the model tests."""

from __future__ import annotations

import pytest

from commissaire_tasks.errors import (
    ValidationError,
)
from commissaire_tasks.models import (
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
    Model,
    Network,
    Networks,
    WatcherRecord,
)


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
