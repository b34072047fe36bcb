"""Private run folders: where a host's private key and Ansible's files live for one run.

Each run gets ``<tmp>/commissaire-hosts-<uid>/run-<pid>-<random>`` (mode 0700) holding
the key (mode 0600), the inventory, known hosts and Ansible's artifacts; the folder is
removed when the run ends, however it ends. A process that died before cleaning up
leaves its folder behind: folders whose pid is gone are removed when a worker of a
service that runs SSH starts (:func:`remove_leftovers_at_start`, a worker startup
hook) and by the next run in any process, so a crash never leaves a key on disk for
longer than until the next start or run.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from commissaire_tasks.runtime.registry import ServiceSpec
from commissaire_tasks.runtime.startup import add_startup_hook

__all__ = [
    "BadKeyError",
    "key_base",
    "private_folder",
    "process_gone",
    "remove_leftovers",
    "remove_leftovers_at_start",
    "write_key",
]

logger = logging.getLogger(__name__)

#: File name of the private key inside a run folder.
KEY_FILE = "id_key"
#: Services whose starting workers remove leftover run folders.
_SSH_SERVICES: set[str] = set()


class BadKeyError(ValueError):
    """Raised when ``HostCreds.ssh_priv_key`` is not the base64 of a key file."""


def key_base() -> Path:
    """The folder every run folder of this user lives in (created mode 0700)."""
    base = Path(tempfile.gettempdir()) / f"commissaire-hosts-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    info = base.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise PermissionError(f"{base} is not a folder of this user; refusing to use it")
    base.chmod(0o700)
    return base


def remove_leftovers(base: Path | None = None) -> list[Path]:
    """Remove run folders whose process is gone; return what was removed."""
    base = base or key_base()
    removed = []
    for folder in base.glob("run-*"):
        pid = _pid_of(folder.name)
        if pid is not None and _alive(pid):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def remove_leftovers_at_start(service_name: str) -> None:
    """Make a starting worker that hosts ``service_name`` remove dead processes' folders.

    The removal runs in the worker's startup, before it consumes (a startup hook of
    :mod:`commissaire_tasks.runtime.startup`), so a key left by a crash is gone once the
    worker is back, whether or not it ever runs SSH again.
    """
    _SSH_SERVICES.add(service_name)
    add_startup_hook(_remove_at_start)


def _remove_at_start(app: Any, spec: ServiceSpec, queue: str) -> None:
    if spec.name in _SSH_SERVICES:
        for folder in remove_leftovers():
            logger.info("Removed %s at start: left by a process that died", folder.name)


@contextmanager
def private_folder() -> Iterator[Path]:
    """A fresh run folder, removed on every exit path."""
    base = key_base()
    remove_leftovers(base)
    folder = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=base))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_key(folder: Path, ssh_priv_key_b64: str) -> Path:
    """Decode the base64 key into ``folder`` with mode 0600; return its path."""
    try:
        data = base64.b64decode(ssh_priv_key_b64.encode(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadKeyError("ssh_priv_key is not valid base64 (of the private key file)") from exc
    if not data.strip():
        raise BadKeyError("ssh_priv_key is empty")
    if not data.endswith(b"\n"):
        data += b"\n"  # ssh refuses a key file whose last line has no newline
    path = folder / KEY_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    return path


def _pid_of(name: str) -> int | None:
    parts = name.split("-")
    return int(parts[1]) if len(parts) > 2 and parts[1].isdigit() else None


def _alive(pid: int) -> bool:
    return pid == os.getpid() or not process_gone(pid)


def process_gone(pid: int) -> bool:
    """True when no process ``pid`` runs on this machine (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
