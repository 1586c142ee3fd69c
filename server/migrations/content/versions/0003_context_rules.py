"""Contexts: several URL rules, fallback and exclusive; apps: wrapped targets (docs/apps.md).

Before: a context had one rule, in two columns (`rule_pattern`, `rule_priority`). After: `rules`
is a JSON list of {pattern, priority} (as an app's `rules` always was), and each existing context
keeps its one rule as that list's only entry. New flags `fallback` and `exclusive` (0 / 1, off),
and an app's `wrapped_targets` (a JSON list, empty).

Plain ALTER TABLE (no table rebuild): rebuilding `contexts` would drop the table, and with foreign
keys on, SQLite's DROP TABLE deletes the pins in `context_aids` by their ON DELETE CASCADE.
`contexts.rules` keeps the '[]' default that adding a NOT NULL column needs (the code always writes
it). DROP COLUMN needs SQLite 3.35 or later (PostgreSQL has it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_LIST = sa.text("'[]'")


def upgrade() -> None:
    op.add_column(
        "apps", sa.Column("wrapped_targets", sa.Text, nullable=False, server_default=_LIST)
    )
    op.add_column("contexts", sa.Column("rules", sa.Text, nullable=False, server_default=_LIST))
    op.add_column(
        "contexts",
        sa.Column("fallback", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    op.add_column(
        "contexts",
        sa.Column("exclusive", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    contexts = sa.table(
        "contexts",
        sa.column("id", sa.Text),
        sa.column("rules", sa.Text),
        sa.column("rule_pattern", sa.Text),
        sa.column("rule_priority", sa.Integer),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(contexts.c.id, contexts.c.rule_pattern, contexts.c.rule_priority)
    ).all()
    for ctx_id, pattern, priority in rows:
        rules = json.dumps([{"pattern": pattern, "priority": priority}])
        conn.execute(contexts.update().where(contexts.c.id == ctx_id).values(rules=rules))
    op.drop_column("contexts", "rule_pattern")
    op.drop_column("contexts", "rule_priority")


def downgrade() -> None:
    # A context keeps its first rule; its other rules and the flags are lost.
    op.add_column(
        "contexts",
        sa.Column("rule_pattern", sa.Text, nullable=False, server_default=sa.text("''")),
    )
    op.add_column(
        "contexts",
        sa.Column("rule_priority", sa.Integer, nullable=False, server_default=sa.text("0")),
    )
    contexts = sa.table(
        "contexts",
        sa.column("id", sa.Text),
        sa.column("rules", sa.Text),
        sa.column("rule_pattern", sa.Text),
        sa.column("rule_priority", sa.Integer),
    )
    conn = op.get_bind()
    for ctx_id, text in conn.execute(sa.select(contexts.c.id, contexts.c.rules)).all():
        first = (json.loads(text) or [{"pattern": "", "priority": 0}])[0]
        conn.execute(
            contexts.update()
            .where(contexts.c.id == ctx_id)
            .values(rule_pattern=first["pattern"], rule_priority=first.get("priority", 0))
        )
    op.drop_column("contexts", "exclusive")
    op.drop_column("contexts", "fallback")
    op.drop_column("contexts", "rules")
    op.drop_column("apps", "wrapped_targets")
