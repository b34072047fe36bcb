"""The bench run: servers, workers and every row, in one process, interleaved.

Order of a run:

1. a Redis of its own (unless ``--broker``) and, when reachable, a RabbitMQ vhost;
2. raw Redis PING round trip (the floor any call over Redis stands on);
3. publish-only rate, with no worker running (only the client path is timed);
4. for each pool size: one worker per system, then rounds of sequential round
   trips and of send-then-collect throughput, each round in a new order; at the
   reference pool size also the payload rows, the RabbitMQ systems (in the same
   rounds) and the memory drain;
5. the storage rows and the bridge row (with the bench's own Redis);

and everything started is stopped, by pid, on the way out.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from commissaire_tasks.testing import RedisServer

from . import queues
from .bridge import bridge_row
from .cost import CostMeter
from .measure import (
    collected_rate,
    median,
    paired_ratio,
    percentile,
    publish_rate,
    rotated,
    time_calls,
)
from .meta import is_redis, run_meta
from .plan import PAYLOAD_SIZES, Plan
from .scale import measure_drain
from .stack import broker, close, make_log_dir, rabbitmq, redis_ping, start_redis
from .storage import measure_storage
from .systems import (
    BARE_DEFAULT,
    BARE_IDENTICAL,
    FRAMEWORK,
    FRAMEWORK_QUIET,
    RABBITMQ_SUFFIX,
    FrameworkSystem,
    System,
    build_systems,
)
from .workers import WorkerSet

#: Comparisons quoted in every row: (numerator, denominator) system keys.
PAIRS = ((FRAMEWORK, BARE_IDENTICAL), (FRAMEWORK, BARE_DEFAULT))


@dataclass(frozen=True)
class Options:
    """Where to run: broker and backend (own Redis when None), RabbitMQ, logs."""

    broker_url: str | None = None
    result_backend: str | None = None
    rabbitmq: bool = True
    loglevel: str = "WARNING"
    log_dir: str | None = None


Progress = Callable[[str], None]


def run(plan: Plan, options: Options, progress: Progress = lambda line: None) -> dict[str, Any]:
    """Measure every row; return the results document (see :mod:`bench.report`)."""
    started = time.monotonic()

    def say(line: str) -> None:
        progress(f"[{time.monotonic() - started:6.1f}s] {line}")

    with contextlib.ExitStack() as stack:
        log_dir = make_log_dir(stack, options)
        broker_url, own_server = broker(stack, options)
        own_redis = own_server is not None
        backend = options.result_backend
        if backend is None and not is_redis(broker_url):
            backend = start_redis(stack).url
        results_redis = backend if backend and is_redis(backend) else broker_url
        systems = build_systems(broker_url, backend, plan.call_timeout_s)
        stack.callback(close, systems)
        rabbit, rabbit_note = rabbitmq(stack, options, results_redis, plan, say)
        stack.callback(close, rabbit)
        quiet = _quiet_framework(own_server, options, plan)
        stack.callback(close, quiet)

        rows: dict[str, Any] = {}
        notes: list[str] = []
        say("raw Redis round trip")
        rows["redis_ping"] = redis_ping(results_redis, plan.ping_calls)
        for system in [*systems, *rabbit, *quiet]:
            queues.purge(system)
        say("publish-only (no worker running)")
        rows["publish_only"] = _publish_only(systems, plan, say)

        round_trip: dict[str, Any] = {}
        throughput: dict[str, Any] = {}
        for concurrency in plan.concurrency:
            reference = concurrency == plan.reference_concurrency
            running = [*systems, *([*rabbit, *quiet] if reference else [])]
            say(f"starting {len(running)} workers with -c {concurrency}")
            with WorkerSet(running, concurrency, log_dir, options.loglevel) as workers:
                _check(running)
                meter = _meter_factory(workers, broker_url, backend, own_server)
                meter_or_none = meter if reference else None
                latency, rates, costs = _sweep(running, plan, concurrency, say, meter_or_none)
                round_trip[f"c{concurrency}"] = latency_cell(latency, systems, concurrency)
                throughput[f"c{concurrency}"] = rate_cell(rates, systems, concurrency)
                if reference:
                    rows["cost"] = {"concurrency": concurrency, "systems": costs}
                    rows["rabbitmq"] = _rabbit_row(latency, rates, rabbit, rabbit_note)
                    rows["events_off"] = _events_off_row(latency, rates, quiet)
                    say("batches (call_many / ResultSet.join_native)")
                    rows["batch"] = _batches(systems, plan)
                    say("payload round trips (my.echo)")
                    rows["payload"] = _payloads(systems, plan, say)
                    say(f"memory: draining {plan.drain_calls} queued calls (framework)")
                    try:
                        rows["memory"] = measure_drain(systems[0], workers, plan.drain_calls)
                    except (RuntimeError, TimeoutError) as exc:
                        rows["memory"] = {"calls": plan.drain_calls, "error": str(exc)}
                        notes.append(f"memory row failed: {exc}")
        rows["round_trip"] = round_trip
        rows["throughput"] = throughput

        if own_redis:
            say("storage rows")
            rows["storage"] = measure_storage(
                broker_url,
                plan.storage_calls,
                plan.storage_rounds,
                log_dir,
                options.loglevel,
                plan.call_timeout_s,
            )
        else:
            rows["storage"] = None
            notes.append("storage rows need the bench's own Redis (not run with --broker)")
        bridge = bridge_row(own_redis, broker_url, plan, log_dir, options.loglevel, say, notes)
        rows["bridge"] = bridge
        if rabbit_note:
            notes.append(f"RabbitMQ row skipped: {rabbit_note}")
        if not quiet:
            notes.append("task-events-off row needs the bench's own Redis (not run with --broker)")
        say("done")
        return {
            "meta": run_meta(plan, options, broker_url, backend, time.monotonic() - started),
            "rows": rows,
            "notes": notes,
        }


def latency_cell(
    samples: dict[str, list[list[float]]], systems: Sequence[System] | None, concurrency: int
) -> dict[str, Any]:
    """Pooled p50/p99 per system (ms) and paired per-round ratios."""
    cell: dict[str, Any] = {"unit": "ms", "concurrency": concurrency, "systems": {}, "ratios": {}}
    for key, rounds in samples.items():
        pooled = [s for r in rounds for s in r]
        cell["systems"][key] = {
            "p50": percentile(pooled, 50) * 1e3,
            "p99": percentile(pooled, 99) * 1e3,
            "round_p50": [percentile(r, 50) * 1e3 for r in rounds],
            "round_p99": [percentile(r, 99) * 1e3 for r in rounds],
            "calls": len(pooled),
        }
    for a, b in PAIRS:
        if a in cell["systems"] and b in cell["systems"]:
            sa, sb = cell["systems"][a], cell["systems"][b]
            cell["ratios"][f"{a}/{b}"] = {
                "p50": paired_ratio(sa["round_p50"], sb["round_p50"]),
                "p99": paired_ratio(sa["round_p99"], sb["round_p99"]),
            }
    return cell


def rate_cell(
    rates: dict[str, dict[str, list[float]]],
    systems: Sequence[System] | None,
    concurrency: int | None,
) -> dict[str, Any]:
    """Median calls/s per system and paired per-round ratios (of ``rounds``)."""
    cell: dict[str, Any] = {
        "unit": "calls/s",
        "concurrency": concurrency,
        "systems": {},
        "ratios": {},
    }
    for key, series in rates.items():
        cell["systems"][key] = {"median": median(series["rounds"]), **series}
        if "send_rounds" in series:
            cell["systems"][key]["send_median"] = median(series["send_rounds"])
    for a, b in PAIRS:
        if a in cell["systems"] and b in cell["systems"]:
            cell["ratios"][f"{a}/{b}"] = paired_ratio(
                cell["systems"][a]["rounds"], cell["systems"][b]["rounds"]
            )
    return cell


MeterFactory = Callable[[str], CostMeter]


def _meter_factory(
    workers: WorkerSet, broker_url: str, backend: str | None, server: RedisServer | None
) -> MeterFactory:
    """Meters for systems on the main broker; Redis commands only when one server does it all."""
    same_server = backend is None or backend == broker_url
    redis_url = broker_url if is_redis(broker_url) and same_server else None
    pid = server.process.pid if server is not None and server.process is not None else None
    return lambda key: CostMeter(workers, key, redis_url=redis_url, redis_pid=pid)


def _sweep(
    running: Sequence[System],
    plan: Plan,
    concurrency: int,
    say: Progress,
    meter: MeterFactory | None = None,
) -> tuple[dict[str, list[list[float]]], dict[str, dict[str, list[float]]], dict[str, Any]]:
    """Rounds of round trips then throughput; with ``meter``, the cost of each call too."""
    latency: dict[str, list[list[float]]] = {s.key: [] for s in running}
    rates: dict[str, dict[str, list[float]]] = {
        s.key: {"rounds": [], "send_rounds": []} for s in running
    }
    costs: dict[str, list[dict[str, Any]]] = {}
    rounds = plan.rounds_at(concurrency)
    for index in range(rounds):
        say(f"-c {concurrency}: round {index + 1}/{rounds}")
        for system in rotated(running, index):
            latency[system.key].append(
                time_calls(system.call_add, plan.latency_calls, warmup=plan.warmup_calls)
            )
        for system in rotated(running, index):
            for _ in range(plan.warmup_calls):
                system.call_add()
            cost: CostMeter | None = None
            if meter is not None and not system.key.endswith(RABBITMQ_SUFFIX):
                cost = meter(system.key)
            with cost if cost is not None else contextlib.nullcontext():
                sent, collected = collected_rate(
                    system.send_add, system.collect, plan.throughput_calls
                )
            if cost is not None:
                costs.setdefault(system.key, []).append(cost.per_call(plan.throughput_calls))
            rates[system.key]["rounds"].append(collected)
            rates[system.key]["send_rounds"].append(sent)
    return latency, rates, {key: _median_cost(rounds) for key, rounds in costs.items()}


def _median_cost(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The per-call cost of the median round (by total CPU), with every round's total."""
    ordered = sorted(rounds, key=lambda r: r["cpu_ms"]["total"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["round_cpu_ms_total"] = [r["cpu_ms"]["total"] for r in rounds]
    return chosen


def _publish_only(systems: Sequence[System], plan: Plan, say: Progress) -> dict[str, Any]:
    rates: dict[str, dict[str, list[float]]] = {s.key: {"rounds": []} for s in systems}
    for index in range(plan.publish_rounds):
        for system in rotated(systems, index):
            for _ in range(plan.warmup_calls):
                system.notify_add()
            rates[system.key]["rounds"].append(publish_rate(system.notify_add, plan.publish_calls))
            queues.purge(system)
    return rate_cell(rates, systems, None)


def _batches(systems: Sequence[System], plan: Plan) -> dict[str, Any]:
    """Calls/s of batches of ``throughput_calls`` calls, each batch awaited as a whole."""
    count = plan.throughput_calls
    rates: dict[str, dict[str, list[float]]] = {s.key: {"rounds": []} for s in systems}
    for system in systems:
        if system.call_batch(plan.warmup_calls) != [3] * plan.warmup_calls:
            raise RuntimeError(f"{system.label}: a batch of add calls came back wrong")
    for index in range(plan.rounds):
        for system in rotated(systems, index):
            start = time.perf_counter()
            system.call_batch(count)
            rates[system.key]["rounds"].append(count / (time.perf_counter() - start))
    return rate_cell(rates, systems, plan.reference_concurrency)


def _payloads(systems: Sequence[System], plan: Plan, say: Progress) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    for size in PAYLOAD_SIZES:
        words = "x" * size
        calls = plan.payload_calls.get(size, 5)
        samples: dict[str, list[list[float]]] = {s.key: [] for s in systems}
        for system in systems:
            if system.call_echo(words) != words:
                raise RuntimeError(f"{system.label}: echo of {size} bytes came back changed")
        for index in range(plan.payload_rounds):
            for system in rotated(systems, index):
                samples[system.key].append(
                    time_calls(partial(system.call_echo, words), calls, warmup=1)
                )
        cell = latency_cell(samples, systems, plan.reference_concurrency)
        cell["bytes"] = size
        cells[_size_label(size)] = cell
    return cells


def _rabbit_row(
    latency: dict[str, list[list[float]]],
    rates: dict[str, dict[str, list[float]]],
    rabbit: Sequence[System],
    note: str | None,
) -> dict[str, Any]:
    if not rabbit:
        return {"skipped": note or "not run"}
    strip = {s.key: s.key[: -len(RABBITMQ_SUFFIX)] for s in rabbit}
    lat = latency_cell({strip[k]: latency[k] for k in strip}, None, 0)
    thr = rate_cell({strip[k]: rates[k] for k in strip}, None, None)
    lat.pop("concurrency")
    thr.pop("concurrency")
    vs_redis: dict[str, Any] = {}
    for key, base in strip.items():
        vs_redis[f"{key}/{base}"] = _paired(latency, rates, key, base)
    return {"round_trip": lat, "throughput": thr, "vs_redis": vs_redis}


def _quiet_framework(server: RedisServer | None, options: Options, plan: Plan) -> list[System]:
    """The framework with task events off, on database 9 of the bench's own Redis."""
    if server is None or options.result_backend is not None:
        return []
    url = server.url.rsplit("/", 1)[0] + "/9"  # storage rows use databases 1-3
    return [
        FrameworkSystem(
            FRAMEWORK_QUIET, "framework, task events off", url, None, plan.call_timeout_s, False
        )
    ]


def _events_off_row(
    latency: dict[str, list[list[float]]],
    rates: dict[str, dict[str, list[float]]],
    quiet: Sequence[System],
) -> dict[str, Any] | None:
    """The quiet framework beside the framework and bare-default of the same rounds."""
    if not quiet:
        return None
    keys = (FRAMEWORK_QUIET, FRAMEWORK, BARE_DEFAULT)
    row: dict[str, Any] = {"p50_ms": {}, "calls_per_s": {}, "ratios": {}}
    for key in keys:
        row["p50_ms"][key] = percentile([s for r in latency[key] for s in r], 50) * 1e3
        row["calls_per_s"][key] = median(rates[key]["rounds"])
    for base in keys[1:]:
        row["ratios"][f"{FRAMEWORK_QUIET}/{base}"] = _paired(latency, rates, FRAMEWORK_QUIET, base)
    return row


def _paired(
    latency: dict[str, list[list[float]]],
    rates: dict[str, dict[str, list[float]]],
    key: str,
    base: str,
) -> dict[str, float]:
    """System ``key`` over ``base`` in the same rounds: p50 and collected-throughput ratios."""
    return {
        "p50": paired_ratio(
            [percentile(r, 50) for r in latency[key]], [percentile(r, 50) for r in latency[base]]
        ),
        "throughput": paired_ratio(rates[key]["rounds"], rates[base]["rounds"]),
    }


def _check(running: Sequence[System]) -> None:
    """Every system answers ``add`` correctly before anything is timed."""
    for system in running:
        value = system.call_add()
        if value != 3:
            raise RuntimeError(f"{system.label}: add(1, 2) returned {value!r}")


def _size_label(size: int) -> str:
    return f"{size // (1024 * 1024)}MB" if size >= 1024 * 1024 else f"{size // 1024}KB"
