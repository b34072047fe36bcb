"""Worker logs: one line per call without its data, JSON on request, levels per service.

:func:`install` connects Celery signal handlers (process-wide, as Celery's
logging signals are):

* Each call logs one INFO line on ``commissaire_tasks.services.<service>``, e.g.
  ``Call simple.add[<call id>] succeeded in 0.004s``, with ``service``,
  ``method``, ``call_id``, ``duration_s`` and ``state`` as record attributes.
  Celery's own "received" and "succeeded in ...: <return value>" lines are
  dropped: arguments and return values may hold secrets. Failures keep
  Celery's ERROR line with the traceback, except a caller's mistake (a
  JSON-RPC ParseError, InvalidRequest, MethodNotFound or InvalidParams, models'
  ValidationError included): that is one WARNING line without a traceback,
  since nothing in the worker needs fixing.
* ``COMMISSAIRE_LOG_FORMAT=json`` makes every worker log line a JSON object
  (``time``, ``level``, ``logger``, ``message``, and ``service``/``method``/
  ``call_id`` inside a call); the startup banner, which is not a log line, is
  left out.
* ``COMMISSAIRE_LOG_LEVEL_<SERVICE>=DEBUG`` sets the level of that service's
  logger (what ``self.logger`` returns in the service).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from celery import Celery, signals
from celery._state import get_current_task
from celery.app import trace
from celery.utils.log import get_multiprocessing_logger

from ..config import ENV_LOG_FORMAT, ENV_LOG_LEVEL_PREFIX
from ..errors import ConfigurationError, jsonrpc_error

__all__ = [
    "ENV_LOG_FORMAT",
    "ENV_LOG_LEVEL_PREFIX",
    "JsonFormatter",
    "install",
    "installed",
    "service_logger",
]

#: Parent of every service's logger.
SERVICE_LOGGER_PREFIX = "commissaire_tasks.services"
_FORMATS = ("", "text", "json")
#: Record attributes a call line carries; JSON output copies them.
_CALL_FIELDS = ("service", "method", "call_id", "duration_s", "state")
_OUTCOMES = {"SUCCESS": "succeeded", "FAILURE": "failed", "RETRY": "is retried"}


def service_logger(service: str) -> logging.Logger:
    """The logger of ``service`` (``commissaire_tasks.services.<service>``)."""
    return logging.getLogger(f"{SERVICE_LOGGER_PREFIX}.{service}")


def log_format(environ: Mapping[str, str] | None = None) -> str:
    """``json`` or ``text``, from ``$COMMISSAIRE_LOG_FORMAT``."""
    env = os.environ if environ is None else environ
    value = env.get(ENV_LOG_FORMAT, "").strip().lower()
    if value not in _FORMATS:
        raise ConfigurationError(f"{ENV_LOG_FORMAT}={value!r}: expected 'json' or 'text'")
    return value or "text"


def service_levels(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """Service name -> level, from ``$COMMISSAIRE_LOG_LEVEL_<SERVICE>`` variables."""
    env = os.environ if environ is None else environ
    levels = {}
    for name, value in env.items():
        if not name.startswith(ENV_LOG_LEVEL_PREFIX) or name == ENV_LOG_LEVEL_PREFIX:
            continue
        raw = value.strip().upper()
        level = int(raw) if raw.isdigit() else logging.getLevelName(raw)
        if not isinstance(level, int):
            raise ConfigurationError(f"{name}={value!r} is not a log level (DEBUG, INFO, ...)")
        levels[name[len(ENV_LOG_LEVEL_PREFIX) :].lower()] = level
    return levels


class JsonFormatter(logging.Formatter):
    """One JSON object per record; inside a call it names the service, method and call id."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        entry.update(_call_context(record))
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["traceback"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


def _call_context(record: logging.LogRecord) -> dict[str, Any]:
    if getattr(record, "call_id", None):
        return {k: getattr(record, k) for k in _CALL_FIELDS if hasattr(record, k)}
    task = get_current_task()
    call_id = getattr(getattr(task, "request", None), "id", None)
    if task is None or not call_id:
        return {}
    service, method = _names(task)
    return {"service": service, "method": method, "call_id": call_id}


def _names(task: Any) -> tuple[str, str]:
    """Service and method of a task; for tasks that are not service methods, from the name."""
    prefix, _, last = str(task.name).rpartition(".")
    return getattr(task, "service_name", "") or prefix, getattr(task, "method_name", "") or last


class _DropCallDataLines(logging.Filter):
    """Drops Celery's per-call lines: ours replace them, without the return value."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in (trace.LOG_SUCCESS, trace.LOG_RECEIVED)


#: JSON-RPC codes of errors the caller made (parse, request, method, params).
CALLER_MISTAKE_CODES = frozenset({-32700, -32600, -32601, -32602})


def is_caller_mistake(exc: BaseException | None) -> bool:
    """True when ``exc`` reports bad input from the caller rather than a fault of the service."""
    if not isinstance(exc, Exception):
        return False
    try:
        return int(jsonrpc_error(exc).get("code", 0)) in CALLER_MISTAKE_CODES
    except Exception:  # noqa: BLE001 - an exception that cannot be described is not one
        return False


class _CallerMistakesAsWarnings(logging.Filter):
    """Celery's failure line for a caller's mistake becomes a WARNING without traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if record.levelno >= logging.ERROR and is_caller_mistake(exc):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


_drop_filter = _DropCallDataLines()
_mistake_filter = _CallerMistakesAsWarnings()
#: Start time of each running call in this process, by call id.
_started: dict[str, float] = {}
_install_lock = threading.Lock()
_installed = False


def install(app: Celery) -> None:
    """Connect the handlers described in the module docstring (once per process).

    Call it where apps are created (``create_app``): a worker then logs this way
    whichever app module ``-A`` names. ``app`` is unused beyond that: Celery's
    logging and task signals are process-wide.
    """
    global _installed
    with _install_lock:
        if _installed:
            return
        for name in ("celery.app.trace", "celery.worker.strategy"):
            logging.getLogger(name).addFilter(_drop_filter)
        logging.getLogger("celery.app.trace").addFilter(_mistake_filter)
        signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid=f"{__name__}.prerun")
        signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid=f"{__name__}.postrun")
        signals.celeryd_init.connect(_on_worker_init, weak=False, dispatch_uid=f"{__name__}.init")
        signals.after_setup_logger.connect(
            _on_setup_logger, weak=False, dispatch_uid=f"{__name__}.logger"
        )
        signals.after_setup_task_logger.connect(
            _on_setup_task_logger, weak=False, dispatch_uid=f"{__name__}.task_logger"
        )
        _installed = True


def installed() -> bool:
    """True once :func:`install` ran in this process."""
    return _installed


def _on_prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is None or task is None:
        return
    _started[task_id] = time.monotonic()
    service, method = _names(task)
    service_logger(service).debug(
        "Call %s.%s[%s] started",
        service,
        method,
        task_id,
        extra={"service": service, "method": method, "call_id": task_id},
    )


def _on_postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    if task_id is None or task is None:
        return
    started = _started.pop(task_id, None)
    duration = round(time.monotonic() - started, 6) if started is not None else None
    service, method = _names(task)
    outcome = _OUTCOMES.get(str(state), str(state).lower())
    service_logger(service).info(
        "Call %s.%s[%s] %s in %.3fs",
        service,
        method,
        task_id,
        outcome,
        duration or 0.0,
        extra={
            "service": service,
            "method": method,
            "call_id": task_id,
            "duration_s": duration,
            "state": state,
        },
    )


def _on_worker_init(instance: Any = None, **_: Any) -> None:
    if instance is not None and log_format() == "json":
        instance.quiet = True  # the banner is plain text on stdout, not a log line


def _on_setup_logger(logger: logging.Logger | None = None, **_: Any) -> None:
    for service, level in service_levels().items():
        service_logger(service).setLevel(level)
    if log_format() == "json":
        for target in (logger, get_multiprocessing_logger()):
            _use_json(target)


def _on_setup_task_logger(logger: logging.Logger | None = None, **_: Any) -> None:
    if log_format() == "json":
        _use_json(logger)


def _use_json(logger: logging.Logger | None) -> None:
    for handler in logger.handlers if logger is not None else ():
        handler.setFormatter(JsonFormatter())
