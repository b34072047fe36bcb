"""The reliability report: figures the ``reliability`` tests assert, kept in one JSON file.

Each test calls :func:`record` with the figures it has just asserted, so the
README's "Reliability report" table is generated from what the tests proved
(``python -m tests.report`` prints it as markdown), never typed by hand. The file
is ``$COMMISSAIRE_RELIABILITY_REPORT`` or ``reliability-report.json`` in the
checkout; a test session starts it afresh (see ``tests/conftest.py``).
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path
from typing import Any

#: Where the report goes unless ``$COMMISSAIRE_RELIABILITY_REPORT`` says otherwise.
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "reliability-report.json"

#: Table rows in README order: row id -> the "fault or input" column.
ROWS = {
    "pool_kill": "pool process SIGKILLed mid-call",
    "worker_kill": "whole worker SIGKILLed with calls queued and running",
    "redis_restart": "Redis stopped under load, restarted",
    "subscriber_kill": "subscriber SIGKILLed mid-callback",
    "warm_shutdown": "warm shutdown with a call in flight and 5 queued",
    "bad_input": "bad input (types, shapes, methods, bodies, task names; pickle, headers, size)",
    "drain": "10,000 queued calls drained",
}
COLUMNS = ("sent", "completed", "lost", "duplicated")

#: Broker restarts and failover (``tests/runtime/test_broker_outages.py``,
#: ``test_rabbitmq_outages.py``, ``test_sentinel.py``), after the rows above.
OUTAGE_ROWS = {
    "redis_restart_load": "Redis (AOF) restarted under load, down 2 s",
    "redis_restart_callers": "callers blocked in get(), bus.call, call_many across a Redis restart",
    "redis_sigkill_aof": "Redis (AOF, appendfsync always) SIGKILLed under load, started again",
    "rabbitmq_restart_load": "RabbitMQ node restarted under load (quorum queues), down 2 s",
    "rabbitmq_restart_classic": "RabbitMQ node restarted under load (classic durable queues)",
    "sentinel_failover": "Redis Sentinel: master SIGKILLed under load, replica promoted",
}
ROWS.update(OUTAGE_ROWS)


def report_path() -> Path:
    """The report file this process writes to."""
    return Path(os.environ.get("COMMISSAIRE_RELIABILITY_REPORT") or DEFAULT_PATH)


def reset() -> None:
    """Start an empty report (at the start of a test session)."""
    path = report_path()
    path.write_text(json.dumps({"rows": {}}, indent=2) + "\n")


def load(path: Path | None = None) -> dict[str, Any]:
    """The report as written so far (empty when no test wrote one)."""
    try:
        return json.loads((path or report_path()).read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return {"rows": {}}


def record(row: str, **figures: Any) -> None:
    """Add the figures a test asserted for ``row`` (one of :data:`ROWS`), and print them."""
    if row not in ROWS:
        raise KeyError(f"unknown reliability row {row!r}; add it to tests.report.ROWS")
    with open(report_path(), "a+") as locked:  # parallel test processes write it too
        fcntl.flock(locked, fcntl.LOCK_EX)
        report = load()
        report["rows"][row] = figures
        report_path().write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"\n[reliability] {row}: {json.dumps(figures, sort_keys=True)}")


def render(report: dict[str, Any]) -> str:
    """The README's table, one line per row; rows no test wrote say so."""
    lines = [
        "| fault or input | sent | completed | lost | duplicated | notes |",
        "|---|---|---|---|---|---|",
    ]
    for row, label in ROWS.items():
        figures = report["rows"].get(row)
        if figures is None:
            lines.append(f"| {label} | not run | | | | |")
            continue
        cells = [_cell(figures.get(column, "")) for column in COLUMNS]
        lines.append(f"| {label} | {' | '.join(cells)} | {figures.get('notes', '')} |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.report [FILE]``: print the table from FILE (default: the report)."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else report_path()
    if not path.exists():
        print(f"no reliability report at {path}", file=sys.stderr)
        return 1
    print(render(load(path)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
