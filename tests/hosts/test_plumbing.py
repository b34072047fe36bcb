"""The host services' plumbing without SSH: key folders, addresses, command sets, `up`'s beat."""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path

import pytest

from commissaire_tasks.errors import ConfigurationError
from commissaire_tasks.hosts import keys
from commissaire_tasks.hosts.commands import command_set_for, load_command_sets
from commissaire_tasks.hosts.keys import (
    BadKeyError,
    key_base,
    private_folder,
    remove_leftovers,
    write_key,
)
from commissaire_tasks.hosts.runner import _host_vars
from commissaire_tasks.hosts.target import SSHTarget, split_address
from commissaire_tasks.ops.up import beat_commands
from commissaire_tasks.runtime import startup
from commissaire_tasks.runtime.loader import load_service_modules
from commissaire_tasks.runtime.registry import registry

from .conftest import leftover_folder


def test_a_key_is_written_mode_0600_in_a_0700_folder_that_is_gone_after_a_failure() -> None:
    key = base64.b64encode(b"-----BEGIN KEY-----\nabc\n-----END KEY-----").decode()

    with pytest.raises(RuntimeError), private_folder() as folder:
        path = write_key(folder, key)
        modes = (folder.stat().st_mode & 0o777, path.stat().st_mode & 0o777)
        raise RuntimeError("the run failed")

    assert modes == (0o700, 0o600)
    assert not folder.exists()


def test_folders_left_by_a_dead_process_are_removed_by_the_next_run(tmp_path: Path) -> None:
    left = leftover_folder(tmp_path)
    ours = tmp_path / f"run-{os.getpid()}-y"
    ours.mkdir()

    removed = remove_leftovers(tmp_path)

    assert removed == [left] and not left.exists() and ours.exists()


@pytest.mark.parametrize("service", ["investigator", "watcher", "clusterexec"])
def test_a_starting_worker_of_a_service_that_runs_ssh_removes_folders_left_by_dead_processes(
    service: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_service_modules([f"workers.{service}"])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    left = leftover_folder(key_base())

    assert keys._remove_at_start in startup._hooks  # what a starting worker runs
    keys._remove_at_start(None, registry.get(service), service)

    assert not left.exists()


def test_a_remote_user_other_than_root_logs_in_as_itself_and_becomes_root_with_sudo() -> None:
    key, known = Path("/run/k"), Path("/run/known")

    admin = _host_vars(SSHTarget("10.0.0.5:2222", remote_user="admin"), key, known)
    root = _host_vars(SSHTarget("10.0.0.5:2222"), key, known)

    assert SSHTarget("h", "admin").needs_become and not SSHTarget("h", "root").needs_become
    assert admin["ansible_user"] == "admin"
    assert (admin["ansible_become"], admin["ansible_become_user"]) == (True, "root")
    assert admin["ansible_become_method"] == "sudo"
    assert root["ansible_user"] == "root"
    assert not any(name.startswith("ansible_become") for name in root)
    assert (admin["ansible_host"], admin["ansible_port"]) == ("10.0.0.5", 2222)


def test_a_key_that_is_not_base64_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(BadKeyError, match="not valid base64"):
        write_key(tmp_path, "-----BEGIN OPENSSH PRIVATE KEY----- not base64")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("10.0.0.5", ("10.0.0.5", 22)),
        ("10.0.0.5:2222", ("10.0.0.5", 2222)),
        ("[::1]:2200", ("::1", 2200)),
        ("fe80::1", ("fe80::1", 22)),
        ("node.example", ("node.example", 22)),
    ],
)
def test_an_address_may_carry_its_ssh_port(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


def test_the_packaged_command_sets_cover_fedora_rhel_centos_and_debian() -> None:
    sets = load_command_sets()

    assert {"fedora", "rhel", "redhat", "centos", "debian"} <= set(sets)
    for command_set in {id(s): s for s in sets.values()}.values():
        for task in command_set.tasks():  # templates resolve, every step is one task
            assert task["name"]
    with pytest.raises(LookupError, match="no bootstrap command set for OS 'plan9'"):
        command_set_for("plan9", sets)


def test_a_command_set_with_a_bad_step_fails_when_loaded_naming_the_step(tmp_path: Path) -> None:
    steps = [{"name": "two actions", "packages": ["a"], "command": "true"}]
    (tmp_path / "x.json").write_text(json.dumps({"os": ["x"], "steps": steps}))

    with pytest.raises(ConfigurationError, match="step 1 \\(two actions\\): needs exactly one"):
        load_command_sets(tmp_path)


def test_up_starts_a_beat_for_the_watcher_module_only() -> None:
    modules = load_service_modules(["workers.simple", "workers.watcher"])

    (command,) = beat_commands(modules, "INFO")

    assert command.args[1:6] == ("-m", "celery", "-A", "workers.watcher", "beat")
