"""The server's options: a JSON config file as the original's, then command-line flags.

Keys (dashes or underscores): ``listen-interface``, ``listen-port``,
``tls-pemfile`` (certificate, and key unless ``tls-keyfile``), ``tls-keyfile``,
``tls-clientverifyfile`` (CA of client certificates), ``authentication-plugins``
(``[{"name": "httpbasicauth", "filepath": ...}, ...]``), ``roles``
(``{"creds": ["alice"]}``), ``bus-uri``, ``bus-exchange``, ``call-timeout``,
``max-threads``. Flags win over the file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "LOOPBACK", "ServerConfig", "load_server_config"]

DEFAULT_HOST = "0.0.0.0"
DEFAULT_PORT = 8000
#: Where ``--no-auth`` binds, whatever was asked.
LOOPBACK = "127.0.0.1"

_KEYS = {
    "listen_interface": "host",
    "listen_port": "port",
    "tls_pemfile": "tls_cert",
    "tls_keyfile": "tls_key",
    "tls_clientverifyfile": "client_ca",
    "authentication_plugins": "plugins",
    "roles": "roles",
    "bus_uri": "bus_uri",
    "bus_exchange": "bus_exchange",
    "call_timeout": "call_timeout_s",
    "max_threads": "max_threads",
    "debug": None,
    "logging": None,
    "self_auths": None,
}


@dataclass(frozen=True)
class ServerConfig:
    """Everything ``serve`` needs; see the module for the file's keys."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    tls_cert: str | None = None
    tls_key: str | None = None
    client_ca: str | None = None
    plugins: tuple[Mapping[str, Any], ...] = ()
    roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    bus_uri: str | None = None
    bus_exchange: str | None = None
    call_timeout_s: float | None = None
    max_threads: int | None = None
    no_auth: bool = False

    def replace(self, **changes: Any) -> ServerConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_server_config(path: str | None) -> ServerConfig:
    """The config file's options (defaults when ``path`` is None)."""
    if path is None:
        return ServerConfig()
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read server config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigurationError(f"server config {path} must be a JSON object")
    options: dict[str, Any] = {}
    for key, value in data.items():
        normal = key.replace("-", "_")
        if normal not in _KEYS:
            raise ConfigurationError(f"server config {path}: unknown key {key!r}")
        field_name = _KEYS[normal]
        if field_name is not None:
            options[field_name] = value
    return _checked(ServerConfig(**options), path)


def _checked(config: ServerConfig, path: str) -> ServerConfig:
    if not isinstance(config.plugins, list | tuple) or not all(
        isinstance(p, dict) for p in config.plugins
    ):
        raise ConfigurationError(f"{path}: authentication-plugins must be a list of objects")
    roles = config.roles
    if not isinstance(roles, dict) or not all(isinstance(v, list) for v in roles.values()):
        raise ConfigurationError(f"{path}: roles must map a role to a list of names")
    if not isinstance(config.port, int):
        raise ConfigurationError(f"{path}: listen-port must be a number")
    return dataclasses.replace(
        config,
        plugins=tuple(config.plugins),
        roles={role: tuple(map(str, names)) for role, names in roles.items()},
    )
