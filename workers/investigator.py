"""The investigator as a worker: ``celery -A workers.investigator worker [--config-file FILE]``.

Investigates and bootstraps every created Host over SSH (needs the ``hosts`` extra:
ansible-runner and ansible-core). See :mod:`commissaire_tasks.hosts.investigator`.
"""

from __future__ import annotations

from commissaire_tasks.hosts.investigator import InvestigatorService
from commissaire_tasks.worker import service_app

__all__ = ["InvestigatorService", "app"]

#: ``celery -A workers.investigator worker`` serves the investigator.
app = service_app(InvestigatorService)
