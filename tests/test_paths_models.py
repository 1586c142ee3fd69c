"""Learning paths' declarations (server/paths/models.py) and revision 0008: bad input is reported
field by field with paths such as `steps[2].url`; a step's kind decides which fields it needs and
which it may not have; a database at 0007 with real content upgrades with every row kept, and the
new tables are usable through the generic store with their constraints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server.analytics.pseudonym import Pseudonymizer, load_key
from server.db import migrate
from server.db.engine import sqlite_engine
from server.models import FieldErrors, dump, read_only_fields, validate
from server.paths import service  # noqa: F401  (registers the path resources with the store)
from server.paths.models import (
    Enrolment,
    LearningPath,
    PathAssignment,
    PathStep,
    StepCompletion,
)
from server.peer.store import PeerConflict, PeerStore
from server.storage import Storage
from tests.fixtures.content_db import CONTENT_V0, load_dump, table_columns, table_rows

STEPS: list[dict[str, Any]] = [
    {"id": "read", "kind": "aid", "title": "Read the guide", "aid_id": "orders-guide"},
    {
        "id": "course",
        "kind": "course",
        "title": "Warehouse safety",
        "url": "https://lms.example.org/course/77",
        "activity_id": "https://lms.example.org/xapi/activities/safety-77",
    },
    {"id": "try", "kind": "practice", "title": "Pick an order", "checklist": ["Scan", "Pack"]},
    {"id": "talk", "kind": "mentor", "title": "Ask a picker", "app_id": "wms"},
]


def _errors(cls: type, data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(FieldErrors) as caught:
        validate(cls, data)
    return dict(caught.value.errors)


def test_a_good_path_round_trips_through_its_json() -> None:
    path = validate(LearningPath, {"id": "pickers", "title": "Pickers' first week", "steps": STEPS})
    assert [s.kind for s in path.steps] == ["aid", "course", "practice", "mentor"]
    assert path.steps[2].checklist == ("Scan", "Pack")
    served = dump(path)
    assert served["steps"][0]["url"] == "" and served["active"] is True
    # what GET serves (every field of every step, the other kinds' empty) is accepted back
    assert validate(LearningPath, served) == path
    assert {"version", "created_at", "updated_at"} <= read_only_fields(LearningPath)


def test_a_bad_path_is_reported_field_by_field_with_step_paths() -> None:
    errors = _errors(
        LearningPath,
        {
            "id": "Pickers",
            "title": " ",
            "steps": [
                {"id": "read", "kind": "aid", "title": "Read", "url": "https://x.example.org"},
                {"id": "course", "kind": "course", "title": "Course", "url": "ftp://lms/1"},
                {"id": "c2", "kind": "course", "title": "C", "url": "https://l.example.org/2",
                 "activity_id": "not an iri"},
                {"id": "try", "kind": "practice", "title": "Try", "checklist": []},
                {"id": "talk", "kind": "mentor", "title": "Talk"},
                {"id": "read", "kind": "quiz", "title": "Quiz"},
            ],
            "extra": 1,
        },
    )  # fmt: skip
    assert errors == {
        "id": "'Pickers' is not a slug (lowercase letters, digits, '-')",
        "title": "must not be empty",
        "steps[0].aid_id": "an aid step needs the aid's id (aid_id)",
        "steps[0].url": "only a course step has it (this is a aid)",
        "steps[1].url": "must be an http(s) URL",
        "steps[1].activity_id": "a course step needs the xAPI activity id the LMS reports on",
        "steps[2].activity_id": (
            "must be an absolute IRI (such as https://lms.example.com/courses/crm-101)"
        ),
        "steps[3].checklist": "a practice step needs a checklist (1 to 20 lines)",
        "steps[4].mentor_id": "a mentor step needs a mentor (mentor_id) or an app",
        "steps[5].kind": "'quiz' is not one of aid, course, practice, mentor",
        "steps[5].id": "'read' is the id of step 1 too",
        "extra": "unknown field(s): extra",
    }


def test_limits_on_steps_and_checklists() -> None:
    assert _errors(LearningPath, {"id": "p", "title": "P", "steps": []}) == {
        "steps": "at least 1 entry"
    }
    many = [{"id": f"s{i}", "kind": "aid", "title": "S", "aid_id": "a"} for i in range(51)]
    assert _errors(LearningPath, {"id": "p", "title": "P", "steps": many}) == {
        "steps": "at most 50 entries"
    }
    lines = [f"line {i}" for i in range(21)]
    step = {"id": "s", "kind": "practice", "title": "S", "checklist": lines, "note": "n" * 501}
    assert _errors(PathStep, step) == {
        "checklist": "at most 20 entries",
        "note": "at most 500 characters",
    }
    assert _errors(LearningPath, {"id": "new", "title": "P", "steps": STEPS}) == {
        "id": "'new' is reserved"
    }


def test_an_assignment_is_to_a_group_or_a_person() -> None:
    both = {"path_id": "p", "group": "finance", "username": "ann"}
    assert _errors(PathAssignment, both) == {"username": "give a group or a username, not both"}
    assert _errors(PathAssignment, {"path_id": "p"}) == {"group": "give a group (or a username)"}
    assert _errors(PathAssignment, {"path_id": "p", "username": "a b"}) == {
        "username": "'a b' is not a Keycloak username"
    }
    made = validate(PathAssignment, {"path_id": "p", "group": "/finance", "due_on": "2027-01-31"})
    assert (made.group, made.due_on) == ("finance", "2027-01-31")
    assert _errors(PathAssignment, {"path_id": "p", "group": "g", "due_on": "soon"}) == {
        "due_on": "'soon' is not a date (YYYY-MM-DD)"
    }


async def test_revision_0008_adds_empty_path_tables_and_keeps_everything(tmp_path: Path) -> None:
    """A database at 0007 with real content upgrades with every row of every table kept; the
    path tables arrive empty and usable: steps stored and read back, one assignment per (path,
    group) and per (path, username), one completion per (path, step, person), a path's rows
    deleted with it."""
    db = load_dump(CONTENT_V0, tmp_path / "data" / "inflow.sqlite3")
    engine = sqlite_engine(db)
    try:
        key = load_key("", tmp_path / "data")
        migrate.upgrade(engine, "content", pseudonymize=Pseudonymizer(key), to="0007")
        tables = sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    assert "learning_paths" not in tables
    old = [t for t in tables if t != "alembic_version"]
    columns = {t: table_columns(db, t) for t in old}
    before = {t: table_rows(db, t) for t in old}
    assert any(before[t] for t in old)  # real content, not empty tables
    storage = Storage(db, key_dir=tmp_path / "data")
    await storage.open()  # the start-up path upgrades
    try:
        assert "0008" in storage.applied_revisions
        for table in old:
            assert table_rows(db, table, columns[table]) == before[table], table
        for table in ("learning_paths", "path_assignments", "path_enrolments", "path_completions"):
            assert table_rows(db, table) == [], table
        store = PeerStore(storage)
        path = validate(LearningPath, {"id": "pickers", "title": "Pickers", "steps": STEPS})
        await store.add(path)
        assert (await store.get(LearningPath, "pickers")).steps == path.steps
        await store.add(PathAssignment(path_id="pickers", group="warehouse"))
        await store.add(PathAssignment(path_id="pickers", username="ann"))
        await store.add(PathAssignment(path_id="pickers", username="ben"))  # '' group again: fine
        with pytest.raises(PeerConflict):
            await store.add(PathAssignment(path_id="pickers", group="warehouse"))
        with pytest.raises(PeerConflict):
            await store.add(PathAssignment(path_id="pickers", username="ann"))
        await store.add(Enrolment(path_id="pickers", person_key="k1", groups=("warehouse",)))
        done = StepCompletion(
            path_id="pickers", step_id="read", person_key="k1", how="mentor_confirmed"
        )
        await store.add(done)
        with pytest.raises(PeerConflict):
            await store.add(StepCompletion(path_id="pickers", step_id="read", person_key="k1",
                                           how="lrs"))  # fmt: skip
        await store.delete(LearningPath, "pickers")
        for cls in (PathAssignment, Enrolment, StepCompletion):
            assert await store.count(cls) == 0, cls
    finally:
        await storage.close()
