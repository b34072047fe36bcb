"""What a Redis list entry must be for kombu to deliver it: a message envelope.

kombu's Redis transport parses every entry it pops and builds its message from
the envelope's fields. An entry that is not JSON, or whose fields are missing or
of the wrong type, raises inside the worker's event loop, and the worker stops
("Unrecoverable error"). :func:`parse_entry` checks an entry first and says why
it cannot be delivered, so the transport can move it aside instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import loads

__all__ = ["BadEntry", "parse_entry"]

_OPTIONAL_TEXT = ("content-type", "content-encoding")


class BadEntry(ValueError):
    """Raised for a queue entry that is not a deliverable envelope; the text says why."""


def parse_entry(raw: bytes | str, decode_body: Callable[[Any, Any], Any]) -> dict[str, Any]:
    """Return the envelope in ``raw``, or raise :class:`BadEntry`.

    ``decode_body(body, encoding)`` is the channel's own body decoder: the body
    must decode now, or kombu would fail on it later in the event loop.
    """
    try:
        payload = loads(bytes_to_str(raw))
    except Exception as exc:  # noqa: BLE001 - any decoding failure means "not JSON"
        raise BadEntry(f"not JSON ({type(exc).__name__})") from None
    if not isinstance(payload, dict):
        raise BadEntry(f"not a message envelope (a JSON {type(payload).__name__})")
    _check_fields(payload)
    properties = payload["properties"]
    try:
        decode_body(payload.get("body"), properties.get("body_encoding"))
    except Exception as exc:  # noqa: BLE001 - a body kombu cannot decode
        raise BadEntry(f"body does not decode ({type(exc).__name__})") from None
    return payload


def _check_fields(payload: dict[str, Any]) -> None:
    properties = payload.get("properties")
    if not isinstance(properties, dict):
        raise BadEntry("envelope has no 'properties' object")
    tag = properties.get("delivery_tag")
    if not isinstance(tag, str) or not tag:
        raise BadEntry("envelope has no 'delivery_tag' string")
    info = properties.get("delivery_info")
    if not isinstance(info, dict):
        raise BadEntry("envelope has no 'delivery_info' object")
    for key in ("exchange", "routing_key"):
        if not isinstance(info.get(key), str):
            raise BadEntry(f"envelope's delivery_info has no {key!r} string")
    encoding = properties.get("body_encoding")
    if encoding is not None and not isinstance(encoding, str):
        raise BadEntry("envelope's 'body_encoding' is not a string")
    if not isinstance(payload.get("body"), str):
        raise BadEntry("envelope has no 'body' string")
    headers = payload.get("headers")
    if headers is not None and not isinstance(headers, dict):
        raise BadEntry("envelope's 'headers' is not an object")
    for key in _OPTIONAL_TEXT:
        value = payload.get(key)
        if value is not None and not isinstance(value, str):
            raise BadEntry(f"envelope's {key!r} is not a string")
