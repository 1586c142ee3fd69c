"""The events database: raw events, daily rollups, comments and the xAPI outbox.

Its own SQLite file (`events.sqlite3`), apart from the content database, so a flood of events
never contends with content writes. WAL; one writer connection in one thread (batches are
serialized there, one transaction each) and one reader connection in another thread, so the
dashboards read a consistent snapshot without waiting behind ingestion.

A batch is inserted in one transaction: the ids already stored are looked up first, the new events
are inserted, and the rollups (counts and distinct-people tables per day, and per week and month
in `periods`) and the outbox are updated in the same transaction, so rollups always agree with the
raw events and a retried batch changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import sqlalchemy as sa

from server.analytics import periods, usage_signal
from server.analytics.events import Event
from server.db import events_tables as t
from server.db.engine import (
    CONNECT_TIMEOUT_SECONDS,
    Reconnect,
    begin_immediate,
    commit,
    database_engine,
    manual_transactions,
    rollback,
    sqlite_engine,
)
from server.db.migrate import upgrade

T = TypeVar("T")

# ingestion waits this long for a lock (a purge chunk, a checkpoint) before failing the batch
BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    new_ids: tuple[str, ...]
    queued: int  # statements added to the outbox


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    event_id: str
    statement: str
    attempts: int


def _event_data(e: Event) -> str:
    data: dict[str, Any] = {}
    if e.aids:
        data["aids"] = list(e.aids)
    if e.query:
        data["query"] = e.query
    if e.result_count is not None:
        data["result_count"] = e.result_count
    if e.helpful is not None:
        data["helpful"] = e.helpful
    if e.comment:
        data["comment"] = e.comment
    if e.url_host:
        data["url_host"] = e.url_host
    return json.dumps(data, separators=(",", ":"))


def rollup_rows(
    e: Event, user: str
) -> tuple[list[tuple[str, str, str, str, str]], list[tuple[str, str, str, str, str]]]:
    """The (dim, day, key, app, metric) counts and (dim, day, key, app, user) rows of one event."""
    day, app = e.day, e.app
    counts = [("app", day, "", app, e.type)]
    users = [("app", day, "", app, user)]
    if e.type in {"aid_opened", "aid_rated", "link_followed"} and e.aid:
        counts.append(("aid", day, e.aid, app, e.type))
        users.append(("aid", day, e.aid, app, user))
        if e.type == "aid_rated":
            counts.append(("aid", day, e.aid, app, "helpful" if e.helpful else "not_helpful"))
    elif e.type == "suggestions_shown":
        counts.extend(("aid", day, a, app, "shown") for a in e.aids)
    elif e.type == "panel_opened":
        counts.append(("ctx", day, e.context, app, "panel_opened"))
        users.append(("ctx", day, e.context, app, user))
    elif e.type == "search":
        counts.append(("query", day, e.query, app, "search"))
        if e.result_count == 0:
            counts.append(("query", day, e.query, app, "zero_results"))
            users.append(("zero", day, e.query, app, user))
    return counts, users


class EventStore:
    """Async facade: one writer thread and one reader thread, each with its own connection.

    Both are SQLAlchemy connections on one engine (server/db/engine.py), in manual-transaction
    mode: a statement outside BEGIN IMMEDIATE ... COMMIT commits by itself, so the reader never
    holds a snapshot open and the purge's chunks are short transactions. `open_sync` migrates
    the database to the newest revision first (server/migrations/events/)."""

    SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")

    def __init__(self, path: Path, synchronous: str = "NORMAL", *, url: str = "") -> None:
        """`url` (INFLOW_EVENTS_DATABASE_URL) puts the events on another database, PostgreSQL
        for many nodes (docs/scale-out.md); "" is the SQLite file `path`. On PostgreSQL the
        ingestion and rollups work; the dashboard reports still read SQLite only."""
        if synchronous.upper() not in self.SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {self.SYNCHRONOUS}")
        self.path = path
        self.url = url
        self.synchronous = synchronous.upper()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-w")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-r")
        self._engine: sa.Engine | None = None
        self._w: sa.Connection | None = None
        self._r: sa.Connection | None = None
        self._opened: list[sa.Connection] = []  # by open_sync, closed if it fails half-way
        # each connection comes back by itself after the database went away (server/db/errors.py)
        self._w_reconnect = Reconnect("events")
        self._r_reconnect = Reconnect("events")

    # -- lifecycle --------------------------------------------------------------------------
    def _connect(self, engine: sa.Engine) -> sa.Connection:
        conn = manual_transactions(engine.connect())
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        else:
            conn.exec_driver_sql(f"SET lock_timeout = {BUSY_TIMEOUT_MS}")
        return conn

    def _connect_writer(self, engine: sa.Engine) -> sa.Connection:
        w = self._connect(engine)
        # NORMAL in WAL mode: a commit survives a crash of the process (what "committed
        # before answering" guards against); FULL also survives power loss, at one fsync
        # per batch. (PostgreSQL: its own synchronous_commit, durable by default.)
        if w.dialect.name == "sqlite":
            w.exec_driver_sql(f"PRAGMA synchronous={self.synchronous}")
        return w

    def _connect_reader(self, engine: sa.Engine) -> sa.Connection:
        r = self._connect(engine)
        if r.dialect.name == "sqlite":
            r.exec_driver_sql("PRAGMA query_only=ON")
        else:
            r.exec_driver_sql("SET default_transaction_read_only = on")
        return r

    def open_sync(self) -> None:
        engine = database_engine(self.url) if self.url else sqlite_engine(self.path)
        self._opened = []
        try:
            upgrade(engine, "events")
            w = self._connect_writer(engine)
            self._opened.append(w)
            if periods.get_meta(w, "rollup_version") != periods.ROLLUP_VERSION:
                # a new database (or one from before the period rollups): build them once
                with _transaction(w):
                    periods.rebuild(w)
            r = self._connect_reader(engine)
            self._opened.append(r)
        except BaseException:
            for conn in self._opened:
                conn.close()
            engine.dispose()
            raise
        self._engine, self._w, self._r = engine, w, r

    def close_sync(self) -> None:
        for conn in (self._w, self._r):
            if conn is not None:
                conn.close()
        if self._engine is not None:
            self._engine.dispose()
        self._engine = self._w = self._r = None

    async def open(self) -> None:
        await self.write(self.open_sync)

    async def close(self) -> None:
        if self._engine is not None:  # (its connections may be gone: an outage)
            await self.write(self.close_sync)
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._guarded, True, fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self._guarded, False, fn, *args)

    def _guarded(self, writer: bool, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the writer's or the reader's thread; a lost or refusing database
        becomes `DatabaseUnavailable` and that thread's dead connection is dropped (the next call
        connects again). A batch whose transaction failed so was not committed: the client sends
        it again (its event ids make the retry count once)."""
        try:
            return fn(*args)
        except Exception as exc:
            if self._engine is None:
                raise  # not open (or opening): start-up reports the driver's own error
            reconnect = self._w_reconnect if writer else self._r_reconnect
            unavailable = reconnect.failed(exc, self._w if writer else self._r)
            if unavailable is None:
                raise
            if writer:
                self._w = None
            else:
                self._r = None
            raise unavailable from exc

    @property
    def writer(self) -> sa.Connection:
        """The writer connection (use it in the writer thread only: `write`); made again after
        an outage."""
        if self._w is None:
            engine = self._engine
            assert engine is not None, "event store is not open"
            self._w = self._w_reconnect.connect(lambda: self._connect_writer(engine))
        return self._w

    @property
    def reader(self) -> sa.Connection:
        """The reader connection (query-only; use it in the reader thread only: `read`); made
        again after an outage."""
        if self._r is None:
            engine = self._engine
            assert engine is not None, "event store is not open"
            self._r = self._r_reconnect.connect(lambda: self._connect_reader(engine))
        return self._r

    @property
    def wconn(self) -> sqlite3.Connection:
        """The writer's DBAPI connection (for SQLite-only tools such as `VACUUM INTO`)."""
        return _dbapi(self.writer)

    @property
    def rconn(self) -> sqlite3.Connection:
        """The reader's DBAPI connection: what the dashboard reports (reports.py) read with. On
        PostgreSQL an adapter with sqlite3's `execute(sql, params)` and `?` placeholders (the
        reports' SQL is plain SQL both databases run)."""
        if self.reader.dialect.name == "sqlite":
            return _dbapi(self.reader)
        return cast(sqlite3.Connection, QmarkConnection(self.reader.connection.driver_connection))

    def connect_reader(self) -> sqlite3.Connection:
        """A read-only DBAPI connection of its own, for another thread (the usage signal): the
        caller closes it. On PostgreSQL the `QmarkConnection` adapter (see `rconn`)."""
        if not self.url:
            conn = sqlite3.connect(self.path)
            conn.execute("PRAGMA query_only=ON")
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            return conn
        assert self._engine is not None, "event store is not open"
        dialect = self._engine.dialect
        cargs, cparams = dialect.create_connect_args(self._engine.url)
        cparams.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        raw = dialect.connect(*cargs, **cparams)  # not the pool's: the caller owns it
        raw.autocommit = True
        raw.execute("SET default_transaction_read_only = on")
        return cast(sqlite3.Connection, QmarkConnection(raw))

    @staticmethod
    def data_version(conn: sqlite3.Connection) -> int:
        """A number that changes when what the usage signal reads changed, written by any
        connection or node: for `connect_reader`'s connections. SQLite's data_version (any write);
        on PostgreSQL the number of the signal's rows in `users` (a primary-key range per dim;
        a row is only ever added once, and removed by the purge)."""
        if isinstance(conn, sqlite3.Connection):
            return int(conn.execute("PRAGMA data_version").fetchone()[0])
        marks = ",".join("?" * len(usage_signal.DIMS))
        row = conn.execute(
            f"SELECT count(*) FROM users WHERE dim IN ({marks})", usage_signal.DIMS
        ).fetchone()
        return int(row[0])

    # -- ingestion (writer thread) -----------------------------------------------------------
    def ingest_sync(
        self,
        events: Sequence[Event],
        user: str,
        statement_for: Callable[[Event], str] | None = None,
    ) -> IngestResult:
        """Store the events not stored yet, their rollups and statements: one transaction."""
        conn = self.writer
        ids = list(dict.fromkeys(e.id for e in events))
        with _transaction(conn):
            existing: set[str] = set()
            for i in range(0, len(ids), 500):
                existing.update(conn.scalars(_SELECT_IDS, {"ids": ids[i : i + 500]}))
            fresh: list[Event] = []
            seen = set(existing)
            for e in events:
                if e.id not in seen:
                    seen.add(e.id)
                    fresh.append(e)
            _INSERT_EVENT.many(
                conn,
                [
                    (e.id, e.type, e.at_iso, e.day, user, e.app, e.context, e.aid, _event_data(e))
                    for e in fresh
                ],
            )
            self._rollup(conn, fresh, user)
            usage_signal.add_signal_rows(conn, fresh, user)
            _INSERT_COMMENT.many(
                conn,
                [
                    (e.id, e.day, e.aid, e.app, int(bool(e.helpful)), e.comment)
                    for e in fresh
                    if e.type == "aid_rated" and e.comment
                ],
            )
            queued = 0
            if statement_for is not None and fresh:
                _QUEUE.many(conn, [(e.id, e.day, statement_for(e)) for e in fresh])
                queued = len(fresh)
        return IngestResult(
            accepted=len(fresh),
            duplicates=len(events) - len(fresh),
            new_ids=tuple(e.id for e in fresh),
            queued=queued,
        )

    @staticmethod
    def _rollup(conn: sa.Connection, events: Iterable[Event], user: str) -> None:
        counts: Counter[tuple[str, str, str, str, str]] = Counter()
        users: set[tuple[str, str, str, str, str]] = set()
        for e in events:
            c, u = rollup_rows(e, user)
            counts.update(c)
            users.update(u)
        add_rollups(conn, counts, users)

    # -- retention (writer thread) -----------------------------------------------------------
    def purge_sync(self, before_day: str, chunk: int = 20_000) -> dict[str, int]:
        """Delete everything about days before `before_day` (raw events, rollups, comments,
        undelivered statements). Short transactions, so ingestion is never held up for long."""
        conn = self.writer
        removed: dict[str, int] = {}
        for table, key in (
            (t.events, "id"),
            (t.comments, "event_id"),
            (t.outbox, "seq"),
            (t.outbox_dead, "event_id"),
        ):
            total = 0
            col = table.c[key]
            doomed = sa.select(col).where(table.c.day < before_day).limit(chunk)
            while True:
                n = conn.execute(sa.delete(table).where(col.in_(doomed.scalar_subquery()))).rowcount
                total += n
                if n < chunk:
                    break
            removed[table.name] = total
        for table in t.ROLLUP_TABLES:
            total = 0
            for dim in ("app", "aid", "ctx", "query", "zero", *usage_signal.DIMS):  # key prefix
                total += conn.execute(
                    sa.delete(table).where(table.c.dim == dim, table.c.day < before_day)
                ).rowcount
            removed[table.name] = total
        with _transaction(conn):  # blocks and `blocks_from` change together
            removed.update(periods.purge(conn, before_day))
        return removed

    async def purge(self, before_day: str) -> dict[str, int]:
        return await self.write(self.purge_sync, before_day)

    # -- the usage signal (server/analytics/usage_signal.py) ---------------------------------
    async def usage_reset(self, aid: str, at_iso: str) -> int:
        """Forget an aid's usage signal up to `at_iso` (writer thread, one transaction)."""

        def reset() -> int:
            with _transaction(self.writer):
                return usage_signal.reset_sync(self.writer, aid, at_iso)

        return await self.write(reset)

    async def usage_reset_time(self, aid: str) -> str:
        """When the aid's signal was last reset ('' = never)."""
        return await self.read(usage_signal.reset_time_sync, self.reader, aid)

    async def ingest(
        self,
        events: Sequence[Event],
        user: str,
        statement_for: Callable[[Event], str] | None = None,
    ) -> IngestResult:
        return await self.write(self.ingest_sync, events, user, statement_for)

    # -- outbox (writer thread) --------------------------------------------------------------
    def outbox_batch_sync(self, limit: int) -> list[OutboxItem]:
        o = t.outbox.c
        rows = self.writer.execute(
            sa.select(o.seq, o.event_id, o.statement, o.attempts).order_by(o.seq).limit(limit)
        )
        return [OutboxItem(*r) for r in rows]

    def outbox_done_sync(self, seqs: Sequence[int]) -> None:
        conn = self.writer
        with _transaction(conn):
            conn.execute(
                sa.delete(t.outbox).where(t.outbox.c.seq == sa.bindparam("s")),
                [{"s": s} for s in seqs],
            )

    def outbox_failed_sync(self, seqs: Sequence[int]) -> None:
        conn = self.writer
        o = t.outbox.c
        with _transaction(conn):
            conn.execute(
                sa.update(t.outbox)
                .where(o.seq == sa.bindparam("s"))
                .values(attempts=o.attempts + 1),
                [{"s": s} for s in seqs],
            )

    def outbox_dead_sync(self, item: OutboxItem, status: int, reason: str) -> None:
        conn = self.writer
        o = t.outbox.c
        with _transaction(conn):
            day = conn.scalar(sa.select(o.day).where(o.seq == item.seq))
            conn.execute(
                t.upsert(conn.dialect, t.outbox_dead),
                {
                    "event_id": item.event_id,
                    "day": day or "",
                    "statement": item.statement,
                    "status": status,
                    "reason": reason[:2000],
                    "failed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                },
            )
            conn.execute(sa.delete(t.outbox).where(o.seq == item.seq))

    def outbox_size_sync(self) -> tuple[int, int]:
        count = sa.func.count()
        pending = self.writer.scalar(sa.select(count).select_from(t.outbox))
        dead = self.writer.scalar(sa.select(count).select_from(t.outbox_dead))
        return int(pending or 0), int(dead or 0)


_SELECT_IDS = sa.select(t.events.c.id).where(t.events.c.id.in_(sa.bindparam("ids", expanding=True)))
# ingestion's statements (see `Prepared`)
_INSERT_EVENT = t.Prepared(
    lambda d: sa.insert(t.events),
    ("id", "type", "at", "day", "user", "app", "context", "aid", "data"),
)
_INSERT_COMMENT = t.Prepared(
    lambda d: sa.insert(t.comments), ("event_id", "day", "aid", "app", "helpful", "comment")
)
_QUEUE = t.Prepared(lambda d: t.insert_ignore(d, t.outbox), ("event_id", "day", "statement"))
_ADD_COUNTS = t.Prepared(
    lambda d: t.upsert(d, t.counts, add="n"), ("dim", "day", "key", "app", "metric", "n")
)
_ADD_USER = t.Prepared(lambda d: t.insert_ignore(d, t.users), ("dim", "day", "key", "app", "user"))


@contextlib.contextmanager
def _transaction(conn: sa.Connection) -> Iterator[None]:
    """A write transaction on a manual-transaction connection (BEGIN IMMEDIATE on SQLite, the
    events store's advisory lock on PostgreSQL: server/db/engine.py)."""
    begin_immediate(conn, "events")
    try:
        yield
    except BaseException:
        rollback(conn)
        raise
    commit(conn)


class QmarkConnection:
    """sqlite3's `conn.execute(sql, params)` (returning a cursor to iterate or fetch from) on a
    psycopg connection: `?` placeholders become `%s` (and a literal `%` is escaped)."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self.raw.cursor()
        cur.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))
        return cur

    def close(self) -> None:
        self.raw.close()


def _dbapi(conn: sa.Connection) -> sqlite3.Connection:
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def add_rollups(
    conn: sa.Connection,
    counts: Counter[tuple[str, str, str, str, str]],
    users: Iterable[tuple[str, str, str, str, str]],
) -> None:
    """Add to the daily and period rollup tables (inside the caller's transaction)."""
    _ADD_COUNTS.many(conn, [(*k, n) for k, n in counts.items()])
    # only a person new to a group's day can be new to its week and month
    add_user = _ADD_USER.on(conn)
    fresh = [row for row in users if add_user(row).rowcount]
    periods.add_period_rollups(conn, counts, fresh)


def cutoff_day(retention_days: int, today: dt.date | None = None) -> str:
    """The first day kept: events of days before it are purged."""
    today = today or dt.datetime.now(dt.UTC).date()
    return (today - dt.timedelta(days=retention_days)).isoformat()


def purge_path(
    path: Path, retention_days: int, today: dt.date | None = None, *, url: str = ""
) -> dict[str, int]:
    """The purge as a plain function (CLI: `python -m server.analytics purge`)."""
    store = EventStore(path, url=url)
    store.open_sync()
    try:
        return store.purge_sync(cutoff_day(retention_days, today))
    finally:
        store.close_sync()
        store._writer.shutdown()
        store._reader.shutdown()
