"""Authentication plugins (basic, client certificate, bearer token) and the role check."""

from .base import CREDS_ROLE, Authenticator, Identity, require_role
from .manager import ANONYMOUS, PLUGINS, AuthManager, AuthMiddleware, plugin_class

__all__ = [
    "ANONYMOUS",
    "CREDS_ROLE",
    "PLUGINS",
    "AuthManager",
    "AuthMiddleware",
    "Authenticator",
    "Identity",
    "plugin_class",
    "require_role",
]
