"""A bus call in flight does not hold up the server: it waits in a worker thread."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import redis

from .conftest import BOB, Worlds, client
from .test_hosts import create_host

FAST_REQUESTS = 24


def test_many_requests_are_served_while_a_slow_call_waits(
    api: httpx.Client, base_url: str, pki: dict[str, Any], worlds: Worlds, name: str
) -> None:
    gate = uuid.uuid4().hex[:8]
    assert create_host(api, name, status="active").status_code == 201
    manager = f"gate-{gate}"
    assert (
        api.put(f"/api/v0/cluster/{name}/", json={"container_manager": manager}).status_code == 201
    )
    assert api.put(f"/api/v0/cluster/{name}/hosts/{name}/").status_code == 200
    store = redis.Redis.from_url(worlds.main)
    slow: dict[str, httpx.Response] = {}

    def slow_call() -> None:
        with client(base_url, pki, auth=BOB) as own:
            slow["response"] = own.get(f"/api/v0/host/{name}/status/")

    waiter = threading.Thread(target=slow_call)
    waiter.start()
    deadline = time.monotonic() + 30
    while not store.exists(f"gate:{gate}:started"):  # the slow call is in the container service
        assert time.monotonic() < deadline, "the slow call never reached the stand-in"
        time.sleep(0.05)

    def fast(index: int) -> int:
        path = "/api/v0/clusters/" if index % 2 else f"/api/v0/cluster/{name}/"
        with client(base_url, pki, auth=BOB) as own:
            return own.get(path).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(fast, range(FAST_REQUESTS)))
    assert statuses == [200] * FAST_REQUESTS
    assert waiter.is_alive() and "response" not in slow  # still waiting at the gate
    store.set(f"gate:{gate}:open", 1, ex=60)
    waiter.join(30)
    assert slow["response"].status_code == 200
    assert slow["response"].json()["container_manager"]["manager"] == manager
