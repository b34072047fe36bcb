"""Old path of :mod:`commissaire_tasks.runtime.deadletters` (warns, then forwards)."""

from __future__ import annotations

from ._moved import forward
from .runtime import deadletters as _new

__getattr__ = forward(__name__, _new)
