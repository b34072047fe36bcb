"""The floor under every row: request/reply over bare redis-py, no framework at all.

``python floor.py service`` pops requests (``BLPOP`` on ``floor:requests``) and
pushes each answer onto the caller's reply list; ``python floor.py client`` is
the caller (see :mod:`driver`): one ``LPUSH`` and one ``BLPOP`` per call, and for
throughput every request pipelined, then every reply popped. JSON bodies, one
list per caller, nothing else: what any call over Redis stands on.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import redis
from driver import Peer, serve

REQUESTS = "floor:requests"
#: Seconds one reply may take.
TIMEOUT_S = float(os.environ.get("BENCH_PEER_TIMEOUT_S", "60"))
#: Seconds of one BLPOP: short, under redis-py's socket timeout (the pop is repeated).
POP_S = 1


def run_service(client: redis.Redis) -> None:
    while True:
        popped = client.blpop([REQUESTS], timeout=POP_S)
        if popped is None:
            continue
        request = json.loads(popped[1])
        answer = {"id": request["id"], "result": request["x"] + request["y"]}
        client.lpush(request["reply_to"], json.dumps(answer))


def run_client(client: redis.Redis) -> None:
    replies = f"floor:replies:{uuid.uuid4().hex}"

    def request() -> str:
        return json.dumps({"id": uuid.uuid4().hex, "x": 1, "y": 2, "reply_to": replies})

    def receive() -> int:
        deadline = time.monotonic() + TIMEOUT_S
        while (popped := client.blpop([replies], timeout=POP_S)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply in {TIMEOUT_S} s")
        return int(json.loads(popped[1])["result"])

    def call_add() -> int:
        client.lpush(REQUESTS, request())
        return receive()

    def throughput(calls: int) -> tuple[float, float]:
        start = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        for _ in range(calls):
            pipe.lpush(REQUESTS, request())
        pipe.execute()
        sent = time.perf_counter()
        for _ in range(calls):
            receive()
        done = time.perf_counter()
        return calls / (sent - start), calls / (done - start)

    serve(Peer(call_add, throughput=throughput))


if __name__ == "__main__":
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    connection = redis.Redis.from_url(os.environ["BENCH_PEER_BROKER"])
    if role == "service":
        run_service(connection)
    elif role == "client":
        run_client(connection)
    else:
        raise SystemExit("usage: floor.py service|client")
