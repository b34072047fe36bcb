"""Every error commissaire-tasks raises, as one tree.

::

    CommissaireTasksError
    ├── ConfigurationError            bad settings, config file or store handler config
    ├── ServiceDefinitionError        a service class that cannot be exposed
    ├── BusError                      the caller could not get an answer
    │   ├── NoRouteError              no queue is bound to the routing key
    │   ├── CallTimeout               no answer within the caller's timeout
    │   └── BrokerUnavailable         the broker could not be reached
    ├── ModelError
    │   └── ValidationError           model data breaks the model's rules (lists every problem)
    │       └── CoercionError         a value cannot be cast to the declared type
    └── RemoteProcedureCallError      a call failed on the remote side (JSON-RPC error object)
        ├── ParseError           -32700
        ├── InvalidRequest       -32600
        ├── MethodNotFound       -32601
        ├── InvalidParams        -32602
        ├── InternalError        -32603
        ├── PayloadTooLarge      -32010
        ├── StorageLookupError   -20000
        ├── ContainerManagerError -20001
        ├── ClusterBusy          -32050
        └── InvestigationInProgress -32051

A failed call travels as a JSON-RPC error object ``{code, message, data}`` where
``data["exception"]`` names the original exception type. :func:`error_from_jsonrpc`
rebuilds it on the caller's side from an allow-list: built-in exception types and
the :class:`RemoteProcedureCallError` family; anything else arrives as a plain
:class:`RemoteProcedureCallError` carrying the original type name.
"""

from __future__ import annotations

import builtins
from typing import Any, ClassVar

__all__ = [
    "CommissaireTasksError",
    "ConfigurationError",
    "ServiceDefinitionError",
    "BusError",
    "NoRouteError",
    "CallTimeout",
    "BrokerUnavailable",
    "ModelError",
    "ValidationError",
    "CoercionError",
    "RemoteProcedureCallError",
    "ParseError",
    "InvalidRequest",
    "MethodNotFound",
    "InvalidParams",
    "InternalError",
    "PayloadTooLarge",
    "StorageLookupError",
    "ContainerManagerError",
    "ClusterBusy",
    "InvestigationInProgress",
    "jsonrpc_error",
    "error_from_jsonrpc",
]


class CommissaireTasksError(Exception):
    """Root of every error raised by commissaire-tasks."""

    def __reduce__(self) -> tuple[Any, ...]:
        # A pool process hands exceptions to its worker by pickle (billiard's pipe, never
        # the wire). Rebuilt from its message and fields, not by calling its constructor
        # again (whose arguments differ from the message): one that could not be rebuilt
        # would kill the worker's result handler.
        return (_rebuilt, (type(self), self.args), self.__dict__)


def _rebuilt(cls: type[CommissaireTasksError], args: tuple[Any, ...]) -> CommissaireTasksError:
    """An error of ``cls`` with ``args`` (its fields are restored by pickle after)."""
    return cls.__new__(cls, *args)


class ConfigurationError(CommissaireTasksError):
    """Raised when settings, a config file or a store handler's options are invalid."""


class ServiceDefinitionError(CommissaireTasksError):
    """Raised when a service class cannot be exposed (bad or duplicate name, bad queue)."""


class BusError(CommissaireTasksError):
    """Raised when the caller could not get an answer from the bus."""


class NoRouteError(BusError):
    """Raised when no known queue is bound to a routing key, before anything is sent."""

    def __init__(self, routing_key: str, reason: str = "") -> None:
        self.routing_key = routing_key
        self.reason = reason
        detail = f": {reason}" if reason else ""
        super().__init__(f"no queue is bound to routing key {routing_key!r}{detail}")


class CallTimeout(BusError):
    """Raised when a call got no answer within the caller's timeout."""

    def __init__(self, routing_key: str, timeout_s: float) -> None:
        self.routing_key = routing_key
        self.timeout_s = timeout_s
        super().__init__(f"no answer from {routing_key!r} within {timeout_s:g} s")


class BrokerUnavailable(BusError):
    """Raised when the broker or result backend cannot be reached within the caller's timeout."""

    def __init__(self, routing_key: str, reason: str) -> None:
        self.routing_key = routing_key
        self.reason = reason
        super().__init__(f"cannot reach the broker for {routing_key!r}: {reason}")


class ModelError(CommissaireTasksError):
    """Base of errors about model data."""


class ValidationError(ModelError):
    """Raised when model data breaks the model's rules; ``errors`` lists every problem."""

    def __init__(self, message: str, errors: list[str] | None = None) -> None:
        self.errors = list(errors or [])
        super().__init__(message)


class CoercionError(ValidationError):
    """Raised when a value cannot be cast to its field's declared type.

    A :class:`ValidationError`, as in the original, so code written from the guide
    that catches ``models.ValidationError`` catches this too; ``errors`` names each field.
    """


class RemoteProcedureCallError(CommissaireTasksError):
    """Raised when a call failed on the remote side.

    Carries the JSON-RPC error ``code`` and ``data``; ``exception_type`` names the
    exception raised remotely.
    """

    #: JSON-RPC error code used when this class is raised in a service.
    code: ClassVar[int] = -32603

    def __init__(
        self, message: str = "", code: int | None = None, data: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = type(self).code if code is None else code  # type: ignore[misc]
        self.data: dict[str, Any] = dict(data or {})

    @property
    def exception_type(self) -> str:
        return str(self.data.get("exception", type(self).__name__))


class ParseError(RemoteProcedureCallError):
    """Raised when a message body could not be decoded."""

    code = -32700


class InvalidRequest(RemoteProcedureCallError):
    """Raised when a message is not a valid call (missing headers, bad shape)."""

    code = -32600


class MethodNotFound(RemoteProcedureCallError):
    """Raised when the called method does not exist on the service."""

    code = -32601


class InvalidParams(RemoteProcedureCallError):
    """Raised when the parameters do not match the method's signature or types."""

    code = -32602


class InternalError(RemoteProcedureCallError):
    """Raised for any other failure inside a service method."""

    code = -32603


class PayloadTooLarge(RemoteProcedureCallError):
    """Raised when a call's parameters exceed the configured size limit."""

    code = -32010


class StorageLookupError(RemoteProcedureCallError):
    """Raised when a stored record does not exist."""

    code = -20000


class ContainerManagerError(RemoteProcedureCallError):
    """Raised when a container manager operation fails."""

    code = -20001


class ClusterBusy(RemoteProcedureCallError):
    """Raised when a cluster operation is asked for while another one runs on that cluster.

    ``data`` holds ``cluster``, ``running`` (the running operation's type) and
    ``expires_in_s`` (the most its lock can still live if its worker died).
    """

    code = -32050


class InvestigationInProgress(RemoteProcedureCallError):
    """Raised when a host is investigated while another investigation of it runs.

    ``data`` holds ``address``; the message says when the running one's lock expires
    at most (if its worker died).
    """

    code = -32051


_RPC_ERRORS: dict[str, type[RemoteProcedureCallError]] = {
    cls.__name__: cls
    for cls in (
        RemoteProcedureCallError,
        ParseError,
        InvalidRequest,
        MethodNotFound,
        InvalidParams,
        InternalError,
        PayloadTooLarge,
        StorageLookupError,
        ContainerManagerError,
        ClusterBusy,
        InvestigationInProgress,
    )
}
_RPC_ERRORS_BY_CODE = {cls.code: cls for cls in _RPC_ERRORS.values() if cls is not InternalError}

#: Errors other code raises that mean "wrong parameters" to a caller.
_INVALID_PARAMS_TYPES: tuple[type[BaseException], ...] = (ValidationError,)


def jsonrpc_error(exc: BaseException) -> dict[str, Any]:
    """Render an exception as a JSON-RPC error object ``{code, message, data}``."""
    if isinstance(exc, RemoteProcedureCallError):
        data = dict(exc.data)
        data.setdefault("exception", type(exc).__name__)
        return {"code": exc.code, "message": exc.message, "data": data}
    data = {"exception": type(exc).__name__}
    code = InternalError.code
    if isinstance(exc, _INVALID_PARAMS_TYPES):
        code = InvalidParams.code
        if isinstance(exc, ValidationError):
            data["errors"] = list(exc.errors)
    return {"code": code, "message": str(exc), "data": data}


def error_from_jsonrpc(error: dict[str, Any]) -> Exception:
    """Rebuild the exception a JSON-RPC error object describes, from an allow-list."""
    code = int(error.get("code", InternalError.code))
    message = str(error.get("message", ""))
    data = dict(error.get("data") or {})
    name = str(data.get("exception", ""))
    if name in _RPC_ERRORS:
        return _RPC_ERRORS[name](message, code, data)
    if name == "ValidationError":
        return ValidationError(message, data.get("errors"))
    if name == "CoercionError":
        return CoercionError(message, data.get("errors"))
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        try:
            return builtin(message)
        except Exception:  # noqa: BLE001 - a builtin with an odd signature
            pass
    cls = _RPC_ERRORS_BY_CODE.get(code, RemoteProcedureCallError)
    return cls(message, code, data)
