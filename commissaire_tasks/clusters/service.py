"""The clusterexec service: rolling upgrade, restart and deploy of a cluster's hosts.

``clusterexec.upgrade(name)``, ``clusterexec.restart(name)`` and
``clusterexec.deploy(name, version)`` (each also takes ``batch_size`` and
``on_failure``) take the cluster's lock, save the operation's record (ClusterUpgrade,
ClusterRestart or ClusterDeploy under the cluster's name, replacing the previous one
of its type) and return it at once; the work runs as a Celery canvas of this
service's own tasks, one chord per batch::

    chord(group(run_host(a1), run_host(a2)), next_batch(1))
      -> next_batch starts chord(group(run_host(a3), ...), next_batch(2)) ... -> finish

Each ``run_host`` adds its host to ``in_process``, runs the host's playbook
(:mod:`.steps`) and moves it to the finished list or to ``failed`` (address ->
reason); it never raises, so a chord always reaches its body. ``next_batch`` stops
after a batch with a failed host (``on_failure="stop"``, the default) or goes on
(``"continue"``), and at the end sets ``status`` (``finished``, or ``failed`` when a
host failed) and ``finished_at``, then releases the lock.

**One operation per cluster.** A second operation of any type while one runs is
refused with :class:`~commissaire_tasks.errors.ClusterBusy` (-32050) naming it. The
lock (:mod:`.lock`) lives ``operation_lock_s`` (120) without a refresh; the running
host steps refresh it every third of that.

**Killed workers.** Every task is acknowledged late: a pool process killed
mid-host is replaced and its task runs again (a host already finished in this
operation is not run twice). When the whole worker dies, the lock is no longer
refreshed and expires; then ``clusterexec.recover`` finishes the record: hosts left in
``in_process`` go to ``failed`` with :data:`~.records.INTERRUPTED`, and the record
becomes ``failed``. It runs when a clusterexec worker starts (every cluster), as a
watchdog sent for later when an operation starts (and again while it runs), and
when a task of a dead operation is delivered again. A new operation on the cluster
also finishes stale records first.

Config (JSON file): ``batch_size`` (1), ``operation_lock_s`` (120),
``restart_down_timeout_s`` (120), ``restart_timeout_s`` (600), ``host_timeout_s``
(3600), ``ostree_marker`` (``/run/ostree-booted``), ``rpm_ostree`` (``rpm-ostree``),
``command_sets_dir``, ``ssh_timeout_s``, ``python_interpreter``, ``redis_url``. Needs a
Redis result backend (chords) and the ``hosts`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import redis
from celery import chord

from commissaire_tasks.errors import ClusterBusy, ConfigurationError, InvalidParams
from commissaire_tasks.hosts.commands import load_command_sets
from commissaire_tasks.hosts.coordination import coordination_redis
from commissaire_tasks.hosts.keys import remove_leftovers_at_start
from commissaire_tasks.hosts.records import HostRecords
from commissaire_tasks.message import Message
from commissaire_tasks.models import Clusters
from commissaire_tasks.runtime.startup import add_startup_hook
from commissaire_tasks.service import CommissaireService
from commissaire_tasks.storage.client import StorageClient

from .lock import KEY_PREFIX, OperationLock, holder, keep_alive
from .operations import RECORDS, Operation, batches
from .records import OperationRecords
from .steps import HostStep

__all__ = ["ClusterExecService"]

#: Seconds an operation's lock lives without a refresh, by default.
DEFAULT_LOCK_TTL_S = 120.0
#: Config keys that must be positive numbers.
POSITIVE_NUMBERS = (
    "operation_lock_s",
    "restart_down_timeout_s",
    "restart_timeout_s",
    "host_timeout_s",
    "ssh_timeout_s",
)


class ClusterExecService(CommissaireService):
    """Exposed as ``clusterexec.upgrade``, ``.restart``, ``.deploy``; see the module."""

    name = "clusterexec"

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> None:
        load_command_sets(config.get("command_sets_dir"))
        batches([], config.get("batch_size", 1))
        for key in POSITIVE_NUMBERS:
            value = config.get(key, 1)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigurationError(f"clusterexec: {key} must be a positive number")

    @cached_property
    def storage(self) -> StorageClient:
        return StorageClient(self)

    @cached_property
    def client(self) -> redis.Redis:
        return coordination_redis(self.config)

    @cached_property
    def records(self) -> OperationRecords:
        return OperationRecords(self.storage, self.client)

    @cached_property
    def step(self) -> HostStep:
        return HostStep(HostRecords(self.storage), self.client, self.config)

    def on_upgrade(
        self, message: Message, name: str, batch_size: int | None = None, on_failure: str = "stop"
    ) -> dict[str, Any]:
        """Upgrade the cluster's hosts, ``batch_size`` at a time; the new ClusterUpgrade."""
        return self._start("upgrade", name, "", batch_size, on_failure)

    def on_restart(
        self, message: Message, name: str, batch_size: int | None = None, on_failure: str = "stop"
    ) -> dict[str, Any]:
        """Restart the cluster's hosts, ``batch_size`` at a time; the new ClusterRestart."""
        return self._start("restart", name, "", batch_size, on_failure)

    def on_deploy(
        self,
        message: Message,
        name: str,
        version: str,
        batch_size: int | None = None,
        on_failure: str = "stop",
    ) -> dict[str, Any]:
        """Deploy OS tree ``version`` (rpm-ostree) to the cluster's hosts; the new ClusterDeploy."""
        if not isinstance(version, str) or not version.strip():
            raise InvalidParams(f"deploy needs a version (got {version!r})")
        return self._start("deploy", name, version, batch_size, on_failure)

    def on_run_host(
        self, message: Message, operation: dict[str, Any], address: str
    ) -> dict[str, Any]:
        """Canvas step: run ``operation`` on one host; ``{address, ok, reason}``."""
        op = Operation.from_json(operation)
        lock = self._lock(op)
        if not lock.refresh():
            return self._abandoned(op, address)
        earlier = self.records.outcome(op, address)
        if earlier is not None:  # run again after it ended (its ack was lost)
            return {"address": address, "ok": earlier[0], "reason": earlier[1]}
        with keep_alive(lock):
            if not self.records.host_started(op, lock, address):
                return self._abandoned(op, address)
            reason = self._run_step(message, op, address)
            self.records.host_done(op, lock, address, reason)
        self.logger.info("%s %s %s: %s", op.kind, op.cluster, address, reason or "ok")
        return {"address": address, "ok": reason is None, "reason": reason or ""}

    def on_next_batch(
        self, message: Message, results: list[dict[str, Any]], operation: dict[str, Any], index: int
    ) -> dict[str, Any]:
        """Canvas step after a batch: start batch ``index``, or finish the operation."""
        op = Operation.from_json(operation)
        lock = self._lock(op)
        if not lock.refresh():
            self.records.recover(op.cluster)
            return {"cluster": op.cluster, "abandoned": True}
        failed = [r.get("address") for r in results if not r.get("ok")]
        if index < len(op.batches) and not (failed and op.on_failure == "stop"):
            self._start_batch(op, index)
            return {"cluster": op.cluster, "batch": index, "hosts": op.batches[index]}
        if index < len(op.batches):
            left = [a for batch in op.batches[index:] for a in batch]
            self.logger.info(
                "%s %s: stopped after %s failed; not run: %s", op.kind, op.cluster, failed, left
            )
        record = self.records.finish(op, lock)
        lock.release()
        return record.to_dict() if record is not None else {"cluster": op.cluster}

    def on_recover(self, message: Message, name: str | None = None) -> dict[str, list[str]]:
        """Finish records left ``in_process`` by dead operations (every cluster when no name)."""
        names = [name] if name else [c.name for c in self.storage.list(Clusters).clusters]
        recovered = {}
        for cluster in names:
            kinds = self.records.recover(cluster)
            if kinds:
                self.logger.warning("recover %s: finished interrupted %s", cluster, kinds)
                recovered[cluster] = kinds
            # The sweep of a starting worker cannot count on the last watchdog: a dead
            # worker may hold it (a countdown task waits, unacknowledged, in its worker).
            self._watch(cluster, again=name is None)
        return recovered

    def _start(
        self, kind: str, name: str, version: str, batch_size: int | None, on_failure: str
    ) -> dict[str, Any]:
        if not isinstance(name, str) or not name:
            raise InvalidParams(f"a cluster name is needed (got {name!r})")
        size = self.config.get("batch_size", 1) if batch_size is None else batch_size
        cluster = self.storage.get_cluster(name)
        token = OperationLock.new_token()
        op = Operation(kind, name, token, batches(cluster.hostset, size), on_failure, version)
        lock = self._lock(op)
        if not lock.acquire():
            raise self._busy(name)
        try:
            self.records.recover(name)
            record = self.records.start(op)
            if op.batches:
                self._start_batch(op, 0)
                self._watch(name)
            else:
                record = self.records.finish(op, lock) or record
                lock.release()
        except BaseException:
            lock.release()
            raise
        self.logger.info(
            "%s %s: started, %d host(s) in %d batch(es)", kind, name, len(op.hosts), len(op.batches)
        )
        return record.to_dict()

    def _start_batch(self, op: Operation, index: int) -> None:
        app = self.bus.app
        data = op.to_json()
        header = [
            app.signature(f"{self.name}.run_host", args=(data, a), immutable=True, inline=False)
            for a in op.batches[index]
        ]
        body = app.signature(f"{self.name}.next_batch", args=(data, index + 1), inline=False)
        chord(header, body, app=app).apply_async(inline=False)

    def _run_step(self, message: Message, op: Operation, address: str) -> str | None:
        steps = ["start", op.kind, "wait for SSH", "done"] if op.kind == "restart" else None
        steps = steps or ["start", op.kind, "done"]

        def progress(step: str) -> None:
            info = {"cluster": op.cluster, "operation": op.kind, "address": address, "step": step}
            message.progress(steps.index(step), len(steps) - 1, info)

        try:
            return self.step.run(op, address, progress)
        except Exception as exc:  # noqa: BLE001 - a host's failure never breaks the chord
            self.logger.exception("%s %s %s: failed", op.kind, op.cluster, address)
            return f"{type(exc).__name__}: {exc}"

    def _abandoned(self, op: Operation, address: str) -> dict[str, Any]:
        self.logger.warning(
            "%s %s %s: the operation lost its lock; skipped", op.kind, op.cluster, address
        )
        self.records.recover(op.cluster)
        return {"address": address, "ok": False, "reason": "abandoned", "abandoned": True}

    def _busy(self, name: str) -> ClusterBusy:
        running = holder(self.client, name)
        kind, left = running if running is not None else ("operation", 0.0)
        model = RECORDS[kind].__name__ if kind in RECORDS else "record"
        return ClusterBusy(
            f"cluster {name!r} is busy: its {kind} is running (see {model} {name!r}); "
            f"try again when it has finished (its lock expires within {left:.0f} s if its "
            "worker died)",
            data={"cluster": name, "running": kind, "expires_in_s": round(left, 1)},
        )

    def _watch(self, cluster: str, again: bool = False) -> None:
        """Send ``recover(cluster)`` for when the running operation's lock would expire.

        One watchdog per lock lifetime (a key says one is on its way), unless ``again``.
        """
        running = holder(self.client, cluster)
        if running is None:
            return
        countdown = running[1] + 1
        key = f"{KEY_PREFIX}watchdog:{cluster}"
        # The key ends just before the recover runs, so that run can send the next one.
        if self.client.set(key, "1", nx=not again, px=max(100, int(countdown * 1000) - 500)):
            self.bus.app.send_task(
                f"{self.name}.recover", args=[cluster], countdown=countdown, ignore_result=True
            )

    def _lock(self, op: Operation) -> OperationLock:
        ttl = float(self.config.get("operation_lock_s", DEFAULT_LOCK_TTL_S))
        return OperationLock(self.client, op.cluster, op.kind, op.token, ttl)


def _recover_at_start(app: Any, spec: Any, queue: str) -> None:
    """A starting worker of this service finishes what dead workers left ``in_process``."""
    if spec.cls is ClusterExecService:
        app.send_task(f"{ClusterExecService.name}.recover", ignore_result=True)


add_startup_hook(_recover_at_start)
remove_leftovers_at_start(ClusterExecService.name)
