"""Old import paths of moved modules: they keep working and say where the name lives now.

A module that moved leaves a shim at its old path. The shim imports the new
module(s) (so the import graph sees the dependency) and sets its module-level
``__getattr__`` from :func:`forward`: every name read through the old path comes
from the new module, with a :class:`DeprecationWarning` naming that module.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["forward"]


def forward(old: str, *new: ModuleType) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``old`` that reads names from the ``new`` modules, in order."""

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module hook's name
        if name.startswith("__"):
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        for module in new:
            if hasattr(module, name):
                warnings.warn(
                    f"{old} moved: import {name} from {module.__name__}",
                    DeprecationWarning,
                    stacklevel=2,
                )
                return getattr(module, name)
        places = ", ".join(module.__name__ for module in new)
        raise AttributeError(f"module {old!r} (moved to {places}) has no attribute {name!r}")

    return __getattr__
