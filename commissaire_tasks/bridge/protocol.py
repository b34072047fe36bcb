"""The original Commissaire bus protocol, as pure functions: parse a body, build a reply.

No I/O here. A request on the wire is a JSON-RPC 2.0 object published under
``<prefix>.<method>``; its ``method`` must equal the routing key's last segment.
A reply is ``{"jsonrpc", "id", "result"}`` or ``{"jsonrpc", "id", "error"}``,
sent (as the original services did) as a JSON *string*: the original callers
decode it a second time, and accept a plain object too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidRequest, ParseError, RemoteProcedureCallError

__all__ = [
    "MISMATCH_ID",
    "ProtocolError",
    "Request",
    "encode_reply",
    "error_reply",
    "mismatch_reply",
    "parse_request",
    "result_reply",
]

#: The id the original put on its reply to a refused message (method not matching the key).
MISMATCH_ID = -1
#: Content types a body may be decoded from; anything else (pickle, yaml) is refused.
TEXT_CONTENT_TYPES = frozenset({None, "", "application/json", "text/plain", "application/data"})


@dataclass(frozen=True)
class Request:
    """One call or notification, checked against its routing key.

    Attributes:
        routing_key: Where it was published, ``<prefix>.<method>``.
        method: The body's ``method`` (the routing key's last segment).
        params: A list (positional) or an object (keyword); ``{}`` when absent.
        id: The call id; None for a notification (no reply is sent).
        matches_key: False when ``method`` is not the routing key's last segment.
    """

    routing_key: str
    method: str
    params: list[Any] | dict[str, Any]
    id: Any
    matches_key: bool = True

    @property
    def is_notification(self) -> bool:
        return self.id is None


class ProtocolError(Exception):
    """Raised when a body is not JSON (-32700) or not a request (-32600); ``id`` if known."""

    def __init__(self, error: RemoteProcedureCallError, call_id: Any = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.id = call_id


def parse_request(body: Any, routing_key: str, content_type: str | None = None) -> Request:
    """Decode a message body published under ``routing_key`` into a :class:`Request`.

    Args:
        body: The raw body (bytes or text), or an already decoded object.
        routing_key: The routing key the message was published with.
        content_type: The message's content type; binary serialisations are refused.

    Raises:
        ProtocolError: Carrying ParseError or InvalidRequest, and the call id if readable.
    """
    data = _decode(body, content_type)
    if isinstance(data, str):  # a JSON document sent as a JSON string, as replies are
        try:
            data = _decode(data, None)
        except ProtocolError:
            raise ProtocolError(InvalidRequest("a request is a JSON object, not str")) from None
    if not isinstance(data, dict):
        raise ProtocolError(InvalidRequest(f"a request is a JSON object, not {_kind(data)}"))
    call_id = data.get("id")
    if call_id is not None and not isinstance(call_id, (str, int, float)):
        raise ProtocolError(InvalidRequest("'id' must be a string or a number"))
    method = data.get("method")
    if not isinstance(method, str) or not method:
        raise ProtocolError(InvalidRequest("a request needs a 'method' string"), call_id)
    params = data.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, (list, dict)):
        raise ProtocolError(
            InvalidRequest(f"'params' must be a list or an object, not {_kind(params)}"), call_id
        )
    return Request(
        routing_key=routing_key,
        method=method,
        params=params,
        id=call_id,
        matches_key=routing_key.rpartition(".")[2] == method,
    )


def result_reply(call_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "result": result}


def error_reply(call_id: Any, error: dict[str, Any]) -> dict[str, Any]:
    """A reply carrying a JSON-RPC error object ``{code, message, data}``."""
    return {"jsonrpc": "2.0", "id": call_id, "error": error}


def mismatch_reply() -> dict[str, Any]:
    """What the original answered to a refused message: no result, no error, id -1."""
    return {"jsonrpc": "2.0", "id": MISMATCH_ID}


def encode_reply(reply: dict[str, Any]) -> str:
    """The reply as the JSON string the original services put on the wire (double-encoded)."""
    return json.dumps(reply, separators=(",", ":"), allow_nan=False)


def _decode(body: Any, content_type: str | None) -> Any:
    if content_type not in TEXT_CONTENT_TYPES:
        raise ProtocolError(ParseError(f"content type {content_type!r} is not JSON"))
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(ParseError(f"body is not UTF-8 text: {exc}")) from exc
    if not isinstance(body, str):
        return body
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise ProtocolError(ParseError(f"body is not JSON: {exc}")) from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
