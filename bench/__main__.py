"""``python -m bench`` from a checkout: the benchmark (it is not part of the installed library)."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
