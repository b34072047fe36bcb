"""The bench's end of a caller process: one JSON request per line, one reply per line."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .processes import Spawned


class PeerError(RuntimeError):
    """Raised when a caller process fails, answers an error or does not answer in time."""


class PeerClient:
    """A caller process running :func:`bench.peers.driver.serve`.

    Args:
        name: The contender's key (for messages).
        command: How to start it.
        log: Its stderr.
        env: Its environment.
        cwd: Its working directory.
        timeout_s: Seconds any one request may take (and the start).
    """

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log: Path,
        env: dict[str, str],
        cwd: Path,
        timeout_s: float,
    ) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.spawned = Spawned(command, log, env, cwd, pipe=True)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True, name=f"peer-{name}").start()
        self.pid = int(self._next()["pid"])

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send ``op`` with ``fields``; the reply, or PeerError."""
        stdin = self.spawned.process.stdin
        assert stdin is not None
        try:
            stdin.write((json.dumps({"op": op, **fields}) + "\n").encode())
            stdin.flush()
        except OSError as exc:
            raise PeerError(f"{self.name}: caller gone ({self.spawned.log_tail()})") from exc
        reply = self._next()
        if "error" in reply:
            raise PeerError(f"{self.name}: {op} failed: {reply['error']}")
        return reply

    def pids(self) -> list[int]:
        return self.spawned.pids()

    def close(self) -> None:
        stdin = self.spawned.process.stdin
        if stdin is not None and self.spawned.running():
            try:
                stdin.write(b'{"op": "quit"}\n')
                stdin.flush()
                self.spawned.process.wait(5)
            except Exception:  # noqa: BLE001 - stop() below ends it either way
                pass
        self.spawned.stop()

    def _next(self) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=self.timeout_s)
        except queue.Empty:
            raise PeerError(f"{self.name}: no answer in {self.timeout_s:.0f} s") from None
        if line is None:
            raise PeerError(f"{self.name}: caller exited ({self.spawned.log_tail()})")
        return dict(json.loads(line))

    def _read(self) -> None:
        stdout = self.spawned.process.stdout
        assert stdout is not None
        for raw in stdout:
            self._lines.put(raw.decode())
        self._lines.put(None)
