"""The app ``celery -A commissaire_tasks`` finds: every service, hosted.

Service modules are imported from ``$COMMISSAIRE_SERVICES`` (comma-separated
module names) or, by default, every module of the ``workers`` package, so
``celery -A commissaire_tasks worker -Q simple`` knows queue ``simple``.
"""

from __future__ import annotations

import importlib
import os
import pkgutil

from .app import default_app

#: Comma-separated service modules the default worker app imports.
ENV_SERVICES = "COMMISSAIRE_SERVICES"


def service_modules() -> list[str]:
    """The modules that define the services a default worker hosts."""
    configured = os.environ.get(ENV_SERVICES, "")
    if configured.strip():
        return [name.strip() for name in configured.split(",") if name.strip()]
    try:
        package = importlib.import_module("workers")
    except ModuleNotFoundError:
        return []
    return [f"workers.{m.name}" for m in pkgutil.iter_modules(package.__path__) if not m.ispkg]


app = default_app()
for _module in service_modules():
    importlib.import_module(_module)
