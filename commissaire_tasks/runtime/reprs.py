"""The text a call's arguments and result are shown as (message headers, logs, Flower).

Celery renders both with its ``saferepr``, a pure-Python walk of the value: about
90 µs for one storage record on this project's 2-core machine, paid by the caller
for every call (``argsrepr``/``kwargsrepr`` headers) and by the pool process for
every result (the text the worker logs and sends in ``task-succeeded``). Values on
the wire are JSON anyway, so this module renders them with ``json.dumps`` (about
4 µs), cut at Celery's own limits.
"""

from __future__ import annotations

import json
from typing import Any

import celery.app.trace

__all__ = ["REPR_LIMIT", "install", "shown"]

#: Characters of argument or result text kept (Celery's ``argsrepr_maxsize``).
REPR_LIMIT = 1024


def shown(value: Any, maxlen: int | None = REPR_LIMIT, *_: Any, **__: Any) -> str:
    """``value`` as JSON text, cut to ``maxlen`` characters (``saferepr``'s signature)."""
    text = json.dumps(value, default=repr)
    if maxlen is None or len(text) <= maxlen:
        return text
    return text[: max(maxlen - 3, 0)] + "..."


def install() -> None:
    """Render results with :func:`shown` in this process and the pool processes it forks."""
    celery.app.trace.saferepr = shown
