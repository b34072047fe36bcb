"""Store handler types by name: ``handler_class("redis")``.

Short names come from the ``commissaire_tasks.store_handlers`` entry point group
(``redis``, ``sql``, ``secrets``, ``memory`` ship with the package, and other
packages may add theirs); a dotted path ``package.module:Class`` works too.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from ...errors import ConfigurationError
from .base import StoreHandler

#: Entry point group naming store handler classes.
ENTRY_POINT_GROUP = "commissaire_tasks.store_handlers"
_BUILT_IN = {
    "redis": "commissaire_tasks.storage.handlers.redis:RedisStoreHandler",
    "sql": "commissaire_tasks.storage.handlers.sql:SQLStoreHandler",
    "secrets": "commissaire_tasks.storage.handlers.secrets:SecretsStoreHandler",
    "memory": "commissaire_tasks.storage.handlers.memory:MemoryStoreHandler",
}


def handler_class(type_name: str) -> type[StoreHandler]:
    """The StoreHandler class a config's ``type`` names; ConfigurationError if none."""
    known = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    path = known.get(type_name) or _BUILT_IN.get(type_name)
    if path is None and ("." in type_name or ":" in type_name):
        path = type_name
    if path is None:
        names = ", ".join(sorted({*known, *_BUILT_IN}))
        raise ConfigurationError(f"unknown store handler type {type_name!r} (known: {names})")
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import store handler {type_name!r}: {exc}") from exc
    cls = getattr(module, class_name, None) if class_name else _only_handler(module)
    if not (isinstance(cls, type) and issubclass(cls, StoreHandler)):
        raise ConfigurationError(f"{path!r} is not a StoreHandler class")
    return cls


def _only_handler(module: object) -> type[StoreHandler] | None:
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, StoreHandler)
        and value.__module__ == module.__name__  # type: ignore[attr-defined]
    ]
    return found[0] if len(found) == 1 else None


__all__ = ["ENTRY_POINT_GROUP", "StoreHandler", "handler_class"]
