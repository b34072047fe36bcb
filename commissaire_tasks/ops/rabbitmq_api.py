"""The queues of a RabbitMQ virtual host, from the management plugin's HTTP API.

AMQP cannot list queues, so ``status`` asks the management API
(``GET /api/queues/<vhost>``) for the names of the durable queues, the ones a
retired service or a dead-letter place leaves behind. The API's address is
:data:`ENV_RABBITMQ_API` (``http://user:password@host:15672``) or, by default,
the broker's host on port 15672 (15671 over TLS) with the broker's credentials.
The plugin is off on a stock RabbitMQ: ``rabbitmq-plugins enable rabbitmq_management``.
Only the standard library is used (``urllib``).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from kombu.connection import Connection

from ..config import ENV_RABBITMQ_API
from ..errors import CommissaireTasksError
from ..redact import redact_url

__all__ = [
    "DEFAULT_API_PORT",
    "DEFAULT_API_TLS_PORT",
    "ENABLE_HINT",
    "ManagementApiUnavailable",
    "api_url_for",
    "list_queues",
]

#: Port of the management API over HTTP, and over HTTPS (for an ``amqps://`` broker).
DEFAULT_API_PORT = 15672
DEFAULT_API_TLS_PORT = 15671
#: How a user turns the API on, or points us at it.
ENABLE_HINT = (
    f"enable it with `rabbitmq-plugins enable rabbitmq_management`, or set {ENV_RABBITMQ_API} "
    "to its URL (http://user:password@host:15672)"
)


class ManagementApiUnavailable(CommissaireTasksError):
    """Raised when the management API cannot be asked (not enabled, unreachable, refused)."""


def api_url_for(connection: Connection, configured: str | None = None) -> str:
    """The API's base URL: ``configured`` when given, else derived from the broker connection."""
    if configured:
        return configured.rstrip("/")
    tls = bool(connection.ssl)
    scheme, port = ("https", DEFAULT_API_TLS_PORT) if tls else ("http", DEFAULT_API_PORT)
    user = quote(str(connection.userid or "guest"), safe="")
    password = quote(str(connection.password or "guest"), safe="")
    return f"{scheme}://{user}:{password}@{connection.hostname or '127.0.0.1'}:{port}"


def list_queues(api_url: str, vhost: str, timeout_s: float) -> set[str]:
    """Names of the durable, shared queues of ``vhost`` (temporary queues left out).

    Exclusive and auto-delete queues (replies, remote control, event receivers)
    belong to a live connection, never to a service.
    """
    path = f"/api/queues/{quote(vhost or '/', safe='')}?columns=name,durable,auto_delete,exclusive"
    entries = _get_json(api_url, path, timeout_s)
    if not isinstance(entries, list):
        raise ManagementApiUnavailable(f"{redact_url(api_url)} answered something not a list")
    return {str(entry["name"]) for entry in entries if _lasting(entry)}


def _lasting(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and not entry.get("auto_delete")
        and not entry.get("exclusive")
    )


def _get_json(api_url: str, path: str, timeout_s: float) -> Any:
    parts = urlsplit(api_url)
    base = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    request = urllib.request.Request(base + path, headers={"Accept": "application/json"})
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        request.add_header(
            "Authorization", f"Basic {base64.b64encode(credentials.encode()).decode()}"
        )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise ManagementApiUnavailable(
            f"{redact_url(api_url)} answered {exc.code} {exc.reason}"
        ) from exc
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ManagementApiUnavailable(
            f"{redact_url(api_url)} is not reachable ({reason})"
        ) from exc
