"""Feedback under the analytics privacy rules (docs/analytics.md).

Before: each row kept who gave it (`issuer|subject`) and the full page URL, forever. After: the
person is the analytics pseudonym (HMAC with the analytics key, the same as in events), the URL is
gone (new rows keep only the app and context the page matched), and rows older than the analytics
retention are purged with the events. Existing rows are pseudonymized here; their URLs are dropped
without deriving an app or context from them.

The pseudonymizer comes from the caller (`server.db.migrate.upgrade(..., pseudonymize=...)`): the
key lives in settings or the data directory, which a migration cannot know by itself.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

from server.db.migrate import MigrationError

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    feedback = sa.table("feedback", sa.column("id", sa.Integer), sa.column("user_key", sa.Text))
    rows = conn.execute(
        sa.select(feedback.c.id, feedback.c.user_key).where(feedback.c.user_key != "")
    ).all()
    if rows:
        config = op.get_context().config
        pseudonymize: Callable[[str, str], str] | None = (
            config.attributes.get("pseudonymize") if config is not None else None
        )
        if pseudonymize is None:
            raise MigrationError(
                "revision 0002 pseudonymizes feedback: run it through `inflow migrate` (it needs "
                "the analytics key)"
            )
        for fid, key in rows:
            issuer, _, subject = key.rpartition("|")
            conn.execute(
                feedback.update()
                .where(feedback.c.id == fid)
                .values(user_key=pseudonymize(issuer, subject))
            )
    with op.batch_alter_table(
        "feedback",
        table_kwargs={"sqlite_autoincrement": True},  # ids are never reused
    ) as batch:
        batch.add_column(sa.Column("app_id", sa.Text, nullable=False, server_default=sa.text("''")))
        batch.add_column(
            sa.Column("context_id", sa.Text, nullable=False, server_default=sa.text("''"))
        )
        batch.drop_column("url")
    op.create_index("feedback_created_at", "feedback", ["created_at"])


def downgrade() -> None:
    # Pseudonyms cannot be turned back into subjects, and dropped URLs are gone.
    op.drop_index("feedback_created_at", "feedback")
    with op.batch_alter_table("feedback", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("url", sa.Text, nullable=False, server_default=sa.text("''")))
        batch.drop_column("context_id")
        batch.drop_column("app_id")
