"""The systems of the side-by-side run and how each one is started.

Every contender gets servers of its own: a fresh ``redis-server`` (its broker on
Redis, its results on RabbitMQ; so ``INFO commandstats`` counts its commands
only) and, on RabbitMQ, a throwaway vhost. Its workers are 2 processes: a
``celery worker -c 2`` prefork (ours and bare Celery), two ``nameko run``
processes, or ``dramatiq --processes 2``; every other setting is the peer's
default. Its caller is a process of its own, in the peer's venv.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commissaire_tasks.testing import RedisServer

from ..cost import command_counts
from ..rabbitmq import RabbitVhost
from ..workers import PROJECT_ROOT, WorkerSet
from . import venvs
from .celery_client import build
from .client import PeerClient, PeerError
from .processes import Spawned, cpu_seconds

PEERS_DIR = Path(__file__).resolve().parent
#: Worker processes of every contender (the issue's call shape).
WORKER_PROCESSES = 2


@dataclass(frozen=True)
class Contender:
    """One system of the table.

    Attributes:
        key: Its key in the JSON results.
        label: Its row in the table.
        family: ``celery`` (ours and bare Celery), ``nameko``, ``dramatiq``, ``original``
            or ``floor`` (bare redis-py).
        broker: ``redis`` or ``rabbitmq`` (results are in Redis on both).
        kind: For ``celery``: the client kind of :mod:`bench.peers.celery_client`.
        results_scheme: Put before the Redis results URL: ``lean+`` names our lean
            result path where the broker is not Redis (on Redis it is the default).
    """

    key: str
    label: str
    family: str
    broker: str
    kind: str = ""
    results_scheme: str = ""

    @property
    def batched(self) -> bool:
        """Ours: also timed with ``bus.call_many`` (a batch awaited as a whole)."""
        return self.kind.startswith("framework")


OURS_REDIS = "ours_redis"
OURS_QUIET = "ours_quiet_redis"
CELERY_REDIS = "celery_redis"
OURS_RABBITMQ = "ours_rabbitmq"
CELERY_RABBITMQ = "celery_rabbitmq"
NAMEKO = "nameko_rabbitmq"
DRAMATIQ_REDIS = "dramatiq_redis"
DRAMATIQ_RABBITMQ = "dramatiq_rabbitmq"
ORIGINAL = "original_redis"
FLOOR = "floor_redis"

CONTENDERS: tuple[Contender, ...] = (
    Contender(
        OURS_REDIS, "commissaire-tasks bus.call, defaults (Redis)", "celery", "redis", "framework"
    ),
    Contender(OURS_QUIET, "  the same, task events off", "celery", "redis", "framework_quiet"),
    Contender(CELERY_REDIS, "bare Celery, Redis", "celery", "redis", "bare"),
    Contender(
        OURS_RABBITMQ,
        "commissaire-tasks, RabbitMQ + lean+redis:// results",
        "celery",
        "rabbitmq",
        "framework",
        "lean+",
    ),
    Contender(
        CELERY_RABBITMQ, "bare Celery, RabbitMQ + Redis results", "celery", "rabbitmq", "bare"
    ),
    Contender(NAMEKO, "Nameko 2.14, RabbitMQ", "nameko", "rabbitmq"),
    Contender(DRAMATIQ_REDIS, "Dramatiq 2.2, Redis + Redis results", "dramatiq", "redis"),
    Contender(DRAMATIQ_RABBITMQ, "Dramatiq 2.2, RabbitMQ + Redis results", "dramatiq", "rabbitmq"),
    Contender(ORIGINAL, "the original Commissaire bus (Redis)", "original", "redis"),
    Contender(FLOOR, "floor: request/reply over bare redis-py", "floor", "redis"),
)
BY_KEY = {c.key: c for c in CONTENDERS}


@dataclass(frozen=True)
class Setup:
    """What every contender's start needs from the run."""

    log_dir: Path
    venv_root: Path
    timeout_s: float
    loglevel: str = "WARNING"
    original: Path | None = None


@dataclass
class Running:
    """A started contender: its caller, its workers' pids and its Redis."""

    contender: Contender
    client: PeerClient
    worker_pids: Callable[[], list[int]]
    redis: RedisServer | None
    extra: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        """CPU seconds by side and Redis command counts, now."""
        cpu = {
            "client": cpu_seconds(self.client.pids()),
            "workers": cpu_seconds(self.worker_pids()),
        }
        commands = None
        if self.redis is not None and self.redis.process is not None:
            cpu["redis"] = cpu_seconds([self.redis.process.pid])
            commands = command_counts(self.redis.url, without=("info",))
        return {"cpu": cpu, "commands": commands}


def start(contender: Contender, setup: Setup, stack: contextlib.ExitStack) -> Running:
    """Start ``contender``'s servers, workers and caller; checked with one ``add(1, 2)``."""
    server = None
    if contender.family != "nameko":
        server = RedisServer().start()
        stack.callback(server.close)
    broker_url = server.url if server is not None else ""
    if contender.broker == "rabbitmq":
        vhost = RabbitVhost()
        stack.callback(vhost.delete)
        broker_url = vhost.create()
    env = {
        "BENCH_PEER_BROKER": broker_url,
        "BENCH_PEER_RESULTS": contender.results_scheme + server.url if server is not None else "",
        "BENCH_PEER_TIMEOUT_S": str(setup.timeout_s),
    }
    if contender.family == "celery":
        workers = _celery(contender, setup, stack, broker_url, env)
        python = Path(sys.executable)
        command = [str(python), "-m", "bench.peers.celery_client", contender.kind]
        cwd = PROJECT_ROOT
    else:
        python, workers, command = _peer(contender, setup, stack, env)
        cwd = PEERS_DIR
    client_env = _environment(env, PROJECT_ROOT if contender.family == "celery" else PEERS_DIR)
    log = setup.log_dir / f"{contender.key}-client.log"
    client = PeerClient(contender.key, command, log, client_env, cwd, setup.timeout_s)
    stack.callback(client.close)
    value = client.request("check", timeout_s=setup.timeout_s)["value"]
    if value != 3:
        raise PeerError(f"{contender.key}: add(1, 2) returned {value!r}")
    return Running(contender, client, workers, server, {"python": str(python)})


def _celery(
    contender: Contender,
    setup: Setup,
    stack: contextlib.ExitStack,
    broker_url: str,
    env: dict[str, str],
) -> Callable[[], list[int]]:
    system = build(contender.kind, broker_url, env["BENCH_PEER_RESULTS"], setup.timeout_s)
    stack.callback(system.close)
    workers = WorkerSet([system], WORKER_PROCESSES, setup.log_dir, setup.loglevel)
    stack.enter_context(workers)
    return workers.pids


def _peer(
    contender: Contender, setup: Setup, stack: contextlib.ExitStack, env: dict[str, str]
) -> tuple[Path, Callable[[], list[int]], list[str]]:
    """A peer's venv Python, its started workers' pids and its caller's command."""
    if contender.family == "floor":  # redis-py only: the bench's own environment has it
        python = Path(sys.executable)
    else:
        python = venvs.python_of(venvs.SPECS[contender.family], setup.venv_root)
    bin_dir = python.parent
    if contender.family == "original":
        if setup.original is None:
            raise PeerError("the original Commissaire bus needs --original PATH")
        env["BENCH_ORIGINAL_PATH"] = str(setup.original)
    worker_env = _environment(env, PEERS_DIR)
    script = str(PEERS_DIR / ("floor.py" if contender.family == "floor" else "original_bus.py"))
    if contender.family == "nameko":
        commands = [[str(bin_dir / "nameko"), "run", "--broker", env["BENCH_PEER_BROKER"],
                     "nameko_service"]] * WORKER_PROCESSES  # fmt: skip
        client = [str(python), "nameko_client.py"]
    elif contender.family == "dramatiq":
        commands = [[str(bin_dir / "dramatiq"), "dramatiq_actors", "--processes",
                     str(WORKER_PROCESSES)]]  # fmt: skip
        client = [str(python), "dramatiq_client.py"]
    else:
        commands = [[str(python), script, "service"]] * WORKER_PROCESSES
        client = [str(python), script, "client"]
    spawned = []
    for index, command in enumerate(commands):
        log = setup.log_dir / f"{contender.key}-worker{index}.log"
        worker = Spawned(command, log, worker_env, PEERS_DIR)
        stack.callback(worker.stop)
        spawned.append(worker)
    return python, lambda: [pid for w in spawned for pid in w.pids()], client


def _environment(extra: dict[str, str], path: Path) -> dict[str, str]:
    """This environment less ours (COMMISSAIRE_*, BENCH_*, PYTHONPATH), plus ``extra``."""
    skip = ("COMMISSAIRE_", "BENCH_", "PYTHONPATH", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env["PYTHONPATH"] = str(path)
    env.update(extra)
    return env
