"""Alembic environment for the events database; run through `server.db.migrate.upgrade`."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo

from server.db.events_tables import metadata

_config = context.config
_connection = _config.attributes.get("connection")
if _connection is None:  # pragma: no cover - only `server.db.migrate` runs these migrations
    raise RuntimeError("run events migrations with `inflow migrate`")
_applied: list[str] | None = _config.attributes.get("applied")


def _complete_pre_baseline(conn: sa.Connection) -> None:
    """A database from before the period rollups (commit f1b6139) has the daily tables only, and
    stamping it at the baseline would claim four tables it lacks: create them first (the store
    then builds their rows from the daily rollups). Made from the declarations, which still equal
    revision 0001 for these tables (tests/test_events_migrations.py); when a revision changes one
    of them, write its 0001 shape out here."""
    names = set(sa.inspect(conn).get_table_names())
    if "alembic_version" in names or "events" not in names or "meta" in names:
        return
    missing = [metadata.tables[n] for n in ("period_counts", "people", "person_ids", "meta")]
    metadata.create_all(conn, tables=missing, checkfirst=True)


def _on_apply(
    ctx: MigrationContext,
    step: MigrationInfo,
    heads: Collection[Any],
    run_args: Mapping[str, Any],
) -> None:
    if _applied is not None:
        _applied.extend(step.up_revision_ids)


_complete_pre_baseline(_connection)
context.configure(
    connection=_connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
    on_version_apply=_on_apply,
)
with context.begin_transaction():
    context.run_migrations()
