"""Client certificates: the TLS layer verified the chain; this plugin names the caller.

Accepts a request whose connection presented a client certificate (verified
against ``--client-ca`` by the TLS handshake) with a common name, equal to
``cn`` when configured. The certificate comes from the ASGI TLS extension
(``scope["extensions"]["tls"]["client_cert_chain"]``), which
:mod:`commissaire_tasks.http.tls` adds for uvicorn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from starlette.requests import HTTPConnection

from .base import Authenticator

__all__ = ["ClientCertAuth", "common_name"]


def common_name(pem: str) -> str | None:
    """The subject's common name of a PEM certificate, or None."""
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


class ClientCertAuth(Authenticator):
    """Accepts a verified client certificate with a common name (``cn`` if set)."""

    name = "httpauthclientcert"
    aliases = ("clientcert", "commissaire_http.authentication.httpauthclientcert")

    def __init__(self, cn: str | None = None) -> None:
        self.cn = cn

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> ClientCertAuth:
        cn = options.get("cn")
        return cls(str(cn) if cn else None)

    async def authenticate(self, request: HTTPConnection) -> str | None:
        tls = request.scope.get("extensions", {}).get("tls") or {}
        chain = tls.get("client_cert_chain") or []
        if not chain:
            return None
        name = common_name(chain[0])
        if name is None or (self.cn is not None and name != self.cn):
            return None
        return name
