"""The storage service as a worker: ``celery -A workers.storage worker [--config-file FILE]``.

With no config every model goes to the default Redis handler (the broker's
server) and secret models to the encrypted secrets handler, which needs
``COMMISSAIRE_SECRETS_KEY``.
"""

from __future__ import annotations

from commissaire_tasks.storage.service import StorageService
from commissaire_tasks.worker import service_app

__all__ = ["StorageService", "app"]

#: ``celery -A workers.storage worker`` serves the storage service.
app = service_app(StorageService)
