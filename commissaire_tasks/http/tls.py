"""The ASGI TLS extension for uvicorn: the client certificate reaches the app.

uvicorn verifies a client certificate against ``--client-ca`` during the
handshake but does not show it to the app. :class:`TLSInfoProtocol` (uvicorn's
h11 protocol, one instance per connection) adds
``scope["extensions"]["tls"]`` as the ASGI TLS extension describes it
(``client_cert_chain`` as PEM, ``client_cert_name``, ``tls_version``), which
:mod:`.auth.clientcert` reads.
"""

from __future__ import annotations

import ssl
from typing import Any

from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["TLSInfoProtocol"]


class TLSInfoProtocol(H11Protocol):
    """uvicorn's h11 protocol, with the connection's TLS details in each request's scope."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app
        self._tls: dict[str, Any] | None = None

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            tls = self._tls_info()
            if tls is not None:
                scope.setdefault("extensions", {})["tls"] = tls
            await inner(scope, receive, send)

        self.app = app

    def _tls_info(self) -> dict[str, Any] | None:
        if self._tls is None and self.transport is not None:
            ssl_object = self.transport.get_extra_info("ssl_object")
            if ssl_object is None:
                return None
            der = ssl_object.getpeercert(binary_form=True)
            chain = [ssl.DER_cert_to_PEM_cert(der)] if der else []
            subject = (ssl_object.getpeercert() or {}).get("subject", ())
            name = ",".join(f"{key}={value}" for rdn in subject for key, value in rdn)
            self._tls = {
                "client_cert_chain": chain,
                "client_cert_name": name or None,
                "client_cert_error": None,
                "tls_version": ssl_object.version(),
                "cipher_suite": (ssl_object.cipher() or (None,))[0],
            }
        return self._tls
