"""A small local stand-in for a Kubernetes API server: the node endpoints only.

``FakeNodeAPIServer`` implements what the Kubernetes manager uses —
``POST /api/v1/nodes``, ``GET /api/v1/nodes/<name>``, ``DELETE /api/v1/nodes/<name>``
and ``DELETE /api/v1/nodes`` — over HTTP or HTTPS (a test CA made with
``cryptography``), records each request's path and Authorization header and the
client certificate's subject, and answers a chosen error status when told.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    client_subject: str | None


@dataclass
class NodeStore:
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    #: When set, every request is answered with this status.
    fail_with: int | None = None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class name
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        if self._refused():
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        name = body["metadata"]["name"]
        if name in self.server.store.nodes:
            self._answer(409, _status("AlreadyExists", 409))
            return
        node = {**body, "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        self.server.store.nodes[name] = node
        self._answer(201, node)

    def do_GET(self) -> None:  # noqa: N802
        if self._refused():
            return
        node = self.server.store.nodes.get(self._name())
        self._answer(200, node) if node else self._answer(404, _status("NotFound", 404))

    def do_DELETE(self) -> None:  # noqa: N802
        if self._refused():
            return
        name = self._name()
        if not name:
            self.server.store.nodes.clear()
            self._answer(200, _status("Success", 200))
        elif self.server.store.nodes.pop(name, None) is not None:
            self._answer(200, _status("Success", 200))
        else:
            self._answer(404, _status("NotFound", 404))

    def _name(self) -> str:
        return self.path.split("?")[0].removeprefix("/api/v1/nodes").strip("/")

    def _refused(self) -> bool:
        store = self.server.store
        peer = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        subject = dict(x[0] for x in peer["subject"])["commonName"] if peer else None
        store.seen.append(Seen(self.command, self.path, self.headers.get("Authorization"), subject))
        if not self.path.startswith("/api/v1/nodes"):
            self._answer(404, _status("NotFound", 404))
            return True
        if store.fail_with is not None:
            self._answer(store.fail_with, _status("Failure", store.fail_with))
            return True
        return False

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    store: NodeStore


def _status(reason: str, code: int) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "reason": reason, "code": code}


class FakeNodeAPIServer:
    """The node endpoints on ``127.0.0.1``, over HTTPS when given a server certificate."""

    def __init__(self, tls: PKI | None = None) -> None:
        self.store = NodeStore()
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.store = self.store
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.server_cert, tls.server_key)
            context.load_verify_locations(tls.ca_cert)
            context.verify_mode = ssl.CERT_OPTIONAL  # records a client certificate if sent
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> FakeNodeAPIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclass
class PKI:
    """A test CA, a server certificate for 127.0.0.1 and a client certificate, as files."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def create(cls, folder: Path, name: str = "test") -> PKI:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
        ca = _certificate(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = _certificate(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
            ca_name,
            server_key.public_key(),
            ca_key,
            san=x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
        )
        client_key = ec.generate_private_key(ec.SECP256R1())
        client = _certificate(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "commissaire")]),
            ca_name,
            client_key.public_key(),
            ca_key,
        )
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "ca_cert": _write(folder / f"{name}-ca.pem", _pem(ca)),
            "server_cert": _write(folder / f"{name}-server.pem", _pem(server)),
            "server_key": _write(folder / f"{name}-server.key", _key_pem(server_key)),
            "client_cert": _write(folder / f"{name}-client.pem", _pem(client)),
            "client_key": _write(folder / f"{name}-client.key", _key_pem(client_key)),
        }
        return cls(**paths)


def _certificate(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: Any,
    signing_key: Any,
    ca: bool = False,
    san: x509.SubjectAlternativeName | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    path.chmod(0o600)
    return path
