"""Watching a running call's progress (``message.progress(done, total, info)``) from the caller.

>>> result = bus.send("introspect.progress", 10)
>>> wait_with_progress(result)          # a tqdm bar on stderr while it runs
10

The bar needs the ``progress`` extra (``pip install commissaire-tasks[progress]``);
without tqdm the wait is silent. Polling reads the result backend, so it works
with every backend, not only those that push state changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from celery import states
from celery.result import AsyncResult
from kombu.exceptions import OperationalError

from ..errors import BrokerUnavailable, CallTimeout
from ..message import PROGRESS_STATE

__all__ = ["POLL_INTERVAL_S", "progress_of", "wait_with_progress"]

#: Seconds between two reads of a running call's state.
POLL_INTERVAL_S = 0.2
#: Timeout when the result's app has no settings (a plain Celery app), in seconds.
_FALLBACK_TIMEOUT_S = 30.0


def progress_of(result: AsyncResult) -> dict[str, Any] | None:
    """``{"done", "total", "info"}`` as last reported by the call, or None if it reports none."""
    return _progress(_meta(result))


def wait_with_progress(result: AsyncResult, timeout: float | None = None, bar: bool = True) -> Any:
    """Wait for ``result`` showing its progress; return its value or raise its error.

    Args:
        result: The call's AsyncResult (``bus.send(...)``).
        timeout: Seconds to wait; the app's ``call_timeout_s`` when omitted.
        bar: Show a tqdm bar on stderr (when tqdm is installed).

    Raises:
        CallTimeout: The call did not finish in time.
        BrokerUnavailable: The result backend could not be read.
    """
    if timeout is None:
        settings = getattr(result.app, "settings", None)
        timeout = getattr(settings, "call_timeout_s", _FALLBACK_TIMEOUT_S)
    name = getattr(result, "routing_key", None) or result.name or result.id
    deadline = time.monotonic() + timeout
    with _display(bar, str(name)) as show:
        while True:
            meta = _meta(result)
            if meta.get("status") in states.READY_STATES:
                break
            progress = _progress(meta)
            if progress is not None:
                show(progress)
            if time.monotonic() >= deadline:
                raise CallTimeout(str(name), timeout)
            time.sleep(POLL_INTERVAL_S)
    try:
        return result.get(timeout=max(deadline - time.monotonic(), 1.0))
    except OperationalError as exc:
        raise BrokerUnavailable(str(name), str(exc)) from exc


def _meta(result: AsyncResult) -> dict[str, Any]:
    try:
        return dict(result.backend.get_task_meta(result.id))
    except (OperationalError, ConnectionError) as exc:
        raise BrokerUnavailable(result.id, str(exc)) from exc


def _progress(meta: dict[str, Any]) -> dict[str, Any] | None:
    info = meta.get("result")
    if meta.get("status") != PROGRESS_STATE or not isinstance(info, dict):
        return None
    return {"done": info.get("done"), "total": info.get("total"), "info": info.get("info")}


@contextmanager
def _display(bar: bool, name: str) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A function that shows one progress report; a no-op without a bar or tqdm."""
    tqdm = _tqdm() if bar else None
    if tqdm is None:
        yield lambda progress: None
        return
    display = tqdm(total=None, desc=name, leave=False, dynamic_ncols=True)

    def show(progress: dict[str, Any]) -> None:
        total, done = progress["total"], progress["done"]
        if isinstance(total, (int, float)) and display.total != total:
            display.total = total
        if isinstance(done, (int, float)):
            display.n = done
        if progress["info"] is not None:
            display.set_postfix_str(str(progress["info"]), refresh=False)
        display.refresh()

    try:
        yield show
    finally:
        display.close()


def _tqdm() -> Any:
    try:
        from tqdm import tqdm  # the optional `progress` extra
    except ImportError:
        return None
    return tqdm
