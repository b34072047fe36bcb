"""``commissaire-tasks up``: a broker (embedded or given) and one worker per service module.

Runs in the foreground until Ctrl-C or SIGTERM, then stops the workers (warm
shutdown: running calls finish; SIGKILL after ``stop_timeout_s``) and only then
the embedded Redis, so nothing a worker acknowledges is lost.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ..bridge.runner import bridge_command
from ..bridge.settings import ENV_BRIDGE, bridge_enabled, load_bridge_settings
from ..config import ENV_BROKER_URL, ENV_SECRETS_KEY, ENV_SERVICES, load_settings
from ..errors import CommissaireTasksError, ConfigurationError
from ..redact import redact_url
from ..runtime.app import create_app
from ..runtime.loader import ServiceModule, load_service_modules
from ..runtime.registry import ServiceSpec
from . import embedded
from .processes import ProcessGroup, stop_signals_hurry, stop_signals_interrupt
from .readiness import wait_for_workers

__all__ = [
    "UpOptions",
    "WorkerCommand",
    "beat_commands",
    "check_bridge_settings",
    "run_up",
    "worker_commands",
]

#: Environment variable the secrets store handler reads its Fernet key from.


@dataclass(frozen=True)
class UpOptions:
    """What ``up`` was asked for.

    Attributes:
        data_dir: Folder of the embedded Redis's data and the secrets key.
        port: Preferred port of the embedded Redis.
        concurrency: Pool processes per worker (Celery's default, the CPU count, if None).
        loglevel: Worker log level.
        ready_timeout_s: Seconds the workers get to answer their first ping.
        stop_timeout_s: Seconds a worker gets to finish its calls before SIGKILL.
    """

    data_dir: Path = Path(embedded.DEFAULT_DATA_DIR)
    port: int = embedded.DEFAULT_PORT
    concurrency: int | None = None
    loglevel: str = "INFO"
    ready_timeout_s: float = 60.0
    stop_timeout_s: float = 30.0


@dataclass(frozen=True)
class WorkerCommand:
    """One worker process to start: its node name pattern, command line and extra env."""

    label: str
    module: str
    nodename: str
    args: tuple[str, ...]
    env: Mapping[str, str]


def worker_commands(
    modules: Sequence[ServiceModule], concurrency: int | None, loglevel: str
) -> list[WorkerCommand]:
    """``celery -A <module> worker`` per module; ``-A commissaire_tasks -Q ...`` without ``app``."""
    commands = []
    seen: dict[str, int] = {}
    settings = load_settings()  # the queues of each service: the one queue rule
    for module in modules:
        if not module.services:
            continue
        label = module.short_name
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label}{seen[label]}"
        nodename = f"{label}-{os.getpid()}@%h"  # unique even with two `up`s on one host
        args = [sys.executable, "-m", "celery"]
        env: dict[str, str] = {}
        if module.has_app:
            args += ["-A", module.name, "worker"]
        else:
            queues = ",".join(
                queue.name for spec in module.services for queue in spec.queues(settings)
            )
            args += ["-A", "commissaire_tasks", "worker", "-Q", queues]
            env[ENV_SERVICES] = module.name
        args += ["-l", loglevel, "-n", nodename]
        if concurrency:
            args += ["-c", str(concurrency)]
        commands.append(WorkerCommand(label, module.name, nodename, tuple(args), env))
    return commands


def beat_commands(modules: Sequence[ServiceModule], loglevel: str) -> list[WorkerCommand]:
    """``celery -A <module> beat`` for each module that says ``RUNS_BEAT = True``."""
    return [
        WorkerCommand(
            f"{module.short_name}-beat",
            module.name,
            "",
            (sys.executable, "-m", "celery", "-A", module.name, "beat", "-l", loglevel),
            {},
        )
        for module in modules
        if module.has_app and getattr(sys.modules.get(module.name), "RUNS_BEAT", False)
    ]


def run_up(options: UpOptions, environ: Mapping[str, str], out: TextIO | None = None) -> int:
    """Run until stopped; 0 after Ctrl-C/SIGTERM, 1 when a process failed."""
    out = out or sys.stdout
    group = ProcessGroup()
    lock = None
    code = 0
    try:
        with stop_signals_interrupt():
            env = dict(environ)
            check_bridge_settings(env)  # before anything starts: one line, nothing to stop
            if not env.get(ENV_BROKER_URL):
                lock = embedded.lock_data_dir(options.data_dir)
                env[ENV_BROKER_URL] = _start_embedded(group, options, out)
                if not env.get(ENV_SECRETS_KEY):
                    env[ENV_SECRETS_KEY] = embedded.secrets_key(options.data_dir)
            else:
                _say(out, f"Broker: {redact_url(env[ENV_BROKER_URL])} (COMMISSAIRE_BROKER_URL)")
            code = _serve(group, options, env, out)
    except KeyboardInterrupt:
        _say(out, "Stopping...")
    except CommissaireTasksError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        with stop_signals_hurry() as hurry:
            workers = [p for p in group.processes if group.label(p) != embedded.REDIS_LABEL]
            group.stop(workers, options.stop_timeout_s, hurry)
            group.stop(group.processes, options.stop_timeout_s, hurry)
        if lock is not None:
            lock.close()
    if code == 0:
        _say(out, "Stopped.")
    return code


def check_bridge_settings(environ: Mapping[str, str]) -> None:
    """With the bridge enabled, raise ConfigurationError now if its settings are refused.

    Otherwise the bridge process would exit on them after every worker had started,
    and ``up`` would stop everything again.
    """
    if bridge_enabled(environ):
        try:
            load_bridge_settings(environ)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{ENV_BRIDGE}=on, but {exc}") from exc


def _start_embedded(group: ProcessGroup, options: UpOptions, out: TextIO) -> str:
    port = embedded.choose_port(options.port)
    if port != options.port:
        _say(out, f"Port {options.port} is busy; using port {port} instead.")
    data_dir = options.data_dir.resolve()
    url = embedded.start_redis(group, port, data_dir)
    _say(out, f"Redis: 127.0.0.1:{port}, data in {data_dir} (append-only file, fsync every second)")
    return url


def _serve(group: ProcessGroup, options: UpOptions, env: dict[str, str], out: TextIO) -> int:
    try:
        modules = load_service_modules()
    except Exception as exc:  # noqa: BLE001 - any error in a service module's code
        raise ConfigurationError(
            f"cannot import the service modules: {type(exc).__name__}: {exc}"
        ) from exc
    commands = worker_commands(modules, options.concurrency, options.loglevel)
    if not commands:
        raise ConfigurationError(
            "no services to run: add modules to the `workers` package or set COMMISSAIRE_SERVICES"
        )
    _say(out, "Starting workers: " + ", ".join(f"{c.label} ({c.module})" for c in commands))
    for command in commands:
        group.spawn(command.label, command.args, {**env, **command.env})
    for command in beat_commands(modules, options.loglevel):
        _say(out, f"Starting beat: {command.label} ({command.module})")
        group.spawn(command.label, command.args, {**env, **command.env})
    if bridge_enabled(env):  # serves clients of the original bus (COMMISSAIRE_BRIDGE=on)
        _say(out, "Starting the bridge for clients of the original Commissaire bus")
        group.spawn("bridge", bridge_command(options.loglevel), env)
    _wait_ready(group, commands, env, options.ready_timeout_s)
    _print_ready(out, modules, env, len(commands))
    exited = group.wait_any()
    print(
        f"error: {group.label(exited)} exited with code {exited.returncode}; stopping",
        file=sys.stderr,
        flush=True,
    )
    return 1


def _wait_ready(
    group: ProcessGroup, commands: Sequence[WorkerCommand], env: Mapping[str, str], timeout_s: float
) -> None:
    from celery.utils.nodenames import host_format

    control = create_app(load_settings(env), services=()).control
    labels = {host_format(c.nodename): c.label for c in commands}

    def check_alive() -> None:
        exited = group.exited()
        if exited:
            process = exited[0]
            raise CommissaireTasksError(
                f"{group.label(process)} exited with code {process.returncode} while starting"
            )

    late = wait_for_workers(control, labels, timeout_s, check_alive)
    if late:
        names = ", ".join(sorted(labels[n] for n in late))
        raise CommissaireTasksError(f"workers {names} did not answer within {timeout_s:g} s")


def _print_ready(
    out: TextIO, modules: Sequence[ServiceModule], env: Mapping[str, str], workers: int
) -> None:
    """Say what runs, then the lines a second shell (``env -i bash``) needs, verbatim.

    The real broker URL and secrets key are printed on purpose: this is the
    user's own terminal, and without them a second shell cannot call anything
    (nor read a ``HostCreds``). Nothing here goes to a log file.
    """
    services = [spec for module in modules for spec in module.services]
    _say(out, f"Ready: {workers} worker(s) serving {', '.join(s.name for s in services)}.")
    _say(out, f"Broker: {redact_url(env[ENV_BROKER_URL])}")
    _say(out, "Call services from another shell (paste these lines; no venv needed):")
    for line in second_shell_lines(env, _example_call(services), _local_root(modules)):
        _say(out, f"    {line}")
    _say(out, "Press Ctrl-C to stop.")


def second_shell_lines(
    env: Mapping[str, str], example: str, local_root: str | None = None
) -> list[str]:
    """``export`` lines for the broker and secrets key, then commands with absolute paths.

    ``local_root``: the folder the service modules are imported from (a checkout's
    ``workers``), exported as ``PYTHONPATH`` so the commands find them from anywhere.
    """
    lines = [f"export {ENV_BROKER_URL}={shlex.quote(env[ENV_BROKER_URL])}"]
    if local_root is not None:
        lines.append(f"export PYTHONPATH={shlex.quote(local_root)}")
    if env.get(ENV_SECRETS_KEY):
        lines.append(f"export {ENV_SECRETS_KEY}={shlex.quote(env[ENV_SECRETS_KEY])}")
    if env.get(ENV_SERVICES):
        lines.append(f"export {ENV_SERVICES}={shlex.quote(env[ENV_SERVICES])}")
    command = cli_command()
    lines += [f"{command} call {example}", f"{command} status", f"{command} services"]
    return lines


def _local_root(modules: Sequence[ServiceModule]) -> str | None:
    """The current folder, when some service module is importable only from there."""
    here = os.getcwd()
    elsewhere = [p for p in sys.path if p not in ("", here)]
    for module in modules:
        top = module.name.partition(".")[0]
        if importlib.machinery.PathFinder.find_spec(top, elsewhere) is None:
            spec = importlib.util.find_spec(top)
            if spec is not None and str(spec.origin or "").startswith(here + os.sep):
                return here
    return None


def cli_command() -> str:
    """``commissaire-tasks`` as an absolute path that works without activating the venv."""
    script = Path(sys.executable).parent / "commissaire-tasks"
    if script.is_file():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m commissaire_tasks.cli"


def _example_call(services: Sequence[ServiceSpec]) -> str:
    names = {spec.name: spec for spec in services}
    if "simple" in names and "add" in names["simple"].methods:
        return "simple.add 1 2"
    for spec in services:  # a method that needs no arguments runs as printed
        for method, attribute in spec.methods.items():
            if not _required_parameters(getattr(spec.cls, attribute)):
                return f"{spec.name}.{method}"
    for spec in services:
        if spec.methods:
            return f"{spec.name}.{next(iter(spec.methods))}"
    return "SERVICE.METHOD"


def _required_parameters(function: Any) -> list[str]:
    """Bus parameters of an ``on_*`` method without a default (``self`` and ``message`` aside)."""
    parameters = list(inspect.signature(function).parameters.values())[2:]
    return [
        p.name
        for p in parameters
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def _say(out: TextIO, line: str) -> None:
    print(line, file=out, flush=True)
