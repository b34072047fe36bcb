"""The worker's message consumer, answering messages it cannot run.

Celery logs an undecodable or unknown message with its body and, for some
cases, leaves the caller waiting or stops the worker (a header of the wrong
type raises inside the event loop). This consumer logs one line naming the
queue and the reason, never the body (it may hold secrets), moves the message
to the queue's dead letters (:mod:`.deadletters`), acknowledges it so it cannot
loop, and, when the message names a call id, stores the JSON-RPC error for it so
the caller gets ParseError (-32700), InvalidRequest (-32600) or MethodNotFound
(-32601) at once instead of a timeout.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer

from . import deadletters
from .errors import (
    InvalidRequest,
    MethodNotFound,
    ParseError,
    PayloadTooLarge,
    RemoteProcedureCallError,
)

logger = logging.getLogger(__name__)

#: Content encodings a call may declare (kombu sends utf-8; '' and None mean the same).
_ENCODINGS = frozenset({"", "utf-8", "utf8"})


class Consumer(CeleryConsumer):  # type: ignore[misc]
    """Celery's consumer with the rejections described in the module docstring.

    It also refuses, before decoding, a message whose body is larger than the
    app's ``max_payload_bytes`` (PayloadTooLarge, -32010).
    """

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        handle = super().create_task_handler(*args, **kwargs)
        settings = getattr(self.app, "settings", None)
        limit = settings.max_payload_bytes if settings is not None else None

        def on_task_received(message: Any) -> Any:
            size = len(message.body or b"")
            if limit is not None and size > limit:
                error = PayloadTooLarge(f"message of {size} bytes is over the {limit}-byte limit")
                return self._reject(message, error)
            encoding = getattr(message, "content_encoding", None)
            if not _supported_encoding(encoding):  # kombu would ignore it for JSON
                unsupported = f"unsupported content encoding {str(encoding)[:40]!r}"
                return self._reject(message, ParseError(unsupported))
            if not _has_call_id(message):  # it would run, and its result could not be stored
                return self._reject(message, InvalidRequest("call id must be a non-empty string"))
            try:
                return handle(message)
            except self._broker_errors():
                raise  # Celery reconnects
            except Exception as exc:  # noqa: BLE001 - no message may stop the worker
                if getattr(message, "acknowledged", False):  # handled already: only report it
                    logger.warning("Error after accepting a message: %s", _brief(exc))
                    return None
                return self._reject(message, InvalidRequest(f"invalid call: {_brief(exc)}"))

        return on_task_received

    def on_decode_error(self, message: Any, exc: Exception) -> None:
        self._reject(message, ParseError(f"cannot decode message: {exc}"))

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._reject(message, InvalidRequest("message is not a task call (no task header)"))

    def on_unknown_task(self, body: Any, message: Any, exc: Exception) -> None:
        name = _header(message, "task")
        self._reject(message, MethodNotFound(f"method not found: {name!r}", data={"task": name}))

    def on_invalid_task(self, body: Any, message: Any, exc: Exception) -> None:
        self._reject(message, InvalidRequest(f"invalid call: {exc}"))

    def _broker_errors(self) -> tuple[type[BaseException], ...]:
        connection = self.connection
        if connection is None:
            return ()
        return (*connection.connection_errors, *connection.channel_errors)

    def _reject(self, message: Any, error: RemoteProcedureCallError) -> None:
        call_id = _header(message, "id")
        queue = self._queue_of(message)
        place = self._dead_letter(message, queue)
        logger.warning(
            "Rejected message %s of queue %r (task %r, content type %r), moved to %r: %s",
            call_id if isinstance(call_id, str) else None,
            queue,
            _header(message, "task"),
            getattr(message, "content_type", None),
            place or "nowhere (see above)",
            error,
        )
        try:
            message.ack()
        except Exception:  # noqa: BLE001 - the connection may be gone; it will be redelivered
            logger.warning("Could not acknowledge rejected message %s", call_id, exc_info=True)
        if isinstance(call_id, str) and call_id:
            try:
                self.app.backend.mark_as_failure(call_id, error)
            except Exception:  # noqa: BLE001 - a rejection must never stop the consumer
                logger.warning("Could not store the error for %s", call_id, exc_info=True)

    def _queue_of(self, message: Any) -> str:
        """The queue ``message`` was consumed from (on RabbitMQ, by its consumer tag)."""
        queue = getattr(message, "consumed_from", None)
        if isinstance(queue, str):
            return queue
        info = getattr(message, "delivery_info", None) or {}
        tags = getattr(self.task_consumer, "_active_tags", None) or {}
        for name, tag in tags.items():
            if tag == info.get("consumer_tag"):
                return str(name)
        return str(info.get("routing_key") or "unknown")

    def _dead_letter(self, message: Any, queue: str) -> str | None:
        try:
            return deadletters.store_message(message, queue)
        except Exception:  # noqa: BLE001 - a rejection must never stop the consumer
            logger.warning("Could not dead-letter a message of queue %r", queue, exc_info=True)
            return None


def _supported_encoding(encoding: Any) -> bool:
    """JSON is UTF-8 (RFC 8259): a call in any other declared encoding is refused."""
    return encoding is None or (isinstance(encoding, str) and encoding.lower() in _ENCODINGS)


def _has_call_id(message: Any) -> bool:
    """False for a task call (protocol 2: a ``task`` header) whose ``id`` is not a string."""
    headers = getattr(message, "headers", None)
    if not isinstance(headers, dict) or "task" not in headers:
        return True  # not a protocol 2 call: Celery's own checks decide
    call_id = headers.get("id")
    return isinstance(call_id, str) and bool(call_id)


def _brief(exc: Exception) -> str:
    """The exception's type and a short text (no body, which may hold secrets)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def _header(message: Any, name: str) -> Any:
    headers = getattr(message, "headers", None)
    return headers.get(name) if isinstance(headers, dict) else None
