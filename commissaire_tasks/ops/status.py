"""``commissaire-tasks status``: every service, its queues, their depth and who serves them.

Depth comes from the broker (a passive queue declare: Redis counts the list,
priorities included; RabbitMQ returns ``message_count``). Workers come from
Celery's remote control: ``active_queues`` says who consumes what, ``stats``
how many pool processes each runs, and ``ping`` whether it answers now.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from kombu.connection import Connection
from kombu.exceptions import OperationalError

from .._registry import ServiceSpec
from ..app import CommissaireCelery
from ..errors import BrokerUnavailable
from ..redact import redact_url
from ..routing import QueueSpec
from .services import queues_of

__all__ = ["QueueStatus", "StatusReport", "WorkerStatus", "collect_status", "render_table"]

#: Seconds each remote-control broadcast waits for replies.
DEFAULT_INSPECT_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class WorkerStatus:
    """A worker consuming a queue."""

    hostname: str
    processes: int | None
    ping: bool


@dataclass(frozen=True)
class QueueStatus:
    """One queue of one service."""

    service: str
    queue: str
    depth: int | None
    workers: tuple[WorkerStatus, ...] = ()

    @property
    def live(self) -> bool:
        return any(worker.ping for worker in self.workers)


@dataclass(frozen=True)
class StatusReport:
    """Everything ``status`` shows; ``ok`` when every service has a live worker."""

    broker: str
    queues: tuple[QueueStatus, ...]
    problems: tuple[str, ...] = field(default=())

    @property
    def services_without_worker(self) -> list[str]:
        live: dict[str, bool] = {}
        for queue in self.queues:
            live[queue.service] = live.get(queue.service, False) or queue.live
        return [service for service, ok in live.items() if not ok]

    @property
    def ok(self) -> bool:
        return bool(self.queues) and not self.problems and not self.services_without_worker

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "broker": self.broker,
            "services_without_worker": self.services_without_worker,
            "problems": list(self.problems),
            "queues": [{**asdict(q), "live": q.live} for q in self.queues],
        }


def collect_status(
    app: CommissaireCelery,
    services: Iterable[ServiceSpec],
    timeout_s: float = DEFAULT_INSPECT_TIMEOUT_S,
    problems: Sequence[str] = (),
) -> StatusReport:
    """Ask the broker and the workers about ``services`` and the configured queues."""
    queues = _known_queues(services, app)
    with app.connection_for_read() as connection:
        _connect(connection, timeout_s)
        depths = {queue.name: _depth(connection, queue.name) for _, queue in queues}
    inspect = app.control.inspect(timeout=timeout_s)
    # Each broadcast waits the whole timeout for replies: ask all three at once.
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="status") as pool:
        active = pool.submit(inspect.active_queues)
        stats = pool.submit(inspect.stats)
        pings = pool.submit(app.control.ping, timeout=timeout_s)
    consumers = _consumers(active.result() or {})
    processes = {host: _process_count(s) for host, s in (stats.result() or {}).items()}
    answered = {host for reply in pings.result() or [] for host in reply}
    rows = []
    for service, queue in queues:
        workers = tuple(
            WorkerStatus(host, processes.get(host), host in answered)
            for host in sorted(consumers.get(queue.name, ()))
        )
        rows.append(QueueStatus(service, queue.name, depths[queue.name], workers))
    return StatusReport(redact_url(app.settings.broker_url), tuple(rows), tuple(problems))


def _known_queues(
    services: Iterable[ServiceSpec], app: CommissaireCelery
) -> list[tuple[str, QueueSpec]]:
    known: list[tuple[str, QueueSpec]] = []
    for spec in services:
        known += [(spec.name, queue) for queue in queues_of(spec, app.settings)]
    named = {queue.name for _, queue in known}
    for kwargs in app.settings.queues:  # configured queues of services not defined here
        queue = QueueSpec.from_kwargs(kwargs)
        if queue.name not in named:
            known.append((queue.service or "?", queue))
            named.add(queue.name)
    return known


def _connect(connection: Connection, timeout_s: float) -> None:
    try:
        connection.ensure_connection(
            max_retries=1, interval_start=0, interval_step=0.5, timeout=max(timeout_s, 1.0)
        )
    except (OperationalError, OSError) as exc:
        raise BrokerUnavailable("status", str(exc)) from exc


def _depth(connection: Connection, queue: str) -> int:
    """Messages waiting in ``queue`` (0 when it does not exist yet)."""
    channel = connection.channel()
    try:
        return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except connection.channel_errors:
        return 0
    finally:
        with contextlib.suppress(Exception):  # AMQP closed the channel after a 404
            channel.close()


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
    """The report as an aligned text table with a one-line verdict."""
    header = ("SERVICE", "QUEUE", "DEPTH", "WORKER", "PROCS", "PING")
    rows: list[tuple[str, ...]] = []
    for queue in report.queues:
        depth = "?" if queue.depth is None else str(queue.depth)
        if not queue.workers:
            rows.append((queue.service, queue.queue, depth, "-", "-", "no live worker"))
        for worker in queue.workers:
            procs = "?" if worker.processes is None else str(worker.processes)
            ping = "ok" if worker.ping else "no answer"
            rows.append((queue.service, queue.queue, depth, worker.hostname, procs, ping))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    lines.append("")
    lines += [f"problem: {problem}" for problem in report.problems]
    missing = report.services_without_worker
    services = len({queue.service for queue in report.queues})
    if not report.queues:
        lines.append("no services known (add modules to `workers` or set COMMISSAIRE_SERVICES)")
    elif missing:
        lines.append(
            f"{len(missing)} of {services} services have no live worker: {', '.join(missing)}"
        )
    else:
        lines.append(f"all {services} services have a live worker (broker {report.broker})")
    return "\n".join(lines)
