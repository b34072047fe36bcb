"""Cluster operations: start and read an upgrade, a restart or a deploy.

Starting one calls ``clusterexec.<operation>`` by routing key, which answers
with the operation's first record; reading one is a storage read of
ClusterUpgrade, ClusterRestart or ClusterDeploy keyed by the cluster's name.
The cluster must exist for all three (the original did not check for deploy).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..models import Cluster, ClusterDeploy, ClusterRestart, ClusterUpgrade, Model
from .backend import Backend
from .paths import Name, add_route
from .schemas import DeployBody, ErrorBody

__all__ = ["OPERATIONS", "router"]

router = APIRouter(tags=["cluster operations"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 404, 409, 502, 503, 504)
}

#: Operation name -> the record model that tracks it.
OPERATIONS: dict[str, type[Model]] = {
    "upgrade": ClusterUpgrade,
    "restart": ClusterRestart,
    "deploy": ClusterDeploy,
}


def start(backend: Backend, operation: str, name: str, *args: Any) -> Any:
    backend.get(Cluster.new(name=name), f"cluster {name!r}")
    return backend.call(f"clusterexec.{operation}", name, *args)


def read(backend: Backend, operation: str, name: str) -> dict[str, Any]:
    record = backend.get(OPERATIONS[operation].new(name=name), f"no {operation} of {name!r} yet")
    return record.to_dict()


def _backend(request: Request) -> Backend:
    return request.app.state.backend  # type: ignore[no-any-return]


def _routes(operation: str) -> None:
    model = OPERATIONS[operation]

    async def read_route(request: Request, name: Name) -> Any:
        return await _backend(request).run(read, operation, name)

    if operation == "deploy":

        async def start_route(request: Request, name: Name, body: DeployBody) -> Any:
            return await _backend(request).run(start, operation, name, body.version)

    else:

        async def start_route(request: Request, name: Name) -> Any:  # type: ignore[misc]
            return await _backend(request).run(start, operation, name)

    path = f"/cluster/{{name}}/{operation}"
    add_route(
        router,
        "PUT",
        path,
        start_route,
        slash_optional=False,
        status_code=201,
        name=f"start_{operation}",
        summary=f"Start {_article(operation)} {operation}",
        responses={201: {"model": model}, **_ERRORS},
    )
    add_route(
        router,
        "GET",
        path,
        read_route,
        slash_optional=False,
        name=f"read_{operation}",
        summary=f"The last {operation}",
        responses={200: {"model": model}, **_ERRORS},
    )


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


for _operation in OPERATIONS:
    _routes(_operation)
