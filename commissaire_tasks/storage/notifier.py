"""The storage side of notifications: after a committed change, tell who subscribed.

One durable task per matching subscribing service, sent to that service's queue
(:mod:`.subscriber` says what the subscriber does with it), and a broadcast for
the processes that asked for one (:mod:`.broadcast`).

A delivery is one publish through the app's ``send_task`` (the one publish path).
Its queue is built once per subscriber queue. On RabbitMQ the publish declares the
durable queue first (kombu caches that per connection), so a delivery to a
subscriber whose worker never ran waits in its queue; on Redis a delivery on the
default exchange is a push onto the queue's list, which a declaration does not
change, so none is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from kombu.entity import Exchange, Queue

from ..models import Model
from ..routing import queue_arguments
from ..runtime.transport import WITHOUT_SENT_EVENT
from . import broadcast as broadcasting
from .handlers.redis import default_store_url
from .legacy import legacy_publisher
from .subscriptions import Subscription, SubscriptionTable, notification_task_name


class Notifier:
    """Announces committed changes to subscribing services (used by the storage service)."""

    #: Broker URL schemes whose default exchange pushes straight onto the queue's list.
    LIST_BROKERS: ClassVar[tuple[str, ...]] = (
        "redis://",
        "rediss://",
        "redis+socket://",
        "sentinel://",
    )

    def __init__(self, handlers: Any, bus: Any, config: Mapping[str, Any]) -> None:
        self._bus = bus
        #: Subscriber queue name -> its kombu Queue, as its worker declares it.
        self._queues: dict[str, Queue] = {}
        #: Where broadcasts go (read from the environment once, not per record).
        self._broadcast_url = default_store_url()
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
        if broadcasting.someone_listens(self._broadcast_url):
            broadcasting.publish(body, self._broadcast_url)
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
        queue = self._queue(app, subscription.queue)
        app.send_task(
            notification_task_name(subscription.service, model_name, event),
            kwargs=body,
            queue=queue,
            exchange="",
            routing_key=subscription.queue,
            ignore_result=True,
            add_to_parent=False,  # not a child of the save: its result carries no trail
            declare=[] if app.settings.broker_url.startswith(self.LIST_BROKERS) else [queue],
            # One publish per subscriber: no task-sent event, no repr of the body
            # (Flower still shows the delivery from the worker's events).
            argsrepr="()",
            kwargsrepr=f"{{event: {event!r}, class: {model_name!r}}}",
            **{WITHOUT_SENT_EVENT: True},
        )

    def _queue(self, app: Any, name: str) -> Queue:
        queue = self._queues.get(name)
        if queue is None:
            queue = Queue(
                name,
                Exchange(""),
                routing_key=name,
                durable=True,
                queue_arguments=queue_arguments(app.settings.queue_type),  # as its worker does
            )
            self._queues[name] = queue
        return queue


__all__ = ["Notifier"]
