"""The database is unavailable: a domain error the stores raise, and how they recognise it.

When PostgreSQL restarts, crashes, refuses connections (starting up, shutting down, too many
clients) or the network to it breaks, the stores (server/storage.py, server/analytics/store.py;
the peer store runs on the content store) raise `DatabaseUnavailable` instead of the driver's
error, drop the dead connection and connect again on their next call (`LiveConnection` in
server/db/engine.py). The problem middleware answers 503 with Retry-After; /readyz says
"database unavailable"; background loops log one line and try again later.

A write transaction that raised it was not committed (the connection broke before COMMIT was
acknowledged, and PostgreSQL rolls back a transaction whose session ends), so the client may
safely retry it. The one window where that is not certain is a connection lost while the COMMIT
itself is in flight: the write may or may not have landed, as with any database client; a retried
create then meets "already exists" (409) and a retried If-Match write a 412.
"""

from __future__ import annotations

# SQLSTATEs that mean "the server is (going) away or refuses sessions now", not "your statement
# is wrong": class 08 (connection exception), 57P01 admin shutdown (pg_ctl stop / restart),
# 57P02 crash shutdown, 57P03 cannot connect now (starting up), 53300 too many connections.
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


class DatabaseUnavailable(Exception):
    """The `store`'s database cannot be reached now; retry later (a write was not committed)."""

    def __init__(self, store: str, detail: str) -> None:
        super().__init__(f"{store} database unavailable: {detail}")
        self.store = store
        self.detail = detail


def is_unavailable(exc: BaseException) -> bool:
    """Does `exc` (a SQLAlchemy error, a psycopg error, or one raised while handling one) say the
    database went away or refused us, rather than that a statement failed?"""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DatabaseUnavailable):
            return True
        if getattr(current, "connection_invalidated", False):  # SQLAlchemy: a disconnect
            return True
        if _driver_says_unavailable(current):
            return True
        orig = getattr(current, "orig", None)  # SQLAlchemy's DBAPIError wraps the driver's
        if isinstance(orig, BaseException) and _driver_says_unavailable(orig):
            return True
        current = current.__cause__ or current.__context__
    return False


def _driver_says_unavailable(exc: BaseException) -> bool:
    module = type(exc).__module__ or ""
    if not module.startswith("psycopg"):
        return False  # SQLite's "database is locked" and the like are not outages
    names = {c.__name__ for c in type(exc).__mro__}
    if not names & {"OperationalError", "InterfaceError"}:
        return False
    state = getattr(exc, "sqlstate", None)
    if state:
        return str(state).startswith("08") or state in _UNAVAILABLE_STATES
    # No SQLSTATE: the client library's own failure, which for these classes is the connection
    # (refused, reset, closed by the server, timed out, "the connection is closed").
    return True


def describe(exc: BaseException) -> str:
    """One short line for a log or a problem's detail (the driver's first line)."""
    if isinstance(exc, DatabaseUnavailable):
        return exc.detail
    orig = getattr(exc, "orig", None)
    text = str(orig if isinstance(orig, BaseException) else exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
