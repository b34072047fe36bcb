"""The bridge row: what serving original Commissaire clients through the bridge costs.

A ``workers.simple`` worker (``-c 2``) and one ``commissaire-tasks bridge``
process run on database 8 of the bench's own Redis. Measured, in interleaved
rounds: ``simple.add`` round trips one at a time, called directly
(``bus.call``) and by an original-style client (a kombu producer and a
``response-<id>`` reply queue per request, as the original's callers did), and
calls per second with 8 such clients at once beside 8 direct callers at once.
The bridge's added latency is the difference of the two medians.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import ENV_BROKER_URL, ENV_EXCHANGE, ENV_SERVICES, Settings
from commissaire_tasks.testing import WorkerProcess

from .measure import median, percentile, time_calls
from .workers import PROJECT_ROOT, READY_TIMEOUT_S, clean_environment

#: Database of the bench's own Redis the row uses (storage uses 1-3, events-off 9).
DATABASE = 8
#: Concurrent clients of the throughput measurement.
CLIENTS = 8
LABEL = "bridge (original clients)"


class OriginalCaller:
    """One original-style client: a reply queue ``response-<id>`` per request."""

    def __init__(self, url: str, exchange: str, timeout_s: float) -> None:
        self.connection = Connection(url)
        self.exchange = Exchange(exchange, type="topic", durable=True)
        self.timeout_s = timeout_s

    def add(self, x: int, y: int) -> Any:
        call_id = str(uuid.uuid4())
        reply_to = f"response-{call_id}"
        queue = self.connection.SimpleQueue(
            reply_to, queue_opts={"auto_delete": True, "durable": False}
        )
        try:
            self.connection.Producer().publish(
                {"jsonrpc": "2.0", "id": call_id, "method": "add", "params": [x, y]},
                exchange=self.exchange,
                routing_key="simple.add",
                reply_to=reply_to,
                declare=[self.exchange],
            )
            message = queue.get(block=True, timeout=self.timeout_s)
            message.ack()
        finally:
            queue.close()
        payload = message.payload
        if isinstance(payload, str):  # the original services' double encoding
            payload = json.loads(payload)
        if "result" not in payload:
            raise RuntimeError(f"bridge answered {payload!r}")
        return payload["result"]

    def close(self) -> None:
        self.connection.release()


def measure_bridge(
    redis_url: str, calls: int, rounds: int, log_dir: Path, loglevel: str, timeout_s: float
) -> dict[str, Any]:
    """``{p50_ms, p99_ms, added_p50_ms, calls_per_s}`` for ``direct`` and ``bridge``."""
    broker = f"{redis_url.rsplit('/', 1)[0]}/{DATABASE}"
    unique = uuid.uuid4().hex[:8]
    env = clean_environment(
        {
            ENV_BROKER_URL: broker,
            ENV_EXCHANGE: f"bench-{unique}",
            "COMMISSAIRE_BRIDGE_EXCHANGE": f"commissaire-{unique}",
            "COMMISSAIRE_BRIDGE_QUEUE": f"bridge-{unique}",
            ENV_SERVICES: "workers.simple",
        }
    )
    worker = WorkerProcess(
        broker_url=broker,
        app="workers.simple",
        concurrency=2,
        log_dir=log_dir,
        extra_args=["-l", loglevel],
        cwd=PROJECT_ROOT,
    )
    worker.env = env
    bridge_log = log_dir / "bridge.log"
    bridge: subprocess.Popen[bytes] | None = None
    settings = Settings(broker_url=broker, exchange=env[ENV_EXCHANGE], call_timeout_s=timeout_s)
    app = create_app(settings, services=())
    try:
        worker.start()
        bridge = _start_bridge(env, bridge_log)
        bus = Bus(app)
        caller = OriginalCaller(broker, env["COMMISSAIRE_BRIDGE_EXCHANGE"], timeout_s)
        try:
            return _measure(bus, caller, broker, env, calls, rounds, timeout_s)
        finally:
            caller.close()
    finally:
        if bridge is not None:
            bridge.terminate()
            try:
                bridge.wait(20)
            except subprocess.TimeoutExpired:
                bridge.kill()
                bridge.wait()
        worker.stop()
        app.close()


def _measure(
    bus: Bus,
    caller: OriginalCaller,
    broker: str,
    env: dict[str, str],
    calls: int,
    rounds: int,
    timeout_s: float,
) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"direct": [], "bridge": []}
    rates: dict[str, list[float]] = {"direct": [], "bridge": []}
    one = {"direct": lambda: bus.call("simple.add", 1, 2), "bridge": lambda: caller.add(1, 2)}
    exchange = env["COMMISSAIRE_BRIDGE_EXCHANGE"]
    makers: dict[str, Callable[[], tuple[Callable[[], Any], Callable[[], None]]]] = {
        "direct": lambda: (lambda: bus.call("simple.add", 1, 2), lambda: None),
        "bridge": lambda: _bridge_client(broker, exchange, timeout_s),
    }
    for index in range(rounds):
        order = ["direct", "bridge"] if index % 2 == 0 else ["bridge", "direct"]
        for key in order:
            samples[key] += time_calls(one[key], calls, warmup=5)
        for key in order:
            rates[key].append(_concurrent_rate(makers[key], calls))
    result: dict[str, Any] = {"clients": CLIENTS, "calls": calls, "rounds": rounds}
    for key in ("direct", "bridge"):
        result[key] = {
            "p50_ms": percentile(samples[key], 50) * 1e3,
            "p99_ms": percentile(samples[key], 99) * 1e3,
            "calls_per_s": median(rates[key]),
        }
    result["added_p50_ms"] = result["bridge"]["p50_ms"] - result["direct"]["p50_ms"]
    return result


def _bridge_client(
    broker: str, exchange: str, timeout_s: float
) -> tuple[Callable[[], Any], Callable[[], None]]:
    caller = OriginalCaller(broker, exchange, timeout_s)
    return (lambda: caller.add(1, 2)), caller.close


def _concurrent_rate(
    make: Callable[[], tuple[Callable[[], Any], Callable[[], None]]], calls: int
) -> float:
    """Calls per second of :data:`CLIENTS` clients calling ``calls`` times each, at once."""
    clients = [make() for _ in range(CLIENTS)]
    errors: list[BaseException] = []
    start = threading.Barrier(CLIENTS + 1)

    def run(call: Callable[[], Any]) -> None:
        start.wait()
        try:
            for _ in range(calls):
                call()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call, _ in clients]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    for _, close in clients:
        close()
    if errors:
        raise errors[0]
    return CLIENTS * calls / elapsed


def _start_bridge(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as file:
        process = subprocess.Popen(
            [sys.executable, "-m", "commissaire_tasks.cli", "bridge", "-l", "INFO"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=file,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while "Bridge ready" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"bridge did not start; log:\n{log.read_text()[-2000:]}")
        time.sleep(0.05)
    return process


def bridge_row(
    own_redis: bool,
    broker_url: str,
    plan: Any,
    log_dir: Path,
    loglevel: str,
    say: Callable[[str], None],
    notes: list[str],
) -> dict[str, Any] | None:
    """The row for :mod:`bench.runner`: measured on the bench's own Redis, else None (noted)."""
    if not own_redis:
        notes.append("bridge row needs the bench's own Redis (not run with --broker)")
        return None
    say("bridge row (8 original-style clients)")
    try:
        rounds = max(1, plan.rounds - 1)
        return measure_bridge(
            broker_url, plan.bridge_calls, rounds, log_dir, loglevel, plan.call_timeout_s
        )
    except Exception as exc:  # noqa: BLE001 - a failed row is reported, the run goes on
        notes.append(f"bridge row failed: {exc}")
        return {"error": str(exc)}


def report_lines(row: dict[str, Any] | None) -> list[tuple[str, list[str]]]:
    """The table lines of the row (label, five cells), for :mod:`bench.report`."""
    if row is None:
        return [(LABEL, ["not measured (needs the bench's own Redis)"] + [""] * 4)]
    if "error" in row:
        return [(LABEL, [f"error: {row['error'][:60]}"] + [""] * 4)]
    direct, bridge = row["direct"], row["bridge"]
    return [
        (
            "bridge: round trip p50/p99 ms (direct)",
            [
                f"{bridge['p50_ms']:.2f}/{bridge['p99_ms']:.2f} "
                f"({direct['p50_ms']:.2f}/{direct['p99_ms']:.2f})",
                "",
                "",
                "",
                "",
            ],
        ),
        ("  bridge added latency p50 ms", [f"{row['added_p50_ms']:.2f}", "", "", "", ""]),
        (
            f"bridge: calls/s, {row['clients']} clients at once (direct)",
            [f"{bridge['calls_per_s']:.0f} ({direct['calls_per_s']:.0f})", "", "", "", ""],
        ),
    ]
