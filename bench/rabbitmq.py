"""A throwaway RabbitMQ virtual host for the RabbitMQ-broker row.

The bench never touches an existing vhost: it creates ``ct-bench-<random>``,
grants ``guest`` on it and deletes it (with everything in it) afterwards. When
RabbitMQ is not there, :meth:`RabbitVhost.create` raises
:class:`RabbitUnavailable` with the reason, and the row is skipped with it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import uuid

#: Where the local RabbitMQ listens.
AMQP_HOST = "127.0.0.1"
AMQP_PORT = 5672
#: Seconds one ``rabbitmqctl`` command may take (it starts an Erlang VM).
RABBITMQCTL_TIMEOUT_S = 60.0


class RabbitUnavailable(Exception):
    """Raised when the local RabbitMQ cannot be reached or managed; the message says why."""


class RabbitVhost:
    """``amqp://guest:guest@127.0.0.1:5672/<vhost>`` of a vhost of our own."""

    def __init__(self, host: str = AMQP_HOST, port: int = AMQP_PORT) -> None:
        self.host = host
        self.port = port
        self.name = f"ct-bench-{uuid.uuid4().hex[:8]}"
        self.created = False

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}/{self.name}"

    def create(self) -> str:
        """Create the vhost and return its URL, or raise RabbitUnavailable."""
        if shutil.which("rabbitmqctl") is None:
            raise RabbitUnavailable("rabbitmqctl is not on PATH")
        try:
            with socket.create_connection((self.host, self.port), timeout=2):
                pass
        except OSError as exc:
            raise RabbitUnavailable(f"nothing listens on {self.host}:{self.port} ({exc})") from exc
        self._ctl("add_vhost", self.name)
        self.created = True
        self._ctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        return self.url

    def delete(self) -> None:
        """Delete the vhost (its queues and messages go with it); never raises."""
        if not self.created:
            return
        try:
            self._ctl("delete_vhost", self.name)
        except RabbitUnavailable:
            pass
        self.created = False

    def _ctl(self, *args: str) -> None:
        try:
            done = subprocess.run(
                ["rabbitmqctl", "-q", *args],
                capture_output=True,
                text=True,
                timeout=RABBITMQCTL_TIMEOUT_S,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RabbitUnavailable(f"rabbitmqctl {args[0]} failed: {exc}") from exc
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise RabbitUnavailable(
                f"rabbitmqctl {args[0]} exited {done.returncode}: {detail[-1] if detail else ''}"
            )
