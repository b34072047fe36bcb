"""A bridge for clients and subscribers of the original Commissaire bus.

:mod:`.protocol` is the wire format, :mod:`.consumer` serves requests through
the framework, :mod:`commissaire_tasks.storage.legacy` republishes storage changes in the
original form, :mod:`.settings` reads ``COMMISSAIRE_BRIDGE*``.
"""

from .consumer import Bridge
from .runner import run_bridge
from .settings import BridgeSettings, load_bridge_settings

__all__ = ["Bridge", "BridgeSettings", "load_bridge_settings", "run_bridge"]
