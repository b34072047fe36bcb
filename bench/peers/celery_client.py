"""The caller of our framework and of bare Celery, as a process of its own (see :mod:`.driver`).

``python -m bench.peers.celery_client KIND`` from the checkout, in the project's
own environment; KIND is ``framework``, ``framework_quiet`` (task events off) or
``bare`` (Celery's defaults). It builds the same client the main bench uses
(:mod:`bench.systems`), so the side-by-side rows call exactly as those rows do,
from a separate process like every peer's caller.
"""

from __future__ import annotations

import os
import sys

from ..systems import CelerySystem, FrameworkSystem, System
from .driver import Peer, serve

KINDS = ("framework", "framework_quiet", "bare")


def build(kind: str, broker_url: str, backend: str | None, timeout_s: float) -> System:
    """The client of ``kind`` on ``broker_url`` (results in ``backend`` or the broker)."""
    if kind == "bare":
        return CelerySystem("bare", "bare Celery", "default", broker_url, backend, timeout_s)
    if kind in ("framework", "framework_quiet"):
        events = kind == "framework"
        return FrameworkSystem(kind, kind, broker_url, backend, timeout_s, task_events=events)
    raise SystemExit(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")


def main(argv: list[str]) -> None:
    kind = argv[0] if argv else ""
    timeout_s = float(os.environ.get("BENCH_PEER_TIMEOUT_S", "60"))
    backend = os.environ.get("BENCH_PEER_RESULTS") or None
    system = build(kind, os.environ["BENCH_PEER_BROKER"], backend, timeout_s)
    try:
        batch = system.call_batch if kind != "bare" else None
        serve(Peer(system.call_add, system.send_add, system.collect, batch=batch))
    finally:
        system.close()


if __name__ == "__main__":
    main(sys.argv[1:])
