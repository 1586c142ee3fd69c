"""The authoring queue's table (server/queue/models.py), in the content database.

Derived from the declaration (server/db/resource_table.py), on the content database's `metadata`
(server/db/content_tables.py imports this module at its end), so Alembic's revisions and
tests/test_migrations.py see it with the rest. Portable SQL only.

What the constraint and indexes are for:
- one item per (kind, key): the refresh upserts by it, and a second insert is a conflict in the
  database, not a check in Python;
- the console and the API filter by status (open work first), assignee ("mine") and app.
"""

from __future__ import annotations

import sqlalchemy as sa

from server.db.content_tables import metadata
from server.db.resource_table import resource_table
from server.queue.models import QueueItem

queue_items = resource_table("queue_items", metadata, QueueItem)
queue_items.append_constraint(
    sa.UniqueConstraint(queue_items.c.kind, queue_items.c.key, name="queue_items_once")
)
sa.Index("queue_items_status", queue_items.c.status, queue_items.c.updated_at)
sa.Index("queue_items_assignee", queue_items.c.assignee, queue_items.c.status)
sa.Index("queue_items_app", queue_items.c.app_id, queue_items.c.status)
