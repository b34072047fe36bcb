"""Records in a SQL database through SQLAlchemy 2 (PostgreSQL, or SQLite for one file).

One table keyed by (model type, key). A save reads the row with a lock
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite transactions take the write
lock at BEGIN) and writes it in the same transaction; two processes creating
one new record race on the primary key, and the loser retries as an update.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ...errors import ConfigurationError
from .base import Record, RecordState, StoreHandler, WriteOutcome, not_found

try:
    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError, OperationalError
except ImportError as exc:  # pragma: no cover - the [sql] extra is missing
    raise ConfigurationError(
        "the sql store handler needs SQLAlchemy: pip install 'commissaire-tasks[sql]'"
    ) from exc

T = TypeVar("T")
#: Times a transaction is retried after losing a race (insert conflict, SQLite busy).
RETRIES = 8


class SQLStoreHandler(StoreHandler):
    """Keeps records in one table of a SQL database."""

    type_name = "sql"
    options = {"url": (str, None), "table": (str, "commissaire_records")}
    required = ("url",)

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._engine: sa.Engine | None = None
        self._engine_lock = threading.Lock()
        self.table = _records_table(self.config["table"])

    @classmethod
    def check_config(cls, options: Any) -> dict[str, Any]:
        config = super().check_config(options)
        try:
            sa.engine.make_url(config["url"])
        except sa.exc.ArgumentError as exc:
            raise ConfigurationError(f"option 'url' is not a database URL: {exc}") from exc
        return config

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    engine = _make_engine(self.config["url"])
                    _create_table(self.table, engine)
                    self._engine = engine
        return self._engine

    def save(
        self, model_type: str, key: str, data: dict[str, Any], write_id: str | None = None
    ) -> WriteOutcome:
        return self._write(model_type, key, lambda state: state.saved(data, write_id))

    def delete(self, model_type: str, key: str, write_id: str | None = None) -> WriteOutcome:
        return self._write(model_type, key, lambda state: state.removed(model_type, key, write_id))

    def get(self, model_type: str, key: str) -> Record:
        with self.engine.connect() as connection:
            row = connection.execute(self._select(model_type, key)).first()
        state = _state(row)
        if not state.live:
            raise not_found(model_type, key)
        return Record(dict(state.data or {}), state.revision)

    def list(self, model_type: str) -> list[Record]:
        t = self.table.c
        query = (
            sa.select(self.table)
            .where(t.model_type == model_type, t.deleted.is_(False))
            .order_by(t.key)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [Record(json.loads(row.data), row.revision) for row in rows]

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _write(
        self,
        model_type: str,
        key: str,
        change: Callable[[RecordState], tuple[RecordState, WriteOutcome]],
    ) -> WriteOutcome:
        def attempt() -> WriteOutcome:
            with self.engine.begin() as connection:
                row = connection.execute(self._select(model_type, key).with_for_update()).first()
                state, outcome = change(_state(row))
                if not outcome.replayed:
                    values = _row_values(state)
                    if row is None:
                        connection.execute(
                            sa.insert(self.table).values(model_type=model_type, key=key, **values)
                        )
                    else:
                        t = self.table.c
                        connection.execute(
                            sa.update(self.table)
                            .where(t.model_type == model_type, t.key == key)
                            .values(**values)
                        )
                return outcome

        return _retrying(attempt)

    def _select(self, model_type: str, key: str) -> sa.Select[Any]:
        t = self.table.c
        return sa.select(self.table).where(t.model_type == model_type, t.key == key)


def _create_table(table: sa.Table, engine: sa.Engine) -> None:
    """Create ``table`` unless it exists, also when another process creates it meanwhile.

    ``create_all`` checks, then creates: two storage processes starting on a new
    database can both pass the check, and PostgreSQL refuses the second CREATE.
    """
    try:
        table.metadata.create_all(engine)
    except (sa.exc.ProgrammingError, sa.exc.IntegrityError):
        if not sa.inspect(engine).has_table(table.name):
            raise


def _records_table(name: str) -> sa.Table:
    return sa.Table(
        name,
        sa.MetaData(),
        sa.Column("model_type", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("data", sa.Text, nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("write_id", sa.String(128), nullable=True),
        sa.Column("last_event", sa.String(16), nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False, default=False),
    )


def _make_engine(url: str) -> sa.Engine:
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _autocommit_off(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock before reading

    return engine


def _state(row: Any) -> RecordState:
    if row is None:
        return RecordState()
    return RecordState(
        data=json.loads(row.data) if row.data is not None else None,
        revision=row.revision,
        write_id=row.write_id,
        last_event=row.last_event,
        deleted=row.deleted,
    )


def _row_values(state: RecordState) -> dict[str, Any]:
    return {
        "data": json.dumps(state.data, separators=(",", ":"), sort_keys=True),
        "revision": state.revision,
        "write_id": state.write_id,
        "last_event": state.last_event,
        "deleted": state.deleted,
    }


def _retrying(attempt: Callable[[], T]) -> T:
    for remaining in range(RETRIES, 0, -1):
        try:
            return attempt()
        except (IntegrityError, OperationalError):
            if remaining == 1:
                raise
    raise AssertionError("unreachable")
