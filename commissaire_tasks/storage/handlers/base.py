"""The store handler contract: dicts kept by (model type, key), with revisions.

Handlers know nothing about model classes; the storage service hands them the
stored fields of a record. Every handler decides in the store itself whether a
save created or updated a record (so concurrent saves of one new record give
exactly one "created"), bumps the record's revision by one per committed change
(revisions survive a delete: a tombstone keeps the last one), and treats a
write whose ``write_id`` equals the record's last write as a replay: nothing is
written and the first outcome is reported again. That makes a redelivered call
harmless.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from ...errors import ConfigurationError, StorageLookupError
from ...redact import MASK, redact_url

Event = Literal["created", "updated", "deleted"]

#: Option names whose values are never shown.
SECRET_OPTIONS = ("key", "password", "secret", "token")


@dataclass(frozen=True)
class Record:
    """A live stored record."""

    data: dict[str, Any]
    revision: int


@dataclass(frozen=True)
class WriteOutcome:
    """What a committed (or replayed) write did."""

    event: Event
    revision: int
    data: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class RecordState:
    """Everything a handler keeps per record, live or tombstone."""

    data: dict[str, Any] | None = None
    revision: int = 0
    write_id: str | None = None
    last_event: Event | None = None
    deleted: bool = False

    @property
    def live(self) -> bool:
        return self.data is not None and not self.deleted

    def replay_of(self, write_id: str | None) -> WriteOutcome | None:
        """The outcome to report again when ``write_id`` was this record's last write."""
        if write_id is None or write_id != self.write_id or self.last_event is None:
            return None
        return WriteOutcome(self.last_event, self.revision, dict(self.data or {}), replayed=True)

    def saved(self, data: dict[str, Any], write_id: str | None) -> tuple[RecordState, WriteOutcome]:
        replay = self.replay_of(write_id)
        if replay is not None:
            return self, replay
        event: Event = "updated" if self.live else "created"
        state = RecordState(dict(data), self.revision + 1, write_id, event, False)
        return state, WriteOutcome(event, state.revision, dict(data))

    def removed(
        self, model_type: str, key: str, write_id: str | None
    ) -> tuple[RecordState, WriteOutcome]:
        replay = self.replay_of(write_id)
        if replay is not None:
            return self, replay
        if not self.live:
            raise not_found(model_type, key)
        state = dataclasses.replace(
            self, revision=self.revision + 1, write_id=write_id, last_event="deleted", deleted=True
        )
        return state, WriteOutcome("deleted", state.revision, dict(self.data or {}))


def not_found(model_type: str, key: str) -> StorageLookupError:
    return StorageLookupError(
        f"no {model_type} record with key {key!r}", data={"model": model_type, "key": key}
    )


class StoreHandler(abc.ABC):
    """Keeps records of some model types. See the module docstring for the contract."""

    #: The handler's type name in config (``"redis"``, ``"sql"``, ...).
    type_name: ClassVar[str]
    #: Options the handler accepts, with their types and defaults.
    options: ClassVar[Mapping[str, tuple[type | tuple[type, ...], Any]]] = {}
    #: Options that must be given.
    required: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Mapping[str, Any]) -> None:
        """Keep the checked config; connections open on first use (after a fork)."""
        self.config = dict(config)

    @classmethod
    def check_config(cls, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate ``options`` (unchanged) and return them with defaults filled in."""
        unknown = sorted(set(options) - set(cls.options))
        if unknown:
            known = ", ".join(sorted(cls.options)) or "none"
            raise ConfigurationError(f"unknown option(s) {unknown} (known: {known})")
        missing = [name for name in cls.required if options.get(name) in (None, "")]
        if missing:
            raise ConfigurationError(f"missing required option(s) {missing}")
        config = {}
        for name, (kind, default) in cls.options.items():
            value = options.get(name, default)
            if value is not None and not isinstance(value, kind):
                raise ConfigurationError(
                    f"option {name!r} must be {_kind_name(kind)}, not {value!r}"
                )
            config[name] = value
        return config

    @abc.abstractmethod
    def save(
        self, model_type: str, key: str, data: dict[str, Any], write_id: str | None = None
    ) -> WriteOutcome: ...

    @abc.abstractmethod
    def get(self, model_type: str, key: str) -> Record: ...

    @abc.abstractmethod
    def delete(self, model_type: str, key: str, write_id: str | None = None) -> WriteOutcome: ...

    @abc.abstractmethod
    def list(self, model_type: str) -> list[Record]: ...

    def describe(self) -> dict[str, Any]:
        """Type and config, with passwords and keys shown as ``***``."""
        return {"type": self.type_name, "config": redact_options(self.config)}

    def close(self) -> None:  # noqa: B027 - most handlers hold nothing to release
        """Release connections (a handler may be used again afterwards)."""


def redact_options(config: Mapping[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for name, value in config.items():
        if any(word in name.lower() for word in SECRET_OPTIONS):
            shown[name] = MASK if value else value
        elif isinstance(value, str) and "://" in value:
            shown[name] = redact_url(value)
        else:
            shown[name] = value
    return shown


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)
