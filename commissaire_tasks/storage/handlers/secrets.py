"""Secret records (HostCreds) encrypted at rest with Fernet, kept in Redis.

Only ciphertext is ever written: the record's data is encrypted before it
leaves the process. Without a key the handler refuses to start.
"""

from __future__ import annotations

import json
from typing import Any

from ...config import ENV_SECRETS_KEY
from ..sealing import Sealer
from .redis import RedisStoreHandler


class SecretsStoreHandler(RedisStoreHandler):
    """The Redis handler with every record's data encrypted (key from config or environment)."""

    type_name = "secrets"
    options = {
        "url": (str, None),
        "prefix": (str, "commissaire:secrets"),
        "key": (str, None),
    }

    @classmethod
    def check_config(cls, options: Any) -> dict[str, Any]:
        config = super().check_config(options)
        Sealer(config["key"])  # refuses a missing or invalid key, naming ENV_SECRETS_KEY
        return config

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._sealer = Sealer(self.config.get("key"))

    def _encode(self, data: dict[str, Any]) -> str:
        return json.dumps(self._sealer.seal(data))

    def _decode(self, raw: bytes | str) -> dict[str, Any]:
        return self._sealer.unseal(json.loads(raw))  # type: ignore[no-any-return]


__all__ = ["ENV_SECRETS_KEY", "SecretsStoreHandler"]
