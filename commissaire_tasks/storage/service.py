"""The storage service: validates records and keeps them through store handlers.

Runs as its own worker (``celery -A workers.storage worker``, queue ``storage``).
Every committed create, update and delete is announced to the services that
subscribed to it (see :mod:`commissaire_tasks.storage.notifier`).

Writes are idempotent per call: a redelivered ``save`` (its worker died) is
recognised by its call id and reports the first outcome without writing again.
A write whose notifications cannot be published (the broker went away after the
write) is run again once the broker is back: its replay writes nothing and
announces the change again, with the same revision.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

from celery.exceptions import Reject

from ..errors import BrokerUnavailable, InvalidParams, ValidationError
from ..message import Message
from ..models import Cluster, Host, ListModel, Model, SecretModel, model_class
from ..service import CommissaireService
from .handlers.base import WriteOutcome
from .notifier import Notifier
from .routing import HandlerTable
from .sealing import Sealer, is_sealed

#: Host status counted as available in a Cluster's host counts.
AVAILABLE_STATUS = "active"


class StorageService(CommissaireService):
    """Exposes ``storage.save/get/delete/list/list_store_handlers/subscribe/unsubscribe``.

    ``storage.subscriptions`` lists the subscriptions (``status`` reads it).
    """

    name = "storage"

    @classmethod
    def check_config(cls, config: Mapping[str, Any]) -> None:
        HandlerTable(config).close()

    @cached_property
    def handlers(self) -> HandlerTable:
        return HandlerTable(self.config)

    @cached_property
    def notifier(self) -> Notifier:
        return Notifier(self.handlers, self.bus, self.config)

    @cached_property
    def sealer(self) -> Sealer:
        return Sealer()

    def on_save(self, message: Message, model_type_name: str, model_json_data: Any) -> Any:
        """Validate and store one record or a list of one type; return what was stored."""
        cls = _record_class(model_type_name)
        models = [self._build(cls, data) for data in _records(model_json_data)]
        if cls is Cluster:
            self._check_membership(models)
        saved = []
        for index, model in enumerate(models):
            entry = self.handlers.for_model(model)
            outcome = entry.handler.save(
                cls.__name__, str(model.primary_key), model.stored_dict(), _write_id(message, index)
            )
            stored = cls.trusted(outcome.data)  # checked above, or by the write it replays
            self._announce(cls, outcome, stored)
            saved.append(self._render(self._complete(stored)))
        return saved if isinstance(model_json_data, list) else saved[0]

    def on_get(self, message: Message, model_type_name: str, model_json_data: Any) -> Any:
        """Return the full record(s) named by identifying data (e.g. just the key)."""
        cls = _record_class(model_type_name)
        found = []
        for key, source in [self._identify(cls, data) for data in _records(model_json_data)]:
            entry = self.handlers.for_model(cls, source)
            record = entry.handler.get(cls.__name__, key)
            found.append(self._render(self._complete(cls.from_dict(record.data))))
        return found if isinstance(model_json_data, list) else found[0]

    def on_delete(self, message: Message, model_type_name: str, model_json_data: Any) -> None:
        """Delete the record(s) named by identifying data."""
        cls = _record_class(model_type_name)
        keys = [self._identify(cls, data) for data in _records(model_json_data)]
        for index, (key, source) in enumerate(keys):
            entry = self.handlers.for_model(cls, source)
            outcome = entry.handler.delete(cls.__name__, key, _write_id(message, index))
            self._announce(cls, outcome)

    def on_list(self, message: Message, model_type_name: str) -> Any:
        """Every record of a list model's child type, as that list model."""
        list_cls = model_class(model_type_name)
        if not (isinstance(list_cls, type) and issubclass(list_cls, ListModel)):
            raise InvalidParams(f"{model_type_name!r} is not a list model (e.g. 'Hosts')")
        child = list_cls.child_model
        records: dict[str, Model] = {}
        for entry in self.handlers.for_listing(child):
            for record in entry.handler.list(child.__name__):
                model = child.from_dict(record.data)
                records.setdefault(str(model.primary_key), self._complete(model))
        items = [records[key] for key in sorted(records)]
        return list_cls.new(items).to_dict()

    def on_list_store_handlers(self, message: Message) -> list[dict[str, Any]]:
        """Each configured handler: type, config (secrets redacted) and model types."""
        return [entry.describe() for entry in self.handlers]

    def on_subscribe(self, message: Message, subscription: dict[str, Any]) -> None:
        """Record (or renew) a service's subscription to change notifications."""
        self.notifier.table.subscribe(subscription)

    def on_unsubscribe(self, message: Message, service: str) -> bool:
        """Forget a service's subscription (a retired subscriber); False if it had none."""
        if not isinstance(service, str) or not service:
            raise InvalidParams("service must be a non-empty string")
        return self.notifier.table.unsubscribe(service)

    def on_subscriptions(self, message: Message) -> list[dict[str, Any]]:
        """Every subscription: service, queue and (model, event) filters."""
        return [subscription.to_dict() for subscription in self.notifier.table.all()]

    def _announce(
        self, cls: type[Model], outcome: WriteOutcome, model: Model | None = None
    ) -> None:
        """Announce a committed write; without a broker, requeue the call to run it again.

        The replay (same call id) writes nothing and announces again: a subscriber gets
        the change once the broker is back (perhaps twice, with the same revision, which
        its ``RevisionGate`` filters) instead of never.
        """
        try:
            self.notifier.announce(cls, outcome, model)
        except BrokerUnavailable as exc:
            raise Reject(exc, requeue=True) from exc

    def _build(self, cls: type[Model], data: Any) -> Model:
        data = self.sealer.unseal(data) if is_sealed(data) else data
        if not isinstance(data, dict):
            raise InvalidParams(f"{cls.__name__} data must be an object, not {type(data).__name__}")
        try:
            return cls.checked(data)  # one pass: cast and every rule
        except ValidationError:
            raise
        except Exception as exc:  # noqa: BLE001 - any construction failure is bad input
            raise ValidationError(f"invalid {cls.__name__}: {exc}", [str(exc)]) from exc

    def _check_membership(self, clusters: list[Model]) -> None:
        """A host belongs to one cluster at most: refuse a hostset naming another's host.

        Checked against the stored clusters before writing (two concurrent saves
        racing for one host can both pass; the container service then registers it
        once, with the manager of whichever cluster it reconciles first).
        """
        saving = {str(cluster.primary_key) for cluster in clusters}
        owner: dict[str, str] = {}
        for entry in self.handlers.for_listing(Cluster):
            for record in entry.handler.list(Cluster.__name__):
                if record.data.get("name") not in saving:
                    for address in record.data.get("hostset") or []:
                        owner.setdefault(address, str(record.data.get("name")))
        problems = []
        for cluster in clusters:
            assert isinstance(cluster, Cluster)
            for address in cluster.hostset:
                other = owner.setdefault(address, cluster.name)
                if other != cluster.name:
                    problems.append(f"hostset: host {address} is already in cluster {other!r}")
        if problems:
            raise ValidationError(f"invalid Cluster: {'; '.join(problems)}", errors=problems)

    def _identify(self, cls: type[Model], data: Any) -> tuple[str, str]:
        """The key named by identifying data, and its ``source`` ('' when not given; Hosts)."""
        data = self.sealer.unseal(data) if is_sealed(data) else data
        field = _key_field(cls)
        key = (
            data
            if isinstance(data, str)
            else (data or {}).get(field)
            if isinstance(data, dict)
            else None
        )
        if not isinstance(key, str) or not key:
            raise InvalidParams(f"{cls.__name__} lookup needs a non-empty {field!r}")
        source = data.get("source") if isinstance(data, dict) else None
        if not isinstance(source, str) or "source" not in cls.model_fields:
            source = ""
        return key, source

    def _complete(self, model: Model) -> Model:
        """Fill computed fields: a Cluster's host counts."""
        if isinstance(model, Cluster):
            hosts = self._host_statuses(model.hostset)
            available = sum(1 for status in hosts if status == AVAILABLE_STATUS)
            model.hosts = {
                "total": len(model.hostset),
                "available": available,
                "unavailable": len(model.hostset) - available,
            }
        return model

    def _host_statuses(self, addresses: list[str]) -> list[str]:
        statuses = []
        for address in addresses:
            entry = self.handlers.for_model(Host)
            try:
                statuses.append(str(entry.handler.get("Host", address).data.get("status", "")))
            except Exception:  # noqa: BLE001 - a missing host counts as unavailable
                statuses.append("")
        return statuses

    def _render(self, model: Model) -> Any:
        data = model.to_dict()
        return self.sealer.seal(data) if isinstance(model, SecretModel) else data


def _record_class(name: Any) -> type[Model]:
    if not isinstance(name, str):
        raise InvalidParams(f"model_type_name must be a string, not {type(name).__name__}")
    cls = model_class(name)
    if issubclass(cls, ListModel) or cls.primary_key_field is None:
        raise InvalidParams(f"{name!r} is not a stored record type")
    return cls


def _key_field(cls: type[Model]) -> str:
    assert cls.primary_key_field is not None
    return cls.primary_key_field


def _records(data: Any) -> list[Any]:
    if isinstance(data, list):
        if not data:
            raise InvalidParams("an empty list of records")
        return data
    return [data]


def _write_id(message: Message, index: int) -> str:
    return f"{message.id}:{index}"


__all__ = ["StorageService", "WriteOutcome"]


def __getattr__(name: str) -> Any:
    """``app``: ``celery -A commissaire_tasks.storage.service worker`` serves the storage service.

    Built on first use, so importing the service class creates no app.
    """
    if name == "app":
        from ..worker import service_app

        globals()["app"] = service_app(StorageService)
        return globals()["app"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
