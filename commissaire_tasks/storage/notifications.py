"""Old path of the notification modules (warns, then forwards).

Split by side: :mod:`~commissaire_tasks.storage.subscriptions` (the table, events,
names), :mod:`~commissaire_tasks.storage.notifier` (the storage worker's side) and
:mod:`~commissaire_tasks.storage.subscriber` (the decorator, callbacks, dispatch).
"""

from __future__ import annotations

from .._moved import forward
from . import notifier, subscriber, subscriptions

__getattr__ = forward(__name__, subscriptions, subscriber, notifier)
