"""The benchmark's targets (issue 11's revision), and the one table of every row and check.

A target never fails the run: it is reported PASS or FAIL next to the row it
checks, and in the JSON under ``targets``.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .bridge import report_lines
from .systems import BARE_DEFAULT, BARE_IDENTICAL, FRAMEWORK, FRAMEWORK_QUIET

IDENT = f"{FRAMEWORK}/{BARE_IDENTICAL}"
DEFAULT = f"{FRAMEWORK}/{BARE_DEFAULT}"
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}


@dataclass(frozen=True)
class Target:
    """One goal: ``value(rows) <op> limit``, shown on table row ``row``."""

    name: str
    short: str
    row: str
    op: str
    limit: float
    value: Callable[[dict[str, Any], str], float]


TARGETS: tuple[Target, ...] = (
    Target(
        "framework/bare-identical round-trip p50 ratio",
        "ident<=1.05",
        "rt_p50",
        "<=",
        1.05,
        lambda rows, c: rows["round_trip"][c]["ratios"][IDENT]["p50"],
    ),
    Target(
        "framework/bare-identical collected throughput ratio",
        "ident>=0.95",
        "thr",
        ">=",
        0.95,
        lambda rows, c: rows["throughput"][c]["ratios"][IDENT],
    ),
    Target(
        "framework (defaults: late acks, task events on demand)/bare-default p50 ratio",
        "dflt<=1.0",
        "rt_p50",
        "<=",
        1.0,
        lambda rows, c: rows["round_trip"][c]["ratios"][DEFAULT]["p50"],
    ),
    Target(
        "framework (defaults)/bare-default collected throughput ratio",
        "dflt>=1.0",
        "thr",
        ">=",
        1.0,
        lambda rows, c: rows["throughput"][c]["ratios"][DEFAULT],
    ),
    Target(
        "call_many calls/s over a loop of bus.call (1000 / round-trip p50 ms)",
        "loop>=3",
        "batch",
        ">=",
        3.0,
        lambda rows, c: _batch_over_loop(rows, c),
    ),
    Target(
        "storage save calls/s over simple.add calls/s, the save alone (subscriber paused) [redis]",
        "alone>=0.6",
        "storage_ratios",
        ">=",
        0.6,
        lambda rows, c: rows["storage"]["redis"]["save_alone_vs_add"],
    ),
    Target(
        "storage get calls/s over simple.add calls/s [redis]",
        "get>=0.8",
        "storage_ratios",
        ">=",
        0.8,
        lambda rows, c: rows["storage"]["redis"]["get_vs_add"],
    ),
    Target(
        "save() to subscriber callback p50 (ms) [redis]",
        "<2ms",
        "notify",
        "<",
        2.0,
        lambda rows, c: rows["storage"]["redis"]["notify"]["p50_ms"],
    ),
)


def _batch_over_loop(rows: dict[str, Any], c: str) -> float:
    loop_per_s = 1000.0 / rows["round_trip"][c]["systems"][FRAMEWORK]["p50"]
    return float(rows["batch"]["systems"][FRAMEWORK]["median"]) / loop_per_s


def evaluate_targets(rows: dict[str, Any], concurrency: int) -> list[dict[str, Any]]:
    """Every target's value and verdict at pool size ``concurrency``."""
    checks = []
    for target in TARGETS:
        try:
            value = target.value(rows, f"c{concurrency}")
        except (KeyError, TypeError):
            continue  # its row was not measured (a --broker run, or it failed): shown there
        checks.append(
            {
                "name": target.name,
                "short": target.short,
                "row": target.row,
                "concurrency": concurrency,
                "value": value,
                "op": target.op,
                "limit": target.limit,
                "pass": _OPERATORS[target.op](value, target.limit),
            }
        )
    return checks


def write_json(results: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")


def render_table(results: dict[str, Any]) -> str:
    """The one table: rows, the three systems, the two ratios and the target checks."""
    meta, rows = results["meta"], results["rows"]
    c = meta["plan"]["reference_concurrency"]
    checks: dict[str, list[str]] = {}
    for check in results.get("targets", []):
        verdict = "PASS" if check["pass"] else "FAIL"
        checks.setdefault(check["row"], []).append(f"{check['short']} {verdict}")
    lines: list[list[str]] = []

    def add(label: str, cells: Sequence[str], row: str = "") -> None:
        lines.append([label, *cells, ", ".join(checks.get(row, []))])

    ping = rows["redis_ping"]
    add("raw Redis PING p50 ms (floor)", [_ms(ping["p50"]), "", "", "", ""])
    for conc in meta["plan"]["concurrency"]:
        cell = rows["round_trip"][f"c{conc}"]
        ref = conc == c
        add(f"round trip p50 ms, -c {conc}", _latency(cell, "p50"), "rt_p50" if ref else "")
        if ref:
            add(f"round trip p99 ms, -c {conc}", _latency(cell, "p99"))
    for conc in meta["plan"]["concurrency"]:
        cell = rows["throughput"][f"c{conc}"]
        add(f"collected calls/s, -c {conc}", _rates(cell), "thr" if conc == c else "")
    add(f"  send phase calls/s, -c {c}", _rates(rows["throughput"][f"c{c}"], "send_median"))
    if "batch" in rows:
        add(f"batched calls/s, -c {c} (call_many, chunks)", _rates(rows["batch"]), "batch")
    add("publish-only calls/s (no worker)", _rates(rows["publish_only"]), "pub")
    cost = rows.get("cost", {}).get("systems", {})
    if cost:
        add(f"CPU ms per collected call, -c {c}", _costs(cost, lambda f: f["cpu_ms"]["total"], 2))
        add(
            "  of which client / worker main / pool",
            [
                _split(cost[k]) if k in cost else "-"
                for k in (FRAMEWORK, BARE_IDENTICAL, BARE_DEFAULT)
            ]
            + ["", ""],
        )
        if all("redis_commands" in f for f in cost.values()):
            add("Redis commands per call", _costs(cost, lambda f: f["redis_commands"], 1))
    for label, cell in rows["payload"].items():
        add(f"echo {label} p50 ms, -c {c}", _latency(cell, "p50"))
    rabbit = rows["rabbitmq"]
    if "skipped" in rabbit:
        add("RabbitMQ broker", [f"skipped: {rabbit['skipped']}", "", "", "", ""])
    else:
        add("RabbitMQ: round trip p50 ms", _latency(rabbit["round_trip"], "p50"))
        add("RabbitMQ: collected calls/s", _rates(rabbit["throughput"]))
        vs = rabbit["vs_redis"]
        fw = vs.get(f"{FRAMEWORK}_rabbitmq/{FRAMEWORK}", {})
        df = vs.get(f"{BARE_DEFAULT}_rabbitmq/{BARE_DEFAULT}", {})
        add("RabbitMQ/Redis p50 ratio", [_ratio(fw.get("p50")), "", _ratio(df.get("p50")), "", ""])
        add(
            "RabbitMQ/Redis calls/s ratio",
            [_ratio(fw.get("throughput")), "", _ratio(df.get("throughput")), "", ""],
        )
    quiet = rows.get("events_off")
    if quiet:
        vs_fw = quiet["ratios"][f"{FRAMEWORK_QUIET}/{FRAMEWORK}"]
        vs_default = quiet["ratios"][f"{FRAMEWORK_QUIET}/{BARE_DEFAULT}"]
        add(
            f"task events off: round trip p50 ms, -c {c}",
            [_ms(quiet["p50_ms"][FRAMEWORK_QUIET]), "", "", "", _ratio(vs_default["p50"])],
        )
        add(
            f"task events off: collected calls/s, -c {c}",
            [
                _int(quiet["calls_per_s"][FRAMEWORK_QUIET]),
                "",
                "",
                "",
                _ratio(vs_default["throughput"]),
            ],
        )
        add(
            "  events off / on (framework) p50, calls/s",
            [f"{_ratio(vs_fw['p50'])}, {_ratio(vs_fw['throughput'])}", "", "", "", ""],
        )
    storage = rows.get("storage")
    if storage is None:
        add(
            "storage save/get calls/s",
            ["not measured (needs the bench's own Redis)", "", "", "", ""],
        )
    else:
        for handler, figures in storage.items():
            if "error" in figures:
                add(f"storage [{handler}]", [f"error: {figures['error'][:60]}", "", "", "", ""])
            else:
                add(
                    f"storage save calls/s [{handler}]",
                    [_int(figures["save_per_s"]), "", "", "", ""],
                )
                add(
                    f"storage get calls/s [{handler}]", [_int(figures["get_per_s"]), "", "", "", ""]
                )
                if "save_alone_vs_add" in figures:
                    shown = ("save_vs_add", "save_alone_vs_add", "get_vs_add")
                    ratios = (figures[key] for key in shown)
                    add(
                        f"  save, save alone, get / simple.add calls/s [{handler}]",
                        [", ".join(_ratio(r) for r in ratios)] + [""] * 4,
                        "storage_ratios" if handler == "redis" else "",
                    )
                elif "save_vs_add" in figures:
                    add(
                        f"  save, get / simple.add calls/s [{handler}]",
                        [f"{_ratio(figures['save_vs_add'])}, {_ratio(figures['get_vs_add'])}"]
                        + [""] * 4,
                    )
                if "notify" in figures:
                    notify = figures["notify"]
                    add(
                        f"save() -> subscriber callback p50/p99 ms [{handler}]",
                        [f"{_ms(notify['p50_ms'])}/{_ms(notify['p99_ms'])}", "", "", "", ""],
                        "notify",
                    )
    for label, cells in report_lines(rows.get("bridge")):
        add(label, cells)
    memory = rows["memory"]
    if "error" in memory:
        add(
            f"worker RSS MB, {memory['calls']} calls", [f"error: {memory['error'][:70]}"] + [""] * 4
        )
    else:
        add(
            f"worker RSS MB, before -> after {memory['calls']} calls",
            [f"{memory['rss_before_mb']:.0f} -> {memory['rss_after_mb']:.0f}", "", "", "", ""],
        )
        add(
            "  drain calls/s (fire and forget)", [_int(memory["drain_calls_per_s"]), "", "", "", ""]
        )

    header = [
        "measure",
        "framework",
        "bare-ident",
        "bare-default",
        "fw/ident",
        "fw/default",
        "targets",
    ]
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = [_title(results)]
    fmt = [f"{{:<{widths[0]}}}", *(f"{{:>{w}}}" for w in widths[1:-1]), f"{{:<{widths[-1]}}}"]
    for row in [header, ["-" * w for w in widths], *lines]:
        out.append("  ".join(f.format(v) for f, v in zip(fmt, row, strict=True)).rstrip())
    passed = sum(1 for t in results.get("targets", []) if t["pass"])
    total = len(results.get("targets", []))
    out.append(
        f"targets at -c {c}: {passed}/{total} PASS "
        "(ident: framework/bare-identical, dflt: framework/bare-default)"
    )
    out.extend(f"note: {note}" for note in results.get("notes", []))
    return "\n".join(out)


def _title(results: dict[str, Any]) -> str:
    meta = results["meta"]
    plan = meta["plan"]
    return (
        f"python -m bench ({meta['mode']}, {meta['duration_s']:.0f} s): "
        f"{meta['cpus']} CPUs, Python {meta['python']}, Celery {meta['celery']}, "
        f"kombu {meta['kombu']}, redis-py {meta['redis_py']}, Redis {meta['redis_server']}; "
        f"worker -l {meta['worker_loglevel']}; {plan['rounds']} rounds at "
        f"-c {plan['reference_concurrency']}, {plan['sweep_rounds']} elsewhere; "
        "ratios are medians of per-round ratios"
    )


def _latency(cell: dict[str, Any], stat: str) -> list[str]:
    systems, ratios = cell["systems"], cell["ratios"]
    values = [
        _ms(systems[k][stat]) if k in systems else "-"
        for k in (FRAMEWORK, BARE_IDENTICAL, BARE_DEFAULT)
    ]
    return [*values, *(_ratio(ratios[p][stat]) if p in ratios else "-" for p in (IDENT, DEFAULT))]


def _rates(cell: dict[str, Any], stat: str = "median") -> list[str]:
    systems, ratios = cell["systems"], cell["ratios"]
    values = [
        _int(systems[k][stat]) if k in systems and stat in systems[k] else "-"
        for k in (FRAMEWORK, BARE_IDENTICAL, BARE_DEFAULT)
    ]
    if stat != "median":
        return [*values, "", ""]
    return [*values, *(_ratio(ratios[p]) if p in ratios else "-" for p in (IDENT, DEFAULT))]


def _costs(cost: dict[str, Any], pick: Callable[[dict[str, Any]], float], digits: int) -> list[str]:
    values = {k: pick(f) for k, f in cost.items()}
    cells = [
        f"{values[k]:.{digits}f}" if k in values else "-"
        for k in (FRAMEWORK, BARE_IDENTICAL, BARE_DEFAULT)
    ]
    ratios = [
        _ratio(values[FRAMEWORK] / values[k]) if FRAMEWORK in values and values.get(k) else "-"
        for k in (BARE_IDENTICAL, BARE_DEFAULT)
    ]
    return [*cells, *ratios]


def _split(figures: dict[str, Any]) -> str:
    cpu = figures["cpu_ms"]
    return f"{cpu['client']:.1f}/{cpu['worker_main']:.1f}/{cpu['worker_pool']:.1f}"


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def _int(value: float) -> str:
    return f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"
