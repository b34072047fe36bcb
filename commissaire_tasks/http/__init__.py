"""The REST front: Commissaire's HTTP API v0 as an ASGI app that calls services by name.

``create_app(backend, auth)`` builds it (:mod:`.app`); ``commissaire-tasks serve``
serves it with uvicorn (:mod:`.serve`). Needs the ``http`` extra; the names
below import it on first use, so the CLI runs without it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["API_PREFIX", "AuthManager", "Backend", "create_app"]

_WHERE = {
    "API_PREFIX": "app",
    "create_app": "app",
    "AuthManager": "auth",
    "Backend": "backend",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
