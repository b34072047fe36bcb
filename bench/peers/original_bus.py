"""The original Commissaire bus, imported from a local copy of its source (``--original PATH``).

Nothing of it ships with this project (it is GPL and not on this machine): the
bench only imports ``commissaire_service`` from ``$BENCH_ORIGINAL_PATH`` (a
checkout with ``src/commissaire_service`` or a folder holding the package) and
drives its public classes. ``python original_bus.py service`` runs one consumer
of queue ``simple`` (bound to ``simple.*`` on the topic exchange ``commissaire``)
whose ``on_add`` answers; ``python original_bus.py client`` is the caller (see
:mod:`driver`): ``request("simple.add", "add", {"x": 1, "y": 2})`` per call, and
for throughput 8 threads of sequential requests, since the original has no
asynchronous call.
"""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from driver import Peer, serve

EXCHANGE = "commissaire"
#: Caller threads of the throughput phase (each with its own connection).
THREADS = 8


def _import_service_class() -> Any:
    root = Path(os.environ["BENCH_ORIGINAL_PATH"])
    sys.path.insert(0, str(root / "src" if (root / "src").is_dir() else root))
    from commissaire_service.service import CommissaireService

    return CommissaireService


def _answer(payload: Any) -> Any:
    """The value inside a reply: a JSON string (possibly of a JSON-RPC object) or the object."""
    value = payload.get("result") if isinstance(payload, dict) else payload
    if isinstance(value, str):
        value = json.loads(value)
    if isinstance(value, dict) and "result" in value:
        value = value["result"]
    return value


def run_service(url: str) -> None:
    base = _import_service_class()

    class AddService(base):  # type: ignore[misc, valid-type]
        def on_add(self, message: Any, x: int, y: int) -> int:
            return x + y

    AddService(EXCHANGE, url, [{"name": "simple", "routing_key": "simple.*"}]).run()


def run_client(url: str) -> None:
    base = _import_service_class()

    def caller() -> Any:
        return base(EXCHANGE, url, [])

    main = caller()

    def call_add(client: Any = main) -> Any:
        return _answer(client.request("simple.add", "add", {"x": 1, "y": 2}))

    def throughput(calls: int) -> tuple[float, float]:
        clients = [caller() for _ in range(THREADS)]
        shares = [calls // THREADS + (i < calls % THREADS) for i in range(THREADS)]
        start = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda c, n: [call_add(c) for _ in range(n)], clients, shares))
        rate = calls / (time.perf_counter() - start)
        for client in clients:
            client.connection.release()
        return rate, rate

    serve(Peer(call_add, throughput=throughput))


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    broker = os.environ["BENCH_PEER_BROKER"]
    if role == "service":
        run_service(broker)
    elif role == "client":
        run_client(broker)
    else:
        raise SystemExit("usage: original_bus.py service|client")
