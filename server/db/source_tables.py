"""Sources' tables (server/sources/models.py), in the content database.

Each table is derived from its resource's declaration (server/db/resource_table.py: one column
per field), on the content database's `metadata`, so Alembic's revisions and
`tests/test_migrations.py` see them with the rest (server/db/content_tables.py imports this
module at its end). Portable SQL only: plain Text/Integer columns, literal defaults.

What the constraints and indexes are for:
- a source's items and runs belong to it (deleting a source deletes them: ON DELETE CASCADE;
  its aids stay, archived first by the service);
- one item per (source, external id): the sync's upsert key, a conflict in the database rather
  than a check in Python;
- an aid's provenance is read by aid (the learner's aid JSON, the console's aid page), a
  source's runs newest first.
"""

from __future__ import annotations

import sqlalchemy as sa

from server.db.content_tables import metadata
from server.db.resource_table import resource_table
from server.sources.models import Source, SourceItem, SyncRun

sources = resource_table("sources", metadata, Source)
source_items = resource_table(
    "source_items",
    metadata,
    SourceItem,
    references={"source_id": sa.ForeignKey("sources.id", ondelete="CASCADE")},
)
sync_runs = resource_table(
    "sync_runs",
    metadata,
    SyncRun,
    references={"source_id": sa.ForeignKey("sources.id", ondelete="CASCADE")},
)

source_items.append_constraint(
    sa.UniqueConstraint(
        source_items.c.source_id, source_items.c.external_id, name="source_items_once"
    )
)
sa.Index("source_items_aid", source_items.c.aid_id)
sa.Index("sync_runs_source", sync_runs.c.source_id, sync_runs.c.started_at)

# resource class -> its table (the store's map: server/peer/store.py)
TABLES: dict[type, sa.Table] = {
    Source: sources,
    SourceItem: source_items,
    SyncRun: sync_runs,
}

__all__ = ["TABLES", "source_items", "sources", "sync_runs"]
