"""One investigation of one host: facts, bootstrap, and the host's status at each step.

``investigating`` is saved as soon as the investigation holds the host's lock; then
the facts (``os``, ``cpus``, ``memory``, ``space``, ``last_check``) with
``bootstrapping``, kept while the cluster's container manager registers the host;
then ``active`` once registered, or ``disassociated`` (no manager to register with).
Any failure saves ``failed`` with ``reason`` (step, exit status, end of output). A
second investigation of a host while one runs is refused with
:class:`~commissaire_tasks.errors.InvestigationInProgress` (-32051).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis

from commissaire_tasks.errors import InvestigationInProgress, StorageLookupError
from commissaire_tasks.models import Cluster, Host

from .bootstrap import bootstrap_playbook, bootstrap_variables
from .commands import CommandSet, UnknownOSError, command_set_for
from .coordination import RedisLock
from .keys import BadKeyError
from .known_hosts import KnownHosts
from .records import HostGone, HostRecords, now, reason
from .runner import PlaybookResult, run_playbook
from .target import SSHTarget, ssh_timeout_s, target_for

__all__ = ["Investigation", "InvestigationInProgress", "facts_of"]

#: The steps an investigation reports progress for, in order.
STEPS = ("read credentials", "gather facts", "bootstrap", "register")
#: Seconds an investigation's lock lives if its worker dies holding it.
DEFAULT_LOCK_TTL_S = 1800.0

Progress = Callable[[int, int, str], None]
#: Registers a ready host with its cluster's container manager; True when it did.
Registrar = Callable[[Host, Cluster], bool]


class _Failed(Exception):
    def __init__(self, step: str, exit_status: int | None, output: str) -> None:
        super().__init__(step)
        self.reason = reason(step, exit_status, output)


def facts_of(ansible_facts: Mapping[str, Any]) -> dict[str, Any]:
    """Host fields from Ansible's facts: OS name, CPUs, memory (MB), disk space (bytes)."""
    mounts = ansible_facts.get("ansible_mounts") or []
    memory = (ansible_facts.get("ansible_memory_mb") or {}).get("real", {})
    return {
        "os": str(ansible_facts.get("ansible_distribution", "")).lower(),
        "cpus": int(ansible_facts.get("ansible_processor_vcpus") or 0),
        "memory": int(memory.get("total") or 0),
        "space": sum(int(m.get("size_total") or 0) for m in mounts),
    }


@dataclass
class Investigation:
    """What an investigation needs; :meth:`run` investigates one host.

    ``command_sets`` is called for each investigation, so edited command sets are
    used without restarting the worker.
    """

    records: HostRecords
    client: redis.Redis
    command_sets: Callable[[], Mapping[str, CommandSet]]
    config: Mapping[str, Any]
    logger: logging.Logger
    register: Registrar

    def run(self, address: str, progress: Progress) -> Host:
        """Investigate ``address``; the host as saved last (``failed`` on failure)."""
        lock = RedisLock(self.client, f"investigate:{address}", self._lock_ttl_s)
        if not lock.acquire():
            raise InvestigationInProgress(
                f"host {address} is already being investigated "
                f"(lock expires in {lock.holder_ttl_s():.0f} s at most); try again after it",
                data={"address": address},
            )
        try:
            if self.records.host(address) is None:
                raise StorageLookupError(f"no Host {address} is stored", data={"address": address})
            return self._investigate(address, progress)
        except HostGone:
            self.logger.info("investigate %s: the host was deleted; stopping", address)
            return Host.new(address=address)
        finally:
            lock.release()

    def _investigate(self, address: str, progress: Progress) -> Host:
        self.records.update(address, status="investigating", reason={})
        self._step(address, progress, 0)
        try:
            host = self._steps(address, progress)
        except _Failed as failure:
            self.logger.info(
                "investigate %s: failed at %s (exit status %s)",
                address,
                failure.reason["step"],
                failure.reason["exit_status"],
            )
            return self.records.update(address, status="failed", reason=failure.reason)
        except HostGone:
            raise
        except Exception as exc:
            self.records.update(
                address, status="failed", reason=reason("investigate", None, repr(exc))
            )
            raise
        progress(len(STEPS), len(STEPS), host.status)
        return host

    def _steps(self, address: str, progress: Progress) -> Host:
        creds = self.records.creds(address)
        if creds is None:
            raise _Failed("read credentials", None, f"no HostCreds stored for {address}")
        target = target_for(self.config, address, creds.remote_user)
        self._step(address, progress, 1)
        facts = self._ansible("gather facts", "facts.yml", target, creds.ssh_priv_key)
        host = self.records.update(
            address, status="bootstrapping", last_check=now(), **facts_of(facts.facts)
        )
        self._step(address, progress, 2)
        try:
            command_set = command_set_for(host.os, self.command_sets())
        except UnknownOSError as exc:
            raise _Failed("choose command set", None, str(exc)) from exc
        cluster = self.records.cluster_of(address)
        try:
            network = self.records.network_for(cluster)
        except StorageLookupError as exc:
            raise _Failed("read cluster network", None, str(exc)) from exc
        variables = bootstrap_variables(target, network, self.config)
        playbook = bootstrap_playbook(command_set)
        self._ansible("bootstrap", playbook, target, creds.ssh_priv_key, variables)
        ready = "disassociated"
        if cluster is not None and cluster.container_manager:
            # Still bootstrapping while the manager answers: whoever waits for a final
            # status never sees a ready host that is about to turn active or failed.
            self._step(address, progress, 3)
            try:
                registered = self.register(host, cluster)
            except Exception as exc:  # noqa: BLE001 - any failure of the manager's call
                raise _Failed("register", None, f"{type(exc).__name__}: {exc}") from exc
            if registered:
                ready = "active"
        return self.records.update(address, status=ready, reason={})

    def _ansible(
        self,
        step: str,
        playbook: Any,
        target: SSHTarget,
        key: str,
        variables: Mapping[str, Any] | None = None,
    ) -> PlaybookResult:
        try:
            result = run_playbook(
                playbook,
                target,
                key,
                KnownHosts(self.client),
                variables,
                ssh_timeout_s(self.config),
            )
        except BadKeyError as exc:
            raise _Failed("read credentials", None, str(exc)) from exc
        if result.ok:
            return result
        name = step if result.step in ("", step) else f"{step}: {result.step}"
        output = result.output
        if result.host_key_changed:
            output = (
                f"the SSH host key of {target.address} changed since first contact; if that "
                f"was expected, run investigator.forget_host_key {target.address}\n{output}"
            )
        raise _Failed(name, result.exit_status, output)

    def _step(self, address: str, progress: Progress, number: int) -> None:
        self.logger.info("investigate %s: %s", address, STEPS[number])
        progress(number, len(STEPS), STEPS[number])

    @property
    def _lock_ttl_s(self) -> float:
        return float(self.config.get("investigation_lock_s", DEFAULT_LOCK_TTL_S))
