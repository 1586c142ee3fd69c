"""Schema migrations with Alembic, run from code (no alembic.ini).

Each database has its own revision history under `server/migrations/<database>/` ("content" or
"events"). `upgrade` brings a database to the newest revision the code knows, in one transaction:

- a database made before migrations existed (its tables are there, `alembic_version` is not) is
  first stamped at the baseline revision, which creates exactly that schema, then upgraded;
- a database whose revision the code does not know (made by a newer Inflow) is refused with
  `DatabaseTooNew`: running old code on a newer schema would silently lose data.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from server.db.engine import begin_immediate, commit, manual_transactions, rollback

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
DATABASES = ("content", "events")


class MigrationError(Exception):
    """The database cannot be brought to the code's schema."""


class DatabaseTooNew(MigrationError):
    """The database was migrated by a newer Inflow than this one."""


class WrongDatabase(MigrationError):
    """The database holds the other store's tables (one URL given for both)."""


# A table only each store has: finding the other's in a database means it is the other store's.
_MARKER = {"content": "aids", "events": "events"}


def _config(database: str) -> Config:
    if database not in DATABASES:
        raise ValueError(f"unknown database {database!r} (expected one of {DATABASES})")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS / database))
    cfg.set_main_option("path_separator", "os")
    return cfg


@cache
def _script(database: str) -> ScriptDirectory:
    """The revisions of `database` (read once per process: every store open asks for them)."""
    return ScriptDirectory.from_config(_config(database))


def head(database: str) -> str:
    """The newest revision the code knows for `database`."""
    rev = _script(database).get_current_head()
    assert rev is not None, f"no revisions for {database}"
    return rev


def baseline(database: str) -> str:
    """The first revision: the schema as it was before migrations existed."""
    bases = _script(database).get_bases()
    assert len(bases) == 1, f"{database} must have exactly one base revision"
    return bases[0]


def _current(conn: sa.Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def current(engine: sa.Engine, database: str) -> str | None:
    """The database's revision (None for an empty or never-migrated database)."""
    _config(database)
    with engine.connect() as conn:
        return _current(conn)


def _check_known(database: str, rev: str | None) -> None:
    if rev is None:
        return
    script = _script(database)
    try:
        known = script.get_revision(rev)
    except Exception:  # alembic raises ResolutionError / CommandError variants
        known = None
    if known is None:
        raise DatabaseTooNew(
            f"The {database} database is at revision {rev!r}, which this version of Inflow does "
            f"not know (its newest is {head(database)!r}): it was upgraded by a newer Inflow. "
            "Run that version, or restore a backup made before the upgrade."
        )


def upgrade(
    engine: sa.Engine,
    database: str,
    *,
    pseudonymize: Callable[[str, str], str] | None = None,
    to: str = "head",
) -> list[str]:
    """Upgrade `database` on `engine` to head in one transaction; returns the revisions applied,
    oldest first (empty when it was already at head). `pseudonymize(issuer, subject)` is the
    analytics pseudonym, for revisions that must replace who someone is with it; `to` stops at an
    earlier revision (tests build databases of a past revision with it)."""
    cfg = _config(database)
    cfg.attributes["pseudonymize"] = pseudonymize
    applied: list[str] = []
    with engine.connect() as conn:
        manual_transactions(conn)
        begin_immediate(conn, database)  # one node migrates at a time; the others then see head
        try:
            _check_store(conn, database)
            rev = _current(conn)
            _check_known(database, rev)
            if rev is not None and rev == head(database):
                commit(conn)
                return applied  # the common start-up: nothing to do, and no Alembic run
            if rev is None and _has_legacy_tables(conn):
                base = baseline(database)
                cfg.attributes["connection"] = conn
                command.stamp(cfg, base)
            cfg.attributes["connection"] = conn
            cfg.attributes["applied"] = applied
            command.upgrade(cfg, to)
            commit(conn)
        except BaseException:
            rollback(conn)
            raise
    return applied


def _check_store(conn: sa.Connection, database: str) -> None:
    other = next(d for d in DATABASES if d != database)
    if sa.inspect(conn).has_table(_MARKER[other]):
        raise WrongDatabase(
            f"The database given for the {database} store holds the {other} store's tables: "
            "the content and the analytics events need two different databases "
            "(INFLOW_DATABASE_URL and INFLOW_EVENTS_DATABASE_URL, docs/scale-out.md)."
        )


def _has_legacy_tables(conn: sa.Connection) -> bool:
    names = set(sa.inspect(conn).get_table_names())
    return bool(names - {"alembic_version"})


def new_revision(database: str, message: str, *, workdir: Path) -> Path:
    """Write the next revision of `database` from the difference between its table declarations
    and a database at head (Alembic's autogenerate), and return its path. After adding a field to
    a resource's declaration, this writes the revision that adds its column (review it: renames
    look like a drop and an add)."""
    from server.db.engine import sqlite_engine

    cfg = _config(database)
    number = f"{int(head(database)) + 1:04d}"
    slug = "_".join(message.lower().split())[:40] or "change"
    engine = sqlite_engine(workdir / f"{database}-at-head.sqlite3")
    try:
        upgrade(engine, database)
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            script = command.revision(
                cfg, message, autogenerate=True, rev_id=number, process_revision_directives=None
            )
    finally:
        engine.dispose()
    _script.cache_clear()
    assert script is not None and not isinstance(script, list)
    path = Path(script.path)
    target = path.with_name(f"{number}_{slug}.py")
    path.rename(target)
    return target
