"""HTTP basic authentication against bcrypt hashes, from a users file and/or inline.

The data is the original's: ``{"<user>": {"hash": "<bcrypt hash>"}}``, read from
``filepath`` (JSON) and merged with ``users``. A password may contain ``:``
(only the first ``:`` of the credentials separates the user name). bcrypt is
slow on purpose, so checks run in a worker thread, and a successful check is
remembered for :data:`VERIFIED_TTL_S` seconds (by a keyed digest, never the
password itself) so a busy client does not pay it on every request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio.to_thread
import bcrypt
from starlette.requests import HTTPConnection

from ...errors import ConfigurationError
from .base import Authenticator

__all__ = ["BasicAuth", "hash_password", "parse_basic"]

#: Seconds a verified user name and password are accepted without bcrypt again.
VERIFIED_TTL_S = 60.0
#: Most remembered credentials (the oldest are forgotten first).
VERIFIED_MAX = 1024


def hash_password(password: str, rounds: int = 12) -> str:
    """A bcrypt hash for the users file."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds)).decode()


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic`` header, or None."""
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon and user else None


class BasicAuth(Authenticator):
    """Accepts a user of the users data whose password matches its bcrypt hash."""

    name = "httpbasicauth"
    aliases = ("basic", "commissaire_http.authentication.httpbasicauth")
    challenge = 'Basic realm="commissaire"'

    def __init__(self, hashes: Mapping[str, str]) -> None:
        self.hashes = dict(hashes)
        self._key = os.urandom(32)
        self._verified: dict[bytes, float] = {}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> BasicAuth:
        users: dict[str, Any] = {}
        path = options.get("filepath")
        if path:
            try:
                users.update(json.loads(Path(path).read_text()))
            except (OSError, ValueError) as exc:
                raise ConfigurationError(
                    f"httpbasicauth: cannot read users file {path}: {exc}"
                ) from exc
        users.update(options.get("users") or {})
        hashes = {}
        for user, entry in users.items():
            digest = entry.get("hash") if isinstance(entry, Mapping) else None
            if not isinstance(digest, str) or not digest.startswith("$2"):
                raise ConfigurationError(f"httpbasicauth: user {user!r} needs a bcrypt 'hash'")
            hashes[str(user)] = digest
        return cls(hashes)

    async def authenticate(self, request: HTTPConnection) -> str | None:
        credentials = parse_basic(request.headers.get("authorization"))
        if credentials is None or credentials[0] not in self.hashes:
            return None
        user, password = credentials
        token = hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        if self._verified.get(token, 0.0) > time.monotonic():
            return user
        if not await anyio.to_thread.run_sync(self._matches, user, password):
            return None
        self._remember(token)
        return user

    def _matches(self, user: str, password: str) -> bool:
        try:
            return bcrypt.checkpw(password.encode(), self.hashes[user].encode())
        except ValueError:  # a malformed stored hash
            return False

    def _remember(self, token: bytes) -> None:
        if len(self._verified) >= VERIFIED_MAX:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = time.monotonic() + VERIFIED_TTL_S
