"""The ``message`` every ``on_<method>`` receives first.

It describes the call (id, method, routing key, where it was delivered, headers,
retries) without exposing transport objects, and gives the method the few things
it may do to its own call: report progress and ask for a retry.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from celery import Task
    from celery.app.task import Context

#: Task state a call is in while it reports progress.
PROGRESS_STATE = "PROGRESS"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class Message:
    """One call, as seen by the method that serves it.

    Attributes:
        id: The call's id (the Celery task id).
        method: The method name, without ``on_``.
        routing_key: The routing key the call was addressed to.
        exchange: The topic exchange its routing key is bound on ('' when called directly).
        queue: The queue it was consumed from ('' when called directly).
        headers: Message headers (read-only).
        retries: How many times this call has been retried.
        redelivered: True when the broker delivered it before (a worker died).
        task: The Celery task running the call, or None for a stand-in message.
    """

    id: str
    method: str
    routing_key: str
    exchange: str = ""
    queue: str = ""
    headers: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    retries: int = 0
    redelivered: bool = False
    task: Task | None = field(default=None, repr=False, compare=False)

    @property
    def request(self) -> Context | None:
        """The Celery task request (``None`` for a stand-in message)."""
        return self.task.request if self.task is not None else None

    def progress(self, done: float, total: float | None = None, info: Any = None) -> None:
        """Report how far the call has got; callers and Flower see state ``PROGRESS``."""
        if self.task is None or self.task.request.id is None or self.task.request.is_eager:
            return
        meta = {"done": done, "total": total, "info": info}
        self.task.update_state(task_id=self.id, state=PROGRESS_STATE, meta=meta)

    def retry(self, countdown: float | None = None, max_retries: int | None = None) -> NoReturn:
        """Run this call again later (raises; nothing after it runs)."""
        if self.task is None:
            raise RuntimeError("a stand-in message cannot be retried")
        raise self.task.retry(countdown=countdown, max_retries=max_retries)

    @classmethod
    def from_task(cls, task: Task, method: str, queue: str) -> Message:
        """Describe the call ``task`` is running right now."""
        request = task.request
        delivery = request.delivery_info or {}
        settings = getattr(task.app, "settings", None)
        return cls(
            id=request.id or str(uuid.uuid4()),
            method=method,
            # A task is named after the routing key that reaches it; calls are
            # published straight to that key's queue, so the delivery's own key
            # is the queue name.
            routing_key=task.name,
            exchange=delivery.get("exchange")
            or (settings.exchange if delivery and settings else ""),
            queue=queue if delivery else "",
            headers=MappingProxyType(dict(request.headers or {})),
            retries=request.retries or 0,
            redelivered=bool(delivery.get("redelivered")),
            task=task,
        )

    @classmethod
    def stand_in(cls, method: str = "", routing_key: str = "", **fields: Any) -> Message:
        """A message for calling a method directly, without a broker (tests, debugging)."""
        return cls(id=str(uuid.uuid4()), method=method, routing_key=routing_key, **fields)
