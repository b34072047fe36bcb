"""The storage rows: ``save`` and ``get`` calls per second, per store handler, and
the time from ``save()`` returning to a subscriber's callback running.

Each handler below gets a ``workers.storage`` worker on its own broker database
(so the workers never share a ``storage`` queue) and is timed with sequential
``StorageClient`` calls. The Redis handler's database also runs the
:mod:`bench.subscriber` service, whose callback stamps each created Host.

Its saves are timed twice per round. ``save``: the subscriber at work on the same
cores, as on a one-machine deployment. ``save_alone``: the save's own cost (the
write and one publish per subscribing service), with the subscriber's worker
paused (SIGSTOP) so its deliveries wait on its queue; it is resumed, and its queue
drained, before the next row is timed.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis

from commissaire_tasks import models
from commissaire_tasks.app import create_app
from commissaire_tasks.bus import Bus
from commissaire_tasks.config import ENV_BROKER_URL, ENV_SECRETS_KEY, ENV_SERVICES, Settings
from commissaire_tasks.storage.client import StorageClient
from commissaire_tasks.testing import WorkerProcess

from .measure import median, percentile, time_calls
from .subscriber import ARRIVALS, BenchWatchService
from .workers import PROJECT_ROOT, READY_TIMEOUT_S, clean_environment

#: The PostgreSQL database the ``postgresql`` row uses (a table of its own, dropped after).
POSTGRESQL_URL = os.environ.get(
    "COMMISSAIRE_BENCH_POSTGRESQL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: Handlers measured: name -> the ``storage_handlers`` config (``{dir}``, ``{table}`` filled in).
HANDLERS: dict[str, dict[str, Any]] = {
    "redis": {},
    "sqlite": {
        "storage_handlers": [
            {
                "type": "sql",
                "models": ["Host*", "Cluster*", "Network", "ContainerManagerConfig"],
                "url": "sqlite:///{dir}/records.db",
            }
        ]
    },
    "postgresql": {
        "storage_handlers": [
            {
                "type": "sql",
                "models": ["Host*", "Cluster*", "Network", "ContainerManagerConfig"],
                "url": POSTGRESQL_URL,
                "table": "{table}",
            }
        ]
    },
}
#: The handler whose database also runs the notification subscriber.
NOTIFY_HANDLER = "redis"
SUBSCRIBER_QUEUE = BenchWatchService.name


def measure_storage(
    redis_url: str, calls: int, rounds: int, log_dir: Path, loglevel: str, timeout_s: float
) -> dict[str, Any]:
    """``{handler: {save_per_s, get_per_s, add_per_s, save_vs_add, get_vs_add}}``.

    The Redis handler also has ``save_alone_per_s``, ``save_alone_vs_add`` (see the
    module) and ``notify``. ``add_per_s`` is ``simple.add`` timed the
    same way in the same run (a ``workers.simple`` worker at -c 2), so the ratios say
    what a storage call costs against a trivial call. Needs a Redis broker of the
    bench's own: handler ``i`` uses database ``i + 1``, the reference the next one.
    """
    base = redis_url.rsplit("/", 1)[0]
    secrets_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    workers: dict[str, tuple[str, WorkerProcess]] = {}
    table = f"bench_records_{uuid.uuid4().hex[:10]}"
    for index, (handler, template) in enumerate(HANDLERS.items(), start=1):
        broker = f"{base}/{index}"
        directory = log_dir / f"storage-{handler}"
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "storage.json"
        filled = json.dumps(template).replace("{dir}", str(directory))
        config.write_text(filled.replace("{table}", table))
        worker = WorkerProcess(
            broker_url=broker,
            app="workers.storage",
            concurrency=2,
            log_dir=directory,
            extra_args=["-l", loglevel, "--config-file", str(config)],
            cwd=PROJECT_ROOT,
        )
        worker.env = clean_environment({ENV_BROKER_URL: broker, ENV_SECRETS_KEY: secrets_key})
        workers[handler] = (broker, worker)
    reference_broker = f"{base}/{len(HANDLERS) + 1}"
    reference = WorkerProcess(
        broker_url=reference_broker,
        app="workers.simple",
        concurrency=2,
        log_dir=log_dir,
        extra_args=["-l", loglevel],
        cwd=PROJECT_ROOT,
    )
    reference.env = clean_environment({ENV_BROKER_URL: reference_broker})
    notify_broker = workers[NOTIFY_HANDLER][0]
    subscriber = WorkerProcess(
        broker_url=notify_broker,
        queues=[SUBSCRIBER_QUEUE],
        concurrency=1,
        log_dir=log_dir,
        extra_args=["-l", loglevel],
        cwd=PROJECT_ROOT,
    )
    subscriber.env = clean_environment(
        {ENV_BROKER_URL: notify_broker, ENV_SERVICES: "bench.subscriber"}
    )
    results: dict[str, Any] = {}
    stack_close: Callable[[], None] | None = None
    try:
        for _, worker in workers.values():  # all start at once; each has its own database
            worker.start(wait=False)
        subscriber.start(wait=False)
        reference.start(wait=False)
        reference_bus, reference_app = _reference_bus(reference, reference_broker, timeout_s)
        stack_close = reference_app.close
        for handler, (broker, worker) in workers.items():
            try:
                worker.wait_ready(READY_TIMEOUT_S)
                app = create_app(Settings(broker_url=broker, call_timeout_s=timeout_s), services=())
                try:
                    client = StorageClient(Bus(app), timeout=timeout_s)
                    add = functools.partial(reference_bus.call, "simple.add", 1, 2)
                    paused = None
                    if handler == NOTIFY_HANDLER:  # its saves are timed with the subscriber on
                        subscriber.wait_ready(READY_TIMEOUT_S)
                        _wait_for_subscription(client, broker, timeout_s)
                        paused = functools.partial(_paused, subscriber, broker, timeout_s)
                    results[handler] = _time_handler(client, calls, rounds, add, paused)
                    results[handler].update(_ratios(results[handler]))
                    if handler == NOTIFY_HANDLER:
                        results[handler]["notify"] = _time_notifications(
                            client, broker, calls, timeout_s
                        )
                finally:
                    app.close()
            except Exception as exc:  # noqa: BLE001 - a handler that fails is reported, the run goes on
                results[handler] = {"error": _summary(exc)}
    finally:
        for _, worker in workers.values():
            worker.stop()
        subscriber.stop()
        if stack_close is not None:
            stack_close()
        reference.stop()
        _drop_table(POSTGRESQL_URL, table)
    return results


def _reference_bus(worker: WorkerProcess, broker: str, timeout_s: float) -> tuple[Bus, Any]:
    """A bus to the ``workers.simple`` worker, and the app to close after."""
    worker.wait_ready(READY_TIMEOUT_S)
    app = create_app(Settings(broker_url=broker, call_timeout_s=timeout_s), services=())
    return Bus(app), app


def _ratios(figures: dict[str, Any]) -> dict[str, Any]:
    """Each row's calls/s over ``simple.add`` calls/s: medians of per-round ratios."""
    adds = figures["add_rounds"]
    ratios = {"add_per_s": median(adds)}
    for row in ("save", "save_alone", "get"):
        if f"{row}_rounds" in figures:
            per_round = zip(figures[f"{row}_rounds"], adds, strict=True)
            ratios[f"{row}_vs_add"] = median([rate / add for rate, add in per_round])
    return ratios


def _drop_table(url: str, table: str) -> None:
    """Remove the ``postgresql`` row's table (nothing to do if it never got one)."""
    try:
        import sqlalchemy as sa
    except ImportError:
        return
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP TABLE IF EXISTS "{table}"'))
    except sa.exc.SQLAlchemyError:
        pass  # the server is not there: the row already reports the error
    finally:
        engine.dispose()


def _summary(exc: Exception) -> str:
    """One line for the table: the last error line of a worker log, or the exception."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line.split(":", 1)[0]]
    return f"{type(exc).__name__}: {(errors or lines or [''])[-1]}"


def _time_handler(
    client: StorageClient,
    calls: int,
    rounds: int,
    add: Callable[[], Any],
    paused: Callable[[], contextlib.AbstractContextManager[None]] | None = None,
) -> dict[str, Any]:
    """save and get calls/s per round, each round beside ``simple.add`` calls/s.

    A round times ``calls`` calls of each row in blocks of :data:`BLOCK`, the rows
    taking turns block by block (in an order that rotates), so a change in the
    machine's speed during the round reaches every row alike. With ``paused`` (the
    subscriber's worker paused while a block runs) the saves are also timed alone:
    ``save_alone``.
    """
    stored = [_host() for _ in range(calls)]
    for host in stored:  # what the get rows read
        client.save(host)
    keys = [models.Host.new(address=h.address) for h in stored]
    get = _each(client.get, keys * (rounds + 1))
    rows: dict[str, Callable[[int], float]] = {
        "add": functools.partial(_seconds, add),
        "save": functools.partial(_seconds, _each(client.save, _hosts(calls * rounds))),
        "get": functools.partial(_seconds, get),
    }
    if paused is not None:
        alone = _each(client.save, _hosts(calls * rounds))
        rows["save_alone"] = functools.partial(_paused_seconds, paused, alone)
    rates: dict[str, list[float]] = {row: [] for row in rows}
    names = list(rows)
    for round_ in range(rounds):
        spent = dict.fromkeys(rows, 0.0)
        for block, done in enumerate(range(0, calls, BLOCK)):
            shift = (round_ + block) % len(names)  # no row always follows the same one
            for row in names[shift:] + names[:shift]:
                spent[row] += rows[row](min(BLOCK, calls - done))
        for row in rows:
            rates[row].append(calls / spent[row])
    figures: dict[str, Any] = {f"{row}_rounds": values for row, values in rates.items()}
    figures.update({f"{row}_per_s": median(rates[row]) for row in names if row != "add"})
    figures["calls"] = calls
    return figures


#: Calls per block of one row within a round (see :func:`_time_handler`).
BLOCK = 50


def _seconds(call: Callable[[], Any], calls: int) -> float:
    return sum(time_calls(call, calls))


def _paused_seconds(
    paused: Callable[[], contextlib.AbstractContextManager[None]],
    call: Callable[[], Any],
    calls: int,
) -> float:
    with paused():
        return _seconds(call, calls)


@contextlib.contextmanager
def _paused(worker: WorkerProcess, broker: str, timeout_s: float) -> Iterator[None]:
    """``worker`` stopped (SIGSTOP) while the block runs; then resumed, its queue drained."""
    pids = [worker.pid, *worker.pool_pids()]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    queue = redis.Redis.from_url(broker)
    try:
        deadline = time.monotonic() + timeout_s
        while queue.llen(SUBSCRIBER_QUEUE) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.05)  # the last deliveries taken off the queue run
    finally:
        queue.close()


def _hosts(calls: int) -> list[models.Host]:
    return [_host() for _ in range(calls)]


def _time_notifications(
    client: StorageClient, broker: str, calls: int, timeout_s: float
) -> dict[str, Any]:
    """Save Hosts one by one; for each, seconds from ``save()`` returning to the callback.

    Negative values are possible: the callback may run before the caller has
    read the storage call's reply.
    """
    arrivals = redis.Redis.from_url(broker)
    try:
        delays = []
        for _ in range(calls):
            host = _host()
            client.save(host)
            returned = time.time()
            delays.append(_arrival(arrivals, host.address, timeout_s) - returned)
    finally:
        arrivals.close()
    return {
        "p50_ms": percentile(delays, 50) * 1e3,
        "p99_ms": percentile(delays, 99) * 1e3,
        "calls": calls,
    }


def _arrival(arrivals: Any, address: str, timeout_s: float) -> float:
    """When the subscriber got ``address``'s notification (those of earlier saves skipped)."""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        popped = arrivals.blpop([ARRIVALS], timeout=left)
        if popped is None:
            break
        raw = popped[1]
        arrived, stamp = (raw.decode() if isinstance(raw, bytes) else raw).split(" ")
        if arrived == address:
            return float(stamp)
    raise TimeoutError(f"no notification for {address} in {timeout_s} s")


def _wait_for_subscription(client: StorageClient, broker: str, timeout_s: float) -> None:
    """Save until a notification arrives: the subscriber subscribes as it starts."""
    arrivals = redis.Redis.from_url(broker)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            client.save(_host())
            if arrivals.blpop([ARRIVALS], timeout=0.5) is not None:
                break
        else:
            raise TimeoutError(f"the subscriber got no notification in {timeout_s} s")
        time.sleep(0.5)
        arrivals.delete(ARRIVALS)
    finally:
        arrivals.close()


def _each(call: Callable[[Any], Any], items: list[Any]) -> Callable[[], Any]:
    """A no-argument call that applies ``call`` to the next of ``items`` each time."""
    pending = iter(items)
    return lambda: call(next(pending))


def _host() -> models.Host:
    return models.Host.new(
        address=f"10.0.0-{uuid.uuid4().hex[:12]}",
        status="active",
        os="fedora",
        cpus=4,
        memory=8192,
        space=100,
    )
