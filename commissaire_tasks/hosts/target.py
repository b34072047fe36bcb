"""Where and how to reach a host over SSH: its address, port and login."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["SSHTarget", "split_address", "ssh_timeout_s", "target_for"]

#: Port used when the host's address names none.
DEFAULT_SSH_PORT = 22
#: Seconds an SSH connection may take (config ``ssh_timeout_s``).
DEFAULT_SSH_TIMEOUT_S = 10.0
#: The target's interpreter (config ``python_interpreter``): Ansible's discovery is not trusted.
DEFAULT_PYTHON = "/usr/bin/python3"


def split_address(address: str) -> tuple[str, int]:
    """``"10.0.0.5"`` -> (10.0.0.5, 22); ``"10.0.0.5:2222"`` and ``"[::1]:2222"`` carry a port."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else DEFAULT_SSH_PORT
    if address.count(":") == 1:
        host, port = address.split(":")
        if port.isdigit():
            return host, int(port)
    return address, DEFAULT_SSH_PORT


@dataclass(frozen=True)
class SSHTarget:
    """One host to run a playbook on.

    Attributes:
        address: The Host's address (its storage key; may carry ``:port``).
        remote_user: The login from HostCreds; become/sudo is used unless it is root.
        python: The target's Python interpreter, told to Ansible instead of discovered.
    """

    address: str
    remote_user: str = "root"
    python: str = DEFAULT_PYTHON

    @property
    def host(self) -> str:
        return split_address(self.address)[0]

    @property
    def port(self) -> int:
        return split_address(self.address)[1]

    @property
    def needs_become(self) -> bool:
        return self.remote_user != "root"


def target_for(config: Mapping[str, Any], address: str, remote_user: str) -> SSHTarget:
    """The target a host service reaches ``address`` as, from its config and the login."""
    python = str(config.get("python_interpreter", DEFAULT_PYTHON))
    return SSHTarget(address, remote_user or "root", python)


def ssh_timeout_s(config: Mapping[str, Any]) -> float:
    """The SSH timeout a host service's config sets."""
    return float(config.get("ssh_timeout_s", DEFAULT_SSH_TIMEOUT_S))
