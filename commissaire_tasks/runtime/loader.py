"""The one service-module loader: which modules define the services a default worker hosts.

``celery -A commissaire_tasks``, ``up``, ``run``, ``status`` and ``services`` all
import service modules through here. The modules are ``$COMMISSAIRE_SERVICES``
(comma-separated), else every module of a ``workers`` package on the import path
(a checkout), else the services bundled with the package (the storage service).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType

from celery.utils.imports import cwd_in_path

from ..config import ENV_SERVICES
from .registry import ServiceSpec, registry

__all__ = [
    "BUNDLED_SERVICE_MODULES",
    "ServiceModule",
    "import_service_modules",
    "load_service_modules",
    "service_modules",
]

#: The service modules the package itself ships: used when there is no ``workers`` package.
BUNDLED_SERVICE_MODULES = ("commissaire_tasks.storage.service",)


@dataclass(frozen=True)
class ServiceModule:
    """One module of services, as ``up`` and ``status`` see it.

    Attributes:
        name: Dotted module name (``workers.simple``).
        services: The services it defines or re-exports.
        has_app: True when it has an ``app`` (``celery -A <module> worker`` works).
    """

    name: str
    services: tuple[ServiceSpec, ...]
    has_app: bool

    @property
    def short_name(self) -> str:
        return self.name.rpartition(".")[2]


def load_service_modules(names: Iterable[str] | None = None) -> list[ServiceModule]:
    """Import the service modules (``$COMMISSAIRE_SERVICES`` or the ``workers`` package).

    As ``celery -A`` does, modules in the current directory are found first.
    """
    with cwd_in_path():
        if names is None:
            names = service_modules()
        return [_describe(importlib.import_module(name)) for name in names]


def import_service_modules(names: Iterable[str] | None = None) -> list[ModuleType]:
    """Import the service modules, so their services get tasks on every app."""
    with cwd_in_path():
        return [importlib.import_module(name) for name in names or service_modules()]


def service_modules(environ: Mapping[str, str] | None = None) -> list[str]:
    """The modules defining the services a default worker hosts (see the module docstring)."""
    env = os.environ if environ is None else environ
    configured = env.get(ENV_SERVICES, "")
    if configured.strip():
        return [name.strip() for name in configured.split(",") if name.strip()]
    try:
        package = importlib.import_module("workers")
    except ModuleNotFoundError as exc:
        if exc.name != "workers":
            raise
        return list(BUNDLED_SERVICE_MODULES)
    return [f"workers.{m.name}" for m in pkgutil.iter_modules(package.__path__) if not m.ispkg]


def _describe(module: ModuleType) -> ServiceModule:
    classes = {id(value) for value in vars(module).values() if isinstance(value, type)}
    services = tuple(spec for spec in registry if id(spec.cls) in classes)
    return ServiceModule(name=module.__name__, services=services, has_app=hasattr(module, "app"))
