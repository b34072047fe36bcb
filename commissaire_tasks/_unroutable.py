"""Calls RabbitMQ's topic exchange routes: published mandatory, confirmed, never lost.

A message published to an exchange with no matching binding is dropped unless
it is *mandatory*; then the broker returns it (``basic.return``) before it
confirms it (``basic.ack``). Such calls are published on a channel of their own
in confirm mode, kept per connection, with a handler that records returns: a
returned call raises :class:`~commissaire_tasks.errors.NoRouteError` in the
caller, and nothing was queued anywhere. Other publishes are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kombu.messaging import Producer

from .errors import NoRouteError

__all__ = ["send_mandatory"]

#: Seconds to wait for the broker to confirm a mandatory publish.
CONFIRM_TIMEOUT_S = 10.0

Sender = Callable[..., Any]


def send_mandatory(send: Sender, producer: Any, name: str, message: Any, **options: Any) -> Any:
    """Publish through Celery's ``send`` on a confirm channel; raise if the call came back."""
    channel = _confirm_channel(producer.connection)
    returned: list[str] = []

    def on_return(exc: Exception, exchange: str, routing_key: str, msg: Any) -> None:
        returned.append(routing_key)

    channel.events["basic_return"].add(on_return)
    try:
        confirmed = Producer(channel, exchange=producer.exchange, auto_declare=False)
        options.setdefault("confirm_timeout", CONFIRM_TIMEOUT_S)
        result = send(confirmed, name, message, **options)
    finally:
        channel.events["basic_return"].discard(on_return)
    if returned:
        exchange = options.get("exchange")
        raise NoRouteError(
            name, f"no binding on exchange {exchange!r} matches it and no known service claims it"
        )
    return result


def _confirm_channel(connection: Any) -> Any:
    """This connection's channel for mandatory publishes, in confirm mode."""
    channel = getattr(connection, "_commissaire_confirm_channel", None)
    if channel is None or not channel.is_open or channel.connection is not connection.connection:
        connection.default_channel  # noqa: B018 - connects (a pooled connection is lazy)
        channel = connection.channel()
        # What py-amqp does for a connection opened with confirm_publish, for this channel only.
        channel.basic_publish = channel.basic_publish_confirm
        connection._commissaire_confirm_channel = channel
    return channel
