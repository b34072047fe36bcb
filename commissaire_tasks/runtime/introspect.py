"""What each live worker serves: services, methods with their parameters, and a code fingerprint.

Workers answer the remote-control inspect command ``commissaire_services``
(registered when a worker of ours starts), as ``celery inspect registered``
does but per queue and with signatures::

    {"queues": {"simple": {"service": "simple", "tasks": [...], "fingerprint": "..."}},
     "services": {"simple": {"class": "workers.simple:SimpleService", "version": "...",
                             "methods": {"add": "(x, y)"}}}}

A queue's fingerprint hashes the task names consumed from it, the methods'
signatures and the service class's source: two workers on one queue with
different fingerprints run different code (an old and a new version, or two
services with one name), and a call may land on either. A worker that starts
on such a queue logs one WARNING per other worker (:func:`warn_on_conflicts`,
run in a thread once the worker is ready), and ``status`` reports it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from celery import Celery

from .registry import registry

__all__ = [
    "INSPECT_COMMAND",
    "Conflict",
    "collect_reports",
    "find_conflicts",
    "parameters_of",
    "register",
    "worker_report",
]

logger = logging.getLogger(__name__)

#: Name of the remote-control inspect command our workers answer.
INSPECT_COMMAND = "commissaire_services"
#: Seconds a starting worker waits for the other workers' reports.
STARTUP_INSPECT_TIMEOUT_S = 1.0
_registered = threading.Lock()
_done: list[bool] = []


def parameters_of(function: Any) -> str:
    """The bus parameters of an ``on_*`` method, e.g. ``(x, y=1)`` (no ``self``, ``message``)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())[2:]
    except (TypeError, ValueError):
        return "(...)"
    bare = [p.replace(annotation=inspect.Parameter.empty) for p in parameters]
    return str(inspect.Signature(bare))


def code_version(cls: type[Any]) -> str:
    """A short hash of the class's source (its import path when the source is unavailable)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        source = f"{cls.__module__}:{cls.__qualname__}"
    return hashlib.sha256(source.encode()).hexdigest()[:12]


def describe_service(name: str) -> dict[str, Any]:
    spec = registry.get(name)
    methods = {m: parameters_of(getattr(spec.cls, a)) for m, a in spec.methods.items()}
    return {"class": spec.import_path, "version": code_version(spec.cls), "methods": methods}


def worker_report(app: Celery, queues: Iterable[str]) -> dict[str, Any]:
    """What a worker of ``app`` consuming ``queues`` serves (the inspect command's reply)."""
    service_queues: Mapping[str, str] = getattr(app, "service_queues", {})
    services: dict[str, dict[str, Any]] = {}
    report: dict[str, Any] = {}
    for queue in sorted(set(queues)):
        service = service_queues.get(queue)
        tasks = sorted(
            name for name, task in app.tasks.items() if getattr(task, "queue_name", "") == queue
        )
        if service is not None and service not in services:
            services[service] = describe_service(service)
        described = services.get(service or "", {})
        digest = json.dumps([service, tasks, described], sort_keys=True)
        report[queue] = {
            "service": service,
            "tasks": tasks,
            "fingerprint": hashlib.sha256(digest.encode()).hexdigest()[:12],
        }
    return {"queues": report, "services": services}


def _consumed_queues(consumer: Any) -> list[str]:
    task_consumer = getattr(consumer, "task_consumer", None)
    if task_consumer is not None:
        return [queue.name for queue in task_consumer.queues]
    return list(consumer.app.amqp.queues.consume_from or consumer.app.amqp.queues)


def _answer(state: Any) -> dict[str, Any]:
    return worker_report(state.consumer.app, _consumed_queues(state.consumer))


def register() -> None:
    """Register the inspect command and the start-up check in this (worker) process, once."""
    from celery.signals import worker_ready
    from celery.worker.control import inspect_command

    with _registered:
        if _done:
            return
        inspect_command(name=INSPECT_COMMAND)(_answer)
        worker_ready.connect(_check_on_ready, weak=False, dispatch_uid=f"{__name__}.ready")
        _done.append(True)


def collect_reports(
    app: Celery, timeout_s: float, destination: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Hostname -> report, from every worker that answers within ``timeout_s``."""
    inspector = app.control.inspect(timeout=timeout_s, destination=destination)
    replies = inspector._request(INSPECT_COMMAND) or {}
    return {host: reply for host, reply in replies.items() if isinstance(reply, dict)}


@dataclass(frozen=True)
class Conflict:
    """A queue consumed by workers running different code."""

    queue: str
    #: hostname -> (service, fingerprint) of each worker consuming the queue
    workers: Mapping[str, tuple[str | None, str]]

    def describe(self) -> str:
        served = ", ".join(
            f"{host} ({service or '?'} code {fp})" for host, (service, fp) in self.workers.items()
        )
        return f"queue {self.queue} is consumed by workers running different code: {served}"


def find_conflicts(reports: Mapping[str, Mapping[str, Any]]) -> list[Conflict]:
    """Every queue whose consumers report different fingerprints."""
    by_queue: dict[str, dict[str, tuple[str | None, str]]] = {}
    for host, report in sorted(reports.items()):
        for queue, entry in (report.get("queues") or {}).items():
            by_queue.setdefault(queue, {})[host] = (entry.get("service"), entry.get("fingerprint"))
    return [
        Conflict(queue, workers)
        for queue, workers in sorted(by_queue.items())
        if len({fp for _, fp in workers.values()}) > 1
    ]


def _check_on_ready(sender: Any = None, **_: Any) -> None:
    """worker_ready: look for other workers on our queues, in a thread (start is not delayed)."""
    if sender is None or not hasattr(sender, "app"):
        return
    threading.Thread(
        target=warn_on_conflicts, args=(sender,), name="commissaire-conflicts", daemon=True
    ).start()


def warn_on_conflicts(consumer: Any, timeout_s: float = STARTUP_INSPECT_TIMEOUT_S) -> list[str]:
    """Log one WARNING per other worker whose code differs on a queue we consume."""
    me = consumer.hostname
    mine = worker_report(consumer.app, _consumed_queues(consumer))["queues"]
    try:
        others = collect_reports(consumer.app, timeout_s)
    except Exception as exc:  # noqa: BLE001 - a failed check must not disturb the worker
        logger.info("Could not ask the other workers what they serve: %s", exc)
        return []
    warned = []
    for host, report in sorted(others.items()):
        theirs = report.get("queues") or {}
        differ = [
            q
            for q in sorted(mine)
            if q in theirs and theirs[q].get("fingerprint") != mine[q]["fingerprint"]
        ]
        if host == me or not differ:
            continue
        logger.warning(
            "Queue(s) %s also consumed by worker %s running different code (service %s there, "
            "%s here): each call runs on either; stop one of them or give one service another name",
            ", ".join(differ),
            host,
            "/".join(sorted({str(theirs[q].get("service")) for q in differ})),
            "/".join(sorted({str(mine[q]["service"]) for q in differ})),
        )
        warned.append(host)
    if not warned:
        logger.info("No other worker runs different code on queue(s) %s", ", ".join(sorted(mine)))
    return warned
