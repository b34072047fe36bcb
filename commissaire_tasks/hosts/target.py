"""Where and how to reach a host over SSH: its address, port and login."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSHTarget", "split_address"]

#: Port used when the host's address names none.
DEFAULT_SSH_PORT = 22


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
    python: str = "/usr/bin/python3"

    @property
    def host(self) -> str:
        return split_address(self.address)[0]

    @property
    def port(self) -> int:
        return split_address(self.address)[1]

    @property
    def needs_become(self) -> bool:
        return self.remote_user != "root"
