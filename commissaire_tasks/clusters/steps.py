"""One host's part of a cluster operation: run its playbook over SSH, say how it went.

Upgrade runs ``rpm-ostree upgrade`` on an rpm-ostree host (``ostree_marker``,
default ``/run/ostree-booted``, exists on it) and otherwise its OS command set's
``upgrade`` command. Deploy runs ``rpm-ostree deploy <version>`` and fails on a
host that is not rpm-ostree based. Restart starts the command set's ``restart``
command without waiting for it, then waits (bounded) for the host's SSH port to
stop answering and to answer again. Credentials come from HostCreds through the
storage client; the key only ever reaches the run's private folder.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import redis

from commissaire_tasks.hosts.commands import UnknownOSError, command_set_for, load_command_sets
from commissaire_tasks.hosts.keys import BadKeyError
from commissaire_tasks.hosts.known_hosts import KnownHosts
from commissaire_tasks.hosts.records import HostRecords
from commissaire_tasks.hosts.runner import run_playbook
from commissaire_tasks.hosts.target import SSHTarget, ssh_timeout_s, target_for

from .operations import Operation

__all__ = ["HostStep", "ssh_answers", "wait_for_restart"]

#: The file whose presence makes a host rpm-ostree based (config ``ostree_marker``).
DEFAULT_OSTREE_MARKER = "/run/ostree-booted"
#: The rpm-ostree command (config ``rpm_ostree``).
DEFAULT_RPM_OSTREE = "rpm-ostree"
#: Seconds a restarted host gets to stop answering on SSH (config ``restart_down_timeout_s``).
DEFAULT_RESTART_DOWN_TIMEOUT_S = 120.0
#: Seconds a restarted host gets to answer on SSH again (config ``restart_timeout_s``).
DEFAULT_RESTART_TIMEOUT_S = 600.0
#: Seconds one host's playbook may run (config ``host_timeout_s``).
DEFAULT_HOST_TIMEOUT_S = 3600.0
#: Seconds between two looks at a restarting host's SSH port.
POLL_INTERVAL_S = 0.5

Progress = Callable[[str], None]


def ssh_answers(host: str, port: int, timeout_s: float) -> bool:
    """True when ``host:port`` accepts a connection and sends an SSH banner."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.settimeout(timeout_s)
            return conn.recv(4).startswith(b"SSH-")
    except OSError:
        return False


def wait_for_restart(
    target: SSHTarget, down_timeout_s: float, up_timeout_s: float, probe_timeout_s: float
) -> str | None:
    """Wait until ``target``'s SSH port went down and answers again; a reason if it never did."""
    deadline = time.monotonic() + down_timeout_s
    while ssh_answers(target.host, target.port, probe_timeout_s):
        if time.monotonic() > deadline:
            logging.getLogger(__name__).warning(
                "restart %s: SSH never stopped answering within %.0f s; assuming it restarted",
                target.address,
                down_timeout_s,
            )
            break
        time.sleep(POLL_INTERVAL_S)
    deadline = time.monotonic() + up_timeout_s
    while not ssh_answers(target.host, target.port, probe_timeout_s):
        if time.monotonic() > deadline:
            return f"restart: {target.address} did not answer on SSH within {up_timeout_s:g} s"
        time.sleep(POLL_INTERVAL_S)
    return None


@dataclass
class HostStep:
    """What a host step needs; :meth:`run` works on one host."""

    records: HostRecords
    client: redis.Redis
    config: Mapping[str, Any]

    def run(self, operation: Operation, address: str, progress: Progress) -> str | None:
        """Run ``operation`` on ``address``; None when it succeeded, else the reason."""
        host = self.records.host(address)
        if host is None:
            return f"no Host {address} is stored"
        creds = self.records.creds(address)
        if creds is None:
            return f"no HostCreds stored for {address}"
        target = target_for(self.config, address, creds.remote_user)
        variables = self._variables(operation, address, host.os)
        if operation.kind == "restart" and not variables["commissaire_restart_command"]:
            return f"no restart command for OS {host.os!r} (no command set names one)"
        progress(operation.kind)
        reason = self._playbook(operation.kind, target, creds.ssh_priv_key, variables)
        if reason is None and operation.kind == "restart":
            progress("wait for SSH")
            reason = wait_for_restart(
                target,
                float(self.config.get("restart_down_timeout_s", DEFAULT_RESTART_DOWN_TIMEOUT_S)),
                float(self.config.get("restart_timeout_s", DEFAULT_RESTART_TIMEOUT_S)),
                ssh_timeout_s(self.config),
            )
        return reason

    def _variables(self, operation: Operation, address: str, os_name: str) -> dict[str, Any]:
        commands = {"upgrade": "", "restart": ""}
        try:
            command_set = command_set_for(os_name, self._command_sets())
            commands = {"upgrade": command_set.upgrade, "restart": command_set.restart}
        except UnknownOSError:
            pass  # an rpm-ostree host needs none for upgrade; the playbook says so otherwise
        return {
            "commissaire_address": address,
            "commissaire_os": os_name,
            "commissaire_version": operation.version,
            "commissaire_ostree_marker": self.config.get("ostree_marker", DEFAULT_OSTREE_MARKER),
            "commissaire_rpm_ostree": self.config.get("rpm_ostree", DEFAULT_RPM_OSTREE),
            "commissaire_upgrade_command": commands["upgrade"],
            "commissaire_restart_command": commands["restart"],
        }

    def _command_sets(self) -> Mapping[str, Any]:
        return load_command_sets(self.config.get("command_sets_dir"))

    def _playbook(
        self, kind: str, target: SSHTarget, key: str, variables: Mapping[str, Any]
    ) -> str | None:
        try:
            result = run_playbook(
                playbook_file(kind),
                target,
                key,
                KnownHosts(self.client),
                variables,
                ssh_timeout_s(self.config),
                float(self.config.get("host_timeout_s", DEFAULT_HOST_TIMEOUT_S)),
            )
        except BadKeyError as exc:
            return f"read credentials: {exc}"
        if result.ok:
            return None
        status = "" if result.exit_status is None else f" (exit status {result.exit_status})"
        return f"{result.step or kind}{status}: {result.output.strip()}"


def playbook_file(kind: str) -> Path:
    """The packaged playbook of ``kind`` (``commissaire_tasks/clusters/playbooks/<kind>.yml``)."""
    return Path(str(resources.files("commissaire_tasks.clusters"))) / "playbooks" / f"{kind}.yml"
