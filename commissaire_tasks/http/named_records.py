"""Networks and container managers: list names, read, create (identical or refuse), delete.

Saving a ContainerManagerConfig is what loads the manager: the container
service hears storage's notification. Deleting checks no references, as the
original did.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..models import (
    ContainerManagerConfig,
    ContainerManagerConfigs,
    ListModel,
    Model,
    Network,
    Networks,
)
from .backend import Backend
from .errors import Conflict
from .paths import Name, add_route
from .schemas import ErrorBody, NamedRecordBody

__all__ = ["router"]

router = APIRouter()
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 404, 409, 503, 504)
}


def names(backend: Backend, list_model: type[ListModel]) -> list[str]:
    return [str(item.primary_key) for item in backend.storage.list(list_model).items]


def read(backend: Backend, model: type[Model], label: str, name: str) -> dict[str, Any]:
    return backend.get(model.new(name=name), f"{label} {name!r}").to_dict()


def create(
    backend: Backend, model: type[Model], label: str, name: str, body: NamedRecordBody
) -> dict[str, Any]:
    wanted = model.checked({"name": name, **body.model_dump(exclude_none=True)})
    stored = backend.find(model.new(name=name))
    if stored is not None:
        if stored.to_dict() != wanted.to_dict():
            raise Conflict(f"{label} {name!r} exists and differs", details=stored.to_dict())
        return stored.to_dict()
    return backend.storage.save(wanted).to_dict()


def delete(backend: Backend, model: type[Model], label: str, name: str) -> list[Any]:
    backend.storage.delete(backend.get(model.new(name=name), f"{label} {name!r}"))
    return []


def _backend(request: Request) -> Backend:
    return request.app.state.backend  # type: ignore[no-any-return]


def _routes(
    plural: str, singular: str, model: type[Model], list_model: type[ListModel], label: str
) -> None:
    tags: list[str | Any] = [plural]

    async def list_route(request: Request) -> Any:
        return await _backend(request).run(names, list_model)

    async def get_route(request: Request, name: Name) -> Any:
        return await _backend(request).run(read, model, label, name)

    async def put_route(request: Request, name: Name, body: NamedRecordBody) -> Any:
        return await _backend(request).run(create, model, label, name, body)

    async def delete_route(request: Request, name: Name) -> Any:
        return await _backend(request).run(delete, model, label, name)

    one = f"/{singular}/{{name}}/"
    record = {200: {"model": model}, **_ERRORS}
    common: dict[str, Any] = {"tags": tags}
    add_route(
        router,
        "GET",
        f"/{plural}/",
        list_route,
        name=f"list_{plural}",
        summary=f"Every {label}'s name",
        responses=_ERRORS,
        **common,
    )
    add_route(
        router,
        "GET",
        one,
        get_route,
        name=f"get_{singular}",
        summary=f"One {label}",
        responses=record,
        **common,
    )
    add_route(
        router,
        "PUT",
        one,
        put_route,
        name=f"create_{singular}",
        status_code=201,
        summary=f"Create a {label} (identical or refused)",
        responses={201: {"model": model}, **_ERRORS},
        **common,
    )
    add_route(router, "DELETE", one, delete_route, name=f"delete_{singular}",
              summary=f"Delete a {label}", responses=_ERRORS, **common)  # fmt: skip


_routes("networks", "network", Network, Networks, "network")
_routes(
    "containermanagers",
    "containermanager",
    ContainerManagerConfig,
    ContainerManagerConfigs,
    "container manager",
)
