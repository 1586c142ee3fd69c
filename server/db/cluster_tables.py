"""Tables that let many nodes share one content database (issue 15, docs/scale-out.md).

On the content database's `metadata` (server/db/content_tables.py imports this module at its end),
so Alembic's revisions and tests/test_migrations.py see them with the rest. Portable SQL only.

- `content_changes`: one row per content transaction that moved `content_version`, written in
  that same transaction (server/storage.py). Other nodes read the rows after the version their
  index holds and apply just those aids (server/follow.py), instead of rebuilding. Pruned by age,
  never past the newest complete index snapshot's version.
- `index_snapshots` + `index_snapshot_chunks`: a copy of one node's Whoosh generation at a
  content version, stored in chunks, so a new node starts from it and catches up from
  `content_changes` (server/snapshots.py). `complete` is 0 while the chunks are written.
- `job_runs`: the shared state of the background jobs that must run once across the nodes
  (server/jobs.py): when each last started and finished, where, and how it went, so a job due
  every hour runs once an hour in the cluster, not once per node.
"""

from __future__ import annotations

import sqlalchemy as sa

from server.db.content_tables import metadata

_EMPTY = sa.text("''")
_LIST = sa.text("'[]'")
_ZERO = sa.text("0")

content_changes = sa.Table(
    "content_changes",
    metadata,
    # the content_version this transaction moved to (one row per version)
    sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", sa.Text, nullable=False),
    # JSON lists of aid ids: upserted (read them back from `aids`) and deleted
    sa.Column("upserts", sa.Text, nullable=False, server_default=_LIST),
    sa.Column("deletes", sa.Text, nullable=False, server_default=_LIST),
    # 1: apps or contexts changed (the catalog's rules are rebuilt); 1: mentors changed
    sa.Column("catalog", sa.Integer, nullable=False, server_default=_ZERO),
    sa.Column("mentors", sa.Integer, nullable=False, server_default=_ZERO),
    sa.Index("content_changes_at", "at"),
)

index_snapshots = sa.Table(
    "index_snapshots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("content_version", sa.BigInteger, nullable=False),
    sa.Column("schema", sa.Integer, nullable=False),  # index/schema.py SCHEMA_VERSION
    sa.Column("doc_count", sa.Integer, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False, server_default=_ZERO),  # bytes, all chunks
    sa.Column("sha256", sa.Text, nullable=False, server_default=_EMPTY),  # of the whole archive
    sa.Column("node", sa.Text, nullable=False, server_default=_EMPTY),  # who made it
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("complete", sa.Integer, nullable=False, server_default=_ZERO),
    sa.Index("index_snapshots_newest", "complete", "schema", "content_version"),
    sqlite_autoincrement=True,
)

index_snapshot_chunks = sa.Table(
    "index_snapshot_chunks",
    metadata,
    sa.Column(
        "snapshot_id",
        sa.Integer,
        sa.ForeignKey("index_snapshots.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

job_runs = sa.Table(
    "job_runs",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("node", sa.Text, nullable=False, server_default=_EMPTY),  # last (or current) runner
    sa.Column("started_at", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Column("finished_at", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Column("status", sa.Text, nullable=False, server_default=_EMPTY),  # running|ok|failed
    sa.Column("last_error", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Column("runs", sa.Integer, nullable=False, server_default=_ZERO),
    sa.Column("failures", sa.Integer, nullable=False, server_default=_ZERO),
)
