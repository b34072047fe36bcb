"""Operating services: the embedded broker, ``up``, ``run``, status, introspection, Flower,
progress and logs.

These modules sit above the bus and service core (the CLI is their only user
besides the worker's logging hooks and the ``commissaire_services`` inspect
command) and import nothing from the CLI.
"""

from ..redact import redact_url

__all__ = ["redact_url"]
