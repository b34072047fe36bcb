"""``python -m bench.result_path``: the lean result path beside Celery's pub/sub path.

Two framework systems with the same settings but their result path (``lean``:
reply list per caller; ``pubsub``: Celery's Redis backend, one subscription per
call), each on a Redis server of its own so ``INFO commandstats`` counts one
system only, each with a 2-process worker, measured in interleaved rounds:
sequential ``bus.call`` latency (with Redis commands per call over those calls),
sent-then-collected throughput and ``call_many`` throughput (with the caller's
CPU per call over those two). Prints a table and
writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections import Counter
from typing import Any

import redis

from .measure import collected_rate, median, paired_ratio, percentile, rotated, time_calls
from .stack import make_log_dir, start_redis
from .systems import FrameworkSystem
from .workers import WorkerSet

#: Result path -> label.
PATHS = {"lean": "lean (reply list, BLMPOP)", "pubsub": "Celery's pub/sub"}


def commands_run(client: redis.Redis) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter({name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()})


def measure_round(system: FrameworkSystem, client: redis.Redis, args: Any) -> dict[str, Any]:
    time_calls(system.call_add, 20)  # warm (outside the command count)
    before = commands_run(client)
    latency = time_calls(system.call_add, args.latency_calls)
    spent = commands_run(client) - before
    spent.pop("info", None)
    cpu = time.process_time()
    _, collected = collected_rate(system.send_add, system.collect, args.calls)
    started = time.perf_counter()
    system.call_batch(args.calls)
    batch = args.calls / (time.perf_counter() - started)
    caller_cpu_ms = (time.process_time() - cpu) * 1e3 / (2 * args.calls)
    return {
        "latency": latency,
        "commands_per_call": sum(spent.values()) / args.latency_calls,
        "commands": {k: round(v / args.latency_calls, 2) for k, v in spent.most_common(12)},
        "collected_per_s": collected,
        "call_many_per_s": batch,
        "caller_cpu_ms": caller_cpu_ms,
    }


def run(args: Any) -> dict[str, Any]:
    rounds: dict[str, list[dict[str, Any]]] = {path: [] for path in PATHS}
    with contextlib.ExitStack() as stack:
        log_dir = make_log_dir(stack, args)
        servers = {path: start_redis(stack) for path in PATHS}
        systems = {
            path: FrameworkSystem(path, label, servers[path].url, path, 30.0)
            for path, label in PATHS.items()
        }
        for system in systems.values():
            stack.callback(system.close)
        clients = {path: redis.Redis.from_url(servers[path].url) for path in PATHS}
        with WorkerSet(systems.values(), concurrency=2, log_dir=log_dir):
            for index in range(args.rounds):
                for path in rotated(list(PATHS), index):
                    rounds[path].append(measure_round(systems[path], clients[path], args))
    return summarise(rounds)


def summarise(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for path, measured in rounds.items():
        samples = [s for r in measured for s in r["latency"]]
        summary[path] = {
            "p50_ms": percentile(samples, 50) * 1e3,
            "p99_ms": percentile(samples, 99) * 1e3,
            "commands_per_call": median(r["commands_per_call"] for r in measured),
            "commands": measured[-1]["commands"],
            "collected_per_s": median(r["collected_per_s"] for r in measured),
            "call_many_per_s": median(r["call_many_per_s"] for r in measured),
            "caller_cpu_ms": median(r["caller_cpu_ms"] for r in measured),
        }
    lean, pubsub = rounds["lean"], rounds["pubsub"]
    summary["ratios"] = {
        "p50": paired_ratio(
            [percentile(r["latency"], 50) for r in lean],
            [percentile(r["latency"], 50) for r in pubsub],
        ),
        "collected": paired_ratio(
            [r["collected_per_s"] for r in lean], [r["collected_per_s"] for r in pubsub]
        ),
        "call_many": paired_ratio(
            [r["call_many_per_s"] for r in lean], [r["call_many_per_s"] for r in pubsub]
        ),
    }
    return summary


def render(summary: dict[str, Any]) -> str:
    lines = [
        "| result path | p50 | p99 | collected calls/s | call_many calls/s "
        "| caller CPU ms/call | Redis commands/call |",
        "|---|---|---|---|---|---|---|",
    ]
    for path, label in PATHS.items():
        row = summary[path]
        lines.append(
            f"| {label} | {row['p50_ms']:.2f} ms | {row['p99_ms']:.2f} ms "
            f"| {row['collected_per_s']:,.0f} | {row['call_many_per_s']:,.0f} "
            f"| {row['caller_cpu_ms']:.2f} | {row['commands_per_call']:.1f} |"
        )
    ratios = summary["ratios"]
    lines.append(
        f"lean/pubsub, paired by round: p50 {ratios['p50']:.2f}x, collected "
        f"{ratios['collected']:.2f}x, call_many {ratios['call_many']:.2f}x"
    )
    for path in PATHS:
        lines.append(f"{path} commands per call: {summary[path]['commands']}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.result_path", description=__doc__)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--latency-calls", type=int, default=1000)
    p.add_argument("--calls", type=int, default=2000, help="sent then collected per round")
    p.add_argument("--out", default="bench-result-path.json")
    p.add_argument("--log-dir", default=None)
    args = p.parse_args()
    summary = run(args)
    print(render(summary))
    with open(args.out, "w") as file:
        json.dump(summary, file, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
