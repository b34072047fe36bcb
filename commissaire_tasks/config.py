"""Settings: where the broker is, how calls are routed and how long callers wait.

Settings come from the environment (``COMMISSAIRE_*``) and are frozen: code that
needs a different value builds a new object with :meth:`Settings.replace`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

#: Environment variable names.
ENV_BROKER_URL = "COMMISSAIRE_BROKER_URL"
ENV_RESULT_BACKEND = "COMMISSAIRE_RESULT_BACKEND"
ENV_EXCHANGE = "COMMISSAIRE_EXCHANGE"
ENV_CALL_TIMEOUT = "COMMISSAIRE_CALL_TIMEOUT"
ENV_QUEUES = "COMMISSAIRE_QUEUES"
ENV_CONFIG_FILE = "COMMISSAIRE_CONFIG_FILE"
ENV_MAX_PAYLOAD = "COMMISSAIRE_MAX_PAYLOAD_BYTES"
ENV_VISIBILITY_TIMEOUT = "COMMISSAIRE_VISIBILITY_TIMEOUT"
ENV_RESULT_EXPIRES = "COMMISSAIRE_RESULT_EXPIRES"
#: Seconds a caller's reply list (lean result path) outlives a caller that went away.
ENV_REPLY_EXPIRES = "COMMISSAIRE_REPLY_EXPIRES"
#: Comma-separated service modules ``celery -A commissaire_tasks`` imports.
ENV_SERVICES = "COMMISSAIRE_SERVICES"
#: ``demand`` (default: on while a monitor asks), ``on`` (always) or ``off`` (never).
ENV_TASK_EVENTS = "COMMISSAIRE_TASK_EVENTS"
#: Seconds without a monitor's request after which on-demand task events stop.
ENV_EVENTS_QUIET = "COMMISSAIRE_EVENTS_QUIET_S"
#: Worker pool: ``prefork`` (default), ``threads`` (for services that mostly wait) or ``solo``.
ENV_POOL = "COMMISSAIRE_POOL"
#: Fernet key that seals secret records (storage service and its clients).
ENV_SECRETS_KEY = "COMMISSAIRE_SECRETS_KEY"
#: ``json`` for JSON lines; anything else (or unset) keeps Celery's text format.
ENV_LOG_FORMAT = "COMMISSAIRE_LOG_FORMAT"
#: ``COMMISSAIRE_LOG_LEVEL_<SERVICE>``: log level of one service's logger.
ENV_LOG_LEVEL_PREFIX = "COMMISSAIRE_LOG_LEVEL_"
#: With ``user:password`` (comma-separated for several users).
ENV_FLOWER_AUTH = "COMMISSAIRE_FLOWER_AUTH"
#: Names the Redis the default handler uses (else the broker's).
ENV_STORE_URL = "COMMISSAIRE_STORE_URL"
#: RabbitMQ type of the service queues: ``classic`` or ``quorum`` (replicated in a cluster).
ENV_QUEUE_TYPE = "COMMISSAIRE_QUEUE_TYPE"
#: The exchange the original Commissaire clients publish to (the bridge's; default ``commissaire``).
ENV_BRIDGE_EXCHANGE = "COMMISSAIRE_BRIDGE_EXCHANGE"
#: ``on`` makes the storage service also publish ``notify.storage.<Model>.<event>``.
ENV_LEGACY_NOTIFICATIONS = "COMMISSAIRE_LEGACY_NOTIFICATIONS"
#: The Redis master's name, for a ``sentinel://`` broker URL (broker, results and store).
ENV_SENTINEL_MASTER = "COMMISSAIRE_SENTINEL_MASTER"
#: RabbitMQ's management API, where ``status`` lists queues (default: broker host, port 15672).
ENV_RABBITMQ_API = "COMMISSAIRE_RABBITMQ_API"

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
DEFAULT_EXCHANGE = "commissaire"
#: Seconds a waiting call waits for its answer before raising CallTimeout.
DEFAULT_CALL_TIMEOUT_S = 30.0
#: Largest encoded parameter payload a call may carry, in bytes.
DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024
#: Seconds before Redis hands an unacknowledged message to another worker.
DEFAULT_VISIBILITY_TIMEOUT_S = 1800
#: Seconds a stored result lives in the result backend.
DEFAULT_RESULT_EXPIRES_S = 3600
#: Seconds a reply list lives once created (its results stay under their keys).
DEFAULT_REPLY_EXPIRES_S = 300
#: :data:`ENV_RESULT_BACKEND` names for the two result paths on the broker's Redis:
#: ``lean`` (reply list per caller, :mod:`commissaire_tasks.runtime.backend`) and
#: ``pubsub`` (Celery's Redis backend: one subscription per call).
RESULT_PATHS = ("lean", "pubsub")
#: The result path used when :data:`ENV_RESULT_BACKEND` is unset and the broker is Redis.
DEFAULT_RESULT_PATH = "lean"
_REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://", "sentinel://")

#: The queue types :data:`ENV_QUEUE_TYPE` may name (Redis ignores the setting).
QUEUE_TYPES = ("classic", "quorum")
#: What :data:`ENV_TASK_EVENTS` may say: on demand, always, never.
TASK_EVENTS_DEMAND, TASK_EVENTS_ON, TASK_EVENTS_OFF = "demand", "on", "off"
#: Seconds on-demand task events stay on after a monitor's last request (Flower asks every 5 s).
DEFAULT_EVENTS_QUIET_S = 120.0
#: The worker pools a service may ask for (Celery's names); prefork is the default.
POOLS = ("prefork", "threads", "solo")
DEFAULT_POOL = "prefork"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything a bus client or worker needs to know, frozen.

    Attributes:
        broker_url: Broker URL (Redis or AMQP).
        result_backend: Result backend URL, or ``lean``/``pubsub`` for that result
            path on the broker's Redis; unset: the broker (on the
            :data:`DEFAULT_RESULT_PATH`) when it is Redis, else ``rpc://``.
        exchange: Name of the topic exchange every call is published to.
        call_timeout_s: Default seconds a waiting call waits.
        queues: Extra queue definitions (kombu Queue keyword dicts) callers may route to.
        config_file: JSON file a service reads its own options from.
        max_payload_bytes: Largest encoded parameters a call may carry.
        visibility_timeout_s: Seconds before Redis redelivers an unacknowledged message.
        result_expires_s: Seconds a result stays in the backend.
        reply_expires_s: Seconds a caller's reply list lives once created
            (lean result path): what a caller that went away leaves behind.
        task_events: When workers send task events (Flower's live view):
            ``demand`` while a monitor asks for them (see
            :mod:`commissaire_tasks.runtime.events`), ``on`` always (callers
            also send "sent" events), ``off`` never. ``True``/``False`` are
            accepted for ``on``/``off``.
        events_quiet_s: Seconds on-demand task events stay on after the last
            monitor's request.
        pool: The worker pool every worker of this process uses (``prefork``,
            ``threads`` or ``solo``); ``None`` lets a service's ``pool``
            attribute decide, else prefork.
        queue_type: RabbitMQ type of the service queues (``x-queue-type``):
            ``classic``, or ``quorum`` to keep them across the loss of a
            cluster node. A queue's type is fixed when RabbitMQ first declares it.
        sentinel_master: The master's name when the broker URL is
            ``sentinel://host:port;sentinel://host2:port`` (Redis Sentinel).
    """

    broker_url: str = DEFAULT_BROKER_URL
    result_backend: str | None = None
    exchange: str = DEFAULT_EXCHANGE
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S
    queues: tuple[Mapping[str, Any], ...] = ()
    config_file: str | None = None
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    visibility_timeout_s: int = DEFAULT_VISIBILITY_TIMEOUT_S
    result_expires_s: int = DEFAULT_RESULT_EXPIRES_S
    reply_expires_s: int = DEFAULT_REPLY_EXPIRES_S
    task_events: str = TASK_EVENTS_DEMAND
    events_quiet_s: float = DEFAULT_EVENTS_QUIET_S
    queue_type: str = "classic"
    sentinel_master: str | None = None
    pool: str | None = None

    def __post_init__(self) -> None:
        events = self.task_events
        if isinstance(events, bool):  # the switch this setting was before it had three values
            object.__setattr__(self, "task_events", TASK_EVENTS_ON if events else TASK_EVENTS_OFF)
        elif events not in (TASK_EVENTS_DEMAND, TASK_EVENTS_ON, TASK_EVENTS_OFF):
            raise ConfigurationError(f"task_events must be demand, on or off, not {events!r}")
        if self.pool is not None:
            check_pool(self.pool, "pool")

    @property
    def backend_url(self) -> str:
        """The result backend actually used."""
        path = self.result_backend or DEFAULT_RESULT_PATH
        if path not in RESULT_PATHS:
            return path
        if not self.broker_url.startswith(_REDIS_SCHEMES):
            if self.result_backend:
                raise ConfigurationError(
                    f"{ENV_RESULT_BACKEND}={path} needs a Redis broker; give a backend URL"
                )
            return "rpc://"
        return f"lean+{self.broker_url}" if path == "lean" else self.broker_url

    def replace(self, **changes: Any) -> Settings:
        """Return a copy with ``changes`` applied; ``None`` values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``COMMISSAIRE_*`` environment variables."""
    env = os.environ if environ is None else environ
    return Settings(
        broker_url=env.get(ENV_BROKER_URL) or DEFAULT_BROKER_URL,
        result_backend=_result_backend(env.get(ENV_RESULT_BACKEND)),
        exchange=env.get(ENV_EXCHANGE) or DEFAULT_EXCHANGE,
        call_timeout_s=_number(env, ENV_CALL_TIMEOUT, DEFAULT_CALL_TIMEOUT_S, float),
        queues=_queues(env.get(ENV_QUEUES)),
        config_file=env.get(ENV_CONFIG_FILE) or None,
        max_payload_bytes=_number(env, ENV_MAX_PAYLOAD, DEFAULT_MAX_PAYLOAD_BYTES, int),
        visibility_timeout_s=_number(
            env, ENV_VISIBILITY_TIMEOUT, DEFAULT_VISIBILITY_TIMEOUT_S, int
        ),
        result_expires_s=_number(env, ENV_RESULT_EXPIRES, DEFAULT_RESULT_EXPIRES_S, int),
        reply_expires_s=_number(env, ENV_REPLY_EXPIRES, DEFAULT_REPLY_EXPIRES_S, int),
        task_events=_task_events(env),
        events_quiet_s=_number(env, ENV_EVENTS_QUIET, DEFAULT_EVENTS_QUIET_S, float),
        queue_type=_queue_type(env.get(ENV_QUEUE_TYPE)),
        sentinel_master=_sentinel_master(env),
        pool=check_pool(env[ENV_POOL].strip().lower(), ENV_POOL) if env.get(ENV_POOL) else None,
    )


def check_pool(pool: str, source: str) -> str:
    """``pool`` when it names one of :data:`POOLS`, else a ConfigurationError naming ``source``."""
    if pool not in POOLS:
        raise ConfigurationError(f"{source} must be one of {', '.join(POOLS)}, not {pool!r}")
    return pool


def _task_events(env: Mapping[str, str]) -> str:
    value = env.get(ENV_TASK_EVENTS, "").strip().lower()
    if value in ("", TASK_EVENTS_DEMAND):
        return TASK_EVENTS_DEMAND
    try:
        return TASK_EVENTS_ON if switch(env, ENV_TASK_EVENTS) else TASK_EVENTS_OFF
    except ConfigurationError:
        raise ConfigurationError(
            f"{ENV_TASK_EVENTS} must be demand, on or off (or another on/off word), not {value!r}"
        ) from None


def _result_backend(raw: str | None) -> str | None:
    value = (raw or "").strip() or None
    if value is not None and "://" not in value and value.lower() not in RESULT_PATHS:
        raise ConfigurationError(
            f"{ENV_RESULT_BACKEND} must be a URL or one of {', '.join(RESULT_PATHS)}"
        )
    return value.lower() if value and "://" not in value else value


def _sentinel_master(env: Mapping[str, str]) -> str | None:
    master = env.get(ENV_SENTINEL_MASTER, "").strip() or None
    if master is None and (env.get(ENV_BROKER_URL) or "").startswith("sentinel://"):
        raise ConfigurationError(f"a sentinel:// broker URL needs {ENV_SENTINEL_MASTER}")
    return master


def _queue_type(raw: str | None) -> str:
    value = (raw or "").strip().lower() or QUEUE_TYPES[0]
    if value not in QUEUE_TYPES:
        raise ConfigurationError(f"{ENV_QUEUE_TYPE} must be one of {', '.join(QUEUE_TYPES)}")
    return value


_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


def switch(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    """An on/off environment variable: unset gives ``default``, anything odd an error."""
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in _ON or value in _OFF:
        return value in _ON
    raise ConfigurationError(f"{name} must be one of {', '.join(_ON + _OFF)}, not {value!r}")


def read_config_file(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """Read a service's JSON config file; ``None`` gives an empty config."""
    if path is None:
        return {}
    try:
        config = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {str(path)!r}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"config file {str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigurationError(f"config file {str(path)!r} must hold a JSON object")
    return config


def add_service_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options every service command takes, as the original did."""
    parser.add_argument("--config-file", help="JSON file with the service's options")
    parser.add_argument("--bus-exchange", help=f"topic exchange (default {DEFAULT_EXCHANGE!r})")
    parser.add_argument("--bus-uri", help="broker URL (default $" + ENV_BROKER_URL + ")")
    return parser


def _number(env: Mapping[str, str], name: str, default: Any, kind: type) -> Any:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name}={raw!r} is not a {kind.__name__}") from exc
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, got {raw!r}")
    return value


def _queues(raw: str | None) -> tuple[Mapping[str, Any], ...]:
    if not raw:
        return ()
    try:
        queues = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{ENV_QUEUES} is not valid JSON: {exc}") from exc
    if not isinstance(queues, list) or not all(isinstance(q, dict) for q in queues):
        raise ConfigurationError(f"{ENV_QUEUES} must be a JSON list of queue objects")
    return tuple(queues)
