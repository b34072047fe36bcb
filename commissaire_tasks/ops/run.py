"""``commissaire-tasks run MODULE[:Class]``: a module's services in one foreground worker.

As ``nameko run`` does: the command becomes ``celery -A commissaire_tasks
worker -Q <the services' queues>`` with ``COMMISSAIRE_SERVICES=MODULE`` (so the
worker imports just that module, found in the current folder first, as
``celery -A`` finds it). Ctrl-C stops it warm (running calls finish; exit code 1,
as ``celery worker`` gives after SIGINT; 0 after SIGTERM); a second Ctrl-C stops
it cold. Options after the target go to ``celery worker``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..config import ENV_SERVICES, load_settings
from ..errors import ConfigurationError
from ..runtime.loader import load_service_modules
from ..runtime.registry import ServiceSpec

__all__ = ["RunCommand", "exec_worker", "run_command"]


@dataclass(frozen=True)
class RunCommand:
    """The worker command line and environment ``run`` executes."""

    args: tuple[str, ...]
    env: Mapping[str, str]
    services: tuple[str, ...]


def run_command(
    target: str,
    environ: Mapping[str, str],
    concurrency: int | None = None,
    loglevel: str = "INFO",
    extra: Sequence[str] = (),
) -> RunCommand:
    """Resolve ``MODULE[:Class]`` to the worker command (raises ConfigurationError)."""
    specs = _services_of(target)
    settings = load_settings(environ)
    queues = [queue.name for spec in specs for queue in spec.queues(settings)]
    args = [sys.executable, "-m", "celery", "-A", "commissaire_tasks", "worker"]
    args += ["-Q", ",".join(dict.fromkeys(queues)), "-l", loglevel]
    if concurrency:
        args += ["-c", str(concurrency)]
    env = {**environ, ENV_SERVICES: target.partition(":")[0]}
    return RunCommand((*args, *extra), env, tuple(spec.name for spec in specs))


def _services_of(target: str) -> list[ServiceSpec]:
    module_name, _, class_name = target.partition(":")
    if not module_name:
        raise ConfigurationError(f"{target!r}: expected MODULE or MODULE:Class")
    try:
        [module] = load_service_modules([module_name])
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r}: {exc}") from exc
    if not class_name:
        if not module.services:
            raise ConfigurationError(f"module {module_name!r} defines no services")
        return list(module.services)
    for spec in module.services:
        if spec.cls.__name__ == class_name:
            return [spec]
    known = ", ".join(spec.cls.__name__ for spec in module.services) or "none"
    raise ConfigurationError(f"{module_name!r} has no service class {class_name!r} ({known})")


def exec_worker(command: RunCommand) -> None:
    """Replace this process with the worker (signals then reach Celery directly)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command.args[0], list(command.args), dict(command.env))
