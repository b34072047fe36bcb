"""A caller and a subscriber of the original Commissaire bus, written from its protocol.

``../shared/research/commissaire-system.md`` section 2: a request is published on
the topic exchange under ``<prefix>.<method>`` with ``reply_to = response-<id>``,
a queue declared first as kombu's SimpleQueue does (a direct exchange and a
queue of that name); the reply may be a JSON object or a string holding one.
Nothing here imports the bridge.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from kombu import Connection, Exchange, Queue

#: The original callers' wait for a reply, in seconds.
ORIGINAL_TIMEOUT_S = 10.0


class OriginalClient:
    """Sends requests and notifications as the original's ``request``/``notify`` did."""

    def __init__(self, url: str, exchange: str) -> None:
        self.connection = Connection(url)
        self.exchange = Exchange(exchange, type="topic", durable=True)
        #: The last reply as it came off the wire (before the second decoding).
        self.raw: Any = None

    def request(
        self,
        routing_key: str,
        params: Any = None,
        method: str | None = None,
        timeout: float = ORIGINAL_TIMEOUT_S,
    ) -> dict[str, Any]:
        """A JSON-RPC request for ``routing_key``; returns the decoded reply object."""
        call_id = str(uuid.uuid4())
        body: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": call_id,
            "method": method or routing_key.rpartition(".")[2],
        }
        if params is not None:
            body["params"] = params
        return self.send_raw(routing_key, body, timeout=timeout)

    def send_raw(
        self,
        routing_key: str,
        body: Any,
        content_type: str | None = None,
        timeout: float = ORIGINAL_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Publish ``body`` (bytes go as they are) with a reply queue; wait for one reply."""
        reply_to = f"response-{uuid.uuid4()}"
        with self.connection.clone() as connection:
            replies = connection.SimpleQueue(
                reply_to, queue_opts={"auto_delete": True, "durable": False}
            )
            try:
                self._publish(connection, routing_key, body, content_type, reply_to)
                message = replies.get(block=True, timeout=timeout)
                message.ack()
                self.raw = message.payload
            finally:
                replies.close()
        payload = json.loads(self.raw) if isinstance(self.raw, str) else self.raw
        assert isinstance(payload, dict), payload
        return payload

    def notify(self, routing_key: str, params: Any) -> None:
        """A notification: no ``id``, no ``reply_to``."""
        body = {"jsonrpc": "2.0", "method": routing_key.rpartition(".")[2], "params": params}
        with self.connection.clone() as connection:
            self._publish(connection, routing_key, body, None, None)

    def _publish(
        self,
        connection: Connection,
        routing_key: str,
        body: Any,
        content_type: str | None,
        reply_to: str | None,
    ) -> None:
        options: dict[str, Any] = {"reply_to": reply_to} if reply_to else {}
        if isinstance(body, bytes):
            options["content_type"] = content_type or "application/json"
            options["content_encoding"] = "utf-8"
        producer = connection.Producer()
        producer.publish(
            body,
            exchange=self.exchange,
            routing_key=routing_key,
            declare=[self.exchange],
            retry=True,
            **options,
        )

    def close(self) -> None:
        self.connection.release()


class OriginalSubscriber:
    """An anonymous queue bound with ``notify.storage.<Model>.<event>``, as old subscribers had."""

    def __init__(self, url: str, exchange: str, pattern: str = "notify.storage.*.*") -> None:
        self.connection = Connection(url)
        exchange_entity = Exchange(exchange, type="topic", durable=True)
        self.queue = Queue(
            f"subscriber-{uuid.uuid4().hex}",
            exchange_entity,
            routing_key=pattern,
            auto_delete=True,
            durable=False,
        )
        self.simple = self.connection.SimpleQueue(self.queue)

    def get(self, timeout: float = ORIGINAL_TIMEOUT_S) -> tuple[str, dict[str, Any]]:
        """The next notification: (routing key, body)."""
        message = self.simple.get(block=True, timeout=timeout)
        message.ack()
        return message.delivery_info["routing_key"], message.payload

    def close(self) -> None:
        self.simple.close()
        self.connection.release()
