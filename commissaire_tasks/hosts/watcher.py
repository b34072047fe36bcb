"""The watcher service: checks every watched host, one task per host per round.

``watcher.check_all`` (sent by the beat, every ``interval_s``) lists the hosts that
are ``active``, ``disassociated`` or ``unreachable`` right now, so hosts created while
the watcher was down are picked up and deleted ones are not, and sends one
``watcher.check`` per host (they run in parallel, bounded by the worker's
concurrency). ``watcher.check(address)`` logs in and pings: success records
``last_check`` and gives an ``unreachable`` host its previous status back;
``failures_before_unreachable`` failures in a row (default 3) mark it ``unreachable``
with the reason. A host deleted before or during its check is left alone (never
re-created). Config: ``interval_s`` (60), ``failures_before_unreachable`` (3),
``ssh_timeout_s`` (10), ``python_interpreter``, ``redis_url``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import redis

from commissaire_tasks.errors import ConfigurationError
from commissaire_tasks.message import Message
from commissaire_tasks.models import Host, Hosts
from commissaire_tasks.service import CommissaireService
from commissaire_tasks.storage.client import NOTIFY_EVENT_DELETED, StorageClient, on_storage_change

from .coordination import KEY_PREFIX, RedisLock, coordination_redis
from .keys import BadKeyError, remove_leftovers_at_start
from .known_hosts import KnownHosts
from .records import HostGone, HostRecords, now, reason
from .runner import PlaybookResult, run_playbook
from .target import ssh_timeout_s, target_for

__all__ = ["WATCHED_STATUSES", "WatcherService"]

#: Host statuses the watcher checks.
WATCHED_STATUSES = ("active", "disassociated", "unreachable")
#: Seconds between rounds when the config names none.
DEFAULT_INTERVAL_S = 60.0
#: Failed checks in a row before a host is marked unreachable, by default.
DEFAULT_FAILURES = 3


def _state_key(address: str) -> str:
    """Redis hash of one host's watch state: ``failures`` and ``previous`` status."""
    return f"{KEY_PREFIX}watch:{address}"


class WatcherService(CommissaireService):
    """Exposed as ``watcher.check_all`` and ``watcher.check``."""

    name = "watcher"

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> None:
        interval = config.get("interval_s", DEFAULT_INTERVAL_S)
        if not isinstance(interval, int | float) or interval <= 0:
            raise ConfigurationError("watcher: interval_s must be a positive number of seconds")
        failures = config.get("failures_before_unreachable", DEFAULT_FAILURES)
        if not isinstance(failures, int) or failures < 1:
            raise ConfigurationError("watcher: failures_before_unreachable must be 1 or more")

    @cached_property
    def records(self) -> HostRecords:
        return HostRecords(StorageClient(self))

    @cached_property
    def client(self) -> redis.Redis:
        return coordination_redis(self.config)

    def on_check_all(self, message: Message) -> list[str]:
        """Send one check per watched host; return their addresses."""
        hosts = self.records.storage.list(Hosts).hosts
        addresses = [h.address for h in hosts if h.status in WATCHED_STATUSES]
        self.bus.notify_many("watcher.check", [[a] for a in addresses])
        self.logger.info("watch round: %d host(s) to check", len(addresses))
        return addresses

    def on_check(self, message: Message, address: str) -> dict[str, Any]:
        """Check one host now; ``{"address", "checked", "status"}`` (``why`` when not checked)."""
        host = self.records.host(address)  # before the lock: a deleted host is done at once
        if host is None or host.status not in WATCHED_STATUSES:
            why = "deleted" if host is None else f"status {host.status!r} is not watched"
            return {"address": address, "checked": False, "why": why}
        lock = RedisLock(self.client, f"check:{address}", ssh_timeout_s(self.config) * 6 + 30)
        if not lock.acquire():
            return {"address": address, "checked": False, "why": "a check of it is running"}
        try:
            result = self._ping(address)
            host = self._record(address, result)
            self.logger.info("check %s: %s", address, "ok" if result.ok else "failed")
            return {"address": address, "checked": True, "status": host.status}
        except HostGone:
            self.client.delete(_state_key(address))
            return {"address": address, "checked": False, "why": "deleted"}
        finally:
            lock.release()

    @on_storage_change(Host, NOTIFY_EVENT_DELETED)
    def host_deleted(self, event: str, host: Host, message: Message) -> None:
        self.client.delete(_state_key(host.address))

    def _ping(self, address: str) -> PlaybookResult:
        creds = self.records.creds(address)
        if creds is None:
            return PlaybookResult(ok=False, step="read credentials", output="no HostCreds stored")
        target = target_for(self.config, address, creds.remote_user)
        try:
            return run_playbook(
                "check.yml",
                target,
                creds.ssh_priv_key,
                KnownHosts(self.client),
                timeout_s=ssh_timeout_s(self.config),
            )
        except BadKeyError as exc:
            return PlaybookResult(ok=False, step="read credentials", output=str(exc))

    def _record(self, address: str, result: PlaybookResult) -> Host:
        """Save what the check found; HostGone if the host was deleted meanwhile."""
        state = _state_key(address)
        current = self.records.host(address)
        if current is None:
            raise HostGone(address)
        if result.ok:
            previous = self.client.hget(state, "previous") or "disassociated"
            self.client.delete(state)
            if current.status == "unreachable":
                return self.records.update(address, status=previous, last_check=now(), reason={})
            return self.records.update(address, last_check=now())
        failures = int(self.client.hincrby(state, "failures", 1))
        if failures < self._failures or current.status == "unreachable":
            return current
        self.client.hset(state, "previous", current.status)
        why = reason(f"check: {result.step}", result.exit_status, result.output)
        why["failed_checks"] = failures
        return self.records.update(address, status="unreachable", reason=why)

    @property
    def _failures(self) -> int:
        return int(self.config.get("failures_before_unreachable", DEFAULT_FAILURES))


remove_leftovers_at_start(WatcherService.name)
