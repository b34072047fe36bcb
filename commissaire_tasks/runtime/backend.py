"""The lean Redis result backend: each result reaches its caller in one round trip.

``lean+redis://host:6379/0`` (or ``lean+sentinel://...``, or
``COMMISSAIRE_RESULT_BACKEND=lean`` for the broker's Redis) selects it; plain
Celery apps find it by the ``lean`` name too (entry point
``celery.result_backends``). The worker stores each result under Celery's key
``celery-task-meta-<id>`` (what ``AsyncResult(id)`` in any process, ``.state``,
``ResultSet`` and Flower read) and, in the same script, pushes it onto the
caller's reply list (:mod:`.replies`), which expires once its caller is gone.
Callers on Celery's Redis backend keep receiving results by pub/sub from the
same workers: what is stored and announced depends on the call's ``reply_to``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from celery.app import backends
from celery.backends.redis import RedisBackend

from .replies import ReplyListConsumer
from .results import JsonRpcFailures, OneTripRedisStore

__all__ = ["LEAN_SCHEME", "LeanReplies", "is_lean_url", "lean_backend", "lean_backend_class"]

#: The URL prefix that selects this backend (Celery's ``backend+url`` form).
LEAN_SCHEME = "lean+"


def is_lean_url(url: Any) -> bool:
    return isinstance(url, str) and url.startswith(LEAN_SCHEME)


class LeanReplies:
    """Mixin for a Redis result backend: callers wait on a reply list of their own."""

    #: Marks a backend class whose results reach callers by reply list.
    lean_replies = True
    ResultConsumer = ReplyListConsumer

    @property
    def reply_to(self) -> str:
        """This process's reply list, for the ``reply_to`` of the calls it sends."""
        return self.result_consumer.reply_to  # type: ignore[attr-defined,no-any-return]

    def on_task_call(self, producer: Any, task_id: str) -> None:
        # Only an app that puts reply_to in its calls (ours) gets answers by list;
        # other apps' calls are read from their keys.
        if getattr(self.app, "replies_to_lists", False):  # type: ignore[attr-defined]
            self.result_consumer.expect(task_id)  # type: ignore[attr-defined]


@cache
def lean_backend_class(base: type[RedisBackend]) -> type[RedisBackend]:
    """``base`` (Celery's Redis or Sentinel backend) on the lean path, failures as JSON-RPC."""
    if not issubclass(base, RedisBackend):
        raise TypeError(f"the lean result backend needs Redis, not {base.__name__}")
    mixins = (LeanReplies, JsonRpcFailures, OneTripRedisStore)
    return type(f"Lean{base.__name__}", (*mixins, base), {})


def lean_backend(app: Any = None, url: str | None = None, **kwargs: Any) -> RedisBackend:
    """A lean backend for ``url`` (``lean+redis://...``, ``lean+sentinel://...``).

    Celery calls a backend name's target with ``app`` and the URL after ``lean+``;
    either form is accepted.
    """
    target = url[len(LEAN_SCHEME) :] if url is not None and is_lean_url(url) else url
    if not target or "://" not in target:
        raise ValueError(f"the lean result backend needs a Redis URL, not {url!r}")
    base, target = backends.by_url(target, getattr(app, "loader", None))
    return lean_backend_class(base)(app=app, url=target, **kwargs)
