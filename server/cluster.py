"""Work that runs once across the nodes (issue 15, docs/scale-out.md "Work that runs once").

One `Cluster` per app (`keys.CLUSTER`), opened in `cluster_ctx` right after the library. Code that
must not run on two nodes at once (a once-job of server/jobs.py, the xAPI forwarder, the mail
sender) wraps its work in

```python
async with app[keys.CLUSTER].exclusive("xapi-forwarder") as hold:
    if not hold:          # another node (or another task of this one) holds it: try later
        return
    while hold:           # False as soon as this node has lost the lock: stop, another may run
        ...one unit of work...
```

- On PostgreSQL a session advisory lock (`pg_try_advisory_lock`, never waiting) on a connection of
  the cluster's own (psycopg, autocommit; not the content store's, whose transactions come and go).
  When a node dies, PostgreSQL ends its session and with it every lock it held: another node's
  next try gets it. The connection is checked every `settings.cluster_check_seconds`; when it has
  dropped (PostgreSQL restarted, the backend terminated, the network; a check not answered within
  `cluster_check_seconds` counts too) every hold is marked lost (`bool(hold)` turns False,
  `hold.lost` is set), and the cluster reconnects with a backoff. A lock a node lost may be taken
  by another node before the first one notices (up to two check intervals): the senders wait
  `takeover_seconds` after taking a lock before they send, and the jobs are safe to repeat.
- On SQLite (one node) an in-process lock: the same code, one holder at a time.

A lock's key is a stable 64-bit number from its name (`lock_key`), the same on every node.
Session locks are re-entrant in PostgreSQL, so a name this node holds already is refused here
first: `exclusive` never nests, on one node or across them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import psycopg
import sqlalchemy as sa
from aiohttp import web

from server import keys
from server.settings import Settings

log = logging.getLogger("inflow.cluster")

RECONNECT_MAX_SECONDS = 10.0  # the reconnect backoff doubles up to this
CONNECT_TIMEOUT_SECONDS = 5


def lock_key(name: str) -> int:
    """The advisory lock key of `name`: a signed 64-bit number from its hash (stable across
    nodes, processes and Inflow versions; PostgreSQL's bigint lock space)."""
    digest = hashlib.blake2b(f"inflow:once:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def is_postgres(database_url: str) -> bool:
    return bool(database_url) and sa.make_url(database_url).get_backend_name() == "postgresql"


def conninfo(database_url: str, node: str) -> str:
    """libpq connection string for a SQLAlchemy URL (postgresql+psycopg://...), named after the
    node (pg_stat_activity.application_name: an operator sees who holds what)."""
    url = sa.make_url(database_url)
    params: dict[str, Any] = {
        k: v if isinstance(v, str) else v[-1] for k, v in url.query.items() if v
    }
    return psycopg.conninfo.make_conninfo(
        host=url.host or "",
        port=str(url.port or ""),
        dbname=url.database or "",
        user=url.username or "",
        password=url.password or "",
        application_name=f"inflow-cluster:{node}"[:63],
        connect_timeout=str(CONNECT_TIMEOUT_SECONDS),
        **params,
    )


class Hold:
    """What `exclusive` gives its block: true while this node holds the lock."""

    def __init__(self, name: str, acquired: bool) -> None:
        self.name = name
        self.acquired = acquired
        self.lost = asyncio.Event()  # set when the lock went with the connection

    def __bool__(self) -> bool:
        return self.acquired and not self.lost.is_set()

    def __repr__(self) -> str:
        return f"Hold({self.name!r}, {'held' if self else 'not held'})"


class Cluster:
    """Advisory locks among the nodes on one PostgreSQL, or in-process ones on SQLite."""

    def __init__(self, node: str, database_url: str = "", check_seconds: float = 2.0) -> None:
        self.node = node
        self.shared = is_postgres(database_url)  # False: SQLite, one node
        self.check_seconds = max(0.05, check_seconds)
        self._url = database_url
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._io = asyncio.Lock()  # one statement at a time on the connection
        self._held: dict[str, Hold] = {}
        self._watch: asyncio.Task[None] | None = None
        self._closed = False
        self.reconnects = 0  # connections lost and made again (operators, tests)

    # -- lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect (PostgreSQL) and start the connection check; a failure to connect now is
        retried by the check, never fatal (the content store has connected already)."""
        if not self.shared:
            return
        try:
            await self._connect()
        except psycopg.Error as exc:
            log.warning("cluster connection failed (%s); retrying", exc)
        self._watch = asyncio.create_task(self._watch_loop(), name="cluster-watch")

    async def close(self) -> None:
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        async with self._io:
            await self._drop_connection()

    # -- locks -------------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def exclusive(self, name: str) -> AsyncIterator[Hold]:
        """Hold `name` across the nodes for the block, if nobody else does (never waits): the
        block gets a `Hold`, false when another node or task holds `name`, or the database is
        out of reach. The lock is released when the block ends."""
        if name in self._held or self._closed:
            yield Hold(name, False)
            return
        hold = Hold(name, False)
        self._held[name] = hold  # before any await: a second caller of this node is refused
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            if self.shared:
                conn = await self._try_lock(name)
                hold.acquired = conn is not None
            else:
                hold.acquired = True
            if not hold.acquired:
                self._held.pop(name, None)
            yield hold
        finally:
            if hold.acquired:
                if self._held.get(name) is hold:
                    del self._held[name]
                if conn is not None and not hold.lost.is_set():
                    await self._unlock(conn, name)

    @property
    def takeover_seconds(self) -> float:
        """How long a node that just took a lock waits before it sends anything (the xAPI
        forwarder, the mail sender): long enough for a previous holder that lost its connection
        (not its life) to notice it (one check, answered or timed out) and stop between batches.
        0 on SQLite."""
        return 3 * self.check_seconds if self.shared else 0.0

    async def work_if_free(
        self,
        name: str,
        work: Callable[[Hold], Awaitable[None]],
        logger: logging.Logger,
        what: str,
    ) -> None:
        """One turn of a one-node-at-a-time loop (the xAPI forwarder, the mail sender): take
        `name` if it is free, wait `takeover_seconds` (a previous holder stops first), then
        run `work(hold)` (it checks the hold between batches); the lock goes when it returns.
        Does nothing when another node holds `name`. `logger` and `what` name the worker in
        the log line that says this node took over."""
        async with self.exclusive(name) as hold:
            if hold:  # a holder that lost its connection stops first
                await asyncio.sleep(self.takeover_seconds)
            if hold:
                logger.info("%s: this node (%s) sends the outbox", what, self.node)
                await work(hold)

    def holds(self, name: str) -> bool:
        """True while this node holds `name`."""
        hold = self._held.get(name)
        return hold is not None and bool(hold)

    def holders(self) -> list[str]:
        """The names this node holds now (for /readyz, the console, metrics)."""
        return sorted(n for n, h in self._held.items() if h)

    # -- PostgreSQL --------------------------------------------------------------------------
    async def _try_lock(self, name: str) -> psycopg.AsyncConnection[Any] | None:
        """The connection that now holds `name`'s lock, or None (held elsewhere, or no
        database)."""
        async with self._io:
            if self._conn is None:
                try:
                    await self._connect()
                except psycopg.Error:
                    return None
            conn = self._conn
            assert conn is not None
            try:
                cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(name),))
                row = await cur.fetchone()
            except psycopg.Error as exc:
                await self._lost(exc)
                return None
            return conn if row is not None and row[0] else None

    async def _unlock(self, conn: psycopg.AsyncConnection[Any], name: str) -> None:
        async with self._io:
            if conn is not self._conn:  # the connection went: so did the lock
                return
            try:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key(name),))
            except psycopg.Error as exc:
                await self._lost(exc)

    async def _connect(self) -> None:
        self._conn = await psycopg.AsyncConnection.connect(
            conninfo(self._url, self.node), autocommit=True
        )

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _lost(self, exc: BaseException) -> None:
        """The connection failed (called holding `_io`): every lock went with it."""
        lost = [h for h in self._held.values() if h]
        if lost:
            log.warning(
                "cluster connection lost (%s): %s may now run on another node",
                str(exc).strip() or type(exc).__name__,
                ", ".join(h.name for h in lost),
            )
        for hold in lost:
            hold.lost.set()
        self._held = {n: h for n, h in self._held.items() if not h.acquired}
        self.reconnects += 1
        await self._drop_connection()

    async def _watch_loop(self) -> None:
        """Check the connection every `check_seconds`; reconnect with a backoff when it is gone."""
        backoff = self.check_seconds
        while not self._closed:  # (close() sets it first: a cancellation lost below ends it too)
            await asyncio.sleep(backoff if self._conn is None else self.check_seconds)
            async with self._io:
                if self._conn is None:
                    try:
                        await self._connect()
                        backoff = self.check_seconds
                        log.info("cluster connection made again")
                    except psycopg.Error:
                        backoff = min(RECONNECT_MAX_SECONDS, backoff * 2)
                    continue
                # a check that does not answer in time counts as a lost connection. asyncio.timeout,
                # not wait_for: Python 3.11's wait_for drops a cancellation that comes as the
                # SELECT answers, and close() then waited for ever on this loop
                try:
                    async with asyncio.timeout(self.check_seconds):
                        await self._conn.execute("SELECT 1")
                except (psycopg.Error, TimeoutError) as exc:
                    await self._lost(exc)


async def cluster_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx, right after the library: the cluster's connection and locks, closed after
    everything that holds one (jobs, forwarder, mail sender) has stopped."""
    settings: Settings = app[keys.SETTINGS]
    cluster = Cluster(settings.node_name, settings.database_url, settings.cluster_check_seconds)
    await cluster.open()
    app[keys.CLUSTER] = cluster
    try:
        yield
    finally:
        await cluster.close()


__all__ = ["Cluster", "Hold", "cluster_ctx", "conninfo", "is_postgres", "lock_key"]
