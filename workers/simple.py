"""The guide's example services: SimpleService and MyService.

Run them with ``celery -A workers.simple worker`` or
``celery -A commissaire_tasks worker -Q simple,my``.
"""

from __future__ import annotations

from typing import Any

from commissaire_tasks.message import Message
from commissaire_tasks.service import CommissaireService
from commissaire_tasks.worker import service_app


class SimpleService(CommissaireService):
    """Adds numbers, directly and through the bus."""

    def on_add(self, message: Message, x: Any, y: Any) -> Any:
        """Exposed as ``simple.add``."""
        return x + y

    def on_wordy_add(self, message: Message, x: Any, y: Any) -> str:
        """Exposed as ``simple.wordy_add``: calls ``simple.add`` over the bus."""
        response = self.request("simple.add", params=[x, y])
        return f"{x} plus {y} is {response['result']}"


class MyService(CommissaireService):
    """The guide's MyService."""

    def on_ping(self, message: Message) -> str:
        """Exposed as ``my.ping``. Takes no bus arguments."""
        return "pong"

    def on_echo(self, message: Message, words: Any) -> Any:
        """Exposed as ``my.echo``. Takes one bus argument, ``words``."""
        return words

    def on_fail(self, message: Message) -> None:
        """Exposed as ``my.fail``. Always fails."""
        raise NotImplementedError("I was never created")


#: ``celery -A workers.simple worker`` serves these two services.
app = service_app(SimpleService, MyService)
