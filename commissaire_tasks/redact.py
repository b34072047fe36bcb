"""Hiding passwords in URLs before they are printed or logged."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "redact_url"]

#: What a password is replaced with.
MASK = "***"

#: Query parameters that carry secrets in broker URLs (``?password=...``).
_SECRET_PARAMS = frozenset({"password", "pass", "passwd", "secret", "token"})


def redact_url(url: str) -> str:
    """``url`` with its passwords replaced by ``***`` (also each of ``a;b`` failover URLs).

    >>> redact_url("redis://:s3cret@127.0.0.1:6379/0")
    'redis://:***@127.0.0.1:6379/0'
    >>> redact_url("amqp://guest:guest@rabbit//")
    'amqp://guest:***@rabbit//'
    """
    return ";".join(_redact_one(part) for part in url.split(";"))


def _redact_one(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK  # unparseable: print nothing of it rather than a secret
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostinfo = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostinfo}" if has_password else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in _SECRET_PARAMS for key, _ in pairs):
            masked = [(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs]
            query = urlencode(masked, safe="*")
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing secret; keep it byte for byte (``memory://``)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
