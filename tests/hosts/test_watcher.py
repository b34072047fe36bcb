"""The watcher over real SSH: unreachable hosts marked and restored, deleted ones left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from commissaire_tasks import bus
from commissaire_tasks.errors import StorageLookupError
from commissaire_tasks.models import Host
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.testing import RedisServer, WorkerProcess

from .conftest import FAILURES_BEFORE_UNREACHABLE, ROOT_DIR, AddHost, wait_for_status
from .leaks import assert_key_nowhere
from .sshd import SSHServer

pytestmark = pytest.mark.usefixtures("host_workers")


def test_failed_checks_in_a_row_make_a_host_unreachable_and_its_status_returns_when_it_answers(
    add_host: AddHost,
    address: str,
    storage: StorageClient,
    sshd: SSHServer,
    key_dir: Path,
    redis_server: RedisServer,
    host_workers: dict[str, WorkerProcess],
) -> None:
    add_host(address)
    before, _ = wait_for_status(storage, address, ("disassociated", "failed"))
    assert before.status == "disassociated", before.reason
    storage.save(Host.new(**{**before.to_dict(), "status": "active"}))  # as registration does

    statuses = [check_while_down(sshd, address)]
    statuses.append(check(address))  # it answers: the failure count starts again
    answered_once = storage.get_host(address)
    statuses += [check_while_down(sshd, address), check_while_down(sshd, address)]
    down = storage.get_host(address)
    statuses.append(check(address))
    after = storage.get_host(address)

    assert FAILURES_BEFORE_UNREACHABLE == 2
    assert statuses == ["active", "active", "active", "unreachable", "active"]
    assert down.reason["step"] == "check: check the host answers"
    assert "Connection refused" in down.reason["output"]
    assert down.last_check == answered_once.last_check > before.last_check  # when it answered
    assert after.status == "active" and after.reason == {}
    assert after.last_check > answered_once.last_check
    assert_key_nowhere(sshd.client_key, key_dir, redis_server, host_workers, after.to_dict())


def check(address: str) -> str:
    """Check the host now; its status after the check."""
    result = bus.call("watcher.check", address)
    assert result["checked"], result
    return str(result["status"])


def check_while_down(sshd: SSHServer, address: str) -> str:
    """Check the host while its sshd is stopped."""
    sshd.stop()
    try:
        return check(address)
    finally:
        sshd.start()


def test_a_round_checks_watched_hosts_only_and_a_deleted_host_is_not_checked_or_recreated(
    add_host: AddHost, address: str, storage: StorageClient
) -> None:
    add_host(address)
    wait_for_status(storage, address, ("disassociated", "failed"))

    assert address in bus.call("watcher.check_all")
    storage.delete(Host.new(address=address))

    assert address not in bus.call("watcher.check_all")
    assert bus.call("watcher.check", address) == {
        "address": address,
        "checked": False,
        "why": "deleted",
    }
    with pytest.raises(StorageLookupError):
        storage.get_host(address)


def beat(config: Path, redis_server: RedisServer, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.watcher", "beat", "-l", "INFO"],
            cwd=ROOT_DIR,
            env={
                **os.environ,
                "COMMISSAIRE_BROKER_URL": redis_server.url,
                "COMMISSAIRE_CONFIG_FILE": str(config),
            },
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_the_beat_checks_hosts_every_interval_a_deleted_one_no_more_and_a_second_beat_refuses(
    add_host: AddHost,
    address: str,
    storage: StorageClient,
    hosts_config: Path,
    redis_server: RedisServer,
    host_workers: dict[str, WorkerProcess],
    tmp_path: Path,
) -> None:
    add_host(address)
    first, _ = wait_for_status(storage, address, ("disassociated", "failed"))
    running = beat(hosts_config, redis_server, tmp_path / "beat.log")
    try:
        deadline = time.monotonic() + 30
        while storage.get_host(address).last_check == first.last_check:
            assert time.monotonic() < deadline, (tmp_path / "beat.log").read_text()
            time.sleep(0.2)
        second = beat(hosts_config, redis_server, tmp_path / "beat2.log")
        assert second.wait(30) != 0
        refusal = (tmp_path / "beat2.log").read_text()
        assert "another watcher beat is running" in refusal

        storage.delete(Host.new(address=address))
        log = host_workers["services"].log
        checks_before, rounds = log().count(f"check {address}:"), log().count("watch round:")
        deadline = time.monotonic() + 30
        while log().count("watch round:") < rounds + 3:  # three rounds after the delete
            assert time.monotonic() < deadline, log()[-3000:]
            time.sleep(0.2)
        checks_after = log().count(f"check {address}:")
    finally:
        running.terminate()
        running.wait(30)

    assert checks_after == checks_before
    with pytest.raises(StorageLookupError):
        storage.get_host(address)
