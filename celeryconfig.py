"""Celery settings for commissaire-tasks workers and clients.

The broker and result backend come from the environment:

    COMMISSAIRE_BROKER_URL      broker URL (default redis://127.0.0.1:6379/0)
    COMMISSAIRE_RESULT_BACKEND  result backend (default: the broker when it is Redis, else rpc://)

The project's defaults (JSON only, late acks, events on, generated routes) are
built by ``commissaire_tasks.app.celery_config``; this module starts from them.
Override any Celery setting below: the default app applies this module last.
"""

from commissaire_tasks.app import celery_config
from commissaire_tasks.config import load_settings

globals().update(celery_config(load_settings()))

# Examples of overrides:
# worker_prefetch_multiplier = 1
# result_expires = 600
