"""Private servers for tests: a Redis on a free port that a test may stop and restart."""

from __future__ import annotations

import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import redis

from ..ops.embedded import redis_binary
from ..ops.redis_server import redis_command, wait_for_redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` child process on its own port and data directory.

    Args:
        port: TCP port (a free one when omitted); kept across :meth:`restart`.
        password: Starts the server with ``requirepass``.
        appendonly: Keep data in an append-only file, so it survives a restart.
        directory: Where data and the log go (a temporary directory when omitted).
    """

    def __init__(
        self,
        port: int | None = None,
        password: str | None = None,
        appendonly: bool = False,
        directory: str | Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.password = password
        self.appendonly = appendonly
        self._tmp = None if directory else tempfile.TemporaryDirectory(prefix="ct-redis-")
        self.directory = Path(directory or self._tmp.name)  # type: ignore[union-attr]
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    def start(self, timeout_s: float = 10.0) -> RedisServer:
        args = redis_command(
            redis_binary(),
            self.port,
            self.directory,
            appendonly=self.appendonly,
            appendfsync="always",
            password=self.password,
        )
        self.process = subprocess.Popen(args)
        process = self.process
        if wait_for_redis(self.port, timeout_s, lambda: process.poll() is not None, self.password):
            return self
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} did not start; see {self.directory}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s) and wait for it."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
