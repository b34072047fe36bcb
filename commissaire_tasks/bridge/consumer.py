"""The bridge: serves the original Commissaire bus protocol through the framework.

It consumes its own durable queue, bound to the original topic exchange (``#``
or the configured binding keys), and for each request calls the method named by
the routing key with :class:`~commissaire_tasks.bus.Bus` (any service, any
queue the framework routes to), then publishes the JSON-RPC reply on the
request's ``reply_to`` queue. Calls run on a bounded thread pool, so many
clients are served at once; when every thread is busy the bridge stops taking
messages until one is free. A message is acknowledged when its call starts: a
request is run at most once (the original's callers give up after 10 s, a
redelivery long after would only run the call again). The connection comes
back by itself after a broker restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from kombu.entity import Exchange, Queue, binding
from kombu.mixins import ConsumerMixin

import commissaire_tasks.bridge.protocol as protocol

from ..app import create_app
from ..bus import Bus
from ..errors import MethodNotFound, NoRouteError, jsonrpc_error
from .protocol import ProtocolError, Request
from .settings import BridgeSettings
from .targets import QueueDirectory

__all__ = ["Bridge"]

logger = logging.getLogger(__name__)

#: Routing keys under which storage change notifications travel (not requests).
NOTIFICATION_PREFIX = "notify."


class Bridge(ConsumerMixin):
    """Consumes original-protocol requests and answers them; :meth:`run` until :meth:`stop`.

    Args:
        settings: Exchange, bindings, queue, threads and the framework's settings.
        app: The app calls go through (one built from ``settings.bus`` by default).
    """

    def __init__(self, settings: BridgeSettings, app: Any = None) -> None:
        self.settings = settings
        self.app = app if app is not None else create_app(settings.bus, services=())
        self.bus = Bus(self.app)
        self.connection = self.app.connection_for_read()
        self.directory = QueueDirectory(self.app, settings.bus.exchange)
        self._slots = threading.BoundedSemaphore(settings.threads)
        self._pool = ThreadPoolExecutor(settings.threads, thread_name_prefix="bridge")
        self._amqp = self.connection.transport.driver_type == "amqp"
        self.ready = threading.Event()

    def queue(self) -> Queue:
        """The bridge's durable queue, bound to the original exchange once per binding key."""
        exchange = Exchange(self.settings.exchange, type="topic", durable=True)
        keys = self.settings.bindings
        return Queue(
            self.settings.queue,
            exchange=exchange,
            bindings=[binding(exchange, routing_key=key) for key in keys],
            durable=True,
        )

    def get_consumers(self, consumer_cls: Any, channel: Any) -> list[Any]:
        prefetch = self.settings.threads * 2
        consumer = consumer_cls(
            queues=[self.queue()], on_message=self._on_message, prefetch_count=prefetch
        )
        return [consumer]

    def on_consume_ready(self, connection: Any, channel: Any, consumers: Any, **kw: Any) -> None:
        logger.info(
            "Bridge ready: queue %r on exchange %r, bindings %s, %d threads",
            self.settings.queue,
            self.settings.exchange,
            ", ".join(self.settings.bindings),
            self.settings.threads,
        )
        self.ready.set()

    def on_connection_error(self, exc: Exception, interval: float) -> None:
        self.ready.clear()
        logger.warning("Broker unreachable (%s); retrying in %.1f s", type(exc).__name__, interval)

    def stop(self, timeout_s: float | None = None) -> None:
        """Stop consuming; calls already running finish (their replies are sent)."""
        self.should_stop = True
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- consumer thread -------------------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        routing_key = str((message.delivery_info or {}).get("routing_key") or "")
        if _is_framework_call(message) or routing_key.startswith(NOTIFICATION_PREFIX):
            logger.debug("Ignored %r: not an original-protocol request", routing_key)
            message.ack()
            return
        self._slots.acquire()
        try:
            message.ack()
            self._pool.submit(self._serve, routing_key, _Received.of(message))
        except BaseException:
            self._slots.release()
            raise

    # -- pool threads ----------------------------------------------------------------------

    def _serve(self, routing_key: str, received: _Received) -> None:
        try:
            reply = self._handle(routing_key, received)
            if reply is not None and received.reply_to:
                self._reply(received.reply_to, reply)
        except Exception:  # noqa: BLE001 - one bad message must never stop the bridge
            logger.exception("Bridge failed to serve a message on %r", routing_key)
        finally:
            self._slots.release()

    def _handle(self, routing_key: str, received: _Received) -> dict[str, Any] | None:
        """The reply to send (None for none): result, error, or the original's refusal."""
        try:
            request = protocol.parse_request(received.body, routing_key, received.content_type)
        except ProtocolError as exc:
            logger.warning(
                "Refused message on %r (reply_to %s): %s", routing_key, received.reply_to, exc
            )
            return protocol.error_reply(exc.id, jsonrpc_error(exc.error))
        if not request.matches_key:
            logger.warning(
                "Refused message on %r: method %r is not the routing key's last segment",
                routing_key,
                request.method,
            )
            return protocol.mismatch_reply()
        if request.is_notification:
            self._notify(request)
            return None
        try:
            return protocol.result_reply(request.id, self._call(request))
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
            return protocol.error_reply(request.id, jsonrpc_error(exc))

    def _call(self, request: Request) -> Any:
        with _no_route_is_method_not_found(request.routing_key):
            self._check_target(request.routing_key)
            return self.bus.call(request.routing_key, params=request.params)

    def _notify(self, request: Request) -> None:
        try:
            with _no_route_is_method_not_found(request.routing_key):
                self._check_target(request.routing_key)
                self.bus.notify(request.routing_key, params=request.params)
        except Exception as exc:  # noqa: BLE001 - a notification has nobody to tell
            logger.warning("Dropped notification %r: %s", request.routing_key, exc)

    def _check_target(self, routing_key: str) -> None:
        """MethodNotFound for a configured queue no worker bound yet (a call would wait).

        Any other key is routed by the broker's bindings, which raise NoRouteError
        at once when nothing is bound to it.
        """
        queue = self.app.router.known(routing_key)
        if queue is not None and not self.directory.exists(queue.name):
            raise MethodNotFound(
                f"method not found: no service serves {routing_key!r} (queue {queue.name!r})",
                data={"routing_key": routing_key},
            )

    def _reply(self, reply_to: str, reply: dict[str, Any]) -> None:
        """Publish ``reply`` (double-encoded, as the original) to the caller's queue.

        The caller declared ``reply_to`` as kombu's SimpleQueue does: a direct
        exchange and a queue of that name. RabbitMQ routes by queue name through
        its default exchange; on Redis the direct exchange is used, so a reply to
        a caller that has gone away is dropped instead of left in a key forever.
        """
        exchange = "" if self._amqp else reply_to
        with self.app.producer_or_acquire() as producer:
            producer.publish(
                protocol.encode_reply(reply),
                exchange=exchange,
                routing_key=reply_to,
                serializer="json",
                delivery_mode=1,
                retry=True,
                retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
            )


class _Received:
    """What a pool thread needs from a kombu message (the message stays on its thread)."""

    __slots__ = ("body", "content_type", "reply_to")

    def __init__(self, body: Any, content_type: str | None, reply_to: str | None) -> None:
        self.body = body
        self.content_type = content_type
        self.reply_to = reply_to

    @classmethod
    def of(cls, message: Any) -> _Received:
        reply_to = (message.properties or {}).get("reply_to")
        return cls(message.body, message.content_type, reply_to if reply_to else None)


@contextmanager
def _no_route_is_method_not_found(routing_key: str) -> Iterator[None]:
    """A key no queue is bound to is, to an original client, a method nobody has."""
    try:
        yield
    except NoRouteError as exc:
        raise MethodNotFound(str(exc), data={"routing_key": routing_key}) from exc


def _is_framework_call(message: Any) -> bool:
    headers = message.headers
    return isinstance(headers, dict) and "task" in headers
