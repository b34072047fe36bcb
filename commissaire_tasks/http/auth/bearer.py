"""Bearer tokens, checked by asking a token endpoint (Kubernetes/OpenShift style).

Two kinds of endpoint, by ``kind``:

* ``tokenreview`` (Kubernetes): POST ``url`` a ``TokenReview`` whose
  ``spec.token`` is the caller's token, authorised by ``reviewer_token`` when
  given; accepted when ``status.authenticated`` is true, named by
  ``status.user.username``.
* ``user`` (OpenShift ``.../users/~``, the original's plugin): GET ``url`` with
  the caller's token; accepted on 200, named by ``metadata.name``.

The endpoint's certificate is verified (``ca_file`` for a private CA;
``verify: false`` only where you mean it). Answers are remembered for
:data:`CACHE_TTL_S` seconds by the token's digest, so one token costs one
round trip per minute at most; an endpoint that cannot be reached accepts nobody.
"""

from __future__ import annotations

import hashlib
import logging
import ssl
import time
from collections.abc import Mapping
from typing import Any

import httpx
from starlette.requests import HTTPConnection

from ...errors import ConfigurationError
from .base import Authenticator

__all__ = ["BearerTokenAuth", "bearer_token"]

logger = logging.getLogger(__name__)

#: Seconds an endpoint's answer about one token is reused.
CACHE_TTL_S = 60.0
#: Seconds the endpoint gets to answer.
ENDPOINT_TIMEOUT_S = 10.0
KINDS = ("tokenreview", "user")


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class BearerTokenAuth(Authenticator):
    """Accepts a bearer token the configured endpoint vouches for."""

    name = "bearertokenauth"
    aliases = ("bearer", "openshiftbearertokenauth", "kubernetestokenreview")
    challenge = "Bearer"

    def __init__(
        self,
        url: str,
        kind: str = "tokenreview",
        reviewer_token: str | None = None,
        verify: bool | ssl.SSLContext = True,
    ) -> None:
        if kind not in KINDS:
            raise ConfigurationError(
                f"bearer token auth: kind must be one of {KINDS}, not {kind!r}"
            )
        self.url = url
        self.kind = kind
        self.reviewer_token = reviewer_token
        self._client = httpx.AsyncClient(verify=verify, timeout=ENDPOINT_TIMEOUT_S)
        self._answers: dict[str, tuple[float, str | None]] = {}

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> BearerTokenAuth:
        url = options.get("url") or options.get("openshift_endpoint")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigurationError("bearer token auth needs an http(s) 'url'")
        kind = options.get("kind") or ("user" if "openshift_endpoint" in options else "tokenreview")
        ca_file = options.get("ca_file")
        verify: bool | ssl.SSLContext = (
            ssl.create_default_context(cafile=ca_file)
            if ca_file
            else bool(options.get("verify", True))
        )
        return cls(url, str(kind), options.get("reviewer_token"), verify)

    async def authenticate(self, request: HTTPConnection) -> str | None:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            return None
        key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._answers.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        try:
            name = await self._ask(token)
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("token endpoint %s did not answer: %s", self.url, type(exc).__name__)
            return None
        if len(self._answers) > 4096:
            self._answers.clear()
        self._answers[key] = (time.monotonic() + CACHE_TTL_S, name)
        return name

    async def _ask(self, token: str) -> str | None:
        if self.kind == "user":
            reply = await self._client.get(self.url, headers={"Authorization": f"Bearer {token}"})
            if reply.status_code != 200:
                return None
            return _text(reply.json().get("metadata", {}).get("name"))
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        headers = {"Authorization": f"Bearer {self.reviewer_token}"} if self.reviewer_token else {}
        reply = await self._client.post(self.url, json=review, headers=headers)
        if reply.status_code not in (200, 201):
            return None
        status = reply.json().get("status") or {}
        if status.get("authenticated") is not True:
            return None
        return _text((status.get("user") or {}).get("username"))

    async def close(self) -> None:
        await self._client.aclose()


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
