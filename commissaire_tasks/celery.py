"""The app ``celery -A commissaire_tasks`` finds: every service, hosted.

Service modules are imported from ``$COMMISSAIRE_SERVICES`` (comma-separated
module names) or, by default, every module of the ``workers`` package, so
``celery -A commissaire_tasks worker -Q simple`` knows queue ``simple``.
"""

from __future__ import annotations

import importlib

from .app import default_app
from .config import service_modules

app = default_app()
for _module in service_modules():
    importlib.import_module(_module)
