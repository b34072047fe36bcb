"""Dramatiq's caller: ``add.send(1, 2)`` then a blocking ``get_result`` (see :mod:`driver`)."""

from __future__ import annotations

import os

from dramatiq_actors import add, results
from driver import Peer, serve

#: Milliseconds one result may take (Dramatiq's timeouts are in ms).
TIMEOUT_MS = int(float(os.environ.get("BENCH_PEER_TIMEOUT_S", "60")) * 1000)


def call_add() -> int:
    return results.get_result(add.send(1, 2), block=True, timeout=TIMEOUT_MS)


def collect(message: object) -> int:
    return results.get_result(message, block=True, timeout=TIMEOUT_MS)


if __name__ == "__main__":
    serve(Peer(call_add, lambda: add.send(1, 2), collect))
