"""One virtual environment per peer, built on demand with pinned versions, then reused.

A peer's imports never enter the bench's own process (Nameko's eventlet patches
the standard library): each peer's workers and caller run with the Python of
``.bench-venvs/<peer>`` (under the checkout unless ``--venvs DIR``). A venv is
rebuilt only when its pins change (a marker file holds them); a failed build
raises :class:`VenvUnavailable` with pip's last lines, and the peer's rows are
skipped with that reason.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: Where the venvs go unless ``--venvs``: beside ``bench/`` (ignored by git).
DEFAULT_ROOT = Path(__file__).resolve().parent.parent.parent / ".bench-venvs"
#: Seconds one venv build (venv + pip install) may take.
BUILD_TIMEOUT_S = 900.0
MARKER = "bench-pins.txt"


class VenvUnavailable(Exception):
    """Raised when a peer's virtual environment cannot be built; the message says why."""


@dataclass(frozen=True)
class VenvSpec:
    """A peer's environment: its name and the pinned requirements pip installs into it."""

    name: str
    requirements: tuple[str, ...]

    def pins(self) -> str:
        return "\n".join(self.requirements) + "\n"


#: The peers' pins; ``pyproject.toml``'s ``bench-peers`` extra lists the same.
NAMEKO = VenvSpec("nameko", ("nameko==2.14.1", "eventlet==0.41.3"))
DRAMATIQ = VenvSpec("dramatiq", ("dramatiq[redis,rabbitmq]==2.2.1", "pika>=1.3,<2", "redis>=5,<9"))
#: The original Commissaire bus needs only kombu with Redis (its source comes from --original).
ORIGINAL = VenvSpec("original", ("kombu[redis]>=5.3,<6",))
SPECS = {spec.name: spec for spec in (NAMEKO, DRAMATIQ, ORIGINAL)}


def python_of(spec: VenvSpec, root: Path = DEFAULT_ROOT) -> Path:
    """The Python of ``spec``'s venv, built first unless it exists with the same pins."""
    home = root / spec.name
    python = home / "bin" / "python"
    marker = home / MARKER
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{spec.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs never build the same venv at once
        if python.exists() and marker.exists() and marker.read_text() == spec.pins():
            return python
        marker.unlink(missing_ok=True)
        _run([sys.executable, "-m", "venv", "--clear", str(home)], spec)
        _run([str(python), "-m", "pip", "install", "-q", *spec.requirements], spec)
        marker.write_text(spec.pins())
    return python


def _run(command: list[str], spec: VenvSpec) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VenvUnavailable(f"{spec.name} venv: {command[2]} failed: {exc}") from exc
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if "is ignored" not in ln]
        detail = " | ".join(lines[-3:])
        raise VenvUnavailable(f"{spec.name} venv: {' '.join(command[2:4])} failed: {detail}")
