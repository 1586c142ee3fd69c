"""Sources (issue 13): the sources tables, and an aid's `origin` and `transcript`.

New tables, empty (server/db/source_tables.py, declared from server/sources/models.py):
`sources`, `source_items` (the provenance of each aid a source made: one per (source, external
id), index by aid) and `sync_runs` (index (source, started_at)); items and runs are deleted with
their source (ON DELETE CASCADE).

`aids.origin` (the id of the source an aid comes from, '' for every existing aid: written in
Inflow) and `aids.transcript` (a video's WebVTT/SRT text, '' for every existing aid). Plain ALTER
TABLE ADD COLUMN, not a batch copy-and-swap: rebuilding `aids` copies every body through Python
for nothing and, should a later table ever reference aids with ON DELETE CASCADE, SQLite's DROP
TABLE would delete those rows (as 0003 and 0004 explain for contexts and apps). `aid_versions`
stores each version's content fields as JSON, so it needs no column: versions saved from now on
carry `origin` and `transcript`, older ones lack them (read as '').

Portable SQL only (the same revision runs on PostgreSQL). DROP COLUMN in the downgrade needs
SQLite 3.35 or later.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_EMPTY = sa.text("''")
_LIST = sa.text("'[]'")


def _text(name: str, *, default: bool = True) -> sa.Column[str]:
    """A TEXT NOT NULL column, default '' unless the field has no '' default."""
    return sa.Column(name, sa.Text, nullable=False, server_default=_EMPTY if default else None)


def _list(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=False, server_default=_LIST)


def _int(name: str, default: int) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, nullable=False, server_default=sa.text(str(default)))


def _source_id() -> sa.Column[str]:
    return sa.Column(
        "source_id", sa.Text, sa.ForeignKey("sources.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.add_column("aids", _text("transcript"))
    op.add_column("aids", _text("origin"))

    op.create_table(
        "sources",
        sa.Column("id", sa.Text, primary_key=True),
        _text("name", default=False),
        _text("kind", default=False),
        _text("url", default=False),
        _text("mode", default=False),
        _text("path_prefix"),
        _int("page_cap", 200),
        _text("ref", default=False),
        _text("path"),
        _list("allowed_hosts"),
        _list("apps"),
        _list("tags"),
        _list("audience"),
        _text("owner"),
        _text("aid_type", default=False),
        _text("publish", default=False),
        _text("on_remove", default=False),
        _int("interval_minutes", 360),
        _int("active", 1),
        _text("last_sync_at"),
        _text("last_status", default=False),
        _text("last_summary"),
        _text("validators", default=False),
        _text("created_at"),
        _text("updated_at"),
    )

    op.create_table(
        "source_items",
        sa.Column("id", sa.Text, primary_key=True),
        _source_id(),
        _text("external_id", default=False),
        _text("url"),
        _text("aid_id"),
        _text("etag"),
        _text("last_modified"),
        _text("content_hash"),
        _text("fetched_at"),
        _text("changed_at"),
        _text("state", default=False),
        _text("error"),
        sa.UniqueConstraint("source_id", "external_id", name="source_items_once"),
    )
    op.create_index("source_items_aid", "source_items", ["aid_id"])

    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Text, primary_key=True),
        _source_id(),
        _text("trigger", default=False),
        _text("started_by"),
        _text("started_at"),
        _text("finished_at"),
        _text("status", default=False),
        _int("added", 0),
        _int("changed", 0),
        _int("unchanged", 0),
        _int("removed", 0),
        _int("failed", 0),
        _text("failures", default=False),
        _text("error"),
    )
    op.create_index("sync_runs_source", "sync_runs", ["source_id", "started_at"])


def downgrade() -> None:
    # children first (their foreign keys name the parent); indexes go with their tables
    for table in ("sync_runs", "source_items", "sources"):
        op.drop_table(table)
    op.drop_column("aids", "origin")
    op.drop_column("aids", "transcript")
