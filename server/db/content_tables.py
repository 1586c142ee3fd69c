"""The content database's tables, declared once (SQLAlchemy Core).

Portable on purpose: plain Text/Integer/Float types, server defaults as literals, no SQLite-only
SQL, so the same declarations (and the Alembic revisions made from them) run on PostgreSQL
(tests/pg/test_pg_migrations.py).
Lists (tags, apps, audience, rules) are JSON text, as they always were. Timestamps are ISO-8601
UTC text ("2026-01-31T12:00:00Z"), which sorts as time does.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from server.db.resource_table import resource_table
from server.models import Aid, App, Context, Mentor

metadata = sa.MetaData()
# seconds since the epoch: REAL on SQLite (as it always was), DOUBLE PRECISION elsewhere
EPOCH_SECONDS: sa.types.TypeEngine[float] = sa.Double().with_variant(sqlite.REAL(), "sqlite")

_EMPTY = sa.text("''")
_LIST = sa.text("'[]'")

# key/value settings of the content; `content_version` moves on with every content write
meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# an aid: one column per field of its declaration (server/models.py, server/db/resource_table.py)
aids = resource_table("aids", metadata, Aid)

# every saved version of an aid (its content fields as JSON): the history and the diff source
aid_versions = sa.Table(
    "aid_versions",
    metadata,
    sa.Column("aid_id", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("saved_at", sa.Text, nullable=False),
    sa.Column("saved_by", sa.Text, nullable=False, server_default=_EMPTY),
)

# an app: one column per field of its declaration; its contexts have their own table
apps = resource_table("apps", metadata, App, skip={"contexts"})

# a context (a page of an app): one column per field of its declaration, its place among its
# app's contexts; the aids pinned to it are in context_aids
contexts = resource_table(
    "contexts",
    metadata,
    Context,
    sa.Column("position", sa.Integer, nullable=False, server_default=sa.text("0")),
    skip={"aids"},
    references={"app_id": sa.ForeignKey("apps.id", ondelete="CASCADE")},
)

# aids pinned to a context, in order (aid ids are not foreign keys: a pin may name an aid that an
# import brings later)
context_aids = sa.Table(
    "context_aids",
    metadata,
    sa.Column(
        "context_id",
        sa.Text,
        sa.ForeignKey("contexts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("aid_id", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("issuer", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Column("subject", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Column("username", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("target_type", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Column("target_id", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Column("detail", sa.Text, nullable=False, server_default=sa.text("'{}'")),
    sa.Index("audit_log_target", "target_type", "target_id"),
    sqlite_autoincrement=True,  # ids are never reused: the audit page cursor relies on it
)

# console sessions and one-time login states (keyed by a hash of the cookie / state value)
admin_sessions = sa.Table(
    "admin_sessions",
    metadata,
    sa.Column("key_hash", sa.Text, primary_key=True),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("expires_at", EPOCH_SECONDS, nullable=False),
)

# a vetted peer mentor: one column per field of its declaration
mentors = resource_table("mentors", metadata, Mentor)

# "was this aid helpful?" Under the analytics privacy rules (docs/analytics.md): `user_key` is the
# analytics pseudonym of the person, never who they are; no page URL, only the app and context the
# page matched; rows older than the analytics retention are purged with the events.
feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("aid_id", sa.Text, nullable=False),
    sa.Column("helpful", sa.Integer, nullable=False),
    sa.Column("comment", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Column("user_key", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("app_id", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Column("context_id", sa.Text, nullable=False, server_default=_EMPTY),
    sa.Index("feedback_created_at", "created_at"),
    sqlite_autoincrement=True,
)

# Peer learning's tables, and sources' tables (issue 13), are on this metadata too (declared in
# their own modules, imported here so every reader of `metadata`, Alembic's included, sees them).
import server.db.cluster_tables  # noqa: E402  (many nodes, issue 15)
import server.db.health_tables  # noqa: E402  (link health, issue 13)
import server.db.path_tables  # noqa: E402  (learning paths, issue 14)
import server.db.peer_tables  # noqa: E402
import server.db.queue_tables  # noqa: E402
import server.db.source_tables  # noqa: E402, F401
