"""``python -m bench``: the same as ``commissaire-tasks bench``."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
