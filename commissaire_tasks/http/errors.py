"""Every failure as a JSON error body with the HTTP status a client can act on.

The body is ``{"error": {"code": "<short name>", "message": "...", "jsonrpc_code": N}}``
(``jsonrpc_code`` when the failure came from a service call; ``details`` when
there is more, such as every invalid field or the hosts that are not ready).

=========================================  ======
Failure                                    Status
=========================================  ======
invalid body, parameters or record data    400
no or wrong credentials                    401
authenticated but not allowed              403
missing record (StorageLookupError)        404
host not ready to join a cluster           405
conflict: differs, stale, cluster busy     409
parameters over the payload limit          413
a service failed or its manager did        502
no worker serves the service, no broker    503
the service did not answer in time         504
=========================================  ======

A 500 only ever means a bug in this server, never something a client sent.
"""

from __future__ import annotations

from typing import Any

from ..errors import (
    BrokerUnavailable,
    CallTimeout,
    ClusterBusy,
    CommissaireTasksError,
    ContainerManagerError,
    InvalidParams,
    InvalidRequest,
    InvestigationInProgress,
    MethodNotFound,
    NoRouteError,
    ParseError,
    PayloadTooLarge,
    RemoteProcedureCallError,
    StorageLookupError,
    ValidationError,
)

__all__ = ["ApiError", "Conflict", "HostNotReady", "NotFound", "BadRequest", "error_body"]

#: Status names used as ``error.code`` in bodies.
CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "host_not_ready",
    409: "conflict",
    413: "payload_too_large",
    500: "internal_error",
    502: "service_failed",
    503: "service_unavailable",
    504: "service_timeout",
}

#: Remote exception type names that mean "conflict" whatever their JSON-RPC code.
_CONFLICT_NAMES = frozenset({"Conflict", "ConflictError", "HostInAnotherCluster"})


class ApiError(CommissaireTasksError):
    """Raised by a route to answer with ``status`` and a JSON error body."""

    status: int = 400

    def __init__(
        self,
        message: str,
        status: int | None = None,
        details: Any = None,
        jsonrpc_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.details = details
        self.jsonrpc_code = jsonrpc_code


class BadRequest(ApiError):
    """Raised when a body or a parameter is invalid."""

    status = 400


class NotFound(ApiError):
    """Raised when the record a path names does not exist."""

    status = 404


class HostNotReady(ApiError):
    """Raised when a host may not join a cluster yet (not active or disassociated)."""

    status = 405


class Conflict(ApiError):
    """Raised when a request contradicts what is stored (exists and differs, stale list)."""

    status = 409


def as_api_error(exc: BaseException) -> ApiError | None:
    """The ApiError a known failure stands for, or None for a bug of ours."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationError):
        return BadRequest(str(exc), details=list(exc.errors) or None)
    if isinstance(exc, (NoRouteError, BrokerUnavailable)):
        return ApiError(f"{exc} (is a worker serving it running?)", 503)
    if isinstance(exc, CallTimeout):
        return ApiError(str(exc), 504)
    if isinstance(exc, RemoteProcedureCallError):
        return ApiError(
            exc.message or type(exc).__name__, _rpc_status(exc), exc.data.get("errors"), exc.code
        )
    return None


def _rpc_status(exc: RemoteProcedureCallError) -> int:
    if (
        isinstance(exc, (ClusterBusy, InvestigationInProgress))
        or exc.code == 409
        or exc.exception_type in _CONFLICT_NAMES
    ):
        return 409
    if isinstance(exc, StorageLookupError) or exc.code == 404:
        return 404
    if isinstance(exc, (InvalidParams, InvalidRequest, ParseError)) or exc.code == 400:
        return 400
    if isinstance(exc, PayloadTooLarge):
        return 413
    if isinstance(exc, MethodNotFound):
        return 503  # a worker answers, but an older version without that method
    if isinstance(exc, ContainerManagerError):
        return 502
    return 502


def error_body(
    status: int, message: str, details: Any = None, jsonrpc_code: int | None = None
) -> dict[str, Any]:
    """The JSON body of an error answer."""
    error: dict[str, Any] = {"code": CODES.get(status, "error"), "message": message}
    if jsonrpc_code is not None:
        error["jsonrpc_code"] = jsonrpc_code
    if details is not None:
        error["details"] = details
    return {"error": error}
