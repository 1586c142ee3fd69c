"""Engines: SQLite (the embedded default) with the pragmas Inflow relies on, or any database URL.

SQLite through Python's `sqlite3` has its own idea of transactions (it opens them implicitly before
DML, never before DDL). We switch that off on every new connection and let SQLAlchemy's "begin"
event emit BEGIN, as SQLAlchemy's SQLite documentation recommends, so `engine.begin()` and
`conn.commit()` mean what they say, DDL included (a failed migration rolls back whole).

A connection given the execution option `inflow_manual_transactions=True` gets no automatic BEGIN:
each statement commits on its own unless the caller emits `BEGIN IMMEDIATE` / `COMMIT` itself. The
content store's single long-lived connection works that way, so a read never holds a snapshot open.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

BUSY_TIMEOUT_MS = 5000
MANUAL = "inflow_manual_transactions"


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):  # pragma: no cover - other drivers
        return
    dbapi_connection.isolation_level = None  # the driver never emits BEGIN by itself
    cur = dbapi_connection.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    finally:
        cur.close()


def _on_begin(conn: sa.Connection) -> None:
    if conn.get_execution_options().get(MANUAL):
        return
    conn.exec_driver_sql("BEGIN")


def sqlite_engine(path: Path) -> sa.Engine:
    """An engine on the SQLite file `path` (its folder is created): WAL, synchronous=NORMAL,
    foreign keys on, a busy timeout; transactions begin when SQLAlchemy says so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        sa.URL.create("sqlite+pysqlite", database=str(path)),
        connect_args={"check_same_thread": False},
    )
    event.listen(engine, "connect", _on_connect)
    event.listen(engine, "begin", _on_begin)
    return engine


def database_engine(database_url: str) -> sa.Engine:
    """An engine for a database URL: `sqlite:///path` gets `sqlite_engine`; anything else (the
    PostgreSQL a later issue brings) is passed to SQLAlchemy with liveness checks on checkout."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("an SQLite database URL needs a file path")
        return sqlite_engine(Path(url.database))
    return sa.create_engine(url, pool_pre_ping=True)


def begin_immediate(conn: sa.Connection) -> None:
    """Start a write transaction on a manual-transaction connection: on SQLite BEGIN IMMEDIATE
    takes the write lock now (waiting up to the busy timeout), so read-then-write cannot fail
    half-way on a lock upgrade."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:  # pragma: no cover - PostgreSQL later
        conn.exec_driver_sql("BEGIN")


def commit(conn: sa.Connection) -> None:
    conn.exec_driver_sql("COMMIT")
    conn.commit()  # SQLAlchemy's own bookkeeping; the database has nothing left to commit


def rollback(conn: sa.Connection) -> None:
    conn.rollback()  # the DBAPI rollback ends the open transaction, if any
