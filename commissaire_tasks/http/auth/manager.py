"""Plugins tried in order, as an ASGI middleware in front of every path.

Each request is authenticated before anything else runs (an unknown path
included): the first plugin that names the caller wins, and its
:class:`~.base.Identity` (with the roles the config gives that name) is put on
``request.state.identity``. When no plugin accepts, the answer is 401 with a
JSON error body and a ``WWW-Authenticate`` challenge per plugin that has one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from ...errors import ConfigurationError
from ..errors import error_body
from .base import Authenticator, Identity
from .basic import BasicAuth
from .bearer import BearerTokenAuth
from .clientcert import ClientCertAuth

__all__ = ["ANONYMOUS", "AuthManager", "AuthMiddleware", "PLUGINS", "plugin_class"]

#: Every built-in plugin.
PLUGINS: tuple[type[Authenticator], ...] = (BasicAuth, ClientCertAuth, BearerTokenAuth)
#: Who a request is from when authentication is off (``--no-auth``): no roles.
ANONYMOUS = Identity("anonymous", "none")


def plugin_class(name: str) -> type[Authenticator]:
    """The plugin a config entry names (its name, an alias, or the original's module path)."""
    short = name.rsplit(".", 1)[-1] if name.startswith("commissaire_http.") else name
    for cls in PLUGINS:
        if short == cls.name or short in cls.aliases or name in cls.aliases:
            return cls
    known = ", ".join(cls.name for cls in PLUGINS)
    raise ConfigurationError(f"unknown authentication plugin {name!r} (known: {known})")


class AuthManager:
    """The configured plugins, in order, and who has which role.

    Args:
        plugins: Tried in this order.
        roles: Role name -> the identity names that have it (``{"creds": ["alice"]}``).
        enabled: False for ``--no-auth``: every request is :data:`ANONYMOUS`.
    """

    def __init__(
        self,
        plugins: Sequence[Authenticator],
        roles: Mapping[str, Iterable[str]] | None = None,
        enabled: bool = True,
    ) -> None:
        if enabled and not plugins:
            raise ConfigurationError("no authentication plugin configured")
        self.plugins = list(plugins)
        self.enabled = enabled
        self.roles = {role: frozenset(names) for role, names in (roles or {}).items()}

    @classmethod
    def from_config(
        cls, entries: Sequence[Mapping[str, Any]], roles: Mapping[str, Iterable[str]] | None = None
    ) -> AuthManager:
        plugins = []
        for entry in entries:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
                raise ConfigurationError(f"an authentication plugin needs a 'name': {entry!r}")
            options = {k: v for k, v in entry.items() if k != "name"}
            plugins.append(plugin_class(entry["name"]).from_options(options))
        return cls(plugins, roles)

    @classmethod
    def disabled(cls) -> AuthManager:
        return cls([], enabled=False)

    async def identify(self, request: HTTPConnection) -> Identity | None:
        if not self.enabled:
            return ANONYMOUS
        for plugin in self.plugins:
            name = await plugin.authenticate(request)
            if name is not None:
                granted = frozenset(r for r, names in self.roles.items() if name in names)
                return Identity(name, plugin.name, granted)
        return None

    def challenges(self) -> list[str]:
        return [p.challenge for p in self.plugins if p.challenge]

    async def close(self) -> None:
        for plugin in self.plugins:
            await plugin.close()


class AuthMiddleware:
    """Authenticates every HTTP request with an :class:`AuthManager`."""

    def __init__(self, app: ASGIApp, manager: AuthManager) -> None:
        self.app = app
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        identity = await self.manager.identify(connection)
        if identity is None:
            await _unauthorized(send, self.manager.challenges())
            return
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)


async def _unauthorized(send: Send, challenges: list[str]) -> None:
    body = json.dumps(error_body(401, "authentication required")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(b"www-authenticate", c.encode()) for c in challenges]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})
