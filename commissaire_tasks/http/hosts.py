"""Hosts: list, read, create with credentials, delete, credentials, status.

Creating a host saves its Host record and its HostCreds (a secret model, sealed
by the storage client) through storage; the investigator takes the host up
from storage's "Host created" notification. Deleting it takes it out of any
cluster too (the container service deregisters it from that change).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..errors import ContainerManagerError
from ..models import Cluster, Clusters, Host, HostCreds, Hosts
from .auth.base import CREDS_ROLE, require_role
from .backend import Backend
from .errors import BadRequest, Conflict
from .paths import Address, add_route
from .schemas import ErrorBody, HostBody, HostStatusView

__all__ = ["router"]

router = APIRouter(tags=["hosts"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 404, 409, 503, 504)
}


def list_hosts(backend: Backend) -> list[dict[str, Any]]:
    return [host.to_dict() for host in backend.storage.list(Hosts).hosts]


def get_host(backend: Backend, address: str) -> dict[str, Any]:
    return backend.get(Host.new(address=address), f"host {address!r}").to_dict()


def create_host(backend: Backend, address: str | None, body: HostBody) -> dict[str, Any]:
    """Identical-or-refuse for a known host; otherwise save creds, host and membership."""
    address = _address(address, body.address)
    cluster = None
    if body.cluster is not None:
        cluster = backend.find(Cluster.new(name=body.cluster))
        if cluster is None:
            raise Conflict(f"cluster {body.cluster!r} does not exist")
    existing = backend.find(Host.new(address=address))
    if existing is not None:
        return _same_host(backend, existing, body, cluster)
    other = _cluster_of(backend, address)
    if other is not None and (cluster is None or other.name != cluster.name):
        raise Conflict(f"host {address!r} is already in cluster {other.name!r}")
    fields = body.model_dump(include={"status", "os", "cpus", "memory", "space"}, exclude_none=True)
    host = Host.checked({"address": address, **fields})
    creds = HostCreds.checked(
        {"address": address, "ssh_priv_key": body.ssh_priv_key, "remote_user": body.remote_user}
    )
    backend.storage.save(creds)
    saved = backend.storage.save(host)
    if cluster is not None and address not in cluster.hostset:
        cluster.hostset = [*cluster.hostset, address]
        backend.storage.save(cluster)
    return saved.to_dict_safe()


def _address(in_path: str | None, in_body: str | None) -> str:
    if in_path and in_body and in_path != in_body:
        raise BadRequest(f"address {in_body!r} in the body differs from {in_path!r} in the path")
    address = in_path or in_body
    if not address:
        raise BadRequest("a host address is needed, in the path or the body")
    return address


def _same_host(
    backend: Backend, host: Host, body: HostBody, cluster: Cluster | None
) -> dict[str, Any]:
    creds = backend.find(HostCreds.new(address=host.address))
    if creds is None or creds.ssh_priv_key != body.ssh_priv_key:
        raise Conflict(f"host {host.address!r} exists with another key")
    if cluster is not None and host.address not in cluster.hostset:
        raise Conflict(f"host {host.address!r} exists and is not in cluster {cluster.name!r}")
    return host.to_dict_safe()


def _cluster_of(backend: Backend, address: str) -> Cluster | None:
    for cluster in backend.storage.list(Clusters).clusters:
        if address in cluster.hostset:
            return cluster
    return None


def delete_host(backend: Backend, address: str) -> list[Any]:
    host = backend.get(Host.new(address=address), f"host {address!r}")
    cluster = _cluster_of(backend, address)
    if cluster is not None:
        cluster.hostset = [member for member in cluster.hostset if member != address]
        backend.storage.save(cluster)
    backend.storage.delete(host)
    if backend.find(HostCreds.new(address=address)) is not None:
        backend.storage.delete(HostCreds.new(address=address))
    return []


def get_creds(backend: Backend, address: str) -> dict[str, Any]:
    creds = backend.get(HostCreds.new(address=address), f"credentials of host {address!r}")
    return creds.to_dict()


def host_status(backend: Backend, address: str) -> dict[str, Any]:
    """The host's status and its container manager's node status (the result, no envelope)."""
    host = backend.get(Host.new(address=address), f"host {address!r}")
    cluster = _cluster_of(backend, address)
    node: dict[str, Any] = {}
    if cluster is not None and cluster.container_manager:
        try:
            node = backend.call("container.get_node_status", cluster.container_manager, address)
        except ContainerManagerError:
            node = {}
    return {
        "type": "host_only",
        "host": {"last_check": host.last_check, "status": host.status},
        "container_manager": node if isinstance(node, dict) else {"status": node},
    }


async def _list(request: Request) -> Any:
    return await _backend(request).run(list_hosts)


async def _get(request: Request, address: Address) -> Any:
    return await _backend(request).run(get_host, address)


async def _create(request: Request, address: Address, body: HostBody) -> Any:
    return await _backend(request).run(create_host, address, body)


async def _create_from_body(request: Request, body: HostBody) -> Any:
    return await _backend(request).run(create_host, None, body)


async def _delete(request: Request, address: Address) -> Any:
    return await _backend(request).run(delete_host, address)


async def _creds(request: Request, address: Address) -> Any:
    require_role(request, CREDS_ROLE)
    return await _backend(request).run(get_creds, address)


async def _status(request: Request, address: Address) -> Any:
    return await _backend(request).run(host_status, address)


def _backend(request: Request) -> Backend:
    return request.app.state.backend  # type: ignore[no-any-return]


_created: dict[str, Any] = {"status_code": 201, "responses": _ERRORS}
add_route(router, "GET", "/hosts/", _list, summary="Every host", responses=_ERRORS)
add_route(router, "GET", "/host/{address}/", _get, summary="One host", responses=_ERRORS)
add_route(router, "PUT", "/host/{address}/", _create, summary="Create a host", **_created)
add_route(
    router,
    "PUT",
    "/host/",
    _create_from_body,
    summary="Create a host (address in body)",
    **_created,
)
add_route(router, "DELETE", "/host/{address}/", _delete, summary="Delete a host", responses=_ERRORS)
add_route(
    router,
    "GET",
    "/host/{address}/creds",
    _creds,
    slash_optional=False,
    summary="A host's credentials (needs the 'creds' role)",
    responses={**_ERRORS, 403: {"model": ErrorBody}},
)
add_route(
    router,
    "GET",
    "/host/{address}/status/",
    _status,
    summary="A host's status and its container manager's node status",
    responses={200: {"model": HostStatusView}, **_ERRORS},
)
