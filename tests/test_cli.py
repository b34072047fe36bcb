"""The ``commissaire-tasks`` command line, against real workers and real Redis servers."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.cli import main, parse_call_arguments
from commissaire_tasks.config import load_settings
from commissaire_tasks.testing import RedisServer, WorkerProcess, free_port

ROOT = Path(__file__).resolve().parent.parent
CONSOLE_SCRIPT = Path(sys.executable).parent / "commissaire-tasks"


@pytest.fixture(scope="module")
def simple_worker(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(
        broker_url=redis_server.url,
        queues=["simple", "my"],
        env={"COMMISSAIRE_SERVICES": "workers.simple"},
        log_dir=tmp_path_factory.mktemp("cli-worker"),
    )
    with worker:
        yield worker


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m commissaire_tasks.cli ARGS`` in a subprocess, from the checkout."""
    return subprocess.run(
        [sys.executable, "-m", "commissaire_tasks.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- call -------------------------------------------------------------------------------------


def test_call_arguments_are_json_when_they_parse_and_text_otherwise() -> None:
    assert parse_call_arguments(["1", '"1"', "[1, 2]", "a b", "NaN", "null"]) == (
        [1, "1", [1, 2], "a b", "NaN", None],
        {},
    )
    assert parse_call_arguments(["x=1", "y=a=b", 'z={"k": true}']) == (
        [],
        {"x": 1, "y": "a=b", "z": {"k": True}},
    )
    with pytest.raises(ValueError):
        parse_call_arguments(["1", "y=2"])


def test_call_prints_the_result_as_json(
    simple_worker: WorkerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["call", "simple.add", "1", "2"]) == 0
    assert capsys.readouterr().out == "3\n"
    assert main(["call", "simple.add", "x=[1]", "y=[2, 3]", "--timeout", "10"]) == 0
    assert json.loads(capsys.readouterr().out) == [1, 2, 3]
    assert main(["call", "my.echo", "words=not json"]) == 0
    assert json.loads(capsys.readouterr().out) == "not json"


def test_a_failed_call_prints_code_type_and_message_and_exits_1(
    simple_worker: WorkerProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["call", "my.fail"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "error -32603 NotImplementedError: I was never created\n"
    assert main(["call", "my.echo", "too", "many"]) == 1
    assert capsys.readouterr().err.startswith("error -32602 InvalidParams: ")


def test_mixing_positional_and_keyword_arguments_exits_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["call", "simple.add", "1", "y=2"]) == 2
    assert "not both" in capsys.readouterr().err


def test_bus_errors_exit_1_with_a_clear_message(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str], unique: str
) -> None:
    assert main(["call", "Not A Key"]) == 1
    assert capsys.readouterr().err.startswith("error NoRouteError: no queue is bound")
    assert main(["call", f"nobody_{unique}.x"]) == 1  # nothing is bound to it
    assert capsys.readouterr().err.startswith("error NoRouteError: no queue is bound")
    binding = f"nobody_{unique}.*\x06\x16\x06\x16nobody_{unique}"  # as its worker left it
    redis_server.client().sadd("_kombu.binding.commissaire", binding)
    try:
        assert main(["call", f"nobody_{unique}.x", "--timeout", "0.5"]) == 1
        assert capsys.readouterr().err == (
            f"error CallTimeout: no answer from 'nobody_{unique}.x' within 0.5 s\n"
        )
    finally:
        redis_server.client().delete(f"nobody_{unique}")  # the call nobody served
        redis_server.client().srem("_kombu.binding.commissaire", binding)


def test_a_timed_out_call_prints_one_error_line_and_no_traceback_at_exit(
    redis_server: RedisServer, unique: str
) -> None:
    queue = {"name": f"late_{unique}", "routing_key": f"late_{unique}.*", "service": "late"}
    try:
        done = run_cli(
            "call", f"late_{unique}.x", "--timeout", "0.5",
            env={"COMMISSAIRE_QUEUES": json.dumps([queue])},
        )  # fmt: skip
        assert done.returncode == 1
        assert done.stderr == f"error CallTimeout: no answer from 'late_{unique}.x' within 0.5 s\n"
    finally:
        redis_server.client().delete(queue["name"])


def test_ctrl_c_during_a_call_exits_130_without_a_traceback(
    redis_server: RedisServer, unique: str
) -> None:
    queue = {"name": f"wait_{unique}", "routing_key": f"wait_{unique}.*", "service": "wait"}
    redis = redis_server.client()
    call = subprocess.Popen(
        [sys.executable, "-m", "commissaire_tasks.cli", "call", f"wait_{unique}.x"],
        cwd=ROOT, env={**os.environ, "COMMISSAIRE_QUEUES": json.dumps([queue])},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not redis.llen(queue["name"]) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the call is published and the CLI waits for its result
        call.send_signal(signal.SIGINT)
        out, err = call.communicate(timeout=30)
        assert (call.returncode, out, err) == (130, "", "interrupted\n")
    finally:
        call.kill()
        redis.delete(queue["name"])


def test_call_usage_shows_its_arguments_as_optional(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", "--help"]) == 0
    usage = " ".join(capsys.readouterr().out.split("\n\n")[0].split())
    assert usage.endswith("ROUTING_KEY [ARG ...]"), usage


def test_the_console_script_takes_the_broker_from_bus_uri(
    simple_worker: WorkerProcess, redis_server: RedisServer
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COMMISSAIRE_BROKER_URL"}
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "--bus-uri", redis_server.url, "call", "simple.add", '"a"', '"b"'],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, '"ab"\n'), done.stderr


def test_call_with_progress_returns_the_result(
    redis_server: RedisServer, worker_factory: Callable[..., WorkerProcess], unique: str
) -> None:
    queue = {
        "name": f"cliprog_{unique}",
        "routing_key": f"cliprog_{unique}.*",
        "service": "introspect",
    }
    env = {"COMMISSAIRE_QUEUES": json.dumps([queue])}
    worker_factory(queues=[queue["name"]], services="tests.services", env=env)
    done = run_cli(
        "call", "--progress", f"cliprog_{unique}.progress", "steps=3", "delay=0.1", env=env
    )
    assert (done.returncode, done.stdout) == (0, "3\n"), done.stderr


def test_bench_delegates_to_bench_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[list[str]] = []

    def bench_main(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    module = types.ModuleType("bench.cli")
    module.main = bench_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bench.cli", module)
    assert main(["bench", "--calls", "10", "x"]) == 0
    assert seen == [["--calls", "10", "x"]]
    monkeypatch.setitem(sys.modules, "bench.cli", None)  # as if it were not installed
    assert main(["bench"]) == 1
    assert "benchmark not available" in capsys.readouterr().err


# -- status -----------------------------------------------------------------------------------


def test_status_shows_queues_depths_and_workers_and_fails_without_a_worker(
    redis_server: RedisServer, worker_factory: Callable[..., WorkerProcess], unique: str
) -> None:
    idle = {"name": f"idle_{unique}", "routing_key": f"idle_{unique}.*", "service": "introspect"}
    env = {"COMMISSAIRE_SERVICES": "tests.services", "COMMISSAIRE_QUEUES": json.dumps([idle])}
    worker = worker_factory(services="tests.services", concurrency=2)  # every service's queue
    caller = Bus(create_app(load_settings().replace(queues=(idle,)), services=()))
    try:
        caller.notify(f"idle_{unique}.pid")  # nobody consumes idle_*: two calls wait there
        caller.notify(f"idle_{unique}.pid")

        live = run_cli("status", "--timeout", "2", env=env)
        assert live.returncode == 0, live.stdout + live.stderr
        assert re.search(
            rf"introspect\s+introspect\s+\d+\s+0\s+{re.escape(worker.hostname)}\s+2\s+ok",
            live.stdout,
        )
        assert re.search(
            rf"error\s+error\s+\d+\s+0\s+{re.escape(worker.hostname)}\s+2\s+ok", live.stdout
        )
        assert re.search(
            rf"introspect\s+idle_{unique}\s+2\s+0\s+-\s+-\s+no live worker", live.stdout
        )

        worker.stop()
        stopped = run_cli("status", "--json", "--timeout", "0.5", env=env)
        assert stopped.returncode == 1, stopped.stdout + stopped.stderr
        report = json.loads(stopped.stdout)
        assert report["ok"] is False
        assert {"error", "introspect"} <= set(report["services_without_worker"])
        idle_row = next(q for q in report["queues"] if q["queue"] == idle["name"])
        assert (idle_row["depth"], idle_row["workers"], idle_row["live"]) == (2, [], False)
        ours = [q for q in report["queues"] if q["service"] in {"error", "introspect"}]
        assert ours and all(not q["workers"] for q in ours)
    finally:
        redis_server.client().delete(idle["name"])


def test_status_exits_1_when_the_broker_is_down() -> None:
    done = run_cli("--bus-uri", f"redis://:hush@127.0.0.1:{free_port()}/0", "status")
    assert done.returncode == 1
    assert "error: cannot reach the broker" in done.stderr
    assert "hush" not in done.stdout + done.stderr


# -- up ---------------------------------------------------------------------------------------


def wait_for_line(
    process: subprocess.Popen[bytes], output: Path, pattern: str, timeout_s: float = 90
) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = output.read_text(errors="replace")
        if re.search(pattern, text, re.MULTILINE):
            return text
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(
        f"no line matching {pattern!r}; output:\n{output.read_text(errors='replace')}"
    )


def assert_all_gone(pids: list[int]) -> None:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    assert alive == []


def test_up_runs_a_private_redis_and_the_workers_and_stops_cleanly(
    background: Callable[..., tuple[subprocess.Popen[bytes], Path]], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("COMMISSAIRE_BROKER_URL", "COMMISSAIRE_SECRETS_KEY")
    }
    env["COMMISSAIRE_SERVICES"] = "workers.simple"
    with socket.socket() as busy:  # the port asked for is taken: up picks another
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        up, output = background(
            [str(CONSOLE_SCRIPT), "up", "--data-dir", str(data), "--port", str(port), "-c", "1"],
            env,
        )
        text = wait_for_line(up, output, r"^Press Ctrl-C to stop\.$")
    assert f"Port {port} is busy" in text
    url = re.search(r"^Broker: (redis://127\.0\.0\.1:(\d+)/0)$", text, re.MULTILINE)
    assert url is not None and int(url.group(2)) != port, text
    assert f"export COMMISSAIRE_BROKER_URL={url.group(1)}" in text
    key = (data / "secrets.key").read_text().strip()
    assert f"export COMMISSAIRE_SECRETS_KEY={key}" in text
    call_line = f"{CONSOLE_SCRIPT} call simple.add 1 2"
    assert f"    {call_line}\n" in text
    pasted = "\n".join(line.strip() for line in text.splitlines() if line.startswith("    export "))
    second_shell = subprocess.run(  # a new terminal: no venv, nothing exported
        ["env", "-i", f"PATH={os.defpath}", "bash", "-c",
         f"{pasted}\n{call_line}\necho \"$COMMISSAIRE_SECRETS_KEY\""],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second_shell.stdout == f"3\n{key}\n", second_shell.stderr
    status = subprocess.run(  # the printed `status` line, from a folder without `workers`
        ["env", "-i", f"PATH={os.defpath}", "bash", "-c", f"{pasted}\n{CONSOLE_SCRIPT} status"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"^simple\s+simple\s+0\s+0\s+simple-\d+@", status.stdout, re.M), status.stdout

    caller = Bus(create_app(load_settings().replace(broker_url=url.group(1)), services=()))
    assert caller.call("simple.add", 1, 2, timeout=20) == 3
    assert (data / "secrets.key").stat().st_mode & 0o777 == 0o600
    assert (data / "appendonlydir").is_dir()
    children = psutil.Process(up.pid).children(recursive=True)
    assert {"redis-server"} <= {c.name() for c in children}
    assert len(children) == 3  # redis, the worker, its one pool process

    up.send_signal(signal.SIGINT)
    assert up.wait(60) == 0, output.read_text()
    assert_all_gone([up.pid, *(c.pid for c in children)])
    assert output.read_text().rstrip().endswith("Stopped.")


def test_up_with_a_broker_url_starts_no_redis(
    background: Callable[..., tuple[subprocess.Popen[bytes], Path]],
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "COMMISSAIRE_SERVICES": "tests.services",
    }  # no `app`: -A commissaire_tasks -Q
    up, output = background(
        [
            sys.executable,
            "-m",
            "commissaire_tasks.cli",
            "up",
            "--data-dir",
            str(tmp_path / "unused"),
            "-c",
            "1",
        ],
        env,
    )
    text = wait_for_line(up, output, r"^Press Ctrl-C to stop\.$")
    assert "Redis:" not in text
    assert not (tmp_path / "unused").exists()
    children = psutil.Process(up.pid).children(recursive=True)
    assert "redis-server" not in {c.name() for c in children}
    assert Bus().call("introspect.pid", timeout=20) in {c.pid for c in children}

    up.send_signal(signal.SIGTERM)
    assert up.wait(60) == 0, output.read_text()
    assert_all_gone([c.pid for c in children])
