"""The bridge's settings, from ``COMMISSAIRE_BRIDGE*`` environment variables, frozen."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import (
    DEFAULT_EXCHANGE,
    ENV_BRIDGE_EXCHANGE,
    ENV_EXCHANGE,
    ENV_LEGACY_NOTIFICATIONS,
    Settings,
    load_settings,
    switch,
)
from ..errors import ConfigurationError

__all__ = [
    "BridgeSettings",
    "DEFAULT_BINDINGS",
    "DEFAULT_QUEUE",
    "DEFAULT_THREADS",
    "ENV_BRIDGE",
    "ENV_BRIDGE_BINDINGS",
    "ENV_BRIDGE_EXCHANGE",
    "ENV_BRIDGE_QUEUE",
    "ENV_BRIDGE_THREADS",
    "ENV_LEGACY_NOTIFICATIONS",
    "bridge_enabled",
    "load_bridge_settings",
    "switch",
]

#: ``on`` makes ``commissaire-tasks up`` start the bridge.
ENV_BRIDGE = "COMMISSAIRE_BRIDGE"
#: Comma-separated binding keys the bridge consumes (default ``#``: every request).
ENV_BRIDGE_BINDINGS = "COMMISSAIRE_BRIDGE_BINDINGS"
#: The bridge's own durable queue, shared by every bridge process.
ENV_BRIDGE_QUEUE = "COMMISSAIRE_BRIDGE_QUEUE"
#: Calls one bridge process serves at once.
ENV_BRIDGE_THREADS = "COMMISSAIRE_BRIDGE_THREADS"

DEFAULT_BINDINGS = ("#",)
DEFAULT_QUEUE = "commissaire-bridge"
DEFAULT_THREADS = 16


@dataclass(frozen=True)
class BridgeSettings:
    """What a bridge process consumes and how many calls it runs at once.

    Attributes:
        bus: The framework's settings (broker, timeouts) the calls go through.
        exchange: The topic exchange the original clients publish to.
        bindings: Binding keys of the bridge's queue on that exchange.
        queue: The bridge's queue (durable: requests wait while no bridge runs).
        threads: Calls served at once by one bridge process.
    """

    bus: Settings
    exchange: str = DEFAULT_EXCHANGE
    bindings: tuple[str, ...] = DEFAULT_BINDINGS
    queue: str = DEFAULT_QUEUE
    threads: int = DEFAULT_THREADS

    def __post_init__(self) -> None:
        """Refuse one exchange for both: the services' queues would get every request too.

        They are bound to the services' exchange, so each original request would
        also land there as a message that is not a call (refused, dead-lettered),
        and calls routed by the broker's bindings could reach the bridge's ``#``.
        """
        if self.exchange == self.bus.exchange:
            raise ConfigurationError(
                f"the bridge and the services both use exchange {self.exchange!r}; give the "
                f"services one of their own ({ENV_EXCHANGE}=commissaire-tasks, or "
                f"--bus-exchange) and leave {self.exchange!r} to the original clients and the "
                f"bridge ({ENV_BRIDGE_EXCHANGE})"
            )


def load_bridge_settings(environ: Mapping[str, str] | None = None) -> BridgeSettings:
    """Build :class:`BridgeSettings` from the environment (``COMMISSAIRE_*``)."""
    env = os.environ if environ is None else environ
    bus = load_settings(env)
    bindings = tuple(b.strip() for b in env.get(ENV_BRIDGE_BINDINGS, "").split(",") if b.strip())
    raw_threads = env.get(ENV_BRIDGE_THREADS) or str(DEFAULT_THREADS)
    try:
        threads = int(raw_threads)
    except ValueError as exc:
        raise ConfigurationError(f"{ENV_BRIDGE_THREADS}={raw_threads!r} is not an int") from exc
    if threads <= 0:
        raise ConfigurationError(f"{ENV_BRIDGE_THREADS} must be positive, got {raw_threads!r}")
    return BridgeSettings(
        bus=bus,
        exchange=env.get(ENV_BRIDGE_EXCHANGE) or DEFAULT_EXCHANGE,
        bindings=bindings or DEFAULT_BINDINGS,
        queue=env.get(ENV_BRIDGE_QUEUE) or DEFAULT_QUEUE,
        threads=threads,
    )


def bridge_enabled(environ: Mapping[str, str]) -> bool:
    """Whether ``commissaire-tasks up`` starts a bridge (``COMMISSAIRE_BRIDGE=on``)."""
    return switch(environ, ENV_BRIDGE)
