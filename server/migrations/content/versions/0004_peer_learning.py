"""Peer learning (issue 12): the peer tables, and an app's `owners`.

New tables, empty (server/db/peer_tables.py, declared from server/peer/models.py): tips and their
reports, questions and their answers, mentor pairings and pairing rules, mentor recommendations,
flags on aids, and the e-mail outbox. Foreign keys: an answer's question and a report's tip
(ON DELETE CASCADE); unique: one report per (tip, reporter), one recommendation per (mentor, app,
context, aid). Indexes for the panel's and the queues' reads.

`apps.owners`: a JSON list of e-mail addresses, empty for existing apps. Plain ALTER TABLE ADD
COLUMN, not a batch copy-and-swap: rebuilding `apps` would drop it, and with foreign keys on,
SQLite's DROP TABLE deletes every context (and its pins) by their ON DELETE CASCADE.

Portable SQL only (the same revision runs on PostgreSQL).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_EMPTY = sa.text("''")
_LIST = sa.text("'[]'")
_ZERO = sa.text("0")


def _text(name: str, *, default: bool = True) -> sa.Column[str]:
    """A TEXT NOT NULL column, default '' unless the field is required."""
    return sa.Column(name, sa.Text, nullable=False, server_default=_EMPTY if default else None)


def _int(name: str, default: int) -> sa.Column[int]:
    return sa.Column(name, sa.Integer, nullable=False, server_default=sa.text(str(default)))


def upgrade() -> None:
    op.add_column("apps", sa.Column("owners", sa.Text, nullable=False, server_default=_LIST))

    op.create_table(
        "peer_tips",
        sa.Column("id", sa.Text, primary_key=True),
        _text("app_id", default=False),
        _text("context_id"),
        _text("body", default=False),
        _text("author_key"),
        _text("author_name"),
        _int("show_name", 0),
        _text("status", default=False),
        _text("reject_reason"),
        sa.Column("audience", sa.Text, nullable=False, server_default=_LIST),
        _text("endorsed_by"),
        _text("endorsed_at"),
        _text("moderated_by"),
        _text("moderated_at"),
        _int("report_count", 0),
        _text("created_at"),
        _text("updated_at"),
    )
    op.create_index("peer_tips_page", "peer_tips", ["app_id", "context_id", "status"])
    op.create_index("peer_tips_status", "peer_tips", ["status", "created_at"])
    op.create_index("peer_tips_author", "peer_tips", ["author_key"])

    op.create_table(
        "peer_tip_reports",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column(
            "tip_id",
            sa.Text,
            sa.ForeignKey("peer_tips.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _text("reporter_key"),
        _text("reason"),
        _text("created_at"),
        sa.UniqueConstraint("tip_id", "reporter_key", name="peer_tip_reports_once"),
    )

    op.create_table(
        "peer_questions",
        sa.Column("id", sa.Text, primary_key=True),
        _text("app_id", default=False),
        _text("context_id"),
        _text("body", default=False),
        _text("asker_key"),
        _text("asker_name"),
        _int("show_name", 0),
        _text("status", default=False),
        sa.Column("audience", sa.Text, nullable=False, server_default=_LIST),
        _text("accepted_answer_id"),
        _text("aid_id"),
        _int("unread", 0),
        _text("first_answer_at"),
        _text("created_at"),
        _text("updated_at"),
    )
    op.create_index("peer_questions_page", "peer_questions", ["app_id", "context_id", "status"])
    op.create_index("peer_questions_asker", "peer_questions", ["asker_key"])
    op.create_index("peer_questions_status", "peer_questions", ["status", "created_at"])

    op.create_table(
        "peer_answers",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column(
            "question_id",
            sa.Text,
            sa.ForeignKey("peer_questions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _text("body", default=False),
        _text("author_key"),
        _text("author_name"),
        _text("mentor_id"),
        _int("accepted", 0),
        _text("created_at"),
    )
    op.create_index("peer_answers_question", "peer_answers", ["question_id", "created_at"])

    op.create_table(
        "peer_pairings",
        sa.Column("id", sa.Text, primary_key=True),
        _text("learner_username", default=False),
        _text("learner_key"),
        _text("mentor_id", default=False),
        _text("app_id", default=False),
        sa.Column("starts_on", sa.Text, nullable=True),
        sa.Column("ends_on", sa.Text, nullable=True),
        _text("source", default=False),
        _text("created_by"),
        _text("created_at"),
    )
    op.create_index("peer_pairings_learner", "peer_pairings", ["learner_username"])
    op.create_index("peer_pairings_learner_key", "peer_pairings", ["learner_key"])
    op.create_index("peer_pairings_mentor", "peer_pairings", ["mentor_id"])

    op.create_table(
        "peer_pairing_rules",
        sa.Column("id", sa.Text, primary_key=True),
        _text("group", default=False),
        _text("app_id", default=False),
        sa.Column("mentor_ids", sa.Text, nullable=False, server_default=_LIST),
        _int("days", 30),
        _int("cap", 5),
        _text("start_claim"),
        _int("active", 1),
        _text("created_at"),
        _text("updated_at"),
    )

    op.create_table(
        "peer_recommendations",
        sa.Column("id", sa.Text, primary_key=True),
        _text("mentor_id", default=False),
        _text("app_id", default=False),
        _text("context_id"),
        _text("aid_id", default=False),
        _text("note"),
        _text("created_at"),
        sa.UniqueConstraint(
            "mentor_id", "app_id", "context_id", "aid_id", name="peer_recommendations_once"
        ),
    )
    op.create_index("peer_recommendations_page", "peer_recommendations", ["app_id", "context_id"])

    op.create_table(
        "peer_aid_flags",
        sa.Column("id", sa.Text, primary_key=True),
        _text("aid_id", default=False),
        _text("mentor_id"),
        _text("kind", default=False),
        _text("comment"),
        _text("status", default=False),
        _text("resolved_by"),
        _text("resolved_at"),
        _text("created_at"),
    )
    op.create_index("peer_aid_flags_status", "peer_aid_flags", ["status", "created_at"])
    op.create_index("peer_aid_flags_aid", "peer_aid_flags", ["aid_id"])

    op.create_table(
        "peer_notifications",
        sa.Column("id", sa.Text, primary_key=True),
        _text("to_addr", default=False),
        _text("subject", default=False),
        _text("body_text", default=False),
        _text("kind"),
        _text("ref"),
        _text("status", default=False),
        _int("attempts", 0),
        _text("last_error"),
        _text("created_at"),
        _text("sent_at"),
    )
    op.create_index("peer_notifications_status", "peer_notifications", ["status", "created_at"])


def downgrade() -> None:
    # children first (their foreign keys name the parents); indexes go with their tables
    for table in (
        "peer_notifications",
        "peer_aid_flags",
        "peer_recommendations",
        "peer_pairing_rules",
        "peer_pairings",
        "peer_answers",
        "peer_questions",
        "peer_tip_reports",
        "peer_tips",
    ):
        op.drop_table(table)
    op.drop_column("apps", "owners")
