"""Link health (issue 13): the last check of each link of each published aid.

A new table, empty (server/db/health_tables.py, declared from server/health/models.py): one row
per (aid, link) (a unique constraint), an index by status and aid for the reports. No foreign key
to `aids`: the rows are derived, and each check run deletes those of links no longer in a
published aid. The first check run (server/health/links.py) fills it.

Portable SQL only (the same revision runs on PostgreSQL).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_EMPTY = sa.text("''")
_ZERO = sa.text("0")


def _text(name: str, *, default: bool = True) -> sa.Column[str]:
    """A TEXT NOT NULL column, default '' unless the field is required."""
    return sa.Column(name, sa.Text, nullable=False, server_default=_EMPTY if default else None)


def upgrade() -> None:
    op.create_table(
        "health_link_checks",
        sa.Column("id", sa.Text, primary_key=True),
        _text("aid_id", default=False),
        _text("url", default=False),
        sa.Column("primary", sa.Integer, nullable=False, server_default=_ZERO),
        _text("status", default=False),
        sa.Column("http_status", sa.Integer, nullable=False, server_default=_ZERO),
        _text("final_url"),
        _text("detail"),
        _text("checked_at"),
        _text("failing_since"),
        sa.UniqueConstraint("aid_id", "url", name="health_link_checks_once"),
    )
    op.create_index("health_link_checks_status", "health_link_checks", ["status", "aid_id"])


def downgrade() -> None:
    op.drop_index("health_link_checks_status", table_name="health_link_checks")
    op.drop_table("health_link_checks")
