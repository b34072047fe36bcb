"""Nameko's side of the bench: a service ``bench`` with one ``add`` RPC method.

Run by ``nameko run --broker URL nameko_service`` in the Nameko virtual
environment (two such processes make the two workers); eventlet's monkey
patching stays in those processes.
"""

from __future__ import annotations

from nameko.rpc import rpc


class BenchService:
    name = "bench"

    @rpc
    def add(self, x: int, y: int) -> int:
        return x + y
