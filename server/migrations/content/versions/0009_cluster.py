"""Many nodes on one database (issue 15): the content change log, index snapshots, job runs.

New tables, empty (declared in server/db/cluster_tables.py): `content_changes` (one row per
content transaction from now on; an index older than the first row is rebuilt, never patched),
`index_snapshots` with their `index_snapshot_chunks` (deleted with their snapshot) and `job_runs`.
Nothing existing changes.

Portable SQL only (the same revision runs on PostgreSQL).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_EMPTY = sa.text("''")
_LIST = sa.text("'[]'")
_ZERO = sa.text("0")


def _text(name: str) -> sa.Column[str]:
    return sa.Column(name, sa.Text, nullable=False, server_default=_EMPTY)


def _count(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, nullable=False, server_default=_ZERO)


def upgrade() -> None:
    op.create_table(
        "content_changes",
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", sa.Text, nullable=False),
        sa.Column("upserts", sa.Text, nullable=False, server_default=_LIST),
        sa.Column("deletes", sa.Text, nullable=False, server_default=_LIST),
        _count("catalog"),
        _count("mentors"),
    )
    op.create_index("content_changes_at", "content_changes", ["at"])
    op.create_table(
        "index_snapshots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("content_version", sa.BigInteger, nullable=False),
        sa.Column("schema", sa.Integer, nullable=False),
        sa.Column("doc_count", sa.Integer, nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False, server_default=_ZERO),
        _text("sha256"),
        _text("node"),
        sa.Column("created_at", sa.Text, nullable=False),
        _count("complete"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "index_snapshots_newest", "index_snapshots", ["complete", "schema", "content_version"]
    )
    op.create_table(
        "index_snapshot_chunks",
        sa.Column(
            "snapshot_id",
            sa.Integer,
            sa.ForeignKey("index_snapshots.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "job_runs",
        sa.Column("name", sa.Text, primary_key=True),
        _text("node"),
        _text("started_at"),
        _text("finished_at"),
        _text("status"),
        _text("last_error"),
        _count("runs"),
        _count("failures"),
    )


def downgrade() -> None:
    for table in ("job_runs", "index_snapshot_chunks", "index_snapshots", "content_changes"):
        op.drop_table(table)
