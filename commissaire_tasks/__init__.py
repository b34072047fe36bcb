"""commissaire-tasks: Commissaire-style message-bus services on Celery."""

__version__ = "0.1.0"
