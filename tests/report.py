"""The reliability report: figures the ``reliability`` tests assert, kept in one JSON file.

Each test calls :func:`record` with the figures it has just asserted, so the
README's "Reliability report" table is generated from what the tests proved
(``python -m tests.report`` prints it as markdown), never typed by hand. The file
is ``$COMMISSAIRE_RELIABILITY_REPORT`` or ``reliability-report.json`` in the
checkout; a test session starts it afresh (see ``tests/conftest.py``), noting
whether it runs the whole suite: ``python -m tests.report --require-all`` then fails
when a row was not written, so a reliability test that did not run fails CI.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

#: Where the report goes unless ``$COMMISSAIRE_RELIABILITY_REPORT`` says otherwise.
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "reliability-report.json"

#: Table rows in README order: row id -> the "fault or input" column.
ROWS = {
    "pool_kill": "pool process SIGKILLed mid-call",
    "worker_kill": "whole worker SIGKILLed with calls queued and running",
    "redis_restart": "Redis stopped under load, restarted",
    "subscriber_kill": "subscriber SIGKILLed mid-callback",
    "warm_shutdown": "warm shutdown with a call in flight and 5 queued",
    "warm_shutdown_sigint": "the same, by Ctrl-C (SIGINT to the worker and its pool)",
    "bad_input": "bad input (types, shapes, methods, bodies, task names; pickle, headers, size)",
    # Dead letters (tests/runtime/test_dead_letters.py): raw garbage on a live queue.
    "dead_letters_redis": "raw entries pushed onto a live Redis queue (hypothesis)",
    "dead_letters_rabbitmq": "raw messages published onto a live RabbitMQ queue (hypothesis)",
    # (end of the dead-letter rows)
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


def runs_whole_suite(config: pytest.Config) -> bool:
    """True when no paths, -k, -m, --deselect or --ignore narrowed the session (CI's run)."""
    option = config.option
    narrowed = (option.keyword, option.markexpr, option.deselect, option.ignore)
    return config.args_source == pytest.Config.ArgsSource.TESTPATHS and not any(narrowed)


def reset(full_run: bool = False) -> None:
    """Start an empty report (at the start of a test session); ``full_run``: the session
    runs the whole suite, so every row must be written."""
    path = report_path()
    path.write_text(json.dumps({"rows": {}, "full_run": full_run}, indent=2) + "\n")


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


def missing(report: dict[str, Any]) -> list[str]:
    """The rows of :data:`ROWS` no test wrote."""
    return [row for row in ROWS if row not in report["rows"]]


def _cell(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.report [--require-all] [FILE]``: print the table from FILE
    (default: the report). With ``--require-all``, exit 1 when the session ran the whole
    suite and a row is missing (a partial run, with paths, -k or -m, is not held to it).
    """
    args = sys.argv[1:] if argv is None else argv
    require_all = "--require-all" in args
    args = [arg for arg in args if arg != "--require-all"]
    path = Path(args[0]) if args else report_path()
    if not path.exists():
        print(f"no reliability report at {path}", file=sys.stderr)
        return 1
    report = load(path)
    print(render(report))
    absent = missing(report)
    if not (require_all and absent):
        return 0
    if not report.get("full_run"):
        print(f"partial run: {len(absent)} row(s) not run, not required", file=sys.stderr)
        return 0
    print(f"the whole suite ran but wrote no row for: {', '.join(absent)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
