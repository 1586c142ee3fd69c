"""The PostgreSQL test profile: storage-level suites on a real PostgreSQL (`make postgres`).

INFLOW_TEST_PG_URL names a role that may create databases (default: the `inflow_test` role of
server/db/pg.sh on 127.0.0.1:5433). Every test gets databases of its own, made with CREATE DATABASE
... TEMPLATE from a template migrated to head once per test process (or an empty one, for the
migration tests), and dropped after it. PostgreSQL not answering fails the tests, loudly: this
profile never skips (`make test` starts PostgreSQL first).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.db import migrate
from server.db.engine import database_engine
from server.settings import AuthSettings, Settings
from tests.tokens import ISSUER, TokenMaker

DEFAULT_URL = "postgresql+psycopg://inflow_test:inflow_test@127.0.0.1:5433/inflow_test"
PG_URL = os.environ.get("INFLOW_TEST_PG_URL", DEFAULT_URL)
DEMO = Path(__file__).resolve().parent.parent.parent / "content" / "demo"


def _admin() -> sa.Engine:
    return sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def _url(name: str) -> str:
    return sa.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _drop(admin: sa.Engine, name: str) -> None:
    """DROP DATABASE; a plain one stops an autovacuum worker in it by itself (WITH (FORCE) may not
    signal that superuser process: the test role is no superuser), FORCE ends a test's leftover
    session. Either can meet the other's case, hence a few tries."""
    for attempt in range(20):
        for force in ("", " WITH (FORCE)"):
            try:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"{force}')
                return
            except sa.exc.DBAPIError:
                if attempt == 19 and force:
                    raise
        time.sleep(0.25)


class Databases:
    """Creates databases for one test (from a template, or empty) and drops them afterwards."""

    def __init__(self, admin: sa.Engine, templates: dict[str, str]) -> None:
        self.admin = admin
        self.templates = templates
        self.made: list[str] = []

    def new(self, template: str | None = None) -> str:
        """A new database's URL: at head for "content" or "events", empty for None."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        source = self.templates[template] if template else "template0"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
        self.made.append(name)
        return _url(name)

    def drop_all(self) -> None:
        for name in self.made:
            _drop(self.admin, name)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine]:
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as e:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL at {sa.make_url(PG_URL)!r} does not answer: start it with "
            f"`make postgres` (or set INFLOW_TEST_PG_URL). {e.orig}",
            pytrace=False,
        )
    yield admin
    admin.dispose()


@pytest.fixture(scope="session")
def pg_templates(pg_admin: sa.Engine, worker_id: str) -> Iterator[dict[str, str]]:
    """A database at head per store (content, events), migrated once per test process
    (`worker_id`: pytest-xdist's "gw0"..., or "master"; with the process id, as several test
    runs may share the cluster at once and each drops its templates at its end)."""
    templates: dict[str, str] = {}
    for store in ("content", "events"):
        name = f"tmpl_{worker_id}_{os.getpid()}_{store}_{migrate.head(store)}"
        _drop(pg_admin, name)
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
        templates[store] = name
        engine = database_engine(_url(name))
        try:
            migrate.upgrade(engine, store, pseudonymize=lambda issuer, subject: "")
        finally:
            engine.dispose()
    yield templates
    for name in templates.values():
        _drop(pg_admin, name)


@pytest.fixture
def pg(pg_admin: sa.Engine, pg_templates: dict[str, str]) -> Iterator[Databases]:
    dbs = Databases(pg_admin, pg_templates)
    try:
        yield dbs
    finally:
        dbs.drop_all()


@pytest.fixture
def make_settings(tmp_path: Path, tokens: TokenMaker, pg: Databases) -> Callable[..., Settings]:
    """The suite's settings with the content on a new PostgreSQL database at head."""
    jwks = tokens.write_jwks(tmp_path / "jwks.json")
    url = pg.new("content")

    def make(**changes: Any) -> Settings:
        auth = AuthSettings(jwks_file=jwks, issuer=ISSUER)
        base = Settings(
            data_dir=tmp_path / "data",
            content_dir=DEMO,
            auth=auth,
            search_threads=2,
            database_url=url,
        )
        return base.with_(**changes)

    return make
