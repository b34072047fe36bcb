"""Storage changes published in the original form, for subscribers of the original bus.

When enabled (``"legacy_notifications": true`` in the storage service's config
file, or ``COMMISSAIRE_LEGACY_NOTIFICATIONS=on``), every committed change is
also published on the original topic exchange under
``notify.storage.<Model>.<event>`` with the body ``{event, class, model}``,
transient, as the original storage backends did. ``model`` is the safe
rendering (hidden and secret fields left out), and secret models (``HostCreds``)
publish nothing, as the original's Custodia store did. A failed publish is
logged and never fails the write that caused it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from kombu.entity import Exchange

from ..config import DEFAULT_EXCHANGE, ENV_BRIDGE_EXCHANGE, ENV_LEGACY_NOTIFICATIONS, switch
from ..models import model_class

__all__ = ["CONFIG_KEY", "LegacyPublisher", "legacy_publisher", "routing_key"]

logger = logging.getLogger(__name__)

#: Key of the storage service's config file that switches the publisher on.
CONFIG_KEY = "legacy_notifications"


def routing_key(model_name: str, event: str) -> str:
    return f"notify.storage.{model_name}.{event}"


class LegacyPublisher:
    """Publishes ``{event, class, model}`` on ``exchange`` (the bridge's, where the original
    subscribers bind); ``enabled=False`` publishes nothing."""

    def __init__(self, app: Any, exchange: str, enabled: bool = True) -> None:
        self.app = app
        self.exchange = Exchange(exchange, type="topic", durable=True)
        self.enabled = enabled

    def publish(self, body: Mapping[str, Any]) -> None:
        """Publish one change (a Notifier body: ``event``, ``class``, safe ``model``)."""
        if not self.enabled:
            return
        name, event = str(body.get("class")), str(body.get("event"))
        if getattr(model_class(name), "secret", False):
            return
        legacy = {"event": event, "class": name, "model": dict(body.get("model") or {})}
        try:
            with self.app.producer_or_acquire() as producer:
                producer.publish(
                    legacy,
                    exchange=self.exchange,
                    routing_key=routing_key(name, event),
                    serializer="json",
                    delivery_mode=1,
                    declare=[self.exchange],
                    retry=True,
                    retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
                )
        except Exception as exc:  # noqa: BLE001 - the change is committed; only the news is lost
            logger.warning("Could not publish %s: %s", routing_key(name, event), exc)


def legacy_publisher(config: Mapping[str, Any], bus: Any) -> LegacyPublisher:
    """The storage service's publisher: on when its config or the environment says so.

    Off, it needs no app (a unit test's stand-in bus has none).
    """
    enabled = bool(config.get(CONFIG_KEY)) or switch(os.environ, ENV_LEGACY_NOTIFICATIONS)
    exchange = os.environ.get(ENV_BRIDGE_EXCHANGE) or DEFAULT_EXCHANGE
    return LegacyPublisher(bus.app if enabled else None, exchange, enabled=enabled)
