"""The Kubernetes manager (OpenShift is the same), on the official ``kubernetes`` client.

Needs the ``containers`` extra (``pip install commissaire-tasks[containers]``).
Options are listed in :mod:`commissaire_tasks.models.manager_options`. Unlike the
original, the server's certificate is verified (against ``ca_bundle`` or the
system's CAs) unless ``insecure_skip_tls_verify`` is true, and a path on
``server_url`` is kept (an API server behind a proxy prefix works).

Node endpoints used: ``POST /api/v1/nodes`` (register; 409 "already exists" counts
as registered), ``DELETE /api/v1/nodes/<address>``, ``DELETE /api/v1/nodes`` (every
node), ``GET /api/v1/nodes/<address>`` (registered? status). The node name is the
host address, as in the original.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from ..errors import ConfigurationError
from .manager import ContainerManager, manager_error

__all__ = ["KubernetesManager"]

#: Seconds one request may take unless ``timeout_s`` says otherwise.
DEFAULT_TIMEOUT_S = 10.0

T = TypeVar("T")


class KubernetesManager(ContainerManager):
    """Registers hosts as Kubernetes nodes through the API server's node endpoints."""

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        try:
            from kubernetes import client
        except ImportError as exc:
            raise ConfigurationError(
                "the kubernetes manager needs the kubernetes client: "
                "pip install 'commissaire-tasks[containers]'"
            ) from exc
        self.name = name
        self.timeout_s = float(options.get("timeout_s", DEFAULT_TIMEOUT_S))
        self._client = client
        self.api_client = client.ApiClient(_configuration(client, options))
        self.api = client.CoreV1Api(self.api_client)

    def register_node(self, address: str) -> None:
        body = self._client.V1Node(
            api_version="v1", kind="Node", metadata=self._client.V1ObjectMeta(name=address)
        )
        self._call(f"register_node {address}", self.api.create_node, body, ok_statuses=(409,))

    def remove_node(self, address: str) -> None:
        self._call(f"remove_node {address}", self.api.delete_node, address)

    def remove_all_nodes(self) -> None:
        self._call("remove_all_nodes", self.api.delete_collection_node)

    def node_registered(self, address: str) -> bool:
        found = self._call(
            f"node_registered {address}", self.api.read_node, address, ok_statuses=(404,)
        )
        return found is not None

    def get_node_status(self, address: str, raw: bool = False) -> dict[str, Any]:
        """The Node object as the API server gave it; ``raw=True``: only its ``status``.

        (The original's flag, kept as it was: the service calls it without ``raw``.)
        """
        node = self._call(f"get_node_status {address}", self.api.read_node, address)
        data: dict[str, Any] = self.api_client.sanitize_for_serialization(node)  # type: ignore[no-untyped-call]
        return dict(data.get("status") or {}) if raw else data

    def _call(
        self,
        operation: str,
        method: Callable[..., T],
        *args: Any,
        ok_statuses: tuple[int, ...] = (),
    ) -> T | None:
        """Run one API request; the statuses in ``ok_statuses`` give None, not an error."""
        from kubernetes.client.exceptions import ApiException

        try:
            return method(*args, _request_timeout=self.timeout_s)
        except ApiException as exc:
            if exc.status in ok_statuses:
                return None
            status = exc.status or None  # the client reports a TLS failure as status 0
            raise manager_error(self.name, operation, status, str(exc.reason)) from None
        except Exception as exc:  # noqa: BLE001 - refused, TLS, timeout: no HTTP answer
            raise manager_error(self.name, operation, None, _no_answer(exc)) from None


def _configuration(client: Any, options: Mapping[str, Any]) -> Any:
    """The client's Configuration for ``options`` (already checked when the record was saved)."""
    config = client.Configuration()
    config.host = str(options["server_url"]).rstrip("/")
    config.verify_ssl = not options.get("insecure_skip_tls_verify", False)
    config.ssl_ca_cert = options.get("ca_bundle") or options.get("certificate_authority")
    config.cert_file = options.get("certificate_path")
    config.key_file = options.get("certificate_key_path")
    config.retries = False  # one request is one attempt; the caller decides about retrying
    for path in (config.ssl_ca_cert, config.cert_file, config.key_file):
        if path and not Path(path).is_file():
            raise ConfigurationError(f"container manager file {path!r} does not exist")
    token_file = options.get("token_file")
    if token_file:
        config.api_key_prefix = {"authorization": "Bearer"}
        config.api_key = {"authorization": _read_token(token_file)}
        config.refresh_api_key_hook = _token_refresher(token_file)
    return config


def _read_token(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read token_file {path!r}: {exc.strerror}") from None


def _token_refresher(path: str) -> Callable[[Any], None]:
    """Re-read the token before each request, so a rotated token is picked up."""

    def refresh(config: Any) -> None:
        try:
            config.api_key["authorization"] = _read_token(path)
        except ConfigurationError:
            pass  # keep the last token; the server's 401 will say what is wrong

    return refresh


def _no_answer(exc: Exception) -> str:
    """Why there was no HTTP answer, without anything a request carried."""
    reason = getattr(exc, "reason", None)
    return f"{type(exc).__name__}: {reason if reason is not None else exc}"
