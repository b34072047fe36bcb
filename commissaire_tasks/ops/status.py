"""``commissaire-tasks status``: every service, its queues, their depth and who serves them.

Known services are those the service modules define, the configured queues
name, or a live worker reports (:mod:`.introspect`). Besides their queues the
report shows every other queue holding messages or dead letters (:mod:`.queues`;
on RabbitMQ through the management API, with a note when it cannot be asked),
queues consumed by workers running different code, and storage subscriptions
whose service has no live worker (their notifications pile up unread). Workers
come from Celery's remote control: ``active_queues`` says who consumes what,
``stats`` how many pool processes each runs, and ``ping`` whether it answers now.
Like a monitor, ``status`` asks the workers for task events (on demand, see
:mod:`commissaire_tasks.runtime.events`), so a Flower or ``celery events`` opened
next sees the calls at once; ``--no-task-events`` leaves them as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from kombu.connection import Connection
from kombu.exceptions import OperationalError

from ..errors import BrokerUnavailable
from ..redact import redact_url
from ..routing import QueueSpec
from ..runtime.app import CommissaireCelery
from ..runtime.events import ask_for_task_events
from ..runtime.introspect import Conflict, collect_reports, find_conflicts
from ..runtime.registry import ServiceSpec
from . import subscriptions as subs
from .queues import DEAD_SUFFIX, dead_letter_queue, depth, discover_queues
from .rabbitmq_api import ENABLE_HINT, ManagementApiUnavailable

__all__ = [
    "QueueStatus",
    "StatusReport",
    "WorkerStatus",
    "collect_status",
    "connect_or_fail",
    "render_table",
]

#: Seconds each remote-control broadcast waits for replies.
DEFAULT_INSPECT_TIMEOUT_S = 1.0
#: Service shown for a queue no known service is served from.
UNKNOWN = "?"


@dataclass(frozen=True)
class WorkerStatus:
    """A worker consuming a queue."""

    hostname: str
    processes: int | None
    ping: bool


@dataclass(frozen=True)
class QueueStatus:
    """One queue: its service, depth, dead letters and consumers.

    ``known`` is False for a queue found only on the broker (no service claims
    it): shown because it holds messages, never counted as a missing service.
    """

    service: str
    queue: str
    depth: int | None
    workers: tuple[WorkerStatus, ...] = ()
    dead: int = 0
    known: bool = True

    @property
    def live(self) -> bool:
        return any(worker.ping for worker in self.workers)


@dataclass(frozen=True)
class StatusReport:
    """Everything ``status`` shows; ``ok`` when nothing in it needs a person.

    ``notes`` say what the report could not see (they do not change ``ok``).
    """

    broker: str
    queues: tuple[QueueStatus, ...]
    problems: tuple[str, ...] = field(default=())
    conflicts: tuple[Conflict, ...] = field(default=())
    subscriptions: subs.SubscriptionCheck = field(default_factory=subs.SubscriptionCheck)
    notes: tuple[str, ...] = field(default=())

    @property
    def services_without_worker(self) -> list[str]:
        live: dict[str, bool] = {}
        for queue in self.queues:
            if queue.known:
                live[queue.service] = live.get(queue.service, False) or queue.live
        return [service for service, ok in live.items() if not ok]

    @property
    def ok(self) -> bool:
        return (
            any(queue.known for queue in self.queues)
            and not self.problems
            and not self.services_without_worker
            and not self.conflicts
            and not self.subscriptions.orphans
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "broker": self.broker,
            "services_without_worker": self.services_without_worker,
            "problems": list(self.problems),
            "notes": list(self.notes),
            "conflicts": [
                {"queue": c.queue, "workers": {h: list(w) for h, w in c.workers.items()}}
                for c in self.conflicts
            ],
            "subscriptions": self.subscriptions.to_dict(),
            "queues": [{**asdict(q), "live": q.live} for q in self.queues],
        }


def collect_status(
    app: CommissaireCelery,
    services: Iterable[ServiceSpec],
    timeout_s: float = DEFAULT_INSPECT_TIMEOUT_S,
    problems: Sequence[str] = (),
    only: Sequence[str] = (),
    ask_for_events: bool = True,
    rabbitmq_api: str | None = None,
) -> StatusReport:
    """Ask the broker and the workers; ``only`` limits the report to those services.

    ``ask_for_events`` also asks the workers for task events, as a monitor does;
    ``rabbitmq_api`` is the management API's URL (default: from the broker URL).
    """
    known = _known_queues(services, app)
    with app.connection_for_read() as connection:
        _connect(connection, timeout_s)
        if ask_for_events:
            ask_for_task_events(app, connection)
        found, notes = _broker_queues(connection, rabbitmq_api, max(timeout_s, 1.0))
        live = _ask_workers(app, timeout_s)
        known += _reported_queues(live.reports, {name for _, name in known})
        names = {name for _, name in known}
        extra = (found | set(live.consumers)) - names
        depths = {name: _depths(connection, name) for name in names | extra}
    rows = [_row(service, name, depths[name], live) for service, name in known]
    rows += [
        _row(UNKNOWN, name, depths[name], live, known=False)
        for name in sorted(extra)
        if any(depths[name])
    ]
    conflicts = find_conflicts(live.reports)
    check = subs.check_subscriptions(app, live.serving, timeout_s)
    broker = redact_url(app.settings.broker_url)
    report = StatusReport(
        broker, tuple(rows), tuple(problems), tuple(conflicts), check, tuple(notes)
    )
    return limit_report(report, only) if only else report


def limit_report(report: StatusReport, only: Sequence[str]) -> StatusReport:
    """The part of ``report`` about the services ``only`` names (unknown names are problems)."""
    wanted = set(only)
    rows = tuple(q for q in report.queues if q.known and q.service in wanted)
    queues = {q.queue for q in rows}
    missing = sorted(wanted - {q.service for q in rows})
    problems = report.problems + tuple(
        f"no service named {name!r} is known here" for name in missing
    )
    return StatusReport(
        report.broker,
        rows,
        problems,
        tuple(c for c in report.conflicts if c.queue in queues),
        report.subscriptions.limited_to(wanted),
    )


@dataclass
class _Workers:
    """What the workers told us."""

    consumers: dict[str, set[str]]
    processes: dict[str, int | None]
    answered: set[str]
    reports: dict[str, dict[str, Any]]

    @property
    def serving(self) -> dict[str, bool]:
        """Queue or service name -> True when a live worker serves it."""
        serving = {q: bool(hosts & self.answered) for q, hosts in self.consumers.items()}
        for host, report in self.reports.items():
            for entry in (report.get("queues") or {}).values():
                if entry.get("service") and host in self.answered:
                    serving[f"service:{entry['service']}"] = True
        return serving


def _ask_workers(app: CommissaireCelery, timeout_s: float) -> _Workers:
    inspect = app.control.inspect(timeout=timeout_s)
    # Each broadcast waits the whole timeout for replies: ask them all at once.
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="status") as pool:
        active = pool.submit(inspect.active_queues)
        stats = pool.submit(inspect.stats)
        pings = pool.submit(app.control.ping, timeout=timeout_s)
        reports = pool.submit(collect_reports, app, timeout_s)
    return _Workers(
        consumers=_consumers(active.result() or {}),
        processes={host: _process_count(s) for host, s in (stats.result() or {}).items()},
        answered={host for reply in pings.result() or [] for host in reply},
        reports=reports.result(),
    )


def _row(
    service: str, queue: str, counts: tuple[int, int], live: _Workers, known: bool = True
) -> QueueStatus:
    workers = tuple(
        WorkerStatus(host, live.processes.get(host), host in live.answered)
        for host in sorted(live.consumers.get(queue, ()))
    )
    return QueueStatus(service, queue, counts[0], workers, dead=counts[1], known=known)


def _known_queues(services: Iterable[ServiceSpec], app: CommissaireCelery) -> list[tuple[str, str]]:
    known: list[tuple[str, str]] = []
    for spec in services:
        known += [(spec.name, queue.name) for queue in spec.queues(app.settings)]
    named = {name for _, name in known}
    for kwargs in app.settings.queues:  # configured queues of services not defined here
        queue = QueueSpec.from_kwargs(kwargs)
        if queue.name not in named:
            known.append((queue.service or UNKNOWN, queue.name))
            named.add(queue.name)
    return known


def _reported_queues(
    reports: Mapping[str, Mapping[str, Any]], named: set[str]
) -> list[tuple[str, str]]:
    """Queues live workers serve a service from that the local modules do not know of."""
    extra: dict[str, str] = {}
    for report in reports.values():
        for queue, entry in (report.get("queues") or {}).items():
            if queue not in named and entry.get("service"):
                extra.setdefault(queue, str(entry["service"]))
    return [(service, queue) for queue, service in sorted(extra.items())]


def _broker_queues(
    connection: Connection, api_url: str | None, timeout_s: float
) -> tuple[set[str], list[str]]:
    """The queues the broker lists (dead-letter queues as their queue), and what it could not."""
    try:
        found = discover_queues(connection, api_url, timeout_s)
    except ManagementApiUnavailable as exc:
        return set(), [_blind_note(exc)]
    names = {name[: -len(DEAD_SUFFIX)] if name.endswith(DEAD_SUFFIX) else name for name in found}
    return names, []


def _blind_note(exc: ManagementApiUnavailable) -> str:
    return (
        f"RabbitMQ's management API {exc}: queues that no live worker consumes and no "
        f"service here names (such as a retired service's) and their {DEAD_SUFFIX} queues are "
        f"not listed; {ENABLE_HINT}"
    )


def _depths(connection: Connection, queue: str) -> tuple[int, int]:
    return depth(connection, queue), depth(connection, dead_letter_queue(queue))


def connect_or_fail(app: CommissaireCelery, timeout_s: float) -> None:
    """Raise BrokerUnavailable now when the broker cannot be reached (instead of hanging)."""
    with app.connection_for_read() as connection:
        _connect(connection, timeout_s)


def _connect(connection: Connection, timeout_s: float) -> None:
    try:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0.5, timeout=max(timeout_s, 1.0)
        )
    except (OperationalError, OSError) as exc:
        raise BrokerUnavailable("status", str(exc)) from exc


def _consumers(active_queues: Mapping[str, Any]) -> dict[str, set[str]]:
    """Queue name -> hostnames of the workers consuming it."""
    consumers: dict[str, set[str]] = {}
    for host, queues in active_queues.items():
        for queue in queues or ():
            consumers.setdefault(queue.get("name", ""), set()).add(host)
    return consumers


def _process_count(stats: Mapping[str, Any]) -> int | None:
    pool = stats.get("pool") or {}
    processes = pool.get("processes")
    if isinstance(processes, list):
        return len(processes)
    concurrency = pool.get("max-concurrency")
    return int(concurrency) if isinstance(concurrency, int) else None


def render_table(report: StatusReport) -> str:
    """The report as an aligned text table, its findings, and a one-line verdict."""
    header = ("SERVICE", "QUEUE", "DEPTH", "DEAD", "WORKER", "PROCS", "PING")
    rows: list[tuple[str, ...]] = []
    for queue in report.queues:
        depth = "?" if queue.depth is None else str(queue.depth)
        cells = (queue.service, queue.queue, depth, str(queue.dead))
        if not queue.workers:
            idle = "no live worker" if queue.known else "no service of ours"
            rows.append((*cells, "-", "-", idle))
        for worker in queue.workers:
            procs = "?" if worker.processes is None else str(worker.processes)
            rows.append((*cells, worker.hostname, procs, "ok" if worker.ping else "no answer"))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.append("")
    lines += [f"problem: {problem}" for problem in report.problems]
    lines += [f"problem: {conflict.describe()}" for conflict in report.conflicts]
    lines += report.subscriptions.lines()
    lines += [f"note: {note}" for note in report.notes]
    lines.append(_verdict(report))
    return "\n".join(lines)


def _verdict(report: StatusReport) -> str:
    missing = report.services_without_worker
    services = len({queue.service for queue in report.queues if queue.known})
    if not services:
        return "no services known (add modules to `workers` or set COMMISSAIRE_SERVICES)"
    if missing:
        return f"{len(missing)} of {services} services have no live worker: {', '.join(missing)}"
    if not report.ok:
        return f"all {services} services have a live worker, but see above"
    return f"all {services} services have a live worker (broker {report.broker})"
