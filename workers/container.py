"""The container service as a worker: ``celery -A workers.container worker [--config-file FILE]``.

Registers hosts with container managers (the Kubernetes manager needs the
``containers`` extra). See :mod:`commissaire_tasks.containers.service`.
"""

from __future__ import annotations

from commissaire_tasks.containers.service import ContainerService
from commissaire_tasks.worker import service_app

__all__ = ["ContainerService", "app"]

#: ``celery -A workers.container worker`` serves the container service.
app = service_app(ContainerService)
