"""The clusterexec service as a worker: ``celery -A workers.clusterexec worker``.

Rolling upgrade, restart and deploy of a cluster's hosts over SSH (needs the
``hosts`` extra and a Redis result backend). See :mod:`commissaire_tasks.clusters.service`.
"""

from __future__ import annotations

from commissaire_tasks.clusters.service import ClusterExecService
from commissaire_tasks.worker import service_app

__all__ = ["ClusterExecService", "app"]

#: ``celery -A workers.clusterexec worker`` serves clusterexec.
app = service_app(ClusterExecService)
