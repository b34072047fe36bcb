"""Operating services from the shell: node names, different code on one queue, ``services``,
``run``, ``status`` findings and ``unsubscribe``, against real Redis and real workers."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from commissaire_tasks import models
from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.storage.subscriptions import list_subscriptions
from commissaire_tasks.testing import RedisServer, WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_SCRIPT = Path(sys.executable).parent / "commissaire-tasks"

#: A second definition of service ``my``: what an old or a copied version looks like.
OTHER_MY = """
from commissaire_tasks.service import CommissaireService


class MyService(CommissaireService):
    name = "my"

    def on_ping(self, message, loud=False):
        return "PONG" if loud else "pong"
"""


def cli(
    *args: str, url: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """The console script with ``--bus-uri url`` in a subprocess."""
    return subprocess.run(
        [str(CONSOLE_SCRIPT), "--bus-uri", url, *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=90,
    )


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def ping_names(url: str) -> set[str]:
    app = create_app(load_settings().replace(broker_url=url), services=())
    return {host for reply in app.control.ping(timeout=0.5) or [] for host in reply}


def kill_tree(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        for child in [*psutil.Process(process.pid).children(recursive=True)]:
            child.kill()
        process.kill()
    process.wait()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own: its queues, bindings and workers are all the test's."""
    with RedisServer() as server:
        yield server


def my_queue(unique: str) -> dict[str, str]:
    return {"name": f"dup_{unique}", "routing_key": f"dup_{unique}.*", "service": "my"}


# -- node names -------------------------------------------------------------------------------


def test_two_workers_started_the_same_way_on_one_host_get_different_node_names(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    env = {**os.environ, "COMMISSAIRE_BROKER_URL": private_redis.url}
    args = [sys.executable, "-m", "celery", "-A", "workers.simple", "worker", "-c", "1"]
    logs = [open(tmp_path / f"w{i}.log", "wb") for i in range(2)]  # noqa: SIM115
    started = [
        subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        for log in logs
    ]
    try:

        def both_answer() -> set[str] | None:
            found = ping_names(private_redis.url)
            return found if len(found) == 2 else None

        names = wait_until(both_answer, "two workers answering")
        host = os.uname().nodename
        assert names == {f"simple-{p.pid}@{host}" for p in started}
    finally:
        for process, log in zip(started, logs, strict=True):
            kill_tree(process)
            log.close()


# -- two versions of one service on one queue -------------------------------------------------


def test_a_worker_joining_a_queue_served_by_different_code_warns_naming_the_other_worker(
    worker_factory: Callable[..., WorkerProcess],
    unique: str,
    tmp_path: Path,
    redis_server: RedisServer,
) -> None:
    queue = my_queue(unique)
    env = {"COMMISSAIRE_QUEUES": json.dumps([queue])}
    (tmp_path / "othermy.py").write_text(OTHER_MY)
    first = worker_factory(queues=[queue["name"]], services="workers.simple", env=env)
    same = worker_factory(queues=[queue["name"]], services="workers.simple", env=env)
    wait_until(lambda: "No other worker runs different code" in same.log(), "the same-code check")
    assert "running different code" not in same.log()

    other = worker_factory(queues=[queue["name"]], services="othermy", env=env, cwd=tmp_path)

    def two_warnings() -> list[str] | None:
        found = [line for line in other.log().splitlines() if "running different code" in line]
        return found if len(found) >= 2 else None

    warnings = wait_until(two_warnings, "the different-code warnings")
    assert len(warnings) == 2 and all("WARNING" in line for line in warnings)
    assert {h for h in (first.hostname, same.hostname) if any(h in w for w in warnings)} == {
        first.hostname,
        same.hostname,
    }

    status = cli("status", "--json", url=redis_server.url, env=env)
    assert status.returncode == 1, status.stdout + status.stderr
    [conflict] = [c for c in json.loads(status.stdout)["conflicts"] if c["queue"] == queue["name"]]
    assert set(conflict["workers"]) == {first.hostname, same.hostname, other.hostname}
    text = cli("status", url=redis_server.url, env=env).stdout
    assert f"queue {queue['name']} is consumed by workers running different code" in text

    services = json.loads(cli("services", "--json", url=redis_server.url).stdout)
    versions = [s for s in services if queue["name"] in s["queues"]]
    assert sorted(s["class"] for s in versions) == ["othermy:MyService", "workers.simple:MyService"]
    [old] = [s for s in versions if s["class"] == "othermy:MyService"]
    assert old["methods"] == {"ping": "(loud=False)"}
    assert old["queues"][queue["name"]] == [other.hostname]


# -- services ---------------------------------------------------------------------------------


def test_services_lists_each_live_service_with_its_methods_and_parameters(
    worker_factory: Callable[..., WorkerProcess], unique: str, redis_server: RedisServer
) -> None:
    queue = my_queue(unique)
    worker = worker_factory(
        queues=[queue["name"]],
        services="workers.simple",
        env={"COMMISSAIRE_QUEUES": json.dumps([queue])},
    )
    done = cli("services", url=redis_server.url)
    assert done.returncode == 0, done.stderr
    block = done.stdout.split("my  (workers.simple:MyService, code ")[1].split("\n\n")[0]
    assert f"  queue {queue['name']}: {worker.hostname}" in block
    for line in ("  my.echo(words)", "  my.fail()", "  my.ping()"):
        assert line in block.splitlines()
    assert "message" not in block and "self" not in block


def test_services_exits_1_when_no_worker_answers(private_redis: RedisServer) -> None:
    done = cli("services", "--timeout", "0.3", url=private_redis.url)
    assert (done.returncode, done.stdout) == (1, "no live services (no worker answered)\n")


# -- run ----------------------------------------------------------------------------------------


def test_run_serves_one_class_of_a_module_in_the_current_folder_until_ctrl_c(
    private_redis: RedisServer, tmp_path: Path, unique: str
) -> None:
    alpha, beta = f"alpha_{unique}", f"beta_{unique}"
    (tmp_path / "mymodule.py").write_text(
        textwrap.dedent(f"""
        import os
        from commissaire_tasks.service import CommissaireService


        class Alpha(CommissaireService):
            name = "{alpha}"

            def on_pid(self, message):
                return os.getpid()


        class Beta(CommissaireService):
            name = "{beta}"

            def on_pid(self, message):
                return os.getpid()
        """)
    )
    env = {k: v for k, v in os.environ.items() if k != "COMMISSAIRE_SERVICES"}
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115 - the child writes it
    run = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "--bus-uri", private_redis.url, "run", "mymodule:Alpha", "-c", "2"],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        name = f"{alpha}-{run.pid}@{os.uname().nodename}"  # the CLI became the worker
        wait_until(lambda: name in ping_names(private_redis.url), "the worker to answer")
        queues = [{"name": alpha, "routing_key": f"{alpha}.*", "service": alpha}]
        settings = load_settings().replace(broker_url=private_redis.url, queues=queues)
        pool = {c.pid for c in psutil.Process(run.pid).children()}
        assert len(pool) == 2
        assert Bus(create_app(settings, services=())).call(f"{alpha}.pid", timeout=20) in pool
        services = json.loads(cli("services", "--json", url=private_redis.url).stdout)
        assert [(s["service"], list(s["queues"])) for s in services] == [(alpha, [alpha])]

        run.send_signal(signal.SIGINT)  # Ctrl-C: warm shutdown
        assert run.wait(60) == 1  # celery worker's exit code after SIGINT, as it documents
        assert "Warm shutdown" in (tmp_path / "run.log").read_text()
        assert not [
            p for p in pool if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
        ]
    finally:
        kill_tree(run)
        log.close()


def test_run_names_what_is_wrong_with_its_target(tmp_path: Path, redis_server: RedisServer) -> None:
    (tmp_path / "emptymod.py").write_text("X = 1\n")
    assert (
        "defines no services" in cli("run", "emptymod", url=redis_server.url, cwd=tmp_path).stderr
    )
    missing = cli("run", "workers.simple:Nope", url=redis_server.url)
    assert missing.returncode == 1
    assert "no service class 'Nope' (SimpleService, MyService)" in missing.stderr
    assert "cannot import 'nosuchmod'" in cli("run", "nosuchmod", url=redis_server.url).stderr


# -- status -----------------------------------------------------------------------------------


def test_status_shows_unknown_queues_holding_messages_and_dead_letter_counts(
    worker_factory: Callable[..., WorkerProcess], redis_server: RedisServer, unique: str
) -> None:
    known = {"name": f"known_{unique}", "routing_key": f"known_{unique}.*", "service": "my"}
    stray = {"name": f"stray_{unique}", "routing_key": f"stray_{unique}.*", "service": "gone"}
    env = {"COMMISSAIRE_SERVICES": "workers.simple", "COMMISSAIRE_QUEUES": json.dumps([known])}
    worker_factory(queues=["simple", "my", known["name"]], services="workers.simple", env=env)
    redis = redis_server.client()
    try:
        old_caller = Bus(create_app(load_settings().replace(queues=(stray,)), services=()))
        old_caller.notify(f"stray_{unique}.x")  # a retired service's queue, still bound
        old_caller.notify(f"stray_{unique}.x")
        redis.lpush(f"{known['name']}.dead", "junk", "junk", "junk")
        redis.lpush(f"ghost_{unique}.dead", "junk")

        done = cli("status", url=redis_server.url, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert re.search(rf"^my\s+known_{unique}\s+0\s+3\s+\S+@", done.stdout, re.M), done.stdout
        assert re.search(rf"^\?\s+stray_{unique}\s+2\s+0\s+-\s+-\s+no service of ours$",
                         done.stdout, re.M), done.stdout  # fmt: skip
        assert re.search(rf"^\?\s+ghost_{unique}\s+0\s+1\s+-", done.stdout, re.M), done.stdout
        report = json.loads(cli("status", "--json", url=redis_server.url, env=env).stdout)
        rows = {q["queue"]: q for q in report["queues"]}
        assert (rows[stray["name"]]["known"], rows[stray["name"]]["depth"]) == (False, 2)
    finally:
        redis.delete(stray["name"], f"{known['name']}.dead", f"ghost_{unique}.dead")


def test_status_with_service_names_limits_the_report_and_the_exit_code_to_them(
    worker_factory: Callable[..., WorkerProcess], redis_server: RedisServer
) -> None:
    env = {"COMMISSAIRE_SERVICES": "tests.services"}
    worker = worker_factory(queues=["introspect"], services="tests.services")
    everything = cli("status", url=redis_server.url, env=env)
    assert everything.returncode == 1  # error, ledger: no worker
    one = cli("status", "introspect", url=redis_server.url, env=env)
    assert one.returncode == 0, one.stdout
    assert [line.split()[0] for line in one.stdout.splitlines()[1:] if line and "@" in line] == [
        "introspect"
    ]
    assert worker.hostname in one.stdout
    assert cli("status", "error", url=redis_server.url, env=env).returncode == 1
    unknown = cli("status", "nosuch", url=redis_server.url, env=env)
    assert unknown.returncode == 1
    assert "no service named 'nosuch' is known here" in unknown.stdout


# -- subscriptions --------------------------------------------------------------------------------


def test_a_retired_subscriber_shows_in_status_and_unsubscribe_stops_its_notifications(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    url = private_redis.url
    env = {"COMMISSAIRE_SERVICES": "tests.subscribers,workers.storage"}
    storage = WorkerProcess(broker_url=url, app="workers.storage", log_dir=tmp_path)
    watch = WorkerProcess(
        broker_url=url,
        queues=["watch"],
        log_dir=tmp_path,
        env={"COMMISSAIRE_SERVICES": "tests.subscribers", "TEST_RECORD_URL": url},
    )
    bus = Bus(create_app(load_settings().replace(broker_url=url)))
    with storage:
        with watch:
            wait_until(
                lambda: "watch" in {s.service for s in list_subscriptions(bus, timeout=5)},
                "the watch subscription",
            )
        report = json.loads(cli("status", "--json", "watch", url=url, env=env).stdout)
        assert report["subscriptions"]["without_worker"] == [{"service": "watch", "queue": "watch"}]
        text = cli("status", url=url, env=env).stdout
        assert "subscription without a live worker: watch" in text

        client = StorageClient(bus)
        client.save(models.Host.new(address=f"h-{uuid.uuid4().hex[:8]}"))
        redis = private_redis.client()
        assert redis.llen("watch") == 1  # queued for a subscriber that will never read it

        removed = cli("unsubscribe", "watch", url=url)
        assert (removed.returncode, removed.stdout) == (
            0,
            "Removed the storage subscription of watch.\n",
        ), removed.stderr
        client.save(models.Host.new(address=f"h-{uuid.uuid4().hex[:8]}"))
        assert redis.llen("watch") == 1  # nothing more queued
        report = json.loads(cli("status", "--json", url=url, env=env).stdout)
        assert report["subscriptions"]["without_worker"] == []
        again = cli("unsubscribe", "watch", url=url)
        assert again.stdout == "watch had no storage subscription.\n"


# -- RabbitMQ ---------------------------------------------------------------------------------


@pytest.mark.rabbitmq
def test_on_rabbitmq_status_and_services_learn_queues_from_the_workers_and_flag_different_code(
    rabbitmq_url: str, tmp_path: Path, unique: str
) -> None:
    from kombu import Connection, Exchange, Queue

    queue = my_queue(unique)
    env = {"COMMISSAIRE_QUEUES": json.dumps([queue])}
    (tmp_path / "othermy.py").write_text(OTHER_MY)
    current = WorkerProcess(
        broker_url=rabbitmq_url,
        queues=[queue["name"]],
        env={**env, "COMMISSAIRE_SERVICES": "workers.simple"},
        log_dir=tmp_path,
    )
    old = WorkerProcess(
        broker_url=rabbitmq_url,
        queues=[queue["name"]],
        env={**env, "COMMISSAIRE_SERVICES": "othermy"},
        log_dir=tmp_path,
        cwd=tmp_path,
    )
    dead = f"{queue['name']}.dead"
    with Connection(rabbitmq_url) as connection:
        producer = connection.Producer()
        for _ in range(2):
            producer.publish(
                "garbage", exchange=Exchange(""), routing_key=dead, declare=[Queue(dead)]
            )
    with current, old:
        wait_until(lambda: current.hostname in old.log(), "the different-code warning")
        assert "running different code" in old.log()
        report = json.loads(cli("status", "--json", url=rabbitmq_url).stdout)  # no COMMISSAIRE_*
        [row] = [q for q in report["queues"] if q["queue"] == queue["name"]]
        assert (row["service"], row["dead"], row["live"]) == ("my", 2, True)
        assert {w["hostname"] for w in row["workers"]} == {current.hostname, old.hostname}
        assert [c["queue"] for c in report["conflicts"]] == [queue["name"]]
        services = json.loads(cli("services", "--json", url=rabbitmq_url).stdout)
        assert sorted(s["class"] for s in services if queue["name"] in s["queues"]) == [
            "othermy:MyService",
            "workers.simple:MyService",
        ]
    with Connection(rabbitmq_url) as connection:
        connection.default_channel.queue_delete(dead)
