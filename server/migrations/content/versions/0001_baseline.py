"""Baseline: the content schema as it was before migrations (CREATE TABLE IF NOT EXISTS in storage).

A database made before migrations existed is stamped at this revision, not run through it.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import sqlite

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

E = sa.text("''")
# seconds since the epoch: REAL on SQLite (as it always was), DOUBLE PRECISION elsewhere
EPOCH_SECONDS: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")
L = sa.text("'[]'")


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "aids",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False, server_default=E),
        sa.Column("body", sa.Text, nullable=False, server_default=E),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("tags", sa.Text, nullable=False, server_default=L),
        sa.Column("apps", sa.Text, nullable=False, server_default=L),
        sa.Column("audience", sa.Text, nullable=False, server_default=L),
        sa.Column("owner", sa.Text, nullable=False, server_default=E),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("verified_at", sa.Text),
        sa.Column(
            "review_interval_days", sa.Integer, nullable=False, server_default=sa.text("180")
        ),
        sa.Column("source", sa.Text, nullable=False, server_default=E),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_table(
        "aid_versions",
        sa.Column("aid_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("saved_at", sa.Text, nullable=False),
        sa.Column("saved_by", sa.Text, nullable=False, server_default=E),
    )
    op.create_table(
        "apps",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=E),
        sa.Column("rules", sa.Text, nullable=False, server_default=L),
    )
    op.create_table(
        "contexts",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("app_id", sa.Text, sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("rule_pattern", sa.Text, nullable=False),
        sa.Column("rule_priority", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("title_pattern", sa.Text, nullable=False, server_default=E),
        sa.Column("selector", sa.Text, nullable=False, server_default=E),
        sa.Column("position", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "context_aids",
        sa.Column(
            "context_id",
            sa.Text,
            sa.ForeignKey("contexts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("aid_id", sa.Text, primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False, server_default=E),
        sa.Column("subject", sa.Text, nullable=False, server_default=E),
        sa.Column("username", sa.Text, nullable=False, server_default=E),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("target_type", sa.Text, nullable=False, server_default=E),
        sa.Column("target_id", sa.Text, nullable=False, server_default=E),
        sa.Column("detail", sa.Text, nullable=False, server_default=sa.text("'{}'")),
        sqlite_autoincrement=True,
    )
    op.create_index("audit_log_target", "audit_log", ["target_type", "target_id"])
    op.create_table(
        "admin_sessions",
        sa.Column("key_hash", sa.Text, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("expires_at", EPOCH_SECONDS, nullable=False),
    )
    op.create_table(
        "mentors",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("contact", sa.Text, nullable=False),
        sa.Column("can_help_with", sa.Text, nullable=False, server_default=E),
        sa.Column("apps", sa.Text, nullable=False, server_default=L),
        sa.Column("topics", sa.Text, nullable=False, server_default=L),
        sa.Column("username", sa.Text, nullable=False, server_default=E),
        sa.Column("subject", sa.Text, nullable=False, server_default=E),
        sa.Column("vetted", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("vetted_by", sa.Text, nullable=False, server_default=E),
        sa.Column("vetted_at", sa.Text),
        sa.Column("active", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("audience", sa.Text, nullable=False, server_default=L),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("aid_id", sa.Text, nullable=False),
        sa.Column("helpful", sa.Integer, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=E),
        sa.Column("url", sa.Text, nullable=False, server_default=E),
        sa.Column("user_key", sa.Text, nullable=False, server_default=E),
        sa.Column("created_at", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    for name in (
        "feedback",
        "mentors",
        "admin_sessions",
        "audit_log",
        "context_aids",
        "contexts",
        "apps",
        "aid_versions",
        "aids",
        "meta",
    ):
        op.drop_table(name)
