"""Passwords in broker URLs work and are never shown; JSON is the only content type."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu.exceptions import DecodeError

from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import load_settings
from commissaire_tasks.testing import RedisServer, WorkerProcess

PASSWORD = "pw-" + "s3cr3t-never-shown"


@pytest.fixture(scope="module")
def protected_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(password=PASSWORD, directory=tmp_path_factory.mktemp("auth-redis")) as server:
        yield server


@pytest.mark.reliability
def test_a_broker_with_a_password_works_and_the_password_is_never_printed(
    protected_redis: RedisServer, tmp_path: Path
) -> None:
    worker = WorkerProcess(
        broker_url=protected_redis.url,
        queues=["simple", "my"],
        log_dir=tmp_path,
        env={"COMMISSAIRE_SERVICES": "workers.simple"},
    )
    caller = Bus(create_app(load_settings().replace(broker_url=protected_redis.url)))
    with worker:
        assert caller.call("simple.add", 1, 2) == 3
        status = subprocess.run(
            [
                sys.executable,
                "-m",
                "commissaire_tasks.cli",
                "--bus-uri",
                protected_redis.url,
                "status",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**worker.env, "COMMISSAIRE_SERVICES": "workers.simple"},
        )
    assert "simple" in status.stdout
    assert PASSWORD not in status.stdout + status.stderr
    assert PASSWORD not in worker.log()
    # status names the broker it asked, with our redaction (Celery's banner uses its own "**")
    assert f"redis://:***@127.0.0.1:{protected_redis.port}/0" in status.stdout


@pytest.mark.reliability
def test_json_is_the_only_content_type_everywhere() -> None:
    conf = create_app().conf
    assert conf.task_serializer == conf.result_serializer == conf.event_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert list(conf.result_accept_content) == ["json"]


@pytest.mark.reliability
def test_a_pickled_result_in_the_backend_is_refused_never_unpickled(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    canary = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self) -> tuple[object, ...]:
            return (open, (str(canary), "w"))

    redis_server.client().set(
        "celery-task-meta-pickled", pickle.dumps({"status": "SUCCESS", "result": Exploit()})
    )
    with pytest.raises(DecodeError):
        create_app().AsyncResult("pickled").get(timeout=2)
    assert not canary.exists()
