"""The storage side of notifications: after a committed change, tell who subscribed.

One durable task per matching subscribing service, sent to that service's queue
(:mod:`.subscriber` says what the subscriber does with it), and a broadcast for
the processes that asked for one (:mod:`.broadcast`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kombu.entity import Exchange, Queue

from ..models import Model
from ..routing import queue_arguments
from ..runtime.transport import WITHOUT_SENT_EVENT
from . import broadcast as broadcasting
from .legacy import legacy_publisher
from .subscriptions import Subscription, SubscriptionTable, notification_task_name


class Notifier:
    """Announces committed changes to subscribing services (used by the storage service)."""

    def __init__(self, handlers: Any, bus: Any, config: Mapping[str, Any]) -> None:
        self._bus = bus
        configured = [Subscription.from_dict(s) for s in config.get("subscribers", [])]
        #: The subscriptions, kept in the default handler.
        self.table = SubscriptionTable(handlers.default.handler, configured)
        #: Publishes changes in the original form too, when configured (:mod:`.legacy`).
        self._legacy = legacy_publisher(config, bus)

    def announce(self, cls: type[Model], outcome: Any, model: Model | None = None) -> int:
        """Send ``outcome`` to every matching subscriber; return how many were sent.

        The table comes from this process's copy (:meth:`SubscriptionTable.current`);
        the broadcast is published only while some process listens for it.
        """
        record = model if model is not None else cls.trusted(outcome.data)
        body = {
            "event": outcome.event,
            "class": cls.__name__,
            "model": record.to_dict_safe(),
            "revision": outcome.revision,
        }
        if broadcasting.someone_listens():
            broadcasting.publish(body)
        self._legacy.publish(body)
        sent = 0
        for subscription in self.table.current():
            if subscription.matches(cls.__name__, outcome.event):
                self._send(subscription, cls.__name__, outcome.event, body)
                sent += 1
        return sent

    def _send(
        self, subscription: Subscription, model_name: str, event: str, body: dict[str, Any]
    ) -> None:
        app = self._bus.app
        queue = Queue(
            subscription.queue,
            Exchange(""),
            routing_key=subscription.queue,
            durable=True,
            queue_arguments=queue_arguments(app.settings.queue_type),  # as its worker declares it
        )
        app.send_task(
            notification_task_name(subscription.service, model_name, event),
            kwargs=body,
            queue=queue,
            exchange="",
            routing_key=subscription.queue,
            ignore_result=True,
            # One publish per subscriber: no task-sent event, no repr of the body
            # (Flower still shows the delivery from the worker's events).
            argsrepr="()",
            kwargsrepr=f"{{event: {event!r}, class: {model_name!r}}}",
            **{WITHOUT_SENT_EVENT: True},
        )


__all__ = ["Notifier"]
