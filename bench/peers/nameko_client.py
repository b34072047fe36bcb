"""Nameko's caller: a standalone ``ClusterRpcProxy`` (see :mod:`driver`).

``rpc.bench.add(1, 2)`` waits; ``rpc.bench.add.call_async(1, 2)`` sends and
``.result()`` collects. No monkey patching: the standalone proxy is what a
non-Nameko program uses to call a Nameko service.
"""

from __future__ import annotations

import os

from driver import Peer, serve
from nameko.standalone.rpc import ClusterRpcProxy

if __name__ == "__main__":
    timeout_s = float(os.environ.get("BENCH_PEER_TIMEOUT_S", "60"))
    config = {"AMQP_URI": os.environ["BENCH_PEER_BROKER"]}
    with ClusterRpcProxy(config, timeout=timeout_s) as proxy:
        service = proxy.bench
        serve(
            Peer(
                lambda: service.add(1, 2),
                lambda: service.add.call_async(1, 2),
                lambda reply: reply.result(),
            )
        )
