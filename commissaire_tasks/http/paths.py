"""Route registration with the original's path rules.

The trailing ``/`` is optional on every route the original defined with one
(both forms are served; OpenAPI lists the slashed one), and path variables
carry the original's patterns, so a bad one is a 400, not a lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi import Path as PathParam

__all__ = ["ADDRESS_PATTERN", "NAME_PATTERN", "Address", "HostAddress", "Name", "add_route"]

#: Names of clusters, networks and container managers.
NAME_PATTERN = r"^[A-Za-z0-9_-]+$"
#: Host addresses: names and IPv4 as the original; ``:`` for a port or IPv6 too.
ADDRESS_PATTERN = r"^[A-Za-z0-9_.:\[\]-]+$"

Name = Annotated[str, PathParam(pattern=NAME_PATTERN, max_length=253, description="record name")]
Address = Annotated[
    str, PathParam(pattern=ADDRESS_PATTERN, max_length=253, description="host address")
]
HostAddress = Annotated[
    str, PathParam(pattern=ADDRESS_PATTERN, max_length=253, description="member host address")
]


def add_route(
    router: APIRouter,
    method: str,
    path: str,
    endpoint: Callable[..., Any],
    *,
    slash_optional: bool = True,
    **options: Any,
) -> None:
    """Serve ``endpoint`` at ``path`` and, when ``slash_optional``, without its trailing ``/``."""
    router.add_api_route(path, endpoint, methods=[method], response_model=None, **options)
    if slash_optional and path.endswith("/"):
        options.pop("name", None)
        router.add_api_route(
            path.rstrip("/"),
            endpoint,
            methods=[method],
            response_model=None,
            include_in_schema=False,
            **options,
        )
