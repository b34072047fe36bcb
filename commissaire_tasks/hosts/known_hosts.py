"""Host keys, trusted on first use and then enforced, shared by every worker.

The first successful connection to an address records the ``known_hosts`` lines
ssh wrote (``StrictHostKeyChecking=accept-new``); later runs, in any process,
start from those lines, so a host whose key changed is refused by ssh itself
("REMOTE HOST IDENTIFICATION HAS CHANGED") and the host fails with that reason.
An operator who replaced a host's key on purpose forgets the old one with
``investigator.forget_host_key ADDRESS``.
"""

from __future__ import annotations

from pathlib import Path

import redis

from .coordination import KEY_PREFIX

__all__ = ["KnownHosts"]

#: Redis hash: host address -> the known_hosts lines recorded at first contact.
KNOWN_HOSTS_KEY = f"{KEY_PREFIX}known_hosts"


class KnownHosts:
    """The recorded host keys, in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def write_for(self, address: str, path: Path) -> None:
        """Write the lines recorded for ``address`` (none yet: an empty file) to ``path``."""
        lines = self.client.hget(KNOWN_HOSTS_KEY, address) or ""
        path.write_text(lines if isinstance(lines, str) else lines.decode())

    def record_from(self, address: str, path: Path) -> None:
        """Keep what ssh learned at first contact; a key recorded before is never replaced."""
        try:
            lines = path.read_text()
        except FileNotFoundError:
            return
        if lines.strip():
            self.client.hsetnx(KNOWN_HOSTS_KEY, address, lines)

    def forget(self, address: str) -> bool:
        """Drop the recorded key, so the next contact trusts whatever key it finds."""
        return bool(self.client.hdel(KNOWN_HOSTS_KEY, address))
