"""A database that went away is a 503 with Retry-After, recognised from the driver's real errors,
and a store retries its connection with a bounded backoff (server/db/errors.py, engine.py).

The outages themselves (PostgreSQL stopped, restarted, nodes killed) are in
tests/pg/test_pg_failures.py; these run without PostgreSQL."""

from __future__ import annotations

import socket
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from aiohttp import web

from server import keys
from server.db.engine import Reconnect, sqlite_engine
from server.db.errors import DatabaseUnavailable, is_unavailable
from server.errors import problem_middleware
from server.logs import request_middleware
from server.settings import Settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens


def _refused() -> psycopg.OperationalError:
    """The real error of a PostgreSQL that is not there (connection refused)."""
    try:
        psycopg.connect(host="127.0.0.1", port=_closed_port(), connect_timeout=2).close()
    except psycopg.OperationalError as exc:
        return exc
    raise AssertionError("something listens on a closed port")


def test_refused_connections_are_unavailable_statement_errors_are_not(tmp_path: Path) -> None:
    """A down PostgreSQL (refused, raw or through SQLAlchemy) is an outage; SQLite's "database
    is locked" and a bad statement are the request's own failures (500/4xx, not "retry")."""
    assert is_unavailable(_refused())
    engine = sa.create_engine(f"postgresql+psycopg://x@127.0.0.1:{_closed_port()}/x")
    with pytest.raises(sa.exc.OperationalError) as refused:
        engine.connect()
    engine.dispose()
    assert is_unavailable(refused.value)
    # raised while handling one (a rollback on the dead connection): still the outage
    try:
        try:
            raise refused.value
        except sa.exc.OperationalError:
            raise RuntimeError("rollback failed") from None
    except RuntimeError as chained:
        assert is_unavailable(chained)

    lite = sqlite_engine(tmp_path / "db.sqlite3")
    with lite.connect() as conn, pytest.raises(sa.exc.OperationalError) as bad:
        conn.exec_driver_sql("SELECT * FROM no_such_table")
    holder = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    waiter = sqlite3.connect(tmp_path / "db.sqlite3", timeout=0)
    with pytest.raises(sqlite3.OperationalError, match="locked") as locked:
        waiter.execute("CREATE TABLE t (a)")
    holder.close()
    waiter.close()
    lite.dispose()
    assert not is_unavailable(bad.value)
    assert not is_unavailable(locked.value)


def test_reconnect_backs_off_so_a_down_database_fails_fast() -> None:
    """While the database refuses, a store must not try to connect on every call (each try can
    cost up to the connect timeout): calls fail at once until the backoff passes, the backoff is
    bounded, and the first success ends it."""
    now = [100.0]
    reconnect = Reconnect("content", retry_min=0.5, retry_max=2.0, clock=lambda: now[0])
    tries: list[float] = []
    up = [False]

    def make() -> str:
        tries.append(now[0])
        if not up[0]:
            raise _refused()
        return "connection"

    for _ in range(3):
        with pytest.raises(DatabaseUnavailable, match="content database unavailable"):
            reconnect.connect(make)
        now[0] += 0.1
    assert tries == [100.0]  # the two calls within the backoff did not try
    delays = []
    for _ in range(5):  # each failed try doubles the wait, up to retry_max
        last = tries[-1]
        while len(tries) == len(delays) + 1:
            now[0] += 0.05
            with pytest.raises(DatabaseUnavailable):
                reconnect.connect(make)
        delays.append(round(tries[-1] - last, 2))
    assert delays[0] >= 0.5 and max(delays) <= 2.1
    assert delays[-1] >= 2.0
    up[0] = True
    now[0] += 2.1
    assert reconnect.connect(make) == "connection"
    assert not reconnect.down
    up[0] = False
    with pytest.raises(DatabaseUnavailable):
        reconnect.connect(make)
    now[0] += 0.6  # after a success the backoff starts small again
    with pytest.raises(DatabaseUnavailable):
        reconnect.connect(make)
    assert len(tries) == 9


async def test_database_unavailable_is_a_503_problem_with_retry_after(aiohttp_client: Any) -> None:
    """The contract of a database outage at the HTTP edge: 503 problem+json, Retry-After from
    settings.db_retry_after_seconds and the request id, whether a store translated the driver's
    error or a driver error escaped untranslated (never a 500 "something went wrong")."""

    async def translated(request: web.Request) -> web.Response:
        raise DatabaseUnavailable("content", "connection refused")

    async def raw(request: web.Request) -> web.Response:
        raise _refused()

    app = web.Application(middlewares=[request_middleware(None), problem_middleware])
    app[keys.SETTINGS] = Settings(db_retry_after_seconds=7)
    app.router.add_get("/translated", translated)
    app.router.add_get("/raw", raw)
    client = await aiohttp_client(app)
    for path in ("/translated", "/raw"):
        resp = await client.get(path)
        assert resp.status == 503, path
        assert resp.headers["Retry-After"] == "7"
        assert resp.content_type == "application/problem+json"
        body = await resp.json()
        assert body["title"] == "Database unavailable"
        assert body["type"].endswith("/database-unavailable")
        assert "Try again" in body["detail"]
        assert body["request_id"] == resp.headers["X-Request-Id"]
