"""Learning paths' tables (server/paths/models.py), in the content database.

Each table is derived from its resource's declaration (server/db/resource_table.py: one column
per field; a path's steps are one JSON list, like an app's URL rules), on the content database's
`metadata` (server/db/content_tables.py imports this module at its end), so Alembic's revisions
and tests/test_migrations.py see them. Revision 0008 creates them. Portable SQL only.

What the constraints and indexes are for:
- assignments, enrolments and completions belong to their path (deleting a path deletes them:
  ON DELETE CASCADE);
- one assignment per (path, group) and per (path, username): partial unique indexes (a group
  assignment has username '' and the other way round; SQLite and PostgreSQL both have them);
- one enrolment per (path, person) and one completion per (path, step, person): the upsert keys
  of progress, conflicts in the database rather than checks in Python;
- reads: a learner's assignments by group and by username, a learner's enrolments and
  completions by person key, a path's completions by step (reports).

Registered with the generic store (server/peer/store.py `register`) by server/paths/service.py
(a tables module cannot import the store: content_tables.py imports it first).
"""

from __future__ import annotations

import sqlalchemy as sa

from server.db.content_tables import metadata
from server.db.resource_table import resource_table
from server.paths.models import Enrolment, LearningPath, PathAssignment, StepCompletion


def _path_fk() -> sa.ForeignKey:
    return sa.ForeignKey("learning_paths.id", ondelete="CASCADE")


learning_paths = resource_table("learning_paths", metadata, LearningPath)
path_assignments = resource_table(
    "path_assignments", metadata, PathAssignment, references={"path_id": _path_fk()}
)
path_enrolments = resource_table(
    "path_enrolments", metadata, Enrolment, references={"path_id": _path_fk()}
)
path_completions = resource_table(
    "path_completions", metadata, StepCompletion, references={"path_id": _path_fk()}
)

_a = path_assignments.c
sa.Index(
    "path_assignments_group",
    _a.path_id,
    _a.group,
    unique=True,
    sqlite_where=_a.group != "",
    postgresql_where=_a.group != "",
)
sa.Index(
    "path_assignments_username",
    _a.path_id,
    _a.username,
    unique=True,
    sqlite_where=_a.username != "",
    postgresql_where=_a.username != "",
)
sa.Index("path_assignments_by_group", _a.group)
sa.Index("path_assignments_by_username", _a.username)
path_enrolments.append_constraint(
    sa.UniqueConstraint(
        path_enrolments.c.path_id, path_enrolments.c.person_key, name="path_enrolments_once"
    )
)
sa.Index("path_enrolments_person", path_enrolments.c.person_key)
path_completions.append_constraint(
    sa.UniqueConstraint(
        path_completions.c.path_id,
        path_completions.c.step_id,
        path_completions.c.person_key,
        name="path_completions_once",
    )
)
sa.Index("path_completions_person", path_completions.c.person_key)

# resource class -> its table (registered with the generic store by server/paths/service.py)
TABLES: dict[type, sa.Table] = {
    LearningPath: learning_paths,
    PathAssignment: path_assignments,
    Enrolment: path_enrolments,
    StepCompletion: path_completions,
}

__all__ = [
    "TABLES",
    "learning_paths",
    "path_assignments",
    "path_completions",
    "path_enrolments",
]
