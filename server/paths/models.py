"""Learning paths' resources, each declared once (docs/paths.md, the contract of issue 14).

A `LearningPath` is an ordered list of `PathStep`s (embedded in the path, stored as a JSON list
like an app's URL rules) that L&D curates; a `PathAssignment` gives it to a Keycloak group or one
person, optionally with a due date; an `Enrolment` is one learner on one path (made when they are
first seen with an assignment, or by the LRS sync); a `StepCompletion` is one step done by one
learner, with how it was done and the evidence.

The same style as server/peer/models.py and server/sources/models.py: frozen, keyword-only
dataclasses whose annotations carry types and limits; `validate(cls, data)` (server/models.py)
checks input and raises `FieldErrors` with paths such as `steps[2].url`; `dump(obj)` is the JSON
served; the tables are derived from the classes (server/db/path_tables.py); rows read back are
trusted. Ids of assignments, enrolments and completions are made by the server (`new_id()`), so
they are read-only, as is everything the server sets.

A step's kind decides which of its fields mean something (`KIND_FIELDS`): an `aid` step names an
aid, a `course` step a URL and the xAPI activity the LMS reports on, a `practice` step a checklist,
a `mentor` step a mentor or an app (a conversation with one of the app's mentors). The fields of
another kind are refused when they are not empty (what GET serves, with the empty defaults, is
accepted back), and the fields a kind needs are required: both by a cross-field check
(`register_cross_check`), reported with the field checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

from server.models import (
    CONFIG,
    LIST,
    READ_ONLY,
    REQUIRED,
    SLUG_PATTERN,
    SLUG_RE,
    STRIP,
    USERNAME_RE,
    Flag,
    IsoDate,
    Slug,
    Tags,
    Timestamp,
    _fail,
    _matches,
    _unique,
    register_cross_check,
)
from server.peer.models import CLEAN, PeerId, PersonKey

# -- states ----------------------------------------------------------------------------------------

_StepKind = Literal["aid", "course", "practice", "mentor"]
# No `manual`: nothing set it (an admin marking a step done has no route), so it is not offered;
# the column is text, so adding a signal later needs no migration.
_How = Literal["aid_finished", "practice_confirmed", "lrs", "mentor_confirmed"]
STEP_KINDS: tuple[str, ...] = get_args(_StepKind)
HOWS: tuple[str, ...] = get_args(_How)
if TYPE_CHECKING:  # plain str for code that builds objects from rows; pydantic sees the Literal
    StepKind = str
    How = str
else:
    StepKind = _StepKind
    How = _How

# -- limits ----------------------------------------------------------------------------------------

TITLE_MAX = 200
DESCRIPTION_MAX = 5000
NOTE_MAX = 500
URL_MAX = 2000
CHECKLIST_MAX = 20  # lines of a practice step
CHECK_LINE_MAX = 200
STEPS_MAX = 50
EVIDENCE_MAX = 300
RESERVED_IDS = frozenset({"new"})  # /admin/paths/new is the console's editor

# kind -> the step fields only that kind has; the first ones listed are the ones it needs
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "aid": ("aid_id",),
    "course": ("url", "activity_id"),
    "practice": ("checklist",),
    "mentor": ("mentor_id", "app_id"),
}
_NEEDS: dict[str, tuple[tuple[tuple[str, ...], str], ...]] = {
    "aid": ((("aid_id",), "an aid step needs the aid's id (aid_id)"),),
    "course": (
        (("url",), "a course step needs the course's URL"),
        (("activity_id",), "a course step needs the xAPI activity id the LMS reports on"),
    ),
    "practice": ((("checklist",), "a practice step needs a checklist (1 to 20 lines)"),),
    "mentor": ((("mentor_id", "app_id"), "a mentor step needs a mentor (mentor_id) or an app"),),
}

# -- field types -----------------------------------------------------------------------------------


def _http_url(value: str) -> str:
    if value and not re.match(r"^https?://[^\s/?#]+", value, re.IGNORECASE):
        raise _fail("must be an http(s) URL")
    return value


# an absolute IRI (xAPI activity ids are IRIs): a scheme, then no spaces or characters IRIs forbid
_IRI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+$")


def _iri(value: str) -> str:
    if value and not _IRI_RE.match(value):
        raise _fail("must be an absolute IRI (such as https://lms.example.com/courses/crm-101)")
    return value


def _path_id(value: str) -> str:
    if value in RESERVED_IDS:
        raise _fail(f"{value!r} is reserved")
    return value


# A reference to an aid, a mentor or an app: a slug, or "".
OptSlug = Annotated[
    str,
    STRIP,
    Field(max_length=64),
    AfterValidator(_matches(SLUG_RE, "a slug (lowercase letters, digits, '-')")),
    WithJsonSchema({"type": "string", "pattern": f"({SLUG_PATTERN})|^$", "maxLength": 64}),
]
_Url = Annotated[str, STRIP, Field(max_length=URL_MAX), AfterValidator(_http_url)]
_Iri = Annotated[str, STRIP, Field(max_length=URL_MAX), AfterValidator(_iri)]
_CheckLine = Annotated[str, Field(max_length=CHECK_LINE_MAX)]
Checklist = Annotated[
    tuple[_CheckLine, ...], LIST, Field(max_length=CHECKLIST_MAX), AfterValidator(_unique)
]
_Note = Annotated[Annotated[str, StringConstraints(max_length=NOTE_MAX)], CLEAN]
_Description = Annotated[
    Annotated[str, StringConstraints(max_length=DESCRIPTION_MAX)], CLEAN
]  # Markdown
_Who = Annotated[str, READ_ONLY, Field(max_length=255)]
_PathRef = Annotated[str, READ_ONLY, Field(max_length=64)]


def _group(value: Any) -> Any:
    """A Keycloak group name as tokens carry it, or its path: '/finance' is 'finance'."""
    return value.strip().lstrip("/").strip() if isinstance(value, str) else value


_Group = Annotated[str, BeforeValidator(_group), Field(max_length=255)]
_Username = Annotated[
    str,
    STRIP,
    Field(max_length=255),
    AfterValidator(_matches(USERNAME_RE, "a Keycloak username")),
]


# -- a path and its steps --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PathStep:
    """One step of a path, in order: read an aid (`aid`), take a course in the LMS (`course`:
    its URL and the xAPI activity id the LMS reports completion on), practise with a checklist
    (`practice`), or talk to a mentor (`mentor`: a named mentor, or a mentor of an app). `id` is
    unique within its path and stays when steps move (progress is kept by step id)."""

    __pydantic_config__ = CONFIG

    id: Slug
    kind: StepKind
    title: Annotated[str, REQUIRED, Field(max_length=TITLE_MAX)]
    aid_id: OptSlug = ""  # aid
    url: _Url = ""  # course
    activity_id: _Iri = ""  # course
    checklist: Checklist = ()  # practice
    mentor_id: OptSlug = ""  # mentor
    app_id: OptSlug = ""  # mentor
    note: _Note = ""

    def __post_init__(self) -> None:
        # a step read back from its path's JSON column has its checklist as a list
        if isinstance(self.checklist, list):
            object.__setattr__(self, "checklist", tuple(self.checklist))


def _filled(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple):
        return any(not isinstance(v, str) or v.strip() for v in value)
    return value is not None


def _step_rules(data: Any, where: str = "") -> list[tuple[str, str]]:
    """The fields one kind needs given, those of other kinds empty (`where`: 'steps[2].')."""
    if not isinstance(data, dict):
        return []
    kind = data.get("kind")
    if kind not in STEP_KINDS:
        return []  # the field check says what is wrong with `kind`
    out = []
    for fields, message in _NEEDS[kind]:
        if not any(_filled(data.get(f)) for f in fields):
            out.append((where + fields[0], message))
    for other, fields in KIND_FIELDS.items():
        if other == kind:
            continue
        for name in fields:
            if _filled(data.get(name)):
                article = "an" if other == "aid" else "a"
                out.append((where + name, f"only {article} {other} step has it (this is a {kind})"))
    return out


def _path_rules(data: dict[str, Any]) -> list[tuple[str, str]]:
    """Each step by its kind; step ids unique within the path."""
    steps = data.get("steps")
    if not isinstance(steps, list | tuple):
        return []
    out: list[tuple[str, str]] = []
    seen: dict[str, int] = {}
    for i, step in enumerate(steps):
        out += _step_rules(step, f"steps[{i}].")
        sid = step.get("id") if isinstance(step, dict) else None
        if isinstance(sid, str) and sid.strip():
            sid = sid.strip()
            if sid in seen:
                out.append((f"steps[{i}].id", f"{sid!r} is the id of step {seen[sid] + 1} too"))
            else:
                seen[sid] = i
    return out


register_cross_check(PathStep, _step_rules)


@dataclass(frozen=True, kw_only=True)
class LearningPath:
    """A curated path: a title, a Markdown description, the roles or groups that may see it
    (`audience`; empty: everyone it is assigned to) and 1 to 50 ordered steps. Only `active`
    paths are shown to learners. `version` moves on with every save (ETag / If-Match)."""

    __pydantic_config__ = CONFIG

    id: Annotated[Slug, AfterValidator(_path_id)]
    title: Annotated[str, REQUIRED, Field(max_length=TITLE_MAX)]
    description: _Description = ""
    audience: Tags = ()
    steps: Annotated[tuple[PathStep, ...], Field(min_length=1, max_length=STEPS_MAX)]
    active: Flag = True
    owner: Annotated[str, STRIP, Field(max_length=200)] = ""
    version: Annotated[int, READ_ONLY] = 1
    created_at: Timestamp = ""
    updated_at: Timestamp = ""

    def step(self, step_id: str) -> PathStep | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def visible_to(self, tags: frozenset[str] | None) -> bool:
        """tags: the caller's roles and groups (None: sees everything, like aids)."""
        return tags is None or not self.audience or bool(tags.intersection(self.audience))


register_cross_check(LearningPath, _path_rules)


# -- who has which path ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class PathAssignment:
    """A path given to the members of a Keycloak `group` or to one person (`username`): exactly
    one of the two. One per (path, group) and per (path, username). `due_on`: by when."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    path_id: _PathRef
    group: _Group = ""
    username: _Username = ""
    due_on: IsoDate = None
    assigned_by: _Who = ""
    created_at: Timestamp = ""


def _assignment_rules(data: dict[str, Any]) -> list[tuple[str, str]]:
    group, username = _filled(data.get("group")), _filled(data.get("username"))
    if group and username:
        return [("username", "give a group or a username, not both")]
    if not group and not username:
        return [("group", "give a group (or a username)")]
    return []


register_cross_check(PathAssignment, _assignment_rules)


@dataclass(frozen=True, kw_only=True)
class Enrolment:
    """A learner on a path: made the first time they are seen with an assignment (or by the LRS
    sync for a group's members). `email` is kept to match the learner in LRS statements: the one
    place a learner's address is stored, deleted with the enrolment. `groups` are the learner's
    groups when last seen (group reports). One per (path, person_key)."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    path_id: _PathRef
    person_key: PersonKey
    username: _Who = ""
    email: Annotated[str, READ_ONLY, Field(max_length=320)] = ""
    groups: Annotated[Tags, READ_ONLY] = ()
    due_on: Annotated[IsoDate, READ_ONLY] = None
    started_at: Timestamp = ""
    completed_at: Timestamp = ""
    last_seen_at: Timestamp = ""


@dataclass(frozen=True, kw_only=True)
class StepCompletion:
    """One step of a path done by one learner: how (`aid_finished`, `practice_confirmed`, `lrs`,
    `mentor_confirmed`), the evidence (an LRS statement's id) and when. One per (path,
    step, person_key)."""

    __pydantic_config__ = CONFIG

    id: PeerId = ""
    path_id: _PathRef
    step_id: Annotated[str, READ_ONLY, Field(max_length=64)]
    person_key: PersonKey
    how: Annotated[How, READ_ONLY]
    evidence: Annotated[str, READ_ONLY, Field(max_length=EVIDENCE_MAX)] = ""
    completed_at: Timestamp = ""


# Every path resource stored in a table, for the store, the tables' tests and OpenAPI components.
PATH_RESOURCES: tuple[type, ...] = (LearningPath, PathAssignment, Enrolment, StepCompletion)

__all__ = [
    "HOWS",
    "KIND_FIELDS",
    "PATH_RESOURCES",
    "STEP_KINDS",
    "Enrolment",
    "LearningPath",
    "PathAssignment",
    "PathStep",
    "StepCompletion",
]
