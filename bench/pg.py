"""A throw-away PostgreSQL database for the benches that run nodes on PostgreSQL (bench_follow,
bench_join): a new database on the server of `make postgres` (INFLOW_TEST_PG_URL's role, default
inflow_test, which may create databases), migrated to the content schema, dropped at the end."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from server.db import migrate
from server.db.engine import database_engine
from server.settings import AuthSettings, Settings

DEFAULT_URL = "postgresql+psycopg://inflow_test:inflow_test@127.0.0.1:5433/inflow_test"


def new_database(admin: sa.Engine, base: str, prefix: str) -> tuple[str, str]:
    """Create and migrate `<prefix>_<random>`; return its name and URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
    url = sa.make_url(base).set(database=name).render_as_string(hide_password=False)
    engine = database_engine(url)
    try:
        migrate.upgrade(engine, "content", pseudonymize=lambda issuer, subject: "")
    finally:
        engine.dispose()
    return name, url


@contextmanager
def bench_database(prefix: str) -> Iterator[str]:
    """The URL of a new migrated database, dropped (connections and all) when the block ends.
    Exits with a hint when PostgreSQL does not answer."""
    base = os.environ.get("INFLOW_TEST_PG_URL", DEFAULT_URL)
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        msg = f"PostgreSQL does not answer ({exc.orig}): run `make postgres` first"
        raise SystemExit(msg) from None
    name, url = new_database(admin, base, prefix)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def node_settings(url: str, data: Path, auth: AuthSettings, node: str, **extra: Any) -> Settings:
    """The settings of a bench node `node` on the database `url`: its own data folder under
    `data`, the content in the database only (no content folder, no demo), no jobs."""
    return Settings(
        data_dir=data / node,
        content_dir=None,
        auth=auth,
        database_url=url,
        serve_demo=False,
        jobs=False,
        **extra,
    )
