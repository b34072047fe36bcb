"""Secret records travel sealed: encrypted with the secrets key end to end.

A secret model (HostCreds) is sealed by the StorageClient before it is sent and
unsealed by the storage service; results going back are sealed the same way.
So the broker, the result backend, task events (Flower) and logs only ever see
a Fernet token, never the private key it protects.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..config import ENV_SECRETS_KEY
from ..errors import ConfigurationError, InvalidParams

#: The one key of a sealed payload.
SEALED = "__sealed__"


class Sealer:
    """Seals and unseals JSON payloads with a Fernet key."""

    def __init__(self, key: str | bytes | None = None) -> None:
        key = key or os.environ.get(ENV_SECRETS_KEY)
        if not key:
            raise ConfigurationError(
                f"secret models need a key: set {ENV_SECRETS_KEY} to a Fernet key, e.g. from "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            )
        from cryptography.fernet import Fernet

        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(f"{ENV_SECRETS_KEY} is not a valid Fernet key") from exc

    def seal(self, payload: Any) -> dict[str, str]:
        token = self._fernet.encrypt(json.dumps(payload, separators=(",", ":")).encode())
        return {SEALED: token.decode()}

    def unseal(self, payload: Any) -> Any:
        """The payload inside a sealed envelope; anything else is returned as it is."""
        if not is_sealed(payload):
            return payload
        from cryptography.fernet import InvalidToken

        try:
            return json.loads(self._fernet.decrypt(payload[SEALED].encode()))
        except (InvalidToken, ValueError) as exc:
            raise InvalidParams("sealed payload cannot be opened with this key") from exc


def is_sealed(payload: Any) -> bool:
    return isinstance(payload, dict) and set(payload) == {SEALED}
