"""Helpers for testing services: unit tests without a broker, real workers for the rest.

The pytest fixtures live in :mod:`commissaire_tasks.testing.pytest_plugin`
(enabled with ``-p commissaire_tasks.testing.pytest_plugin`` or from a conftest).
"""

from .processes import WorkerProcess
from .servers import RedisServer, free_port
from .services import RecordingBus, call_method, make_service

__all__ = [
    "RecordingBus",
    "RedisServer",
    "WorkerProcess",
    "call_method",
    "free_port",
    "make_service",
]
