"""Worker logs: one line per call without its data, JSON lines, per-service levels.

Each test runs a real worker (``celery -A commissaire_tasks worker``) whose app
was built by ``create_app``, which installs :mod:`commissaire_tasks.runtime.logs`.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.errors import ConfigurationError, MethodNotFound
from commissaire_tasks.runtime.logs import JsonFormatter, installed, log_format, service_levels
from commissaire_tasks.testing import WorkerProcess


def queues_for(unique: str) -> tuple[dict[str, str], ...]:
    """A queue of our own for service ``my`` and one for ``simple``: nothing else reaches them."""
    return (
        {"name": f"logmy_{unique}", "routing_key": f"logmy_{unique}.*", "service": "my"},
        {
            "name": f"logsimple_{unique}",
            "routing_key": f"logsimple_{unique}.*",
            "service": "simple",
        },
    )


def start_worker(
    worker_factory: Callable[..., WorkerProcess], unique: str, tmp_path: Path, **env: str
) -> tuple[WorkerProcess, Bus, Path]:
    queues = queues_for(unique)
    log_file = tmp_path / f"worker-{unique}.log"
    worker = worker_factory(
        queues=[q["name"] for q in queues],
        services="workers.simple",
        env={"COMMISSAIRE_QUEUES": json.dumps(queues), **env},
        extra_args=["--logfile", str(log_file)],
    )
    caller = Bus(create_app(load_settings().replace(queues=queues), services=()))
    return worker, caller, log_file


def wait_for_log(log_file: Path, text: str, timeout_s: float = 10) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        content = log_file.read_text(errors="replace")
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged; log:\n{log_file.read_text(errors='replace')}")


def test_create_app_installs_the_log_handlers() -> None:
    create_app(load_settings(), services=())
    assert installed(), (
        "commissaire_tasks.app.create_app must call commissaire_tasks.runtime.logs.install"
    )


@pytest.mark.reliability
def test_a_call_logs_one_info_line_without_its_arguments_or_result(
    worker_factory: Callable[..., WorkerProcess], unique: str, tmp_path: Path
) -> None:
    worker, caller, log_file = start_worker(worker_factory, unique, tmp_path)
    secret = f"secret-{uuid.uuid4().hex}"
    result = caller.send(f"logmy_{unique}.echo", secret)
    assert result.get() == secret
    failed = caller.send(f"logmy_{unique}.fail")
    with pytest.raises(NotImplementedError):
        failed.get()
    log = wait_for_log(log_file, f"[{failed.id}] failed")

    lines = [line for line in log.splitlines() if result.id in line]
    assert len(lines) == 1, log
    assert re.search(rf"INFO/.*Call my\.echo\[{result.id}\] succeeded in \d+\.\d{{3}}s$", lines[0])
    assert secret not in log
    assert re.search(rf"ERROR/.*logmy_{unique}\.fail\[{failed.id}\] raised unexpected", log)
    assert 'raise NotImplementedError("I was never created")' in log  # the traceback stays
    assert f"Call my.fail[{failed.id}] failed in " in log


def test_json_lines_name_service_method_call_and_duration_and_levels_are_per_service(
    worker_factory: Callable[..., WorkerProcess], unique: str, tmp_path: Path
) -> None:
    worker, caller, log_file = start_worker(
        worker_factory,
        unique,
        tmp_path,
        COMMISSAIRE_LOG_FORMAT="json",
        COMMISSAIRE_LOG_LEVEL_MY="DEBUG",
    )
    echoed = caller.send(f"logmy_{unique}.echo", "hello")
    added = caller.send(f"logsimple_{unique}.add", 1, 2)
    failed = caller.send(f"logmy_{unique}.fail")
    assert (echoed.get(), added.get()) == ("hello", 3)
    with pytest.raises(NotImplementedError):
        failed.get()
    wait_for_log(log_file, f"Call my.fail[{failed.id}] failed in")  # after its traceback

    entries = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry)
    assert any(e["message"].endswith("ready.") for e in entries)

    def calls(call_id: str, level: str) -> list[dict[str, Any]]:
        return [e for e in entries if e.get("call_id") == call_id and e["level"] == level]

    [echo_line] = [e for e in calls(echoed.id, "INFO") if "duration_s" in e]
    assert (echo_line["service"], echo_line["method"], echo_line["state"]) == (
        "my",
        "echo",
        "SUCCESS",
    )
    assert echo_line["logger"] == "commissaire_tasks.services.my"
    assert isinstance(echo_line["duration_s"], float) and echo_line["duration_s"] >= 0
    assert calls(echoed.id, "DEBUG")  # COMMISSAIRE_LOG_LEVEL_MY=DEBUG
    [add_line] = calls(added.id, "INFO")
    assert (add_line["service"], add_line["method"]) == ("simple", "add")
    assert not calls(added.id, "DEBUG")  # simple stays at INFO
    [error] = calls(failed.id, "ERROR")
    assert (error["service"], error["method"]) == ("my", "fail")
    assert "NotImplementedError: I was never created" in error["traceback"]


def test_json_formatter_and_settings_parsing() -> None:
    record = logging.LogRecord("x.y", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["level"], entry["logger"], entry["message"]) == ("WARNING", "x.y", "a b")
    assert "call_id" not in entry
    assert log_format({"COMMISSAIRE_LOG_FORMAT": "JSON"}) == "json"
    assert log_format({}) == "text"
    with pytest.raises(ConfigurationError):
        log_format({"COMMISSAIRE_LOG_FORMAT": "xml"})
    assert service_levels(
        {"COMMISSAIRE_LOG_LEVEL_MY": "debug", "COMMISSAIRE_LOG_LEVEL_SIMPLE": "30"}
    ) == {
        "my": logging.DEBUG,
        "simple": logging.WARNING,
    }
    with pytest.raises(ConfigurationError):
        service_levels({"COMMISSAIRE_LOG_LEVEL_MY": "LOUD"})


def test_a_callers_mistake_is_one_warning_line_without_a_traceback(
    worker_factory: Callable[..., WorkerProcess], unique: str, tmp_path: Path
) -> None:
    worker, caller, log_file = start_worker(worker_factory, unique, tmp_path)
    wrong = caller.send(f"logmy_{unique}.echo", "too", "many")
    with pytest.raises(Exception, match="InvalidParams|too many"):
        wrong.get()
    log = wait_for_log(log_file, f"Call my.echo[{wrong.id}] failed")

    lines = [line for line in log.splitlines() if wrong.id in line]
    assert any(re.search(r"WARNING/.*InvalidParams", line) for line in lines), log
    assert not any("ERROR/" in line for line in lines), log
    assert "Traceback" not in log
    assert worker.process is not None and worker.process.poll() is None


def test_a_call_to_a_method_no_service_has_is_one_warning_line_without_a_traceback(
    worker_factory: Callable[..., WorkerProcess], unique: str, tmp_path: Path
) -> None:
    worker, caller, log_file = start_worker(worker_factory, unique, tmp_path)
    missing = caller.send(f"logmy_{unique}.nosuch", "x")
    with pytest.raises(MethodNotFound):
        missing.get()
    log = wait_for_log(log_file, f"Rejected message {missing.id}")

    lines = [line for line in log.splitlines() if missing.id in line]
    assert len(lines) == 1, log
    assert re.search(rf"WARNING/.*'logmy_{unique}\.nosuch'.*: method not found", lines[0]), log
    assert "ERROR/" not in log
    assert "Traceback" not in log
    assert worker.process is not None and worker.process.poll() is None
