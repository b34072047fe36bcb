"""``python -m bench.ab``: what each call-path optimisation buys, A/B in one run.

Each comparison switches exactly one thing and alternates which side goes first
in every round; the figures are medians and medians of per-round ratios:

* ``store``: our Redis result backend (one Lua round trip per result) against
  Celery's own, storing results straight into the bench's Redis;
* ``transport``: two caller apps on one worker, with our Redis transport (one
  client per channel) and with kombu's; round trip p50 and publish-only rate;
* ``batch``: ``notify_many`` against a ``notify`` loop.

The README's "What each optimisation bought" table quotes this command.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import states

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import Settings
from commissaire_tasks.testing import RedisServer, WorkerProcess

from . import bare_tasks
from .measure import median, paired_ratio, percentile, publish_rate, rotated, time_calls
from .workers import PROJECT_ROOT, clean_environment

Rounds = dict[str, list[float]]


def interleaved(sides: dict[str, Callable[[], float]], rounds: int) -> Rounds:
    """Each side's figure per round, the order rotating every round."""
    figures: Rounds = {name: [] for name in sides}
    for index in range(rounds):
        for name in rotated(list(sides), index):
            figures[name].append(sides[name]())
    return figures


def summary(figures: Rounds, unit: str) -> dict[str, Any]:
    (a, a_rounds), (b, b_rounds) = figures.items()
    return {
        "unit": unit,
        a: median(a_rounds),
        b: median(b_rounds),
        f"{a}/{b}": paired_ratio(a_rounds, b_rounds),
    }


def store(settings: Settings, rounds: int, calls: int) -> dict[str, Any]:
    ours = create_app(settings, services=()).backend
    celerys = bare_tasks.identical_app(settings.broker_url, client=False).backend

    def per_result_us(backend: Any) -> Callable[[], float]:
        def run() -> float:
            ids = [str(uuid.uuid4()) for _ in range(calls)]
            samples = time_calls(lambda: backend.store_result(ids.pop(), 3, states.SUCCESS), calls)
            return sum(samples) / calls * 1e6

        return run

    per_result_us(ours)()  # loads the script, warms both
    per_result_us(celerys)()
    figures = interleaved({"ours": per_result_us(ours), "celery": per_result_us(celerys)}, rounds)
    return summary(figures, "us per stored result")


def transport(settings: Settings, rounds: int, calls: int, log_dir: Path) -> dict[str, Any]:
    ours = Bus(create_app(settings, services=()))
    kombus_app = create_app(settings, services=())
    kombus_app.amqp_cls = "celery.app.amqp:AMQP"  # kombu's own Redis transport
    kombus = Bus(kombus_app)
    sides = {"ours": ours, "kombu": kombus}
    worker = WorkerProcess(
        broker_url=settings.broker_url,
        app="workers.simple",
        queues=["simple"],
        concurrency=2,
        log_dir=log_dir,
        cwd=PROJECT_ROOT,
    )
    worker.env = clean_environment({"COMMISSAIRE_BROKER_URL": settings.broker_url})
    with worker:

        def p50_ms(bus: Bus) -> Callable[[], float]:
            def add() -> Any:
                return bus.call("simple.add", 1, 2)

            time_calls(add, 20)  # warm up
            return lambda: percentile(time_calls(add, calls), 50) * 1e3

        latency = interleaved({name: p50_ms(bus) for name, bus in sides.items()}, rounds)

    def rate(bus: Bus) -> Callable[[], float]:
        return lambda: publish_rate(lambda: bus.notify("simple.add", 1, 2), calls * 4)

    publishing = interleaved({name: rate(bus) for name, bus in sides.items()}, rounds)
    return {
        "round_trip_p50": summary(latency, "ms"),
        "publish_only": summary(publishing, "calls/s"),
    }


def batch(settings: Settings, rounds: int, calls: int) -> dict[str, Any]:
    bus = Bus(create_app(settings, services=()))
    count = calls * 4

    def loop() -> float:
        return publish_rate(lambda: bus.notify("simple.add", 1, 2), count)

    def many() -> float:
        return publish_rate(lambda: bus.notify_many("simple.add", [[1, 2]] * count), 1) * count

    return summary(interleaved({"notify_many": many, "notify_loop": loop}, rounds), "calls/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=500, help="calls per side and round")
    args = parser.parse_args(argv)
    with RedisServer() as server, tempfile.TemporaryDirectory(prefix="ct-ab-") as logs:
        settings = Settings(broker_url=server.url, call_timeout_s=60)
        results = {
            "store": store(settings, args.rounds, args.calls),
            "transport": transport(settings, args.rounds, args.calls, Path(logs)),
            "batch": batch(settings, args.rounds, args.calls),
        }
    for name, figures in results.items():
        print(f"{name}: {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
