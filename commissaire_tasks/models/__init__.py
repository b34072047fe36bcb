"""The record models services exchange and storage keeps (see :mod:`.base` for the API)."""

from __future__ import annotations

from ..errors import CoercionError, ValidationError
from .base import ListModel, Model, SecretModel, model_class, model_types
from .domain import (
    CONTAINER_MANAGER_TYPES,
    HOST_STATUSES,
    NETWORK_TYPES,
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
    Network,
    Networks,
    WatcherRecord,
)
from .fields import (
    COMPUTED,
    HIDDEN,
    SECRET,
    FieldRole,
    non_empty,
    one_of,
    rule,
    timestamp,
)

__all__ = [
    # Bases and registry
    "Model",
    "ListModel",
    "SecretModel",
    "model_class",
    "model_types",
    # Errors (as in the original: ``except models.ValidationError``)
    "ValidationError",
    "CoercionError",
    # Field metadata and rules
    "FieldRole",
    "HIDDEN",
    "SECRET",
    "COMPUTED",
    "rule",
    "non_empty",
    "one_of",
    "timestamp",
    # Records
    "Host",
    "HostCreds",
    "HostStatus",
    "Cluster",
    "ClusterDeploy",
    "ClusterRestart",
    "ClusterUpgrade",
    "Network",
    "ContainerManagerConfig",
    "WatcherRecord",
    # Lists
    "Hosts",
    "Clusters",
    "Networks",
    "ContainerManagerConfigs",
    # Constants
    "HOST_STATUSES",
    "NETWORK_TYPES",
    "CONTAINER_MANAGER_TYPES",
    "WATCHER_TIMESTAMP_FORMAT",
]
