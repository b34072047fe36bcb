"""``commissaire-tasks bridge``: one bridge process in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

from .consumer import Bridge
from .settings import BridgeSettings

__all__ = ["bridge_command", "run_bridge"]

logger = logging.getLogger(__name__)


def run_bridge(settings: BridgeSettings, loglevel: str = "INFO") -> int:
    """Serve until stopped; running calls finish and their replies are sent. Returns 0."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=loglevel.upper(),
            stream=sys.stderr,
            format="[%(asctime)s: %(levelname)s/bridge] %(name)s: %(message)s",
        )
    bridge = Bridge(settings)

    def stop(signum: int, frame: Any) -> None:
        bridge.should_stop = True
        if not bridge.ready.is_set():  # waiting for the broker: nothing to finish
            raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        bridge.run()  # type: ignore[no-untyped-call]
    finally:
        bridge.stop()
        logger.info("Bridge stopped")
    return 0


def bridge_command(loglevel: str = "INFO") -> list[str]:
    """The command line of a bridge process (what ``up`` starts)."""
    return [sys.executable, "-m", "commissaire_tasks.cli", "bridge", "-l", loglevel]
