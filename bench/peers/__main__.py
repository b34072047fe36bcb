"""``python -m bench.peers``: the same as ``python -m bench --peers``."""

from __future__ import annotations

import sys

from ..cli import main

raise SystemExit(main(["--peers", *sys.argv[1:]]))
