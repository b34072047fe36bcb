"""Run one of the packaged playbooks on one host with ansible-runner, and say how it went.

Everything a run writes (key, inventory, known hosts, Ansible's artifacts and
temporary files) stays in a private run folder (:mod:`.keys`) that is removed when
the run ends; ansible-runner prints nothing to the worker's log (``quiet``). What
comes back is a :class:`PlaybookResult`: the facts a task returned, or the step that
failed with its exit status and the end of its output.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .keys import private_folder, write_key
from .known_hosts import KnownHosts
from .target import SSHTarget

__all__ = ["PlaybookResult", "playbook_path", "run_playbook"]

#: Characters of a failed step's output kept in its reason.
OUTPUT_TAIL_CHARS = 1500
#: ssh messages that mean the host's key is not the one recorded at first contact.
KEY_CHANGED_MARKERS = ("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed")


@dataclass(frozen=True)
class PlaybookResult:
    """How a run went.

    Attributes:
        ok: Every task succeeded.
        step: The name of the task that failed ('' when ok).
        exit_status: The failed task's exit status (None when it has none, e.g. unreachable).
        output: The end of the failed task's output and messages.
        unreachable: The host could not be reached or logged in to.
        host_key_changed: ssh refused the host because its key changed.
        facts: ``ansible_facts`` returned by the tasks.
    """

    ok: bool
    step: str = ""
    exit_status: int | None = None
    output: str = ""
    unreachable: bool = False
    host_key_changed: bool = False
    facts: dict[str, Any] = field(default_factory=dict)


def playbook_path(name: str) -> Path:
    """A playbook shipped in the package (``commissaire_tasks/hosts/playbooks/<name>``)."""
    return Path(str(resources.files(__package__ or "commissaire_tasks.hosts"))) / "playbooks" / name


def run_playbook(
    playbook: str | Path | list[dict[str, Any]],
    target: SSHTarget,
    ssh_priv_key_b64: str,
    known_hosts: KnownHosts,
    extravars: Mapping[str, Any] | None = None,
    timeout_s: float = 10.0,
    run_timeout_s: float = 900.0,
) -> PlaybookResult:
    """Run ``playbook`` on ``target`` logged in with the key; never raises for a failed run.

    ``playbook`` names a packaged playbook, is the path of a playbook file, or is a
    playbook's plays (written into the run folder as JSON, which YAML reads).
    """
    import ansible_runner

    with private_folder() as folder:
        key = write_key(folder, ssh_priv_key_b64)
        if isinstance(playbook, Path):
            path = playbook
        elif isinstance(playbook, str):
            path = playbook_path(playbook)
        else:
            path = folder / "playbook.json"
            path.write_text(json.dumps(playbook))
        known = folder / "known_hosts"
        known_hosts.write_for(target.address, known)
        runner = ansible_runner.run(
            private_data_dir=str(folder),
            playbook=str(path),
            inventory={"all": {"hosts": {target.address: _host_vars(target, key, known)}}},
            extravars=dict(extravars or {}),
            envvars=_environment(folder, timeout_s),
            quiet=True,
            timeout=int(run_timeout_s),
            ident="run",
        )
        result = _result(list(runner.events), runner.rc, runner.status)
        if result.ok or not result.unreachable:
            known_hosts.record_from(target.address, known)
        return result


def _host_vars(target: SSHTarget, key: Path, known: Path) -> dict[str, Any]:
    ssh_options = [
        "-o StrictHostKeyChecking=accept-new",  # trust on first use; a changed key fails
        f"-o UserKnownHostsFile={known}",
        "-o GlobalKnownHostsFile=/dev/null",
        "-o IdentitiesOnly=yes",
        "-o BatchMode=yes",
    ]
    host_vars: dict[str, Any] = {
        "ansible_host": target.host,
        "ansible_port": target.port,
        "ansible_user": target.remote_user,
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": " ".join(ssh_options),
        "ansible_python_interpreter": target.python,
    }
    if target.needs_become:
        host_vars.update(ansible_become=True, ansible_become_user="root")
        host_vars["ansible_become_method"] = "sudo"
    return host_vars


def _environment(folder: Path, timeout_s: float) -> dict[str, str]:
    scripts = str(Path(sys.executable).parent)  # ansible-playbook sits beside our Python
    return {
        "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_HOST_KEY_CHECKING": "True",  # ansible-runner turns it off by default
        "ANSIBLE_SSH_ARGS": "-C -o ControlMaster=no",  # no master left holding a session
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_TIMEOUT": str(int(timeout_s)),
        "ANSIBLE_LOCAL_TEMP": str(folder / "tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CONFIG": str(folder / "ansible.cfg"),  # no operator ansible.cfg changes this
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
    }


def _result(events: list[dict[str, Any]], rc: int | None, status: str) -> PlaybookResult:
    facts: dict[str, Any] = {}
    for event in events:
        kind = event.get("event", "")
        data = event.get("event_data", {})
        res = data.get("res") or {}
        if kind == "runner_on_ok":
            facts.update(res.get("ansible_facts") or {})
        elif kind in ("runner_on_failed", "runner_on_unreachable"):
            if kind == "runner_on_failed" and data.get("ignore_errors"):
                continue
            output = _output_of(res)
            return PlaybookResult(
                ok=False,
                step=str(data.get("task") or "").strip(),
                exit_status=res.get("rc") if isinstance(res.get("rc"), int) else None,
                output=output,
                unreachable=kind == "runner_on_unreachable",
                host_key_changed=any(marker in output for marker in KEY_CHANGED_MARKERS),
                facts=facts,
            )
    if status == "successful" and rc == 0:
        return PlaybookResult(ok=True, facts=facts)
    tail = _tail("\n".join(str(e.get("stdout", "")) for e in events if e.get("stdout")))
    return PlaybookResult(ok=False, step="ansible-playbook", exit_status=rc, output=tail)


def _output_of(res: Mapping[str, Any]) -> str:
    parts = [str(res.get(name) or "") for name in ("msg", "stderr", "stdout", "module_stderr")]
    return _tail("\n".join(part for part in parts if part.strip()))


def _tail(text: str) -> str:
    return text[-OUTPUT_TAIL_CHARS:]
