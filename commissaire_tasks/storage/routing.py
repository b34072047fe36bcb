"""Which store handler keeps which model: the ``storage_handlers`` config.

::

    {"storage_handlers": [
        {"type": "sql", "models": ["Host*", "Cluster"], "url": "postgresql+psycopg://..."},
        {"type": "redis", "name": "lab", "models": [], "url": "redis://..."}
    ]}

Model names are matched with shell patterns. Models no handler claims go to the
default Redis handler; secret models always go to the secrets handler (patterns
skip them; naming one is an error); a Host
whose ``source`` names a handler is kept by that handler. Every problem (unknown
type, a pattern matching nothing, a model claimed twice, bad options) is a
ConfigurationError raised when the table is built, before any call is served.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError
from ..models import ListModel, Model, SecretModel, model_types
from .handlers import handler_class
from .handlers.base import StoreHandler

#: Config key holding the list of handler definitions.
CONFIG_KEY = "storage_handlers"
#: Keys of a handler definition that are not the handler's own options.
_DEFINITION_KEYS = {"type", "models", "name"}
DEFAULT_HANDLER = "redis"
SECRETS_HANDLER = "secrets"


@dataclass(frozen=True)
class HandlerEntry:
    """One configured handler: its name, type, instance and the models it keeps."""

    name: str
    type: str
    handler: StoreHandler
    models: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        return {**self.handler.describe(), "name": self.name, "models": list(self.models)}


class HandlerTable:
    """Model type name -> handler, built from a service config."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        definitions = config.get(CONFIG_KEY) or []
        if not isinstance(definitions, list) or not all(
            isinstance(d, Mapping) for d in definitions
        ):
            raise ConfigurationError(f"{CONFIG_KEY!r} must be a list of handler objects")
        record_models = {
            name: cls for name, cls in model_types().items() if not issubclass(cls, ListModel)
        }
        self._entries: dict[str, HandlerEntry] = {}
        self._by_model: dict[str, HandlerEntry] = {}
        for definition in definitions:
            self._add(definition, record_models)
        self._add_defaults(record_models)

    def for_model(self, model: type[Model] | Model, source: str = "") -> HandlerEntry:
        """The handler that keeps ``model``; a ``source`` (given, or the instance's) picks one."""
        source = source or (getattr(model, "source", "") if isinstance(model, Model) else "")
        if source and source in self._entries:
            return self._entries[source]
        cls = model if isinstance(model, type) else type(model)
        return self._by_model[cls.__name__]

    def for_listing(self, model_cls: type[Model]) -> list[HandlerEntry]:
        """Every handler that may hold records of ``model_cls`` (Hosts may be anywhere)."""
        if "source" in model_cls.model_fields:
            return list(self._entries.values())
        return [self.for_model(model_cls)]

    @property
    def default(self) -> HandlerEntry:
        """The default handler (it also keeps the service's own bookkeeping)."""
        return self._entries.get(DEFAULT_HANDLER) or next(iter(self._entries.values()))

    def __iter__(self) -> Iterator[HandlerEntry]:
        return iter(self._entries.values())

    def close(self) -> None:
        for entry in self._entries.values():
            entry.handler.close()

    def _add(self, definition: Mapping[str, Any], record_models: Mapping[str, type[Model]]) -> None:
        type_name = definition.get("type")
        if not isinstance(type_name, str) or not type_name:
            raise ConfigurationError(f"store handler {dict(definition)!r} needs a 'type'")
        name = definition.get("name") or type_name
        if name in self._entries:
            raise ConfigurationError(f"two store handlers are named {name!r}; give one a 'name'")
        patterns = definition.get("models", [])
        if not isinstance(patterns, Sequence) or isinstance(patterns, str):
            raise ConfigurationError(f"store handler {name!r}: 'models' must be a list of patterns")
        models = self._claim(name, patterns, record_models)
        options = {k: v for k, v in definition.items() if k not in _DEFINITION_KEYS}
        entry = _entry(name, type_name, options, models)
        self._entries[name] = entry
        for model in models:
            self._by_model[model] = entry

    def _claim(
        self, name: str, patterns: Sequence[str], record_models: Mapping[str, type[Model]]
    ) -> tuple[str, ...]:
        claimed: list[str] = []
        for pattern in patterns:
            if pattern in record_models and issubclass(record_models[pattern], SecretModel):
                raise ConfigurationError(
                    f"store handler {name!r}: {pattern!r} is a secret model; it is always "
                    f"kept by the {SECRETS_HANDLER!r} handler"
                )
            matched = [  # patterns never sweep a secret model into a plain handler
                m
                for m in fnmatch.filter(record_models, pattern)
                if not issubclass(record_models[m], SecretModel)
            ]
            if not matched:
                raise ConfigurationError(
                    f"store handler {name!r}: pattern {pattern!r} matches no model "
                    f"(models: {', '.join(sorted(record_models))})"
                )
            for model in matched:
                owner = self._by_model.get(model)
                if owner is not None or model in claimed:
                    raise ConfigurationError(
                        f"model {model!r} is claimed by two store handlers: "
                        f"{owner.name if owner else name!r} and {name!r}"
                    )
                claimed.append(model)
        return tuple(claimed)

    def _add_defaults(self, record_models: Mapping[str, type[Model]]) -> None:
        secret = sorted(m for m, cls in record_models.items() if issubclass(cls, SecretModel))
        plain = sorted(m for m in record_models if m not in self._by_model and m not in secret)
        for name, models in ((SECRETS_HANDLER, secret), (DEFAULT_HANDLER, plain)):
            if not models:
                continue
            entry = self._entries.get(name)
            if entry is None or entry.type != name:
                entry = _entry(name, name, {}, ())
                self._entries.setdefault(name, entry)
            entry = self._entries[name]
            merged = HandlerEntry(entry.name, entry.type, entry.handler, (*entry.models, *models))
            self._entries[name] = merged
            for model in merged.models:
                self._by_model[model] = merged


def _entry(
    name: str, type_name: str, options: Mapping[str, Any], models: tuple[str, ...]
) -> HandlerEntry:
    cls = handler_class(type_name)
    try:
        config = cls.check_config(options)
    except ConfigurationError as exc:
        raise ConfigurationError(f"store handler {name!r}: {exc}") from exc
    return HandlerEntry(name=name, type=type_name, handler=cls(config), models=models)
