"""The issue-17 targets, checked on one side-by-side run, and the table that shows them.

Ratios only, each the median of per-round ratios of the same run. A target is
PASS, FAIL or SKIP (a system it needs was not measured); it never fails the
run. The distance to Dramatiq on RabbitMQ is reported, not judged.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from .contenders import (
    BY_KEY,
    CELERY_RABBITMQ,
    CELERY_REDIS,
    DRAMATIQ_RABBITMQ,
    NAMEKO,
    OURS_RABBITMQ,
    OURS_REDIS,
)
from .run import ratios

_OPERATORS = {"<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class PeerTarget:
    """``key``/``base`` ratio of ``measure`` (``p50`` or ``throughput``) ``op`` ``limit``."""

    key: str
    base: str
    measure: str
    op: str
    limit: float

    @property
    def name(self) -> str:
        what = "p50" if self.measure == "p50" else "collected calls/s"
        return f"{self.key}/{self.base} {what} {self.op} {self.limit:g}"


TARGETS: tuple[PeerTarget, ...] = (
    PeerTarget(OURS_REDIS, CELERY_REDIS, "p50", "<=", 0.9),
    PeerTarget(OURS_REDIS, CELERY_REDIS, "throughput", ">=", 1.1),
    PeerTarget(OURS_REDIS, NAMEKO, "p50", "<=", 0.9),
    PeerTarget(OURS_REDIS, NAMEKO, "throughput", ">=", 1.1),
    PeerTarget(OURS_RABBITMQ, CELERY_RABBITMQ, "p50", "<=", 1.0),
    PeerTarget(OURS_RABBITMQ, CELERY_RABBITMQ, "throughput", ">=", 1.0),
)
#: Reported beside the targets: how far ours is from the fastest peer measured.
DISTANCES = ((OURS_RABBITMQ, DRAMATIQ_RABBITMQ), (OURS_REDIS, DRAMATIQ_RABBITMQ))


def evaluate(results: dict[str, Any]) -> dict[str, Any]:
    """Every target's ratio and verdict, and the reported distances."""
    systems = results["systems"]
    checks = []
    for target in TARGETS:
        pair = ratios(systems, target.key, target.base)
        check: dict[str, Any] = {"name": target.name, "op": target.op, "limit": target.limit}
        if pair is None:
            missing = [k for k in (target.key, target.base) if k not in systems]
            check.update(verdict="SKIP", value=None, reason=f"not measured: {', '.join(missing)}")
        else:
            value = pair[target.measure]
            passed = _OPERATORS[target.op](value, target.limit)
            check.update(verdict="PASS" if passed else "FAIL", value=value)
        checks.append(check)
    distances = {
        f"{key}/{base}": pair
        for key, base in DISTANCES
        if (pair := ratios(systems, key, base)) is not None
    }
    return {"checks": checks, "distances": distances}


def render(results: dict[str, Any]) -> str:
    """The table (one row per system), then the target lines and the notes."""
    meta, systems = results["meta"], results["systems"]
    header = ["system", "p50 ms", "p99 ms", "calls/s", "CPU ms/call", "Redis cmds/call",
              "ours/this p50", "ours/this calls/s"]  # fmt: skip
    lines = []
    for key in results["order"]:
        figures = systems[key]
        versus = ratios(systems, OURS_REDIS, key) if key != OURS_REDIS else None
        lines.append(
            [
                BY_KEY[key].label,
                _ms(figures["p50_ms"]),
                _ms(figures["p99_ms"]),
                f"{figures['calls_per_s']:,.0f}"
                + (
                    f" ({figures['batch_calls_per_s']:,.0f})"
                    if "batch_calls_per_s" in figures
                    else ""
                ),
                _cpu(figures["cpu_ms"]),
                f"{figures['redis_commands']:.1f}" if "redis_commands" in figures else "-",
                f"{versus['p50']:.2f}x" if versus else "",
                f"{versus['throughput']:.2f}x" if versus else "",
            ]
        )
    for key, reason in results["skipped"].items():
        lines.append([BY_KEY[key].label, f"skipped: {reason[:90]}", *[""] * 6])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    out = [_title(meta)]
    for row in [header, ["-" * w for w in widths], *lines]:
        cells = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
        ]
        out.append("  ".join(cells).rstrip())
    out.append(
        "calls/s: sent then collected (in brackets: bus.call_many); "
        "ours/this: commissaire-tasks (Redis, defaults) over that row, median of per-round ratios; "
        "CPU: caller + workers + own Redis (RabbitMQ's CPU is not counted: a shared node)"
    )
    targets = results.get("targets") or evaluate(results)
    for check in targets["checks"]:
        value = "-" if check["value"] is None else f"{check['value']:.2f}x"
        reason = f" ({check['reason']})" if "reason" in check else ""
        out.append(f"target {check['verdict']}: {check['name']}: {value}{reason}")
    for pair, figures in targets["distances"].items():
        out.append(
            f"distance {pair}: p50 {figures['p50']:.2f}x, collected calls/s "
            f"{figures['throughput']:.2f}x"
        )
    out.extend(f"note: {note}" for note in results.get("notes", []))
    return "\n".join(out)


def _title(meta: dict[str, Any]) -> str:
    plan = meta["plan"]
    return (
        f"python -m bench --peers ({meta['mode']}, {meta['duration_s']:.0f} s, "
        f"{meta['date_utc']} UTC): {meta['cpus']} CPUs, Python {meta['python']}; "
        f"{meta.get('rounds_run', plan['rounds'])} interleaved rounds of "
        f"{plan['latency_calls']:,} sequential add calls "
        f"and {plan['throughput_calls']:,} sent then collected; "
        f"{meta['worker_processes']} worker processes each; medians"
    )


def _ms(value: float) -> str:
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def _cpu(cpu: dict[str, float]) -> str:
    parts = "/".join(f"{cpu[k]:.2f}" for k in ("client", "workers", "redis") if k in cpu)
    return f"{cpu['total']:.2f} ({parts})"
