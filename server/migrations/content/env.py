"""Alembic environment for the content database; run through `server.db.migrate.upgrade`."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from alembic import context
from alembic.runtime.migration import MigrationContext, MigrationInfo

from server.db.content_tables import metadata

_config = context.config
_connection = _config.attributes.get("connection")
if _connection is None:  # pragma: no cover - only `server.db.migrate` runs these migrations
    raise RuntimeError("run content migrations with `inflow migrate`")
_applied: list[str] | None = _config.attributes.get("applied")


def _on_apply(  # alembic passes these by keyword
    ctx: MigrationContext,
    step: MigrationInfo,
    heads: Collection[Any],
    run_args: Mapping[str, Any],
) -> None:
    if _applied is not None:
        _applied.extend(step.up_revision_ids)


context.configure(
    connection=_connection,
    target_metadata=metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
    on_version_apply=_on_apply,
)
with context.begin_transaction():
    context.run_migrations()
