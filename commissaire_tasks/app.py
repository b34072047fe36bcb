"""The Celery app factory, under its first public name.

It lives in :mod:`commissaire_tasks.runtime.app`; this module keeps
``from commissaire_tasks.app import create_app, default_app`` working.
"""

from __future__ import annotations

from .runtime.app import CommissaireCelery, celery_config, create_app, default_app, host_queue

__all__ = ["CommissaireCelery", "celery_config", "create_app", "default_app", "host_queue"]
