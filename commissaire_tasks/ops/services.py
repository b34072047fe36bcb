"""Which services the service modules define, and which queues they are served from."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType

from celery.utils.imports import cwd_in_path

from .._registry import ServiceSpec, registry
from ..config import Settings, service_modules
from ..routing import QueueSpec

__all__ = ["ServiceModule", "load_service_modules", "queues_of"]


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


def _describe(module: ModuleType) -> ServiceModule:
    classes = {id(value) for value in vars(module).values() if isinstance(value, type)}
    services = tuple(spec for spec in registry if id(spec.cls) in classes)
    return ServiceModule(name=module.__name__, services=services, has_app=hasattr(module, "app"))


def queues_of(spec: ServiceSpec, settings: Settings) -> list[QueueSpec]:
    """The service's default queue plus the configured queues (``COMMISSAIRE_QUEUES``) naming it."""
    queues = [spec.default_queue]
    for kwargs in settings.queues:
        queue = QueueSpec.from_kwargs(kwargs)
        if queue.service == spec.name and queue not in queues:
            queues.append(queue)
    return queues
