"""Engines: SQLite (the embedded default) with the pragmas Inflow relies on, or any database URL.

SQLite through Python's `sqlite3` has its own idea of transactions (it opens them implicitly before
DML, never before DDL). We switch that off on every new connection and let SQLAlchemy's "begin"
event emit BEGIN, as SQLAlchemy's SQLite documentation recommends, so `engine.begin()` and
`conn.commit()` mean what they say, DDL included (a failed migration rolls back whole).

A connection made by `manual_transactions(conn)` gets no automatic BEGIN: each statement commits
on its own unless the caller starts a write transaction with `begin_immediate` and ends it with
`commit` / `rollback`. The content store's single long-lived connection works that way, so a read
never holds a snapshot open.

PostgreSQL (`postgresql+psycopg://`, for many nodes: docs/scale-out.md) works the same way: a
manual-transaction connection is in autocommit mode, and `begin_immediate` emits BEGIN and takes a
transaction-scoped advisory lock named after the store ("content", "events"), the equivalent of
SQLite's BEGIN IMMEDIATE: one write transaction at a time per store, across every node, so a
read-check-write inside it (an If-Match, "exists already", the next version number) sees the latest
commit and cannot interleave with another node's. Reads take no lock. Under READ COMMITTED each
statement after the lock sees every transaction committed before it was granted.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event

from server.db.errors import DatabaseUnavailable, describe, is_unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000
MANUAL = "inflow_manual_transactions"
# Seconds a PostgreSQL connection attempt may take (a host that does not answer at all): a down
# database costs a request this at most, then a fast failure while the store backs off.
CONNECT_TIMEOUT_SECONDS = 5


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
    """An engine for a database URL: `sqlite:///path` gets `sqlite_engine`; anything else
    (PostgreSQL: `postgresql+psycopg://...`) is passed to SQLAlchemy with liveness checks on
    checkout and a connect timeout (CONNECT_TIMEOUT_SECONDS unless the URL sets one)."""
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ValueError("an SQLite database URL needs a file path")
        return sqlite_engine(Path(url.database))
    connect_args: dict[str, Any] = {}
    if url.get_backend_name() == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def manual_transactions(conn: sa.Connection) -> sa.Connection:
    """Switch `conn` to manual transactions (see the module docstring): no automatic BEGIN on
    SQLite; autocommit on PostgreSQL, where `begin_immediate` emits BEGIN itself."""
    if conn.dialect.name == "sqlite":
        return conn.execution_options(**{MANUAL: True})
    return conn.execution_options(**{MANUAL: True, "isolation_level": "AUTOCOMMIT"})


def write_lock_key(store: str) -> int:
    """The PostgreSQL advisory lock that serialises `store`'s write transactions (a stable 32-bit
    number from its name, so every node and every Inflow version agree)."""
    return zlib.crc32(f"inflow:{store}".encode())


def begin_immediate(conn: sa.Connection, store: str = "content") -> None:
    """Start a write transaction on a manual-transaction connection: on SQLite BEGIN IMMEDIATE
    takes the write lock now (waiting up to the busy timeout), so read-then-write cannot fail
    half-way on a lock upgrade; on PostgreSQL BEGIN and the store's advisory transaction lock
    (released by COMMIT or ROLLBACK), so two nodes' writes to one store never interleave."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({write_lock_key(store)})")


def commit(conn: sa.Connection) -> None:
    conn.exec_driver_sql("COMMIT")
    conn.commit()  # SQLAlchemy's own bookkeeping; the database has nothing left to commit


def rollback(conn: sa.Connection) -> None:
    if conn.dialect.name != "sqlite":
        # autocommit mode: the driver did not open the transaction, so end it by name (a
        # ROLLBACK with none open is only a notice; a broken connection is discarded anyway)
        try:
            # (reading `conn.connection` of a connection invalidated by a disconnect raises too)
            raw = conn.connection.dbapi_connection
            if raw is not None:
                cur = raw.cursor()
                try:
                    cur.execute("ROLLBACK")
                finally:
                    cur.close()
        except Exception:  # noqa: S110 - the connection is gone: nothing is left open
            pass
    conn.rollback()  # the DBAPI rollback ends the open transaction, if any


class Reconnect:
    """How a store gets its connection back after the database went away (server/db/errors.py).

    The store keeps its long-lived connection; when a call fails because the database is
    unavailable, `failed(exc, conn)` closes the dead connection and returns the
    `DatabaseUnavailable` to raise (the store then forgets the connection), and the store's next
    call makes a new one through `connect(make)`. While connecting fails, calls fail at once
    without trying for a backoff that doubles from `retry_min` to `retry_max` seconds, so a down
    database costs a request a fast 503, not a connect timeout each. One line is logged when the
    database is lost and one when it is back. Used from the store's own thread(s), never on the
    event loop; one instance per connection."""

    def __init__(
        self,
        store: str,
        retry_min: float = 0.25,
        retry_max: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.retry_min = retry_min
        self.retry_max = retry_max
        self._clock = clock
        self._delay = 0.0
        self._next_try = 0.0
        self._last = ""
        self.down = False  # lost and not connected again yet

    def connect(self, make: Callable[[], T]) -> T:
        """`make()` (a new connection), unless the database failed us moments ago."""
        now = self._clock()
        if now < self._next_try:
            raise DatabaseUnavailable(self.store, self._last)
        try:
            conn = make()
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            self._delay = min(self.retry_max, self._delay * 2 or self.retry_min)
            self._next_try = now + self._delay
            self._last = describe(exc)
            self._lost()
            raise DatabaseUnavailable(self.store, self._last) from exc
        if self.down:
            log.info("%s database: connected again", self.store)
        self.down = False
        self._delay = self._next_try = 0.0
        return conn

    def failed(self, exc: BaseException, conn: sa.Connection | None) -> DatabaseUnavailable | None:
        """If `exc` means the database is unavailable: close `conn` (dead) and return the error to
        raise; otherwise None (a statement's own failure: the connection stays)."""
        if not is_unavailable(exc):
            return None
        if conn is not None:
            with contextlib.suppress(Exception):  # it is dead: closing may complain too
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()
        self._last = describe(exc)
        self._lost()
        if isinstance(exc, DatabaseUnavailable):
            return exc
        return DatabaseUnavailable(self.store, self._last)

    def _lost(self) -> None:
        if not self.down:
            self.down = True
            log.warning(
                "%s database unavailable (%s): requests answer 503 until it is back",
                self.store,
                self._last,
            )
