"""Baseline: the events database as the code before migrations made it (CREATE TABLE IF NOT EXISTS
in server/analytics/store.py and periods.py at commit ada4642).

A database made by that code is stamped at this revision without running it (server.db.migrate).
Written out here, not taken from server/db/events_tables.py: those declarations follow the newest
revision, this one must stay what it was.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NO_ROWID = {"sqlite_with_rowid": False}


def _text(name: str, *, default: str | None = None, pk: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=False, server_default=default, primary_key=pk)


def upgrade() -> None:
    op.create_table(
        "events",
        _text("id", pk=True),
        _text("type"),
        _text("at"),
        _text("day"),
        _text("user"),
        _text("app", default=""),
        _text("context", default=""),
        _text("aid", default=""),
        _text("data", default="{}"),
        **NO_ROWID,
    )
    op.create_index("events_day", "events", ["day"])
    op.create_table(
        "counts",
        *(_text(c, pk=True) for c in ("dim", "day", "key", "app", "metric")),
        sa.Column("n", sa.Integer, nullable=False),
        **NO_ROWID,
    )
    op.create_table(
        "users",
        *(_text(c, pk=True) for c in ("dim", "day", "key", "app", "user")),
        **NO_ROWID,
    )
    op.create_table(
        "comments",
        _text("event_id", pk=True),
        _text("day"),
        _text("aid"),
        _text("app"),
        sa.Column("helpful", sa.Integer, nullable=False),
        _text("comment"),
        **NO_ROWID,
    )
    op.create_index("comments_aid", "comments", ["aid", "day"])
    op.create_index("comments_day", "comments", ["day"])
    op.create_table(
        "outbox",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        _text("event_id"),
        _text("day"),
        _text("statement"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.UniqueConstraint("event_id"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "outbox_dead",
        _text("event_id", pk=True),
        _text("day"),
        _text("statement"),
        sa.Column("status", sa.Integer, nullable=False),
        _text("reason"),
        _text("failed_at"),
        **NO_ROWID,
    )
    op.create_table(
        "period_counts",
        *(_text(c, pk=True) for c in ("dim", "level", "period", "key", "app", "metric")),
        sa.Column("n", sa.Integer, nullable=False),
        **NO_ROWID,
    )
    op.create_table(
        "people",
        *(_text(c, pk=True) for c in ("dim", "level", "period", "key", "app")),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("bits", sa.LargeBinary, nullable=False),
        **NO_ROWID,
    )
    op.create_table(
        "person_ids",
        _text("user", pk=True),
        sa.Column("idx", sa.Integer, nullable=False),
        _text("last_day"),
        sa.UniqueConstraint("idx"),
        **NO_ROWID,
    )
    op.create_table("meta", _text("name", pk=True), _text("value"), **NO_ROWID)


def downgrade() -> None:
    for table in (
        "meta",
        "person_ids",
        "people",
        "period_counts",
        "outbox_dead",
        "outbox",
        "comments",
        "users",
        "counts",
        "events",
    ):
        op.drop_table(table)
