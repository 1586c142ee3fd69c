"""The events database's tables (`events.sqlite3`), declared once with SQLAlchemy Core.

What each table is for is told in server/analytics/store.py (events, daily rollups, comments, the
xAPI outbox) and server/analytics/periods.py (week/month rollups, people bitmaps). Every schema
change is an Alembic revision under server/migrations/events/ that brings a database from the
previous declaration to this one; tests/test_events_migrations.py checks they agree.

Portable on purpose (the same tables on PostgreSQL: docs/scale-out.md): only TEXT, INTEGER and
BLOB-like types; days and times are ISO-8601 text (their order is the text order); `WITHOUT
ROWID` is a SQLite dialect option that other databases ignore; upserts go through the dialect's
`insert().on_conflict_do_*`, which SQLite and PostgreSQL both have (see `upsert` below).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

metadata = sa.MetaData()

# SQLite: INTEGER PRIMARY KEY AUTOINCREMENT (the rowid); PostgreSQL: a 64-bit identity
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NO_ROWID: dict[str, Any] = {"sqlite_with_rowid": False}


def _text(name: str, *, default: str | None = None, **kw: Any) -> sa.Column[str]:
    return sa.Column(
        name, sa.Text, nullable=False, server_default=None if default is None else default, **kw
    )


events = sa.Table(
    "events",
    metadata,
    _text("id", primary_key=True),  # the client's UUID: a retried batch is stored once
    _text("type"),
    _text("at"),  # UTC, ISO-8601
    _text("day"),  # UTC date of `at`: the rollups' unit and the purge key
    _text("user"),  # pseudonym, never the subject
    _text("app", default=""),
    _text("context", default=""),
    _text("aid", default=""),
    _text("data", default="{}"),  # type-specific fields (aids, query, result_count, ...)
    sa.Index("events_day", "day"),
    **NO_ROWID,
)

# counts per day: dim 'app' (key ''), 'aid' (key aid id), 'ctx' (key context id, '' = no
# context), 'query' (key normalized query); metric = event type or a derived figure.
counts = sa.Table(
    "counts",
    metadata,
    _text("dim", primary_key=True),
    _text("day", primary_key=True),
    _text("key", primary_key=True),
    _text("app", primary_key=True),
    _text("metric", primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    **NO_ROWID,
)

# distinct people per day and group: what the minimum group size is checked against.
users = sa.Table(
    "users",
    metadata,
    _text("dim", primary_key=True),
    _text("day", primary_key=True),
    _text("key", primary_key=True),
    _text("app", primary_key=True),
    _text("user", primary_key=True),
    **NO_ROWID,
)

comments = sa.Table(
    "comments",
    metadata,
    _text("event_id", primary_key=True),
    _text("day"),
    _text("aid"),
    _text("app"),
    sa.Column("helpful", sa.Integer, nullable=False),  # 0 / 1
    _text("comment"),
    sa.Index("comments_aid", "aid", "day"),
    sa.Index("comments_day", "day"),
    **NO_ROWID,
)

# xAPI statements waiting for the LRS, oldest first; deleted once the LRS accepted them.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=True),
    _text("event_id", unique=True),
    _text("day"),
    _text("statement"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
    sqlite_autoincrement=True,  # a delivered statement's number is never given again
)

# statements the LRS refused as invalid (kept for a person to look at; never retried).
outbox_dead = sa.Table(
    "outbox_dead",
    metadata,
    _text("event_id", primary_key=True),
    _text("day"),
    _text("statement"),
    sa.Column("status", sa.Integer, nullable=False),
    _text("reason"),
    _text("failed_at"),
    **NO_ROWID,
)

# daily counts summed per ISO week (level 'w', period = its Monday) and month ('m', its 1st)
period_counts = sa.Table(
    "period_counts",
    metadata,
    _text("dim", primary_key=True),
    _text("level", primary_key=True),
    _text("period", primary_key=True),
    _text("key", primary_key=True),
    _text("app", primary_key=True),
    _text("metric", primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    **NO_ROWID,
)

# distinct people per group and day / week / month, as a bitmap over person numbers
people = sa.Table(
    "people",
    metadata,
    _text("dim", primary_key=True),
    _text("level", primary_key=True),
    _text("period", primary_key=True),
    _text("key", primary_key=True),
    _text("app", primary_key=True),
    sa.Column("n", sa.Integer, nullable=False),
    sa.Column("bits", sa.LargeBinary, nullable=False),
    **NO_ROWID,
)

# pseudonym -> small number (a bit position); deleted with the last day the person was seen
person_ids = sa.Table(
    "person_ids",
    metadata,
    _text("user", primary_key=True),
    sa.Column("idx", sa.Integer, nullable=False, unique=True),
    _text("last_day"),
    **NO_ROWID,
)

meta = sa.Table(
    "meta",
    metadata,
    _text("name", primary_key=True),
    _text("value"),
    **NO_ROWID,
)

ROLLUP_TABLES = (counts, users)


def insert_for(dialect: sa.Dialect, table: sa.Table) -> Any:
    """The dialect's INSERT, which has `on_conflict_do_update` / `on_conflict_do_nothing` on
    SQLite and PostgreSQL alike (the generic `sa.insert` has neither)."""
    if dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert(dialect: sa.Dialect, table: sa.Table, *, add: str | None = None) -> Any:
    """INSERT ... ON CONFLICT (primary key): with `add`, that column of the stored row grows by
    the inserted value (counts); without, the row's other columns are replaced (bitmaps, meta)."""
    ins = insert_for(dialect, table)
    key = [c.name for c in table.primary_key.columns]
    if add is not None:
        return ins.on_conflict_do_update(
            index_elements=key, set_={add: table.c[add] + ins.excluded[add]}
        )
    rest = {c.name: ins.excluded[c.name] for c in table.columns if c.name not in key}
    return ins.on_conflict_do_update(index_elements=key, set_=rest)


def insert_ignore(dialect: sa.Dialect, table: sa.Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING (any unique constraint)."""
    return insert_for(dialect, table).on_conflict_do_nothing()


class Prepared:
    """A Core statement compiled once per dialect, run straight on the DBAPI cursor with rows
    given as tuples in `names` order: ingestion's hot path.

    Going through `Connection.execute` costs ~0.2 ms per statement in SQLAlchemy's bookkeeping
    (result metadata, parameter dicts), which made ingestion 30-40% slower: a batch of 500 events
    runs hundreds of single-row statements (`users`, `people`). The SQL still comes from the
    declarations above, for the connection's dialect, with bound parameters; only the wrapper is
    skipped (no SQLAlchemy events fire for these statements)."""

    def __init__(self, build: Callable[[sa.Dialect], Any], names: Sequence[str]) -> None:
        self._build = build
        self.names = tuple(names)
        self._sql: dict[str, str] = {}

    def sql(self, dialect: sa.Dialect) -> str:
        sql = self._sql.get(dialect.name)
        if sql is None:
            if not dialect.positional:  # psycopg: compiled with %s placeholders, rows as tuples
                dialect = type(dialect)(paramstyle="format")  # type: ignore[call-arg]
            compiled = self._build(dialect).compile(dialect=dialect, column_keys=list(self.names))
            order = compiled.positiontup
            if order is None or tuple(order) != self.names:  # pragma: no cover - a coding error
                raise ValueError(f"parameters {order} are not {self.names}: {compiled.string}")
            sql = self._sql[dialect.name] = compiled.string
        return sql

    def one(self, conn: sa.Connection, row: Sequence[Any]) -> Any:
        """Run once; the DBAPI cursor (rowcount, fetchone)."""
        return self.on(conn)(row)

    def on(self, conn: sa.Connection) -> Callable[[Sequence[Any]], Any]:
        """`one` bound to a connection, for a loop of single-row statements."""
        raw = _dbapi(conn)
        if conn.dialect.name == "sqlite":
            return functools.partial(raw.execute, self.sql(conn.dialect))
        cur = raw.cursor()  # psycopg: execute returns the cursor (rowcount) as sqlite3's does
        return functools.partial(cur.execute, self.sql(conn.dialect), prepare=True)

    def many(self, conn: sa.Connection, rows: Iterable[Sequence[Any]]) -> None:
        raw = _dbapi(conn)
        if conn.dialect.name == "sqlite":
            raw.executemany(self.sql(conn.dialect), rows)
            return
        rows = list(rows)
        if rows:
            with raw.cursor() as cur:
                cur.executemany(self.sql(conn.dialect), rows)


def _dbapi(conn: sa.Connection) -> Any:
    return conn.connection.driver_connection
