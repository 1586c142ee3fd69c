"""Learning paths (issue 14): paths, their assignments, learners' enrolments and completions.

New tables, empty (server/db/path_tables.py, declared from server/paths/models.py):
`learning_paths` (a path's steps are one JSON list), `path_assignments` (one per (path, group)
and per (path, username): partial unique indexes, since the other of the two is ''),
`path_enrolments` (one per (path, person)) and `path_completions` (one per (path, step,
person)); all three are deleted with their path (ON DELETE CASCADE). Nothing existing changes.

Portable SQL only (the same revision runs on PostgreSQL; partial indexes exist on both).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_EMPTY = sa.text("''")
_LIST = sa.text("'[]'")


def _text(name: str, *, default: bool = True) -> sa.Column[str]:
    """A TEXT NOT NULL column, default '' unless the field is required."""
    return sa.Column(name, sa.Text, nullable=False, server_default=_EMPTY if default else None)


def _date(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=True)


def _path_id() -> sa.Column[str]:
    return sa.Column(
        "path_id",
        sa.Text,
        sa.ForeignKey("learning_paths.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "learning_paths",
        sa.Column("id", sa.Text, primary_key=True),
        _text("title", default=False),
        _text("description"),
        sa.Column("audience", sa.Text, nullable=False, server_default=_LIST),
        _text("steps", default=False),
        sa.Column("active", sa.Integer, nullable=False, server_default=sa.text("1")),
        _text("owner"),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        _text("created_at"),
        _text("updated_at"),
    )
    op.create_table(
        "path_assignments",
        sa.Column("id", sa.Text, primary_key=True),
        _path_id(),
        _text("group"),
        _text("username"),
        _date("due_on"),
        _text("assigned_by"),
        _text("created_at"),
    )
    for column in ("group", "username"):
        op.create_index(
            f"path_assignments_{column}",
            "path_assignments",
            ["path_id", column],
            unique=True,
            sqlite_where=sa.column(column) != "",
            postgresql_where=sa.column(column) != "",
        )
    op.create_index("path_assignments_by_group", "path_assignments", ["group"])
    op.create_index("path_assignments_by_username", "path_assignments", ["username"])
    op.create_table(
        "path_enrolments",
        sa.Column("id", sa.Text, primary_key=True),
        _path_id(),
        _text("person_key", default=False),
        _text("username"),
        _text("email"),
        sa.Column("groups", sa.Text, nullable=False, server_default=_LIST),
        _date("due_on"),
        _text("started_at"),
        _text("completed_at"),
        _text("last_seen_at"),
        sa.UniqueConstraint("path_id", "person_key", name="path_enrolments_once"),
    )
    op.create_index("path_enrolments_person", "path_enrolments", ["person_key"])
    op.create_table(
        "path_completions",
        sa.Column("id", sa.Text, primary_key=True),
        _path_id(),
        _text("step_id", default=False),
        _text("person_key", default=False),
        _text("how", default=False),
        _text("evidence"),
        _text("completed_at"),
        sa.UniqueConstraint("path_id", "step_id", "person_key", name="path_completions_once"),
    )
    op.create_index("path_completions_person", "path_completions", ["person_key"])


def downgrade() -> None:
    # children first (their foreign keys name the parent); indexes go with their tables
    for table in ("path_completions", "path_enrolments", "path_assignments", "learning_paths"):
        op.drop_table(table)
