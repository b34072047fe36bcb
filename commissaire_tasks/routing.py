"""Routing keys, queues and the rule that maps one to the other.

A call is addressed by a routing key ``<prefix>.<method>`` on a topic exchange.
A queue is bound with ``<prefix>.*``, so the last segment names the method and
the task that runs it is named after the routing key itself: ``simple.add`` runs
``SimpleService.on_add`` from queue ``simple``; with ``qkwargs`` binding queue
``my_queue`` to ``queues.my_queue.*``, ``queues.my_queue.ping`` runs ``on_ping``.

:class:`Router` knows the queues a caller can name without asking the broker:
configured ones and the default queue of every service class defined in the
process. Any other routing key is routed by the broker's own bindings, as the
original's topic exchange routed it (see :mod:`._bindings`); a key nothing is
bound to fails with :class:`~commissaire_tasks.errors.NoRouteError` at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from kombu.entity import Exchange, Queue

from .errors import ConfigurationError, NoRouteError

#: A service name, a queue name and each routing key segment.
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class QueueSpec:
    """A queue and the routing key prefix bound to it (binding ``<prefix>.*``).

    ``service`` names the service a worker serves from this queue; callers do not
    need it, ``celery -A commissaire_tasks worker`` does for configured queues.
    """

    name: str
    prefix: str
    service: str | None = None

    @property
    def binding(self) -> str:
        return f"{self.prefix}.*"

    @classmethod
    def default_for(cls, service_name: str) -> QueueSpec:
        """The queue a service uses unless told otherwise: its name, bound with ``<name>.*``."""
        return cls(name=service_name, prefix=service_name)

    @classmethod
    def from_kwargs(cls, qkwargs: Mapping[str, Any]) -> QueueSpec:
        """Build from a kombu Queue keyword dict as the original took (``name``, ``routing_key``).

        An optional ``service`` key names the service served from the queue.
        """
        name = qkwargs.get("name")
        service = qkwargs.get("service")
        binding = qkwargs.get("routing_key") or (f"{name}.*" if name else None)
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"queue definition {dict(qkwargs)!r} needs a 'name'")
        if not isinstance(binding, str) or not binding.endswith(".*"):
            raise ConfigurationError(
                f"queue {name!r}: routing_key must look like '<prefix>.*', got {binding!r}"
            )
        prefix = binding[:-2]
        if not prefix or not all(_SEGMENT.match(s) for s in prefix.split(".")):
            raise ConfigurationError(f"queue {name!r}: bad routing key prefix {prefix!r}")
        if service is not None and not (isinstance(service, str) and NAME_PATTERN.match(service)):
            raise ConfigurationError(f"queue {name!r}: bad service name {service!r}")
        return cls(name=name, prefix=prefix, service=service)

    def task_name(self, method: str) -> str:
        """The task (and routing key) that runs ``method`` through this queue."""
        return f"{self.prefix}.{method}"

    def to_kombu(self, exchange: str, queue_type: str = "classic") -> Queue:
        """The kombu queue; ``queue_type`` is RabbitMQ's ``x-queue-type`` (see Settings)."""
        return _kombu_queue(self.name, self.binding, exchange, queue_type)


def queue_arguments(queue_type: str) -> dict[str, str] | None:
    """The declare arguments of a service queue of ``queue_type`` (none for classic)."""
    return None if queue_type == "classic" else {"x-queue-type": queue_type}


@lru_cache(maxsize=1024)
def _kombu_queue(name: str, binding: str, exchange: str, queue_type: str) -> Queue:
    return Queue(
        name,
        Exchange(exchange, type="topic", durable=True),
        routing_key=binding,
        queue_arguments=queue_arguments(queue_type),
    )


def split_routing_key(routing_key: str) -> tuple[str, str]:
    """Split ``<prefix>.<method>`` into its prefix and method, or raise NoRouteError."""
    if not isinstance(routing_key, str):
        raise NoRouteError(repr(routing_key), "a routing key must be a string")
    prefix, _, method = routing_key.rpartition(".")
    if not prefix or not method or not all(_SEGMENT.match(s) for s in routing_key.split(".")):
        raise NoRouteError(routing_key, "expected '<service>.<method>'")
    return prefix, method


def topic_matches(pattern: str, routing_key: str) -> bool:
    """True when an AMQP topic binding ``pattern`` matches ``routing_key``.

    Words are separated by dots; ``*`` stands for exactly one word and ``#`` for
    zero or more, as on a RabbitMQ topic exchange.
    """
    return _words_match(tuple(pattern.split(".")), tuple(routing_key.split(".")))


@lru_cache(maxsize=4096)
def _words_match(pattern: tuple[str, ...], words: tuple[str, ...]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_words_match(rest, words[skip:]) for skip in range(len(words) + 1))
    if not words:
        return False
    return (head == "*" or head == words[0]) and _words_match(rest, words[1:])


class Router:
    """Finds the queue a routing key reaches, from the queues the caller knows.

    Known queues are explicitly configured queue definitions, then the default
    queue of every service this process defines (``<service>.<method>`` reaches
    queue ``<service>``, even before a worker of it has run). Calls to them are
    kept in the queue while no worker runs. Other keys are the broker's business.
    """

    def __init__(self, queues: Iterable[QueueSpec] = ()) -> None:
        self._by_prefix: dict[str, QueueSpec] = {}
        self._services: dict[str, QueueSpec] = {}
        for spec in queues:
            self.add(spec)

    def add_service(self, name: str) -> None:
        """Know service ``name``: its default queue is reachable without the broker's help."""
        self._services[name] = QueueSpec.default_for(name)

    def known(self, routing_key: str) -> QueueSpec | None:
        """The known queue ``routing_key`` reaches, or None; NoRouteError if it is malformed."""
        prefix, _ = split_routing_key(routing_key)
        return self._by_prefix.get(prefix) or self._services.get(prefix)

    def add(self, spec: QueueSpec) -> None:
        known = self._by_prefix.get(spec.prefix)
        if known is not None and known != spec:
            raise ConfigurationError(
                f"routing key prefix {spec.prefix!r} is bound to both {known.name!r} "
                f"and {spec.name!r}"
            )
        self._by_prefix[spec.prefix] = spec

    def route(self, routing_key: str) -> QueueSpec:
        """Return the known queue ``routing_key`` reaches; raise NoRouteError if none is."""
        spec = self.known(routing_key)
        if spec is None:
            raise NoRouteError(routing_key, "no known service or configured queue claims it")
        return spec
