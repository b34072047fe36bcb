"""The side-by-side run: every contender started, then interleaved rounds, then medians.

Each round times every contender's sequential calls (in a new order each
round), then each one's send-then-collect throughput, with the CPU time of its
caller, its workers and its Redis and its Redis command counts read just before
and after. Only one contender is busy at any moment; the others' workers idle.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import celery

from ..measure import median, paired_ratio, percentile, rotated
from .contenders import BY_KEY, CONTENDERS, ORIGINAL, Running, Setup, start

Progress = Callable[[str], None]


@dataclass(frozen=True)
class PeersPlan:
    """How much the side-by-side run measures (the issue's call shape by default)."""

    quick: bool = False
    rounds: int = 6
    latency_calls: int = 2000
    throughput_calls: int = 3000
    warmup_calls: int = 20
    #: Seconds of rounds at most (None: all of them): no round starts that would end later.
    budget_s: float | None = None


FULL = PeersPlan()
QUICK = PeersPlan(quick=True, rounds=1, latency_calls=50, throughput_calls=100, warmup_calls=5)


def default_keys(original: bool) -> list[str]:
    """Every contender; the original Commissaire bus only when its source was given."""
    return [c.key for c in CONTENDERS if c.key != ORIGINAL or original]


def run_peers(
    plan: PeersPlan, setup: Setup, keys: Sequence[str], say: Progress = lambda line: None
) -> dict[str, Any]:
    """Measure ``keys``; the results document (see :mod:`bench.peers.report`)."""
    began = time.monotonic()
    report = say
    say = lambda line: report(f"[{time.monotonic() - began:6.1f}s] {line}")  # noqa: E731
    load_before = os.getloadavg()
    notes: list[str] = []
    skipped: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        running: list[Running] = []
        owns: list[contextlib.ExitStack] = []
        for key in keys:
            say(f"starting {key}")
            own = stack.enter_context(contextlib.ExitStack())
            owns.append(own)
            try:
                running.append(start(BY_KEY[key], setup, own))
            except Exception as exc:  # noqa: BLE001 - the row is skipped with the reason
                own.close()
                skipped[key] = f"{type(exc).__name__}: {exc}"
                say(f"skipping {key}: {skipped[key]}")
        samples, rates, costs, done = _rounds(running, plan, say, skipped)
        if done < plan.rounds:
            notes.append(f"{done} of {plan.rounds} rounds run: the next would pass --budget")
        versions = {r.contender.key: _versions(r) for r in running if r.contender.key in samples}
        say("stopping")
        _close_all(owns)
    systems = {
        key: _figures(samples[key], rates[key], costs[key], versions.get(key, {}))
        for key in samples
    }
    load_after = os.getloadavg()
    notes.append(
        "the machine is shared (other engineers' tests run on the same 2 cores): load average "
        f"{load_before[0]:.2f} before, {load_after[0]:.2f} after; compare ratios, not times"
    )
    if ORIGINAL not in keys:
        notes.append("original Commissaire bus: not measured (give --original PATH to its source)")
    notes.extend(f"{key} skipped: {reason}" for key, reason in skipped.items())
    meta = _meta(plan, time.monotonic() - began)
    meta["rounds_run"] = done
    return {
        "meta": meta,
        "systems": systems,
        "order": [k for k in keys if k in systems],
        "skipped": skipped,
        "notes": notes,
    }


def ratios(systems: dict[str, Any], key: str, base: str) -> dict[str, float] | None:
    """``key`` over ``base`` in the same rounds (p50, p99, collected throughput), or None."""
    if key not in systems or base not in systems:
        return None
    a, b = systems[key], systems[base]
    return {
        "p50": paired_ratio(a["round_p50_ms"], b["round_p50_ms"]),
        "p99": paired_ratio(a["round_p99_ms"], b["round_p99_ms"]),
        "throughput": paired_ratio(a["round_calls_per_s"], b["round_calls_per_s"]),
    }


def _close_all(stacks: Sequence[contextlib.ExitStack]) -> None:
    """Stop every contender at once (each one's shutdown waits on its own processes)."""
    if stacks:
        with ThreadPoolExecutor(max_workers=len(stacks)) as pool:
            list(pool.map(lambda stack: stack.close(), stacks))


def _rounds(
    running: list[Running], plan: PeersPlan, say: Progress, skipped: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]:
    """Interleaved rounds; the figures and how many rounds ran."""
    samples: dict[str, list[list[float]]] = {r.contender.key: [] for r in running}
    rates: dict[str, dict[str, list[float]]] = {
        r.contender.key: {"rounds": [], "send_rounds": []} for r in running
    }
    costs: dict[str, list[dict[str, Any]]] = {r.contender.key: [] for r in running}
    began = time.monotonic()
    for index in range(plan.rounds):
        elapsed = time.monotonic() - began
        if index and plan.budget_s is not None and elapsed * (index + 1) / index > plan.budget_s:
            return samples, rates, costs, index
        say(f"round {index + 1}/{plan.rounds}")
        for phase in (_latency, _throughput):
            for contender in rotated(list(running), index):
                key = contender.contender.key
                try:
                    phase(contender, plan, samples, rates, costs)
                except Exception as exc:  # noqa: BLE001 - one broken peer must not end the run
                    skipped[key] = f"failed in round {index + 1}: {exc}"
                    say(f"dropping {key}: {exc}")
                    running.remove(contender)
                    for table in (samples, rates, costs):
                        table.pop(key, None)
    return samples, rates, costs, plan.rounds


def _latency(running: Running, plan: PeersPlan, samples: dict[str, Any], *_: Any) -> None:
    reply = running.client.request("latency", calls=plan.latency_calls, warmup=plan.warmup_calls)
    samples[running.contender.key].append(reply["samples_ms"])


def _throughput(
    running: Running,
    plan: PeersPlan,
    samples: dict[str, Any],
    rates: dict[str, Any],
    costs: dict[str, Any],
) -> None:
    key = running.contender.key
    running.client.request("latency", calls=plan.warmup_calls, warmup=0)
    before = running.snapshot()
    reply = running.client.request("throughput", calls=plan.throughput_calls, warmup=0)
    after = running.snapshot()
    rates[key]["rounds"].append(reply["collected_per_s"])
    rates[key]["send_rounds"].append(reply["sent_per_s"])
    costs[key].append(_per_call(before, after, plan.throughput_calls))
    if running.contender.batched:
        batch = running.client.request("batch", calls=plan.throughput_calls)
        rates[key].setdefault("batch_rounds", []).append(batch["collected_per_s"])


def _per_call(before: dict[str, Any], after: dict[str, Any], calls: int) -> dict[str, Any]:
    cpu = {k: (after["cpu"][k] - before["cpu"][k]) * 1e3 / calls for k in after["cpu"]}
    cost: dict[str, Any] = {"cpu_ms": {**cpu, "total": sum(cpu.values())}}
    if before["commands"] is not None and after["commands"] is not None:
        deltas = {
            name: (count - before["commands"].get(name, 0)) / calls
            for name, count in after["commands"].items()
        }
        significant = {k: round(v, 2) for k, v in deltas.items() if v >= 0.05}
        cost["redis_commands"] = round(sum(significant.values()), 2)
        cost["redis_commands_by_name"] = dict(sorted(significant.items(), key=lambda i: -i[1]))
    return cost


def _figures(
    rounds: list[list[float]],
    rates: dict[str, list[float]],
    costs: list[dict[str, Any]],
    versions: dict[str, str],
) -> dict[str, Any]:
    pooled = [s for r in rounds for s in r]
    by_total = sorted(costs, key=lambda c: c["cpu_ms"]["total"])
    cost = dict(by_total[(len(by_total) - 1) // 2])
    figures: dict[str, Any] = {
        "p50_ms": percentile(pooled, 50),
        "p99_ms": percentile(pooled, 99),
        "round_p50_ms": [percentile(r, 50) for r in rounds],
        "round_p99_ms": [percentile(r, 99) for r in rounds],
        "calls": len(pooled),
        "calls_per_s": median(rates["rounds"]),
        "round_calls_per_s": rates["rounds"],
        "send_per_s": median(rates["send_rounds"]),
        "cpu_ms": cost["cpu_ms"],
        "round_cpu_ms_total": [c["cpu_ms"]["total"] for c in costs],
        "versions": versions,
    }
    if "batch_rounds" in rates:
        figures["batch_calls_per_s"] = median(rates["batch_rounds"])
    if all("redis_commands" in c for c in costs):
        figures["redis_commands"] = median(c["redis_commands"] for c in costs)
        figures["redis_commands_by_name"] = cost["redis_commands_by_name"]
    return figures


#: The distributions whose versions each contender reports.
_PACKAGES = ("celery", "kombu", "nameko", "eventlet", "dramatiq", "pika", "redis")


def _versions(running: Running) -> dict[str, str]:
    """Versions of the libraries in the contender's Python (its venv for a peer)."""
    code = (
        "import importlib.metadata as m, json\n"
        "v = {}\n"
        f"for name in {_PACKAGES!r}:\n"
        "    try: v[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(v))\n"
    )
    done = subprocess.run(
        [running.extra["python"], "-c", code], capture_output=True, text=True, timeout=60
    )
    return dict(json.loads(done.stdout)) if done.returncode == 0 else {}


def _meta(plan: PeersPlan, duration_s: float) -> dict[str, Any]:
    return {
        "mode": "quick" if plan.quick else "full",
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "duration_s": duration_s,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": len(os.sched_getaffinity(0)),
        "celery": celery.__version__,
        "plan": asdict(plan),
        "worker_processes": 2,
        "ratio_method": "median of per-round ratios; each round runs the systems in a new order",
    }
