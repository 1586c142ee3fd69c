"""The authoring queue (issue 13): one table of work items for authors.

A new table, empty (server/db/queue_tables.py, declared from server/queue/models.py): one row per
(kind, key) (a unique constraint: the refresh upserts by it), indexes by status, assignee and app
for the console's and the API's filters. The first refresh (server/queue/service.py) fills it.

Portable SQL only (the same revision runs on PostgreSQL).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _text(name: str, *, default: str | None = "") -> sa.Column[str]:
    """A TEXT NOT NULL column with a literal default (None: required, no default)."""
    server_default = None if default is None else sa.text(f"'{default}'")
    return sa.Column(name, sa.Text, nullable=False, server_default=server_default)


def upgrade() -> None:
    op.create_table(
        "queue_items",
        sa.Column("id", sa.Text, primary_key=True),
        _text("kind", default=None),
        _text("key", default=None),
        _text("app_id"),
        _text("title"),
        _text("detail"),
        _text("figures", default=None),
        _text("status", default=None),
        _text("assignee"),
        _text("assigned_by"),
        _text("note"),
        _text("created_at"),
        _text("updated_at"),
        sa.UniqueConstraint("kind", "key", name="queue_items_once"),
    )
    op.create_index("queue_items_status", "queue_items", ["status", "updated_at"])
    op.create_index("queue_items_assignee", "queue_items", ["assignee", "status"])
    op.create_index("queue_items_app", "queue_items", ["app_id", "status"])


def downgrade() -> None:
    op.drop_index("queue_items_app", table_name="queue_items")
    op.drop_index("queue_items_assignee", table_name="queue_items")
    op.drop_index("queue_items_status", table_name="queue_items")
    op.drop_table("queue_items")
