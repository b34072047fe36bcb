"""The investigator over real SSH: a created host is investigated, bootstrapped or failed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kombu.entity import Exchange, Queue

from commissaire_tasks import bus
from commissaire_tasks.bus import Bus
from commissaire_tasks.errors import InvestigationInProgress
from commissaire_tasks.hosts.known_hosts import KNOWN_HOSTS_KEY
from commissaire_tasks.models import Host
from commissaire_tasks.ops.progress import progress_of
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.testing import RedisServer, WorkerProcess, free_port

from .conftest import (
    FLANNEL_PREFIX,
    READY_TIMEOUT_S,
    REGISTRY_MIRROR,
    AddHost,
    leftover_folder,
    wait_for_status,
)
from .leaks import assert_key_nowhere
from .sshd import SSHServer, generate_key, key_b64

pytestmark = pytest.mark.usefixtures("host_workers")
DONE = ("disassociated", "failed")


def machine_facts() -> dict[str, object]:
    """What this machine is, read without Ansible."""
    os_release = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if line
    )
    meminfo = {
        line.split(":")[0]: line.split()[1]
        for line in Path("/proc/meminfo").read_text().splitlines()
    }
    return {
        "os": os_release["ID"].strip('"'),
        "cpus": os.cpu_count(),
        "memory": int(meminfo["MemTotal"]) // 1024,
    }


def test_a_created_host_is_investigated_then_bootstrapped_with_the_real_machines_facts(
    add_host: AddHost,
    address: str,
    storage: StorageClient,
    out_dir: Path,
    sshd: SSHServer,
    key_dir: Path,
    tmp_path: Path,
    redis_server: RedisServer,
    host_workers: dict[str, WorkerProcess],
) -> None:
    add_host(address)

    host, seen = wait_for_status(storage, address, DONE)

    assert host.status == "disassociated", host.reason
    assert seen[:3] == ["", "investigating", "bootstrapping"] or seen[:2] == [
        "investigating",
        "bootstrapping",
    ], seen
    assert host.reason == {}
    facts = machine_facts()
    assert (host.os, host.cpus, host.memory) == (facts["os"], facts["cpus"], facts["memory"])
    assert host.space >= shutil.disk_usage("/").total
    assert host.last_check
    written = out_dir / address
    flanneld = (written / "flanneld").read_text()
    assert f'FLANNEL_ETCD_KEY="{FLANNEL_PREFIX}"' in flanneld  # default network: flannel_etcd
    assert f"--registry-mirror={REGISTRY_MIRROR}" in (written / "docker").read_text()
    assert (written / "services").read_text().split("\n")[:2] == [
        "enabled flanneld-test",
        "enabled docker-test",
    ]
    assert recorded_host_key(redis_server, address, tmp_path) == host_key(sshd)
    assert_key_nowhere(sshd.client_key, key_dir, redis_server, host_workers, host.to_dict())


def recorded_host_key(redis_server: RedisServer, address: str, folder: Path) -> str:
    """The host key recorded for ``address`` at first contact, as ``type base64``.

    ssh may hash the host names it records, so ``ssh-keygen -F`` looks the address up.
    """
    lines = redis_server.client().hget(KNOWN_HOSTS_KEY, address) or b""
    known = folder / "known_hosts"
    known.write_bytes(lines if isinstance(lines, bytes) else lines.encode())
    host, port = address.split(":")
    found = subprocess.run(
        ["ssh-keygen", "-F", f"[{host}]:{port}", "-f", str(known)], capture_output=True, text=True
    )
    keys = [line.split()[1:3] for line in found.stdout.splitlines() if not line.startswith("#")]
    return " ".join(keys[0]) if len(keys) == 1 else f"{len(keys)} keys: {found.stdout}"


def host_key(sshd: SSHServer) -> str:
    """The sshd's host key, as ``type base64``."""
    return " ".join(Path(f"{sshd.host_key}.pub").read_text().split()[:2])


def test_a_failing_step_fails_the_host_with_its_name_exit_status_and_output_then_a_rerun_fixes_it(
    add_host: AddHost, address: str, storage: StorageClient, out_dir: Path
) -> None:
    marker = out_dir / f"{address}.fail"
    marker.touch()

    add_host(address)
    host, _ = wait_for_status(storage, address, DONE)

    assert host.status == "failed"
    assert host.reason["step"] == "bootstrap: wait or fail when asked"
    assert host.reason["exit_status"] == 3
    assert "asked to fail" in host.reason["output"]
    assert host.os  # the facts were saved before bootstrap
    marker.unlink()
    again, reported = investigate_watching_progress(address)
    assert (again["status"], again["reason"]) == ("disassociated", {})
    assert reported.index("gather facts") < reported.index("bootstrap")


def investigate_watching_progress(address: str) -> tuple[dict[str, Any], list[str]]:
    """Call investigator.investigate; its result and each step it reported, in order."""
    result = bus.send("investigator.investigate", address)
    reported: list[str] = []
    deadline = time.monotonic() + 90
    while not result.ready() and time.monotonic() < deadline:
        progress = progress_of(result)
        if progress and (not reported or reported[-1] != progress["info"]):
            reported.append(progress["info"])
        time.sleep(0.05)
    return result.get(timeout=5), reported


def test_a_wrong_key_fails_the_host_at_gather_facts_and_leaves_no_key_behind(
    add_host: AddHost,
    address: str,
    storage: StorageClient,
    tmp_path: Path,
    key_dir: Path,
    redis_server: RedisServer,
    host_workers: dict[str, WorkerProcess],
) -> None:
    wrong = generate_key(tmp_path / "wrong")

    add_host(address, key=key_b64(wrong))
    host, _ = wait_for_status(storage, address, DONE)

    assert host.status == "failed"
    assert host.reason["step"] == "gather facts"
    assert "Permission denied" in host.reason["output"]
    assert_key_nowhere(wrong, key_dir, redis_server, host_workers, host.to_dict())


def test_a_host_that_refuses_connections_fails_with_connection_refused(
    add_host: AddHost,
    storage: StorageClient,
    sshd: SSHServer,
    key_dir: Path,
    redis_server: RedisServer,
    host_workers: dict[str, WorkerProcess],
) -> None:
    address = f"127.0.0.1:{free_port()}"

    add_host(address)
    host, _ = wait_for_status(storage, address, DONE)

    assert host.status == "failed"
    assert host.reason["step"] == "gather facts"
    assert "Connection refused" in host.reason["output"]
    assert_key_nowhere(sshd.client_key, key_dir, redis_server, host_workers, host.to_dict())


def test_an_os_without_a_command_set_fails_at_once_naming_the_os(
    add_host: AddHost,
    address: str,
    storage: StorageClient,
    command_sets_dir: Path,
    sshd: SSHServer,
    key_dir: Path,
    redis_server: RedisServer,
    host_workers: dict[str, WorkerProcess],
) -> None:
    debian = command_sets_dir / "debian.json"
    aside = command_sets_dir / "debian.json.aside"
    debian.rename(aside)
    try:
        add_host(address)
        host, _ = wait_for_status(storage, address, DONE)
    finally:
        aside.rename(debian)

    assert host.status == "failed"
    assert host.reason["step"] == "choose command set"
    assert "no bootstrap command set for OS 'debian'" in host.reason["output"]
    assert_key_nowhere(sshd.client_key, key_dir, redis_server, host_workers, host.to_dict())


def test_a_changed_host_key_fails_the_host_until_the_old_key_is_forgotten(
    add_host: AddHost,
    address: str,
    storage: StorageClient,
    tmp_path: Path,
    sshd: SSHServer,
    key_dir: Path,
    redis_server: RedisServer,
    host_workers: dict[str, WorkerProcess],
) -> None:
    other = generate_key(tmp_path / "other_host_key")
    host_part, port = address.split(":")
    line = f"[{host_part}]:{port} {Path(f'{other}.pub').read_text()}"
    redis_server.client().hset(KNOWN_HOSTS_KEY, address, line)

    add_host(address)
    host, _ = wait_for_status(storage, address, DONE)

    assert host.status == "failed"
    assert "changed since first contact" in host.reason["output"]
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in host.reason["output"]
    assert_key_nowhere(sshd.client_key, key_dir, redis_server, host_workers, host.to_dict())
    assert bus.call("investigator.forget_host_key", address) is True
    again = bus.call("investigator.investigate", address, timeout=90)
    assert again["status"] == "disassociated"
    assert recorded_host_key(redis_server, address, tmp_path) == host_key(sshd)  # the new one


def test_while_a_host_is_investigated_a_call_is_refused_and_a_created_notification_coalesced(
    add_host: AddHost,
    address: str,
    storage: StorageClient,
    out_dir: Path,
    host_workers: dict[str, WorkerProcess],
) -> None:
    services = host_workers["services"]
    hold = out_dir / f"{address}.hold"  # the bootstrap waits while it exists
    hold.touch()
    try:
        host = add_host(address)
        wait_for_status(storage, address, ("bootstrapping",), timeout_s=60)
        with pytest.raises(InvestigationInProgress, match="already being investigated") as refused:
            bus.call("investigator.investigate", address)
        send_created_notification(host)
        wait_for_log(services, f"investigate {address}: already running; coalesced")
    finally:
        hold.unlink()
    done, _ = wait_for_status(storage, address, DONE)

    assert (refused.value.code, refused.value.data["address"]) == (-32051, address)
    assert done.status == "disassociated", done.reason
    assert services.log().count(f"investigate {address}: gather facts") == 1


def send_created_notification(host: Host) -> None:
    """The investigator's created-Host notification again, as storage sends it."""
    body = {"event": "created", "class": "Host", "model": host.to_dict_safe(), "revision": 1}
    Bus().app.send_task(
        "investigator.notify.storage.Host.created",
        kwargs=body,
        queue=Queue("investigator", Exchange(""), routing_key="investigator"),
        exchange="",
        routing_key="investigator",
        ignore_result=True,
    )


def wait_for_log(worker: WorkerProcess, line: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while line not in worker.log():
        assert time.monotonic() < deadline, f"no {line!r} in the worker's log"
        time.sleep(0.1)


def test_a_host_created_while_the_investigator_is_down_is_investigated_when_it_starts(
    add_host: AddHost,
    address: str,
    storage: StorageClient,
    key_dir: Path,
    host_workers: dict[str, WorkerProcess],
) -> None:
    services = host_workers["services"]
    services.stop()
    left = leftover_folder(key_dir)  # a key of a process that died mid-run
    try:
        add_host(address)
        assert storage.get_host(address).status == ""
    finally:
        services.start(wait=False).wait_ready(READY_TIMEOUT_S)

    host, _ = wait_for_status(storage, address, DONE)

    assert host.status == "disassociated", host.reason
    assert f"Removed {left.name} at start" in services.log()  # before it consumed
    assert not left.exists()


def test_a_process_killed_mid_investigation_leaves_no_key_and_the_host_is_investigated_again(
    add_host: AddHost,
    address: str,
    storage: StorageClient,
    sshd: SSHServer,
    key_dir: Path,
    redis_server: RedisServer,
    host_workers: dict[str, WorkerProcess],
) -> None:
    add_host(address)
    deadline = time.monotonic() + 30
    while not (folders := list(key_dir.glob("run-*"))):
        assert time.monotonic() < deadline, "no investigation started"
        time.sleep(0.02)
    (folder,) = folders
    os.kill(int(folder.name.split("-")[1]), signal.SIGKILL)  # the pool process running it

    host, _ = wait_for_status(storage, address, DONE)

    assert host.status == "disassociated", host.reason  # the requeued call took the dead lock
    assert not folder.exists()  # removed by the next run, as a leftover of a dead process
    assert_key_nowhere(sshd.client_key, key_dir, redis_server, host_workers, host.to_dict())
