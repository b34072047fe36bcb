"""A store handler in process memory, for unit tests and trying things out."""

from __future__ import annotations

import threading
from typing import Any

from .base import Record, RecordState, StoreHandler, WriteOutcome, not_found


class MemoryStoreHandler(StoreHandler):
    """Keeps records in a dict; nothing survives the process."""

    type_name = "memory"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._records: dict[tuple[str, str], RecordState] = {}
        self._lock = threading.Lock()

    def save(
        self, model_type: str, key: str, data: dict[str, Any], write_id: str | None = None
    ) -> WriteOutcome:
        with self._lock:
            state = self._records.get((model_type, key), RecordState())
            self._records[(model_type, key)], outcome = state.saved(data, write_id)
        return outcome

    def get(self, model_type: str, key: str) -> Record:
        state = self._records.get((model_type, key))
        if state is None or not state.live:
            raise not_found(model_type, key)
        return Record(dict(state.data or {}), state.revision)

    def delete(self, model_type: str, key: str, write_id: str | None = None) -> WriteOutcome:
        with self._lock:
            state = self._records.get((model_type, key), RecordState())
            self._records[(model_type, key)], outcome = state.removed(model_type, key, write_id)
        return outcome

    def list(self, model_type: str) -> list[Record]:
        return [
            Record(dict(state.data or {}), state.revision)
            for (kind, _), state in sorted(self._records.items())
            if kind == model_type and state.live
        ]
