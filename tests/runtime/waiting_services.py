"""Services that mostly wait, for the thread-pool tests (``celery -A`` this module)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from commissaire_tasks.message import Message
from commissaire_tasks.service import CommissaireService
from commissaire_tasks.worker import service_app


def waited(service: CommissaireService, seconds: float) -> dict[str, Any]:
    """Wait; say when, in which process and thread, and with which instance."""
    start = time.time()
    time.sleep(seconds)
    return {
        "start": start,
        "end": time.time(),
        "pid": os.getpid(),
        "thread": threading.get_ident(),
        "instance": id(service),
    }


class ThreadedWaitService(CommissaireService):
    """Asks for the threads pool itself."""

    pool = "threads"

    def on_wait(self, message: Message, seconds: float) -> dict[str, Any]:
        return waited(self, seconds)


class PlainWaitService(CommissaireService):
    """Asks for no pool: prefork, unless ServiceManager or COMMISSAIRE_POOL says otherwise."""

    def on_wait(self, message: Message, seconds: float) -> dict[str, Any]:
        return waited(self, seconds)


#: ``celery -A tests.runtime.waiting_services worker`` serves ThreadedWaitService on threads.
app = service_app(ThreadedWaitService)
