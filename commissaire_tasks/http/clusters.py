"""Clusters and their membership.

A cluster is read with its computed status: ``ok``, ``degraded`` (some member
is not active) or ``failed`` (members, none active). A PUT on an existing
cluster changes only the fields it gives (the original reset the host list).
Membership changes save only the Cluster record: the container service
registers and deregisters members from storage's notification of that change,
and storage refuses a host that is already in another cluster (409).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..models import Cluster, Clusters, Host, Network
from .backend import Backend
from .errors import Conflict, HostNotReady, NotFound
from .paths import HostAddress, Name, add_route
from .schemas import ClusterBody, ClusterView, ErrorBody, MembershipBody

__all__ = ["cluster_status", "router"]

router = APIRouter(tags=["clusters"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 404, 405, 409, 503, 504)
}
#: Host statuses that may join a cluster.
READY_STATUSES = ("active", "disassociated")
DEFAULT_NETWORK = "default"


def cluster_status(hosts: dict[str, int]) -> str:
    """``ok``, ``degraded`` or ``failed`` from a cluster's host counts."""
    total, available = hosts.get("total", 0), hosts.get("available", 0)
    if total and not available:
        return "failed"
    return "degraded" if available < total else "ok"


def view(cluster: Cluster) -> dict[str, Any]:
    data = cluster.to_dict()
    data["status"] = cluster_status(cluster.hosts)
    return data


def list_clusters(backend: Backend) -> list[str]:
    return [cluster.name for cluster in backend.storage.list(Clusters).clusters]


def get_cluster(backend: Backend, name: str) -> Cluster:
    return backend.get(Cluster.new(name=name), f"cluster {name!r}")


def read_cluster(backend: Backend, name: str) -> dict[str, Any]:
    return view(get_cluster(backend, name))


def put_cluster(backend: Backend, name: str, body: ClusterBody) -> dict[str, Any]:
    """Create, or update only the given fields of, a cluster."""
    given = body.model_dump(exclude_none=True)
    cluster = backend.find(Cluster.new(name=name))
    if cluster is None:
        network = given.get("network", DEFAULT_NETWORK)
        if backend.find(Network.new(name=network)) is None:
            given["network"] = DEFAULT_NETWORK  # as the original: an unknown network is 'default'
        cluster = Cluster.checked({"name": name, **given})
    else:
        cluster = Cluster.checked({**cluster.stored_dict(), **given})
    saved = backend.storage.save(cluster)
    data = saved.to_dict_safe()
    data["status"] = cluster_status(saved.hosts)
    return data


def delete_cluster(backend: Backend, name: str) -> list[Any]:
    backend.storage.delete(get_cluster(backend, name))
    return []


def members(backend: Backend, name: str) -> list[str]:
    return list(get_cluster(backend, name).hostset)


def replace_members(backend: Backend, name: str, body: MembershipBody) -> dict[str, Any]:
    """``old`` must be the current members; every added host must be ready."""
    cluster = get_cluster(backend, name)
    if set(body.old) != set(cluster.hostset):
        raise Conflict(
            f"'old' does not match the members of cluster {name!r}",
            details={"members": cluster.hostset},
        )
    added = [a for a in dict.fromkeys(body.new) if a not in cluster.hostset]
    _check_ready(backend, added)
    _check_free(backend, added, name)
    cluster.hostset = list(dict.fromkeys(body.new))
    return view(backend.storage.save(cluster))


def is_member(backend: Backend, name: str, address: str) -> list[str]:
    if address not in get_cluster(backend, name).hostset:
        raise NotFound(f"host {address!r} is not in cluster {name!r}")
    return [address]


def add_member(backend: Backend, name: str, address: str) -> list[str]:
    cluster = get_cluster(backend, name)
    if address not in cluster.hostset:
        _check_ready(backend, [address])
        _check_free(backend, [address], name)
        cluster.hostset = [*cluster.hostset, address]
        backend.storage.save(cluster)
    return [address]


def remove_member(backend: Backend, name: str, address: str) -> list[Any]:
    cluster = get_cluster(backend, name)
    if address in cluster.hostset:
        cluster.hostset = [member for member in cluster.hostset if member != address]
        backend.storage.save(cluster)
    return []


def _check_ready(backend: Backend, addresses: list[str]) -> None:
    """NotFound for an unknown host; HostNotReady listing every host not ready."""
    not_ready = []
    for address in addresses:
        host = backend.get(Host.new(address=address), f"host {address!r}")
        if host.status not in READY_STATUSES:
            not_ready.append({"address": address, "status": host.status})
    if not_ready:
        listed = ", ".join(repr(h["address"]) for h in not_ready)
        raise HostNotReady(
            f"not ready to join (needs status active or disassociated): {listed}",
            details={"not_ready": not_ready},
        )


def _check_free(backend: Backend, addresses: list[str], name: str) -> None:
    """Conflict when a host is already in another cluster (storage refuses it too)."""
    if not addresses:
        return
    for other in backend.storage.list(Clusters).clusters:
        taken = sorted(set(addresses) & set(other.hostset)) if other.name != name else []
        if taken:
            raise Conflict(
                f"already in cluster {other.name!r}: {', '.join(map(repr, taken))}",
                details={"cluster": other.name, "hosts": taken},
            )


def _backend(request: Request) -> Backend:
    return request.app.state.backend  # type: ignore[no-any-return]


async def _list(request: Request) -> Any:
    return await _backend(request).run(list_clusters)


async def _get(request: Request, name: Name) -> Any:
    return await _backend(request).run(read_cluster, name)


async def _put(request: Request, name: Name, body: ClusterBody) -> Any:
    return await _backend(request).run(put_cluster, name, body)


async def _delete(request: Request, name: Name) -> Any:
    return await _backend(request).run(delete_cluster, name)


async def _members(request: Request, name: Name) -> Any:
    return await _backend(request).run(members, name)


async def _replace(request: Request, name: Name, body: MembershipBody) -> Any:
    return await _backend(request).run(replace_members, name, body)


async def _is_member(request: Request, name: Name, host: HostAddress) -> Any:
    return await _backend(request).run(is_member, name, host)


async def _add(request: Request, name: Name, host: HostAddress) -> Any:
    return await _backend(request).run(add_member, name, host)


async def _remove(request: Request, name: Name, host: HostAddress) -> Any:
    return await _backend(request).run(remove_member, name, host)


_VIEW = {200: {"model": ClusterView}, **_ERRORS}
add_route(router, "GET", "/clusters/", _list, summary="Every cluster's name", responses=_ERRORS)
add_route(router, "GET", "/cluster/{name}/", _get, summary="One cluster", responses=_VIEW)
add_route(
    router,
    "PUT",
    "/cluster/{name}/",
    _put,
    status_code=201,
    summary="Create a cluster or update the fields given",
    responses=_ERRORS,
)
add_route(
    router, "DELETE", "/cluster/{name}/", _delete, summary="Delete a cluster", responses=_ERRORS
)
add_route(
    router,
    "GET",
    "/cluster/{name}/hosts/",
    _members,
    summary="A cluster's members",
    responses=_ERRORS,
)
add_route(
    router,
    "PUT",
    "/cluster/{name}/hosts/",
    _replace,
    summary="Replace the members ('old' must be the current ones)",
    responses=_VIEW,
)
add_route(
    router,
    "GET",
    "/cluster/{name}/hosts/{host}/",
    _is_member,
    summary="Is a host a member",
    responses=_ERRORS,
)
add_route(
    router,
    "PUT",
    "/cluster/{name}/hosts/{host}/",
    _add,
    summary="Add one member",
    responses=_ERRORS,
)
add_route(
    router,
    "DELETE",
    "/cluster/{name}/hosts/{host}/",
    _remove,
    summary="Remove one member",
    responses=_ERRORS,
)
