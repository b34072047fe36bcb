"""The concrete record models, with the fields and defaults of the original Commissaire.

Key fields are checked for emptiness by :meth:`Model._validate` itself; other
rules are declared next to their field (see :mod:`.fields`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from .base import ListModel, Model, SecretModel
from .fields import COMPUTED, HIDDEN, SECRET, non_empty, one_of, rules_context, timestamp
from .manager_options import option_problems

#: The statuses a Host moves through; an empty status means "not known yet".
HOST_STATUSES: tuple[str, ...] = (
    "investigating",
    "bootstrapping",
    "disassociated",
    "active",
    "failed",
    "unreachable",
)
#: The statuses of a cluster operation (ClusterUpgrade, ClusterRestart, ClusterDeploy).
OPERATION_STATUSES: tuple[str, ...] = ("in_process", "finished", "failed")
#: Network types a Network can have.
NETWORK_TYPES: tuple[str, ...] = ("flannel_etcd", "flannel_server")
#: Container managers a ContainerManagerConfig can configure (openshift = kubernetes).
CONTAINER_MANAGER_TYPES: tuple[str, ...] = ("kubernetes", "openshift", "trivial")
#: Format of WatcherRecord.last_check (UTC, microseconds), parsed with ``datetime.strptime``.
WATCHER_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"

#: A list of names (host addresses) defaulting to a new empty list.
Names = Annotated[list[str], Field(default_factory=list)]
#: Free-form options defaulting to a new empty dict.
Options = Annotated[dict[str, Any], Field(default_factory=dict)]


def _no_hosts() -> dict[str, int]:
    return {"total": 0, "available": 0, "unavailable": 0}


def _now() -> str:
    return datetime.now(UTC).strftime(WATCHER_TIMESTAMP_FORMAT)


class Host(Model):
    """A machine Commissaire manages; ``status`` is '' or one of :data:`HOST_STATUSES`.

    Statuses: ``investigating`` (the investigator took it: facts are being read),
    ``bootstrapping`` (facts saved, the OS command set is running), ``disassociated``
    (ready, in no managed cluster), ``active`` (registered with its cluster's container
    manager), ``failed`` (investigation or bootstrap failed: see ``reason``) and
    ``unreachable`` (the watcher's last checks in a row all failed; the status it had
    comes back when it answers again).

    ``reason`` says why the last investigation or check went wrong, ``{}`` when it
    did not: ``step`` (the named step that failed), ``exit_status`` (its exit status,
    or None when it never ran), ``output`` (the end of its output) and ``at`` (UTC
    timestamp). It never holds credentials.
    """

    primary_key_field = "address"

    address: str
    status: Annotated[str, one_of(("", *HOST_STATUSES))] = ""
    os: str = ""
    cpus: int = 0
    memory: int = 0
    space: int = 0
    last_check: str = ""
    source: str = ""
    reason: Options


class HostCreds(SecretModel):
    """How to log in to a Host; kept apart from Host so the key is never shown."""

    primary_key_field = "address"

    address: str
    ssh_priv_key: Annotated[str, SECRET] = ""
    remote_user: str = "root"


class HostStatus(Model):
    """A Host's status as reported by the host and its container manager (never stored)."""

    type: str = ""
    host: Options
    container_manager: Options


class Cluster(Model):
    """A set of hosts sharing a network and a container manager.

    ``hosts`` holds counts computed from the hostset whenever the cluster is read;
    it is never stored.
    """

    primary_key_field = "name"

    name: str
    status: str = ""
    network: str = "default"
    hostset: Annotated[Names, HIDDEN]
    container_manager: str = ""
    hosts: Annotated[dict[str, int], COMPUTED, Field(default_factory=_no_hosts)]


class _ClusterOperation(Model, abstract=True):
    """The fields every long-running cluster operation records.

    ``status`` is ``in_process`` while it runs, then ``finished`` (every host done)
    or ``failed`` (a host failed, or the operation was interrupted). ``in_process``
    lists the hosts being worked on right now; each host then moves to the finished
    list of the subclass or into ``failed`` (address -> reason).
    """

    primary_key_field = "name"

    name: str = ""
    status: Annotated[str, one_of(("", *OPERATION_STATUSES))] = ""
    started_at: str = ""
    finished_at: str = ""
    in_process: Names
    failed: Annotated[dict[str, str], Field(default_factory=dict)]


class ClusterDeploy(_ClusterOperation):
    """A deployment of ``version`` to a cluster's hosts (``rpm-ostree deploy``)."""

    version: Annotated[str, non_empty()] = ""
    deployed: Names


class ClusterRestart(_ClusterOperation):
    """A rolling restart of a cluster's hosts."""

    restarted: Names


class ClusterUpgrade(_ClusterOperation):
    """A rolling upgrade of a cluster's hosts."""

    upgraded: Names


class Network(Model):
    """A cluster network; ``type`` is one of :data:`NETWORK_TYPES`."""

    primary_key_field = "name"

    name: str
    type: Annotated[str, one_of(NETWORK_TYPES)] = "flannel_etcd"
    options: Options


class ContainerManagerConfig(Model):
    """How to reach a container manager; ``type`` is one of :data:`CONTAINER_MANAGER_TYPES`.

    ``kubernetes`` and ``openshift`` are one manager; their ``options`` are checked
    when the record is saved (see :mod:`.manager_options`: ``server_url``, the token
    and client key by file path, CA bundle, TLS verification on unless
    ``insecure_skip_tls_verify``). ``trivial`` keeps its nodes in Redis (tests, demos).
    """

    primary_key_field = "name"

    name: str
    type: Annotated[str, one_of(CONTAINER_MANAGER_TYPES)] = "openshift"
    options: Options

    @model_validator(mode="after")
    def _options_fit_type(self, info: ValidationInfo) -> ContainerManagerConfig:
        context = info.context if isinstance(info.context, dict) else {}
        if rules_context().items() <= context.items():
            problems = option_problems(self.type, self.options)
            if problems:
                # No location: the message names the options, and never quotes their values.
                raise PydanticCustomError("model_rule", "; ".join(problems))
        return self


class WatcherRecord(Model):
    """A host the watcher service checks, and when it last did (never stored by key)."""

    address: str = ""
    last_check: Annotated[str, timestamp(WATCHER_TIMESTAMP_FORMAT)] = Field(default_factory=_now)


class Hosts(ListModel):
    """Every Host."""

    hosts: list[Host] = Field(default_factory=list)


class Clusters(ListModel):
    """Every Cluster."""

    clusters: list[Cluster] = Field(default_factory=list)


class Networks(ListModel):
    """Every Network."""

    networks: list[Network] = Field(default_factory=list)


class ContainerManagerConfigs(ListModel):
    """Every ContainerManagerConfig."""

    container_managers: list[ContainerManagerConfig] = Field(default_factory=list)
