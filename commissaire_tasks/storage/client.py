"""StorageClient: models in, models out, the JSON and the bus hidden.

Inside a service (as the guide shows)::

    self.storage = client.StorageClient(self)
    cluster = self.storage.get_cluster("my_cluster")
    self.storage.save(host)
    self.storage.register_callback(self.host_created_cb, models.Host, client.NOTIFY_EVENT_CREATED)

From any other process: ``StorageClient()`` (the environment's default app).
Secret models are sealed before they leave the process (see :mod:`.sealing`).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from ..bus import Bus
from ..models import Cluster, Host, ListModel, Model, Network, SecretModel, model_class
from .sealing import Sealer, is_sealed
from .subscriber import NotifyCallback, on_storage_change, register_callback
from .subscriptions import (
    NOTIFY_EVENT_ANY,
    NOTIFY_EVENT_CREATED,
    NOTIFY_EVENT_DELETED,
    NOTIFY_EVENT_UPDATED,
)

__all__ = [
    "NOTIFY_EVENT_ANY",
    "NOTIFY_EVENT_CREATED",
    "NOTIFY_EVENT_DELETED",
    "NOTIFY_EVENT_UPDATED",
    "NotifyCallback",
    "StorageClient",
    "on_storage_change",
]

M = TypeVar("M", bound=Model)
L = TypeVar("L", bound=ListModel)


class StorageClient:
    """Talks to the storage service.

    Args:
        bus: The service using this client (anything with a ``bus`` attribute, as
            ``StorageClient(self)`` in a service), a :class:`Bus`, or None for the
            default app's bus.
        timeout: Seconds each call waits (the app's default when omitted).
    """

    #: Routing key prefix of the storage service.
    prefix = "storage"

    def __init__(self, bus: Any = None, timeout: float | None = None) -> None:
        self._owner = bus if bus is not None and not isinstance(bus, Bus) else None
        self.bus: Bus = getattr(bus, "bus", bus) if bus is not None else Bus()
        self.timeout = timeout
        self._sealer: Sealer | None = None

    def get(self, model: M) -> M:
        """The stored record ``model`` identifies (its key is enough)."""
        return self._one("get", model, self._identity)

    def get_many(self, models: Sequence[M]) -> list[M]:
        return self._many("get", models, self._identity)

    def save(self, model: M) -> M:
        """Validate locally, store, and return the record as stored.

        Raises:
            models.ValidationError: bad data, before anything is sent; ``errors`` names
                every bad field (a value that cannot be cast raises the subclass
                ``CoercionError``).
        """
        model._prepare()
        return self._one("save", model, self._payload)

    def save_many(self, models: Sequence[M]) -> list[M]:
        """Store several records of one type: all are validated before any is written."""
        for model in models:
            model._prepare()
        return self._many("save", models, self._payload)

    def delete(self, model: Model) -> None:
        self._send("delete", type(model), self._identity(model))

    def delete_many(self, models: Sequence[Model]) -> None:
        if models:
            self._send("delete", type(models[0]), [self._identity(m) for m in _one_type(models)])

    def list(self, list_model: type[L]) -> L:
        """Every stored record of ``list_model``'s child type, as ``list_model``."""
        data = self.bus.call(f"{self.prefix}.list", list_model.__name__, timeout=self.timeout)
        return list_model.from_dict(data)

    def list_store_handlers(self) -> builtins.list[dict[str, Any]]:
        return self.bus.call(f"{self.prefix}.list_store_handlers", timeout=self.timeout)  # type: ignore[no-any-return]

    def get_cluster(self, name: str) -> Cluster:
        return self.get(Cluster.new(name=name))

    def get_host(self, address: str) -> Host:
        return self.get(Host.new(address=address))

    def get_network(self, name: str) -> Network:
        return self.get(Network.new(name=name))

    def register_callback(
        self,
        callback: Callable[..., Any],
        model_type: type[Model] | None = None,
        event: str = NOTIFY_EVENT_ANY,
        broadcast: bool = False,
    ) -> None:
        """Run ``callback`` in this service whenever a matching record changes.

        ``broadcast=True``: in every running process, at most once, not durable
        (for in-process caches; see :mod:`commissaire_tasks.storage.broadcast`).
        """
        if self._owner is None:
            raise TypeError("register_callback needs the service: StorageClient(self)")
        register_callback(self._owner, callback, model_type, event, broadcast)

    def _one(self, method: str, model: M, payload: Callable[[Model], Any]) -> M:
        result = self._send(method, type(model), payload(model))
        return cast(M, self._model(type(model), result))

    def _many(
        self, method: str, models: Sequence[M], payload: Callable[[Model], Any]
    ) -> builtins.list[M]:
        if not models:
            return []
        cls = type(_one_type(models)[0])
        results = self._send(method, cls, [payload(m) for m in models])
        return [self._model(cls, r) for r in results]  # type: ignore[misc]

    def _send(self, method: str, cls: type[Model], payload: Any) -> Any:
        return self.bus.call(f"{self.prefix}.{method}", cls.__name__, payload, timeout=self.timeout)

    def _payload(self, model: Model) -> Any:
        return self._sealed(model, model.to_dict())

    def _identity(self, model: Model) -> Any:
        """What names ``model`` to get or delete it: its key, and its ``source`` when set."""
        if model.primary_key_field is None:
            return self._payload(model)  # not a stored record: the service says so
        data = {model.primary_key_field: model.primary_key}
        source = getattr(model, "source", None)
        if source:
            data["source"] = source
        return self._sealed(model, data)

    def _sealed(self, model: Model, data: dict[str, Any]) -> Any:
        return self.sealer.seal(data) if isinstance(model, SecretModel) else data

    def _model(self, cls: type[Model], data: Any) -> Model:
        if is_sealed(data):
            data = self.sealer.unseal(data)
        return model_class(cls.__name__).trusted(data)  # checked by the storage service

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            self._sealer = Sealer()
        return self._sealer


def _one_type(models: Sequence[M]) -> Sequence[M]:
    kinds = {type(m) for m in models}
    if len(kinds) > 1:
        raise TypeError(f"records of one type only, got {sorted(k.__name__ for k in kinds)}")
    return models
