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
import datetime as dt
import json
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from server.analytics import periods
from server.analytics.events import Event

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,          -- the client's UUID: a retried batch is stored once
    type TEXT NOT NULL,
    at TEXT NOT NULL,             -- UTC, ISO-8601
    day TEXT NOT NULL,            -- UTC date of `at`: the rollups' unit and the purge key
    user TEXT NOT NULL,           -- pseudonym, never the subject
    app TEXT NOT NULL DEFAULT '',
    context TEXT NOT NULL DEFAULT '',
    aid TEXT NOT NULL DEFAULT '',
    data TEXT NOT NULL DEFAULT '{}'  -- type-specific fields (aids, query, result_count, ...)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_day ON events(day);
-- counts per day: dim 'app' (key ''), 'aid' (key aid id), 'ctx' (key context id, '' = no
-- context), 'query' (key normalized query); metric = event type or a derived figure.
CREATE TABLE IF NOT EXISTS counts (
    dim TEXT NOT NULL, day TEXT NOT NULL, key TEXT NOT NULL, app TEXT NOT NULL,
    metric TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (dim, day, key, app, metric)
) WITHOUT ROWID;
-- distinct people per day and group: what the minimum group size is checked against.
CREATE TABLE IF NOT EXISTS users (
    dim TEXT NOT NULL, day TEXT NOT NULL, key TEXT NOT NULL, app TEXT NOT NULL,
    user TEXT NOT NULL,
    PRIMARY KEY (dim, day, key, app, user)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS comments (
    event_id TEXT PRIMARY KEY, day TEXT NOT NULL, aid TEXT NOT NULL, app TEXT NOT NULL,
    helpful INTEGER NOT NULL, comment TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS comments_aid ON comments(aid, day);
CREATE INDEX IF NOT EXISTS comments_day ON comments(day);
-- xAPI statements waiting for the LRS, oldest first; deleted once the LRS accepted them.
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    day TEXT NOT NULL,
    statement TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);
-- statements the LRS refused as invalid (kept for a person to look at; never retried).
CREATE TABLE IF NOT EXISTS outbox_dead (
    event_id TEXT PRIMARY KEY, day TEXT NOT NULL, statement TEXT NOT NULL,
    status INTEGER NOT NULL, reason TEXT NOT NULL, failed_at TEXT NOT NULL
) WITHOUT ROWID;
"""

ROLLUP_TABLES = ("counts", "users")


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
    """Async facade: one writer thread and one reader thread, each with its own connection."""

    def __init__(self, path: Path, synchronous: str = "NORMAL") -> None:
        self.path = path
        self.synchronous = synchronous
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-w")
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="events-r")
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=10000")
        return conn

    def open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash of the process (what "committed before
        # answering" guards against); FULL also survives power loss, at one fsync per batch.
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.executescript(SCHEMA)
        conn.executescript(periods.SCHEMA)
        if periods.get_meta(conn, "rollup_version") != periods.ROLLUP_VERSION:
            # a database from before the period rollups (or a new one): build them once
            conn.execute("BEGIN IMMEDIATE")
            try:
                periods.rebuild(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        self._wconn = conn
        self._rconn = self._connect()
        self._rconn.execute("PRAGMA query_only=ON")

    def close_sync(self) -> None:
        for conn in (self._wconn, self._rconn):
            if conn is not None:
                conn.close()
        self._wconn = self._rconn = None

    async def open(self) -> None:
        await self.write(self.open_sync)

    async def close(self) -> None:
        if self._wconn is not None:
            await self.write(self.close_sync)
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._reader, fn, *args)

    @property
    def wconn(self) -> sqlite3.Connection:
        assert self._wconn is not None, "event store is not open"
        return self._wconn

    @property
    def rconn(self) -> sqlite3.Connection:
        assert self._rconn is not None, "event store is not open"
        return self._rconn

    # -- ingestion (writer thread) -----------------------------------------------------------
    def ingest_sync(
        self,
        events: Sequence[Event],
        user: str,
        statement_for: Callable[[Event], str] | None = None,
    ) -> IngestResult:
        """Store the events not stored yet, their rollups and statements: one transaction."""
        conn = self.wconn
        ids = list(dict.fromkeys(e.id for e in events))
        conn.execute("BEGIN IMMEDIATE")
        try:
            existing: set[str] = set()
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                existing.update(
                    r[0]
                    for r in conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk)
                )
            fresh: list[Event] = []
            seen = set(existing)
            for e in events:
                if e.id not in seen:
                    seen.add(e.id)
                    fresh.append(e)
            conn.executemany(
                "INSERT INTO events (id, type, at, day, user, app, context, aid, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (e.id, e.type, e.at_iso, e.day, user, e.app, e.context, e.aid, _event_data(e))
                    for e in fresh
                ],
            )
            self._rollup(conn, fresh, user)
            comments = [
                (e.id, e.day, e.aid, e.app, int(bool(e.helpful)), e.comment)
                for e in fresh
                if e.type == "aid_rated" and e.comment
            ]
            if comments:
                conn.executemany(
                    "INSERT INTO comments (event_id, day, aid, app, helpful, comment) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    comments,
                )
            queued = 0
            if statement_for is not None and fresh:
                conn.executemany(
                    "INSERT OR IGNORE INTO outbox (event_id, day, statement) VALUES (?, ?, ?)",
                    [(e.id, e.day, statement_for(e)) for e in fresh],
                )
                queued = len(fresh)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return IngestResult(
            accepted=len(fresh),
            duplicates=len(events) - len(fresh),
            new_ids=tuple(e.id for e in fresh),
            queued=queued,
        )

    @staticmethod
    def _rollup(conn: sqlite3.Connection, events: Iterable[Event], user: str) -> None:
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
        conn = self.wconn
        removed: dict[str, int] = {}
        for table, where in (
            ("events", "day < ?"),
            ("comments", "day < ?"),
            ("outbox", "day < ?"),
            ("outbox_dead", "day < ?"),
        ):
            total = 0
            key = "rowid" if table == "outbox" else ("id" if table == "events" else "event_id")
            while True:
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE {key} IN "
                    f"(SELECT {key} FROM {table} WHERE {where} LIMIT ?)",
                    (before_day, chunk),
                )
                total += cur.rowcount
                if cur.rowcount < chunk:
                    break
            removed[table] = total
        for table in ROLLUP_TABLES:
            total = 0
            for dim in ("app", "aid", "ctx", "query", "zero"):
                cur = conn.execute(
                    f"DELETE FROM {table} WHERE dim = ? AND day < ?", (dim, before_day)
                )
                total += cur.rowcount
            removed[table] = total
        conn.execute("BEGIN IMMEDIATE")  # blocks and `blocks_from` change together
        try:
            removed.update(periods.purge(conn, before_day))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return removed

    async def purge(self, before_day: str) -> dict[str, int]:
        return await self.write(self.purge_sync, before_day)

    async def ingest(
        self,
        events: Sequence[Event],
        user: str,
        statement_for: Callable[[Event], str] | None = None,
    ) -> IngestResult:
        return await self.write(self.ingest_sync, events, user, statement_for)

    # -- outbox (writer thread) --------------------------------------------------------------
    def outbox_batch_sync(self, limit: int) -> list[OutboxItem]:
        rows = self.wconn.execute(
            "SELECT seq, event_id, statement, attempts FROM outbox ORDER BY seq LIMIT ?", (limit,)
        ).fetchall()
        return [OutboxItem(*r) for r in rows]

    def outbox_done_sync(self, seqs: Sequence[int]) -> None:
        conn = self.wconn
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
        conn.execute("COMMIT")

    def outbox_failed_sync(self, seqs: Sequence[int]) -> None:
        conn = self.wconn
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", [(s,) for s in seqs]
        )
        conn.execute("COMMIT")

    def outbox_dead_sync(self, item: OutboxItem, status: int, reason: str) -> None:
        conn = self.wconn
        conn.execute("BEGIN IMMEDIATE")
        day = conn.execute("SELECT day FROM outbox WHERE seq = ?", (item.seq,)).fetchone()
        conn.execute(
            "INSERT OR REPLACE INTO outbox_dead (event_id, day, statement, status, reason, "
            "failed_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                item.event_id,
                day[0] if day else "",
                item.statement,
                status,
                reason[:2000],
                dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            ),
        )
        conn.execute("DELETE FROM outbox WHERE seq = ?", (item.seq,))
        conn.execute("COMMIT")

    def outbox_size_sync(self) -> tuple[int, int]:
        pending = self.wconn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        dead = self.wconn.execute("SELECT COUNT(*) FROM outbox_dead").fetchone()[0]
        return int(pending), int(dead)


def add_rollups(
    conn: sqlite3.Connection,
    counts: Counter[tuple[str, str, str, str, str]],
    users: Iterable[tuple[str, str, str, str, str]],
) -> None:
    """Add to the daily and period rollup tables (inside the caller's transaction)."""
    conn.executemany(
        "INSERT INTO counts (dim, day, key, app, metric, n) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (dim, day, key, app, metric) DO UPDATE SET n = n + excluded.n",
        [(*k, n) for k, n in counts.items()],
    )
    # only a person new to a group's day can be new to its week and month
    fresh = [
        row
        for row in users
        if conn.execute(
            "INSERT OR IGNORE INTO users (dim, day, key, app, user) VALUES (?, ?, ?, ?, ?)", row
        ).rowcount
    ]
    periods.add_period_rollups(conn, counts, fresh)


def cutoff_day(retention_days: int, today: dt.date | None = None) -> str:
    """The first day kept: events of days before it are purged."""
    today = today or dt.datetime.now(dt.UTC).date()
    return (today - dt.timedelta(days=retention_days)).isoformat()


def purge_path(path: Path, retention_days: int, today: dt.date | None = None) -> dict[str, int]:
    """The purge as a plain function (CLI: `python -m server.analytics purge`)."""
    store = EventStore(path)
    store.open_sync()
    try:
        return store.purge_sync(cutoff_day(retention_days, today))
    finally:
        store.close_sync()
        store._writer.shutdown()
        store._reader.shutdown()
