"""The one ``redis-server`` launcher: its command line and the wait until it answers.

``commissaire-tasks up`` (:mod:`.embedded`) and the test servers
(:mod:`commissaire_tasks.testing.servers`) both start Redis through here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import redis

__all__ = ["redis_command", "wait_for_redis"]


def redis_command(
    binary: str,
    port: int,
    data_dir: Path,
    *,
    appendonly: bool = True,
    appendfsync: str = "everysec",
    password: str | None = None,
    logfile: str = "redis.log",
) -> list[str]:
    """The command line of a ``redis-server`` on 127.0.0.1:``port`` keeping data in ``data_dir``.

    No snapshots: the append-only file (when on) is the persistence.
    """
    args = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", str(data_dir),
        "--appendonly", "yes" if appendonly else "no",
        "--appendfsync", appendfsync,
        "--save", "",
        "--logfile", str(data_dir / logfile),
        "--daemonize", "no",
    ]  # fmt: skip
    if password:
        args += ["--requirepass", password]
    return args


def wait_for_redis(
    port: int,
    timeout_s: float,
    exited: Callable[[], bool],
    password: str | None = None,
) -> bool:
    """True once the server on ``port`` answers PING; False on timeout or when it ``exited()``."""
    client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_connect_timeout=1)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not exited():
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return True
            time.sleep(0.05)
        return False
    finally:
        client.close()
