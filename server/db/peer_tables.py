"""Peer learning's tables (server/peer/models.py), in the content database.

Each table is derived from its resource's declaration (server/db/resource_table.py: one column
per field), on the content database's `metadata`, so Alembic's revisions and
`tests/test_migrations.py` see them with the rest (server/db/content_tables.py imports this
module at its end). Portable SQL only: plain Text/Integer columns, literal defaults.

What the constraints and indexes are for:
- answers belong to their question (deleting a question deletes its answers: ON DELETE CASCADE);
  a report belongs to its tip (cascade too: a deleted tip's reports mean nothing);
- one report per (tip, reporter) and one recommendation per (mentor, context, aid): a second one
  is a conflict in the database, not a check in Python;
- the panel reads approved tips and open questions of a page (app, context, status), a learner's
  own questions (asker_key), a mentor's mentees and a learner's mentors (pairings by mentor and by
  learner), the moderation queues (status), and the mail sender its queued e-mails (status).
"""

from __future__ import annotations

import sqlalchemy as sa

from server.db.content_tables import metadata
from server.db.resource_table import resource_table
from server.peer.models import (
    AidFlag,
    Answer,
    Notification,
    Pairing,
    PairingRule,
    Question,
    Recommendation,
    Tip,
    TipReport,
)

tips = resource_table("peer_tips", metadata, Tip)
tip_reports = resource_table(
    "peer_tip_reports",
    metadata,
    TipReport,
    references={"tip_id": sa.ForeignKey("peer_tips.id", ondelete="CASCADE")},
)
questions = resource_table("peer_questions", metadata, Question)
answers = resource_table(
    "peer_answers",
    metadata,
    Answer,
    references={"question_id": sa.ForeignKey("peer_questions.id", ondelete="CASCADE")},
)
pairings = resource_table("peer_pairings", metadata, Pairing)
pairing_rules = resource_table("peer_pairing_rules", metadata, PairingRule)
recommendations = resource_table("peer_recommendations", metadata, Recommendation)
aid_flags = resource_table("peer_aid_flags", metadata, AidFlag)
notifications = resource_table("peer_notifications", metadata, Notification)

# one per ... (a context belongs to one app; the app is in the key for the whole-app context "")
tip_reports.append_constraint(
    sa.UniqueConstraint(
        tip_reports.c.tip_id, tip_reports.c.reporter_key, name="peer_tip_reports_once"
    )
)
recommendations.append_constraint(
    sa.UniqueConstraint(
        recommendations.c.mentor_id,
        recommendations.c.app_id,
        recommendations.c.context_id,
        recommendations.c.aid_id,
        name="peer_recommendations_once",
    )
)

# the reads (an index on a table's columns attaches itself to the table)
sa.Index("peer_tips_page", tips.c.app_id, tips.c.context_id, tips.c.status)
sa.Index("peer_tips_status", tips.c.status, tips.c.created_at)
sa.Index("peer_tips_author", tips.c.author_key)
sa.Index("peer_questions_page", questions.c.app_id, questions.c.context_id, questions.c.status)
sa.Index("peer_questions_asker", questions.c.asker_key)
sa.Index("peer_questions_status", questions.c.status, questions.c.created_at)
sa.Index("peer_answers_question", answers.c.question_id, answers.c.created_at)
sa.Index("peer_pairings_learner", pairings.c.learner_username)
sa.Index("peer_pairings_learner_key", pairings.c.learner_key)
sa.Index("peer_pairings_mentor", pairings.c.mentor_id)
sa.Index("peer_recommendations_page", recommendations.c.app_id, recommendations.c.context_id)
sa.Index("peer_aid_flags_status", aid_flags.c.status, aid_flags.c.created_at)
sa.Index("peer_aid_flags_aid", aid_flags.c.aid_id)
sa.Index("peer_notifications_status", notifications.c.status, notifications.c.created_at)

# resource class -> its table (the store's map)
TABLES: dict[type, sa.Table] = {
    Tip: tips,
    TipReport: tip_reports,
    Question: questions,
    Answer: answers,
    Pairing: pairings,
    PairingRule: pairing_rules,
    Recommendation: recommendations,
    AidFlag: aid_flags,
    Notification: notifications,
}

__all__ = [
    "TABLES",
    "aid_flags",
    "answers",
    "notifications",
    "pairing_rules",
    "pairings",
    "questions",
    "recommendations",
    "tip_reports",
    "tips",
]
