"""Your overrides of Celery settings for commissaire-tasks workers and clients.

The project's defaults (JSON only, late acks, task events on demand, generated routes, the
broker from ``COMMISSAIRE_BROKER_URL``) come from
``commissaire_tasks.runtime.app.celery_config``. The default app applies the
Celery settings defined here last, on top of them; this module imports nothing
of the project's.
"""

# Examples of overrides:
# worker_prefetch_multiplier = 1
# result_expires = 600
