"""What an authentication plugin is, who it says a caller is, and the role check.

A plugin looks at a request and answers with an :class:`Identity` (the caller
is who they say), or None (not its kind of credentials, or wrong ones: the
next plugin is tried). Plugins run in the configured order, as the original's
did; when none accepts, the answer is 401.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from starlette.requests import HTTPConnection

from ..errors import ApiError

__all__ = ["CREDS_ROLE", "Authenticator", "Identity", "require_role"]

#: The role that may read host credentials (``/creds``); nobody has it unless configured.
CREDS_ROLE = "creds"


@dataclass(frozen=True)
class Identity:
    """Who a request comes from: a name, the plugin that vouched for it, and its roles."""

    name: str
    plugin: str
    roles: frozenset[str] = field(default_factory=frozenset)


class Authenticator(abc.ABC):
    """Base of the plugins; ``name`` is what a config file names it by."""

    #: The plugin's name in config (``authentication-plugins: [{"name": ...}]``).
    name: ClassVar[str]
    #: Other names that select it (the original's module names).
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Sent in ``WWW-Authenticate`` when every plugin refused a request.
    challenge: ClassVar[str | None] = None

    @classmethod
    @abc.abstractmethod
    def from_options(cls, options: Mapping[str, Any]) -> Authenticator:
        """Build from the plugin's config entry; ConfigurationError when it is wrong."""

    @abc.abstractmethod
    async def authenticate(self, request: HTTPConnection) -> str | None:
        """The caller's name if this plugin accepts the request, else None."""

    async def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the plugin holds (connections)."""


def require_role(request: HTTPConnection, role: str) -> None:
    """Raise 403 unless the request's identity has ``role``."""
    identity: Identity | None = getattr(request.state, "identity", None)
    if identity is None or role not in identity.roles:
        who = identity.name if identity is not None else "anonymous"
        raise ApiError(f"{who!r} does not have the {role!r} role", 403)
