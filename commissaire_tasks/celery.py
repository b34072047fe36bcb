"""The app ``celery -A commissaire_tasks`` finds: every service, hosted.

Service modules come from :func:`commissaire_tasks.runtime.loader.service_modules`
(``$COMMISSAIRE_SERVICES``, else the ``workers`` package of a checkout, else the
bundled storage service), so ``celery -A commissaire_tasks worker -Q simple``
knows queue ``simple``.
"""

from __future__ import annotations

from .runtime.app import default_app
from .runtime.loader import import_service_modules

app = default_app()
import_service_modules()
