"""The client loop every peer script shares: JSON requests on stdin, JSON figures on stdout.

Standard library only: it runs in each peer's own virtual environment, beside
that peer's client code and nothing of ours. The parent (:mod:`bench.peers.client`)
sends one request per line and reads one reply per line:

* ``{"op": "check"}`` -> ``{"value": <add(1, 2)>}`` (retried until ``timeout_s``);
* ``{"op": "latency", "calls": N, "warmup": W}`` -> ``{"samples_ms": [...]}``:
  N sequential calls, each timed;
* ``{"op": "throughput", "calls": N, "warmup": W}`` -> ``{"sent_per_s", "collected_per_s"}``:
  N calls sent, then every result collected;
* ``{"op": "batch", "calls": N}`` -> ``{"collected_per_s"}``: N calls sent and awaited as
  one batch (only peers with a batch call: ours, ``bus.call_many``);
* ``{"op": "quit"}`` ends the loop.

A failure is answered ``{"error": "..."}``. Library output cannot corrupt the
replies: ``print`` and logging go to stderr, replies to the original stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

#: How often ``check`` retries while the workers are still starting, in seconds.
CHECK_RETRY_S = 0.5


class Peer:
    """The three ways the bench calls a peer's ``add(1, 2)``.

    Args:
        call_add: Call and wait for the result.
        send_add: Send a call; return a handle ``collect`` accepts.
        collect: Wait for the result of one sent call.
        throughput: Optional replacement for send-then-collect (for a peer whose
            client has no asynchronous call): ``throughput(calls) -> (sent/s, collected/s)``.
        batch: Optional: send ``calls`` calls and await them as one batch.
    """

    def __init__(
        self,
        call_add: Callable[[], Any],
        send_add: Callable[[], Any] | None = None,
        collect: Callable[[Any], Any] | None = None,
        throughput: Callable[[int], tuple[float, float]] | None = None,
        batch: Callable[[int], Any] | None = None,
    ) -> None:
        self.call_add = call_add
        self.send_add = send_add
        self.collect = collect
        self.custom_throughput = throughput
        self.batch = batch

    def latency(self, calls: int, warmup: int) -> list[float]:
        for _ in range(warmup):
            self.call_add()
        clock = time.perf_counter
        samples = []
        for _ in range(calls):
            start = clock()
            self.call_add()
            samples.append((clock() - start) * 1e3)
        return samples

    def throughput(self, calls: int, warmup: int) -> tuple[float, float]:
        for _ in range(warmup):
            self.call_add()
        if self.custom_throughput is not None:
            return self.custom_throughput(calls)
        assert self.send_add is not None and self.collect is not None
        clock = time.perf_counter
        start = clock()
        pending = [self.send_add() for _ in range(calls)]
        sent = clock()
        for handle in pending:
            self.collect(handle)
        done = clock()
        return calls / (sent - start), calls / (done - start)

    def check(self, timeout_s: float) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self.call_add()
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(CHECK_RETRY_S)


def serve(peer: Peer) -> None:
    """Answer the parent's requests until ``quit`` or the end of stdin."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    _reply(replies, {"ready": True, "pid": os.getpid()})
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "quit":
            break
        try:
            answer = _answer(peer, request)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        _reply(replies, answer)


def _answer(peer: Peer, request: dict[str, Any]) -> dict[str, Any]:
    op = request["op"]
    warmup = int(request.get("warmup", 0))
    if op == "check":
        return {"value": peer.check(float(request.get("timeout_s", 60.0)))}
    if op == "latency":
        samples = peer.latency(int(request["calls"]), warmup)
        return {"samples_ms": [round(s, 4) for s in samples]}
    if op == "throughput":
        sent, collected = peer.throughput(int(request["calls"]), warmup)
        return {"sent_per_s": sent, "collected_per_s": collected}
    if op == "batch" and peer.batch is not None:
        calls = int(request["calls"])
        start = time.perf_counter()
        peer.batch(calls)
        return {"collected_per_s": calls / (time.perf_counter() - start)}
    raise ValueError(f"unknown op {op!r}")


def _reply(stream: Any, answer: dict[str, Any]) -> None:
    stream.write(json.dumps(answer) + "\n")
    stream.flush()
