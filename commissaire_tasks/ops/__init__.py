"""Operating services: the embedded broker, ``up``, status, Flower, progress and logs.

These modules sit above the bus and service core (the CLI is their only user
besides the worker's logging hooks) and import nothing from the CLI.
"""

from ..redact import redact_url

__all__ = ["redact_url"]
