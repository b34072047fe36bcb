"""Request bodies and documented answers of the REST routes.

Bodies carry the original's keys; unknown keys are ignored as the original did.
The record rules themselves (statuses, network and manager types, timestamps)
are the models' (:mod:`commissaire_tasks.models`): a body that passes here is
checked again by the model before anything is stored, so the API and the bus
agree on what a valid record is.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .paths import ADDRESS_PATTERN, NAME_PATTERN

__all__ = [
    "ClusterBody",
    "ClusterView",
    "DeployBody",
    "ErrorBody",
    "HostBody",
    "HostStatusView",
    "MembershipBody",
    "NamedRecordBody",
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class HostBody(_Body):
    """A host to create (PUT ``/api/v0/host/{address}/`` or ``/api/v0/host/``)."""

    address: str | None = Field(
        None, pattern=ADDRESS_PATTERN, max_length=253, description="when not in the path"
    )
    ssh_priv_key: str = Field("", description="base64 of the SSH private key file")
    remote_user: str = Field("root", min_length=1, max_length=64)
    cluster: str | None = Field(
        None, pattern=NAME_PATTERN, max_length=253, description="a cluster to join"
    )
    status: str | None = None
    os: str | None = None
    cpus: int | None = Field(None, ge=0)
    memory: int | None = Field(None, ge=0)
    space: int | None = Field(None, ge=0)


class ClusterBody(_Body):
    """A cluster to create or update; fields left out keep their stored values."""

    network: str | None = Field(None, pattern=NAME_PATTERN, max_length=253)
    container_manager: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]*$", max_length=253, description="'' for unmanaged"
    )
    hostset: list[str] | None = Field(None, description="member host addresses")
    status: str | None = None


class MembershipBody(BaseModel):
    """Replace a cluster's members: ``old`` must be the current members (in any order)."""

    old: list[str]
    new: list[str]


class DeployBody(BaseModel):
    """The version to deploy."""

    version: str = Field(min_length=1, max_length=255)


class NamedRecordBody(_Body):
    """A network or container manager; defaults fill in what is left out."""

    type: str | None = None
    options: dict[str, Any] | None = None


class ClusterView(BaseModel):
    """A cluster with its computed status and host counts."""

    name: str
    status: str
    network: str
    container_manager: str
    hostset: list[str] = []
    hosts: dict[str, int]


class HostStatusView(BaseModel):
    """A host's status and, when its cluster is managed, its container manager's node status."""

    type: str
    host: dict[str, Any]
    container_manager: dict[str, Any]


class _ErrorDetail(BaseModel):
    code: str
    message: str
    jsonrpc_code: int | None = None
    details: Any = None


class ErrorBody(BaseModel):
    """Every error answer."""

    error: _ErrorDetail
