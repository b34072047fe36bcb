"""Unit-testing a service without a broker.

>>> service = make_service(MyService, storage=FakeStorage())
>>> call_method(service, "echo", words="hi")
'hi'
"""

from __future__ import annotations

from typing import Any, TypeVar

from ..message import Message

S = TypeVar("S")


class RecordingBus:
    """A stand-in bus that records calls and answers from a dict of canned results."""

    def __init__(self, results: dict[str, Any] | None = None) -> None:
        self.results = dict(results or {})
        self.calls: list[tuple[str, Any]] = []

    def request(self, routing_key: str, params: Any = None, timeout: float | None = None) -> Any:
        self.calls.append((routing_key, params))
        return {
            "jsonrpc": "2.0",
            "id": str(len(self.calls)),
            "result": self.results.get(routing_key),
        }

    def call(self, routing_key: str, *args: Any, **kwargs: Any) -> Any:
        self.calls.append((routing_key, args or kwargs))
        return self.results.get(routing_key)

    def notify(self, routing_key: str, params: Any = None) -> None:
        self.calls.append((routing_key, params))

    def send(self, routing_key: str, *args: Any, **kwargs: Any) -> None:
        self.calls.append((routing_key, args or kwargs))


def make_service(service_class: type[S], bus: Any = None, **dependencies: Any) -> S:
    """Build ``service_class`` with a :class:`RecordingBus` and replaced dependencies.

    Every keyword names an attribute set on the instance after construction
    (``storage=FakeStorage()`` replaces ``self.storage``).
    """
    service = service_class(bus=bus if bus is not None else RecordingBus())  # type: ignore[call-arg]
    for name, value in dependencies.items():
        setattr(service, name, value)
    return service


def call_method(service: Any, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``service.on_<method>`` directly with a stand-in message."""
    name = getattr(service, "name", "")
    message = Message.stand_in(method=method, routing_key=f"{name}.{method}")
    return getattr(service, f"on_{method}")(message, *args, **kwargs)
