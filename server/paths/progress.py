"""Learners' progress on paths (docs/paths.md "Progress"): who has which path, enrolments, step
completions, the next step and a path's completion.

- **Who has which path**: the active paths assigned to one of the caller's Keycloak groups (the
  token's `groups`) or to their username, whose `audience` is empty or shares a role or group with
  the caller (admins see every audience, as for aids). Several assignments of one path (a group
  and the person): the earliest due date wins.
- **Enrolment**: made the first time a learner is seen with an assigned path (their paths read by
  the panel, the web app or the API), then kept current (username, e-mail, groups, due date) at
  most once an hour (`SEEN_EVERY`), so a panel opening every minute does not write every minute.
  The e-mail is what the LRS sync matches statements on (server/paths/lrs.py).
- **A step is done** by one `StepCompletion` (one per path, step and person: the database's
  constraint): the learner finished an aid (`aid_finished`, aid steps only), confirmed a practice
  task with every checklist line ticked (`practice_confirmed`), confirmed a mentor conversation
  (`mentor_confirmed`), or the LRS reported the course (`lrs`). The first completion stays: doing a
  step again changes nothing.
- **Next step**: the first step, in the path's order, not done. The path is **completed** when
  every step it has now is done; the enrolment's `completed_at` records the first time.

Each step done and each path completed also goes out as xAPI (`completed`, docs/xapi-profile.md)
through the analytics outbox, when an LRS is configured. Everything runs in the storage thread
(`PeerStore` read or transaction), never on the event loop.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import sqlalchemy as sa
from aiohttp import web
from pydantic import Field

from auth.identity import Identity
from server import keys
from server.analytics.xapi import LANG
from server.errors import NotFound, ValidationFailed, body_refused
from server.models import CONFIG, FieldErrors, validate
from server.paths import service as _registered  # noqa: F401  (registers the path tables)
from server.paths.models import (
    CHECK_LINE_MAX,
    CHECKLIST_MAX,
    HOWS,
    Enrolment,
    LearningPath,
    PathAssignment,
    PathStep,
    StepCompletion,
)
from server.peer.activity import _queue_sync
from server.peer.directory import Directory, DirectoryUnavailable, Member, UnknownGroup
from server.peer.people import person_key as person_key_of
from server.peer.store import PeerStore, PeerTx, table_of

log = logging.getLogger("inflow.paths.progress")

SEEN_EVERY = dt.timedelta(hours=1)  # an enrolment's last_seen_at is written at most this often
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
TYPE_PATH = "http://adlnet.gov/expapi/activities/course"
TYPE_STEP = "http://adlnet.gov/expapi/activities/module"
# statement ids: uuid5 in this namespace of "<base>|completed|<object id>|<person key>"
NAMESPACE = uuid.UUID("2b7e3c9a-5d41-4f0e-8c6b-91a4d7e0f352")

# what a learner may say they did, and the step kind each is for
_LearnerHow = Literal["aid_finished", "practice_confirmed", "mentor_confirmed"]
LEARNER_HOWS: tuple[str, ...] = get_args(_LearnerHow)
KIND_OF_HOW = {
    "aid_finished": "aid",
    "practice_confirmed": "practice",
    "mentor_confirmed": "mentor",
}
assert set(LEARNER_HOWS) <= set(HOWS)
if TYPE_CHECKING:
    LearnerHow = str
else:
    LearnerHow = _LearnerHow


@dataclass(frozen=True, kw_only=True)
class StepDone:
    """POST /api/v1/paths/{path_id}/steps/{step_id}/done: how the learner did the step; for a
    practice step, the checklist lines they ticked (every line is needed)."""

    __pydantic_config__ = CONFIG

    how: Annotated[
        LearnerHow,
        Field(
            description="aid_finished (aid steps: 'Done' pressed or the last checklist box "
            "ticked), practice_confirmed (practice steps), mentor_confirmed (mentor steps)"
        ),
    ]
    checked: Annotated[
        tuple[Annotated[str, Field(max_length=CHECK_LINE_MAX)], ...],
        Field(max_length=CHECKLIST_MAX, description="practice steps: every checklist line"),
    ] = ()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(value: str) -> dt.datetime | None:
    if not value:
        return None
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def store_of(app: web.Application) -> PeerStore:
    return app[keys.PEER]


def tags_of(identity: Identity) -> frozenset[str] | None:
    """What a path's audience is matched against (None: sees every audience, admins)."""
    return None if "admin" in identity.roles else identity.audience_tags


@dataclass(frozen=True)
class Assigned:
    """A path the caller has, with the due date of their assignments."""

    path: LearningPath
    due_on: str | None


def _earliest(dates: Iterable[str | None]) -> str | None:
    known = sorted(d for d in dates if d)
    return known[0] if known else None


def assigned_sync(tx: PeerTx, identity: Identity, path_id: str = "") -> list[Assigned]:
    """The active paths assigned to the caller that they may see, by title (one path with
    `path_id`)."""
    table = table_of(PathAssignment).c
    who: list[sa.ColumnElement[bool]] = []
    if identity.groups:
        who.append(table.group.in_(sorted(identity.groups)))
    if identity.username:
        who.append(sa.func.lower(table.username) == identity.username.lower())
    if not who:
        return []
    filters: dict[str, Any] = {"path_id": path_id} if path_id else {}
    assignments = tx.list(PathAssignment, where=[sa.or_(*who)], **filters)
    due: dict[str, list[str | None]] = {}
    for a in assignments:
        due.setdefault(a.path_id, []).append(a.due_on)
    if not due:
        return []
    tags = tags_of(identity)
    paths = tx.list(LearningPath, id=sorted(due), active=True)
    out = [Assigned(p, _earliest(due[p.id])) for p in paths if p.visible_to(tags)]
    return sorted(out, key=lambda a: (a.path.title.lower(), a.path.id))


def _groups(identity: Identity) -> tuple[str, ...]:
    return tuple(sorted(identity.groups))


def enrol_sync(
    tx: PeerTx, identity: Identity, key: str, assigned: Sequence[Assigned], at: dt.datetime
) -> dict[str, Enrolment]:
    """Upsert the caller's enrolment on each assigned path (see the module docstring); the
    enrolments by path id."""
    if not assigned:
        return {}
    ids = [a.path.id for a in assigned]
    current = {e.path_id: e for e in tx.list(Enrolment, person_key=key, path_id=ids)}
    stamp = iso(at)
    email = (identity.email or "").strip().lower()
    username = identity.username or ""
    out: dict[str, Enrolment] = {}
    for a in assigned:
        known = current.get(a.path.id)
        fresh: dict[str, Any] = {
            "username": username,
            "email": email,
            "groups": _groups(identity),
            "due_on": a.due_on,
        }
        if known is None:
            out[a.path.id] = tx.add(
                Enrolment(
                    path_id=a.path.id,
                    person_key=key,
                    started_at=stamp,
                    last_seen_at=stamp,
                    **fresh,
                )
            )
            continue
        changed = any(getattr(known, k) != v for k, v in fresh.items())
        seen = parse_time(known.last_seen_at)
        if changed or seen is None or at - seen >= SEEN_EVERY:
            known = tx.update(dataclasses.replace(known, last_seen_at=stamp, **fresh))
        out[a.path.id] = known
    return out


@dataclass(frozen=True)
class Standing:
    """One learner on one path: the path, the due date, the enrolment, the completions."""

    path: LearningPath
    due_on: str | None
    enrolment: Enrolment | None
    done: dict[str, StepCompletion]

    @property
    def next_step(self) -> PathStep | None:
        return next((s for s in self.path.steps if s.id not in self.done), None)

    @property
    def done_count(self) -> int:
        return sum(1 for s in self.path.steps if s.id in self.done)

    @property
    def completed(self) -> bool:
        return self.done_count == len(self.path.steps)


async def standings(app: web.Application, identity: Identity, path_id: str = "") -> list[Standing]:
    """The caller's paths with their progress, enrolling them where they are new (one path with
    `path_id`)."""
    key = person_key_of(app, identity)
    store = store_of(app)
    at = now()

    def read(tx: PeerTx) -> tuple[list[Assigned], dict[str, Enrolment]]:
        assigned = assigned_sync(tx, identity, path_id)
        ids = [a.path.id for a in assigned]
        enrolments = tx.list(Enrolment, person_key=key, path_id=ids) if ids else []
        return assigned, {e.path_id: e for e in enrolments}

    assigned, enrolments = await store.read(read)
    if any(_stale(enrolments.get(a.path.id), identity, a, at) for a in assigned):

        def write(tx: PeerTx) -> tuple[list[Assigned], dict[str, Enrolment]]:
            assigned = assigned_sync(tx, identity, path_id)  # again, inside the transaction
            return assigned, enrol_sync(tx, identity, key, assigned, at)

        assigned, enrolments = await store.transaction(write)
    ids = [a.path.id for a in assigned]
    completions = await store.list(StepCompletion, person_key=key, path_id=ids) if ids else []
    done: dict[str, dict[str, StepCompletion]] = {}
    for c in completions:
        done.setdefault(c.path_id, {})[c.step_id] = c
    return [
        Standing(a.path, a.due_on, enrolments.get(a.path.id), done.get(a.path.id, {}))
        for a in assigned
    ]


def _stale(known: Enrolment | None, identity: Identity, a: Assigned, at: dt.datetime) -> bool:
    if known is None:
        return True
    seen = parse_time(known.last_seen_at)
    return (
        seen is None
        or at - seen >= SEEN_EVERY
        or known.email != (identity.email or "").strip().lower()
        or known.username != (identity.username or "")
        or tuple(known.groups) != _groups(identity)
        or known.due_on != a.due_on
    )


def _due_key(s: Standing) -> tuple[int, str, str]:
    return (0 if s.due_on else 1, s.due_on or "", s.path.title.lower())


def step_json(step: PathStep, done: StepCompletion | None) -> dict[str, Any]:
    return {
        "id": step.id,
        "kind": step.kind,
        "title": step.title,
        "aid_id": step.aid_id,
        "url": step.url,
        "activity_id": step.activity_id,
        "checklist": list(step.checklist),
        "mentor_id": step.mentor_id,
        "app_id": step.app_id,
        "note": step.note,
        "done": done is not None,
        "done_at": done.completed_at if done else None,
        "how": done.how if done else None,
    }


async def standing_json(app: web.Application, s: Standing) -> dict[str, Any]:
    """One path as the learner API serves it (the shape of docs/api.md "Learning paths")."""
    renderer = app[keys.RENDERER]
    steps = [step_json(step, s.done.get(step.id)) for step in s.path.steps]
    nxt = s.next_step
    return {
        "path": {
            "id": s.path.id,
            "title": s.path.title,
            "description_html": await renderer.render(s.path.description)
            if s.path.description
            else "",
        },
        "due_on": s.due_on,
        "done": s.done_count,
        "total": len(s.path.steps),
        "completed": s.completed,
        "started_at": s.enrolment.started_at if s.enrolment else None,
        "completed_at": (s.enrolment.completed_at or None) if s.enrolment else None,
        "next": next(x for x in steps if x["id"] == nxt.id) if nxt is not None else None,
        "steps": steps,
    }


async def my_paths(app: web.Application, identity: Identity) -> list[dict[str, Any]]:
    """The caller's paths, the one due first first (then by title)."""
    found = sorted(await standings(app, identity), key=_due_key)
    return [await standing_json(app, s) for s in found]


async def my_path(app: web.Application, identity: Identity, path_id: str) -> Standing:
    """One of the caller's paths; NotFound when it is not theirs (or not active, or hidden)."""
    found = await standings(app, identity, path_id)
    if not found:
        raise NotFound(f"You have no learning path {path_id!r}.")
    return found[0]


def parse_done(data: Any) -> StepDone:
    try:
        return validate(StepDone, data)
    except FieldErrors as exc:
        raise body_refused(exc.errors) from exc


def check_done(step: PathStep, body: StepDone) -> None:
    """May this step be marked done this way? A 422 that says why otherwise."""
    wanted = KIND_OF_HOW[body.how]
    if step.kind != wanted:
        if step.kind == "course":
            hint = "A course step is ticked when the LMS reports it: sync your progress."
        else:
            right = next(h for h, k in KIND_OF_HOW.items() if k == step.kind)
            hint = f"Use {right!r} for a {step.kind} step."
        raise ValidationFailed(
            f"{body.how!r} is for {wanted} steps; step {step.id!r} is a {step.kind} step. {hint}",
            fields=["how"],
            errors=[{"field": "how", "message": f"not for a {step.kind} step"}],
        )
    if step.kind == "practice":
        ticked = {line.strip() for line in body.checked}
        missing = [line for line in step.checklist if line.strip() not in ticked]
        if missing:
            raise ValidationFailed(
                "Tick every line of the checklist first; not ticked: "
                + "; ".join(repr(m) for m in missing),
                fields=["checked"],
                errors=[{"field": "checked", "message": f"not ticked: {m}"} for m in missing],
                missing=missing,
            )


async def mark_done(
    app: web.Application, identity: Identity, path_id: str, step_id: str, data: Any
) -> dict[str, Any]:
    """The learner says they did a step (see `StepDone`); the path as the API serves it."""
    body = parse_done(data)
    standing = await my_path(app, identity, path_id)  # 404, and enrols the learner
    step = standing.path.step(step_id)
    if step is None:
        raise NotFound(f"Learning path {path_id!r} has no step {step_id!r}.")
    check_done(step, body)
    await tick(app, path_id, step_id, person_key_of(app, identity), how=body.how)
    return await standing_json(app, (await standings(app, identity, path_id))[0])


@dataclass(frozen=True)
class Ticked:
    """What one tick did: the completion stored (None: it was done already) and whether it
    completed the path."""

    path: LearningPath
    completion: StepCompletion | None
    path_completed_at: str = ""


def tick_sync(
    tx: PeerTx,
    path_id: str,
    step_id: str,
    key: str,
    *,
    how: str,
    evidence: str = "",
    completed_at: dt.datetime | None = None,
) -> Ticked | None:
    """Record one step done (first completion wins); complete the enrolment when every step is
    done. None when the path or the step is gone."""
    path = tx.find(LearningPath, path_id)
    if path is None or path.step(step_id) is None:
        return None
    existing = tx.list(StepCompletion, path_id=path_id, step_id=step_id, person_key=key)
    if existing:
        return Ticked(path, None)
    at = completed_at or now()
    completion = tx.add(
        StepCompletion(
            path_id=path_id,
            step_id=step_id,
            person_key=key,
            how=how,
            evidence=evidence[:300],
            completed_at=iso(at),
        )
    )
    done = {c.step_id for c in tx.list(StepCompletion, path_id=path_id, person_key=key)}
    completed = ""
    if all(s.id in done for s in path.steps):
        for enrolment in tx.list(Enrolment, path_id=path_id, person_key=key):
            if not enrolment.completed_at:
                completed = iso(now())
                tx.update(dataclasses.replace(enrolment, completed_at=completed))
    return Ticked(path, completion, completed)


async def tick(
    app: web.Application,
    path_id: str,
    step_id: str,
    key: str,
    *,
    how: str,
    evidence: str = "",
    completed_at: dt.datetime | None = None,
) -> bool:
    """`tick_sync` in one transaction, then its xAPI statements; True when the step is new."""
    result = await store_of(app).transaction(
        lambda tx: tick_sync(
            tx, path_id, step_id, key, how=how, evidence=evidence, completed_at=completed_at
        )
    )
    if result is None or result.completion is None:
        return False
    step = result.path.step(step_id)
    assert step is not None
    await record(app, key, result.path, step, result.completion.completed_at, how)
    if result.path_completed_at:
        await record(app, key, result.path, None, result.path_completed_at, "")
    return True


# -- the LRS sync's work list (server/paths/lrs.py) ------------------------------------------------


@dataclass(frozen=True)
class PendingCourse:
    """A course step one enrolled learner has not done yet."""

    enrolment: Enrolment
    step_id: str
    activity_id: str


async def pending_course_steps(app: web.Application, person_key: str = "") -> list[PendingCourse]:
    """Course steps (with an activity id) of active paths not yet done by their enrolled learners
    (one person's with `person_key`)."""

    def read(tx: PeerTx) -> list[PendingCourse]:
        paths = {
            p.id: p
            for p in tx.list(LearningPath, active=True)
            if any(s.kind == "course" and s.activity_id for s in p.steps)
        }
        if not paths:
            return []
        who: dict[str, Any] = {"person_key": person_key} if person_key else {}
        enrolments = tx.list(Enrolment, path_id=sorted(paths), **who)
        done = {
            (c.path_id, c.step_id, c.person_key)
            for c in tx.list(StepCompletion, path_id=sorted(paths), **who)
        }
        out = []
        for e in enrolments:
            for step in paths[e.path_id].steps:
                if step.kind != "course" or not step.activity_id:
                    continue
                if (e.path_id, step.id, e.person_key) not in done:
                    out.append(PendingCourse(e, step.id, step.activity_id))
        return out

    return await store_of(app).read(read)


async def enrol_group_members(app: web.Application, directory: Directory) -> GroupEnrolment:
    """Enrol the members of the groups that active paths with course steps are assigned to, as
    Keycloak lists them (the LRS sync's first step: a member who never opened Inflow may have
    done the course already). A member is added only when they have no enrolment on the path
    yet, with the group's assignment's due date; a path whose audience does not name the group
    is left to be enrolled when its members are seen (their roles are not known here)."""
    settings = app[keys.SETTINGS]
    storage = app[keys.LIBRARY].storage
    issuer = settings.auth.expected_issuer

    def read(tx: PeerTx) -> list[tuple[LearningPath, PathAssignment]]:
        paths = {
            p.id: p
            for p in tx.list(LearningPath, active=True)
            if any(s.kind == "course" and s.activity_id for s in p.steps)
        }
        if not paths:
            return []
        found = tx.list(PathAssignment, path_id=sorted(paths), where=[_group_assignment()])
        return [
            (paths[a.path_id], a)
            for a in found
            if not paths[a.path_id].audience or a.group in paths[a.path_id].audience
        ]

    pairs = await store_of(app).read(read)
    result = GroupEnrolment()
    members: dict[str, list[Member]] = {}
    for group in sorted({a.group for _, a in pairs}):
        try:
            members[group] = await directory.group_members(group)
        except UnknownGroup:
            members[group] = []
        except DirectoryUnavailable as exc:
            result.errors.append(f"group {group}: {exc}")
    stamp = iso(now())

    def write(tx: PeerTx) -> int:
        added = 0
        for path, a in pairs:
            for m in members.get(a.group, []):
                if not m.subject:
                    continue
                key = storage.pseudonymize(issuer, m.subject)
                if tx.count(Enrolment, path_id=path.id, person_key=key):
                    continue
                tx.add(
                    Enrolment(
                        path_id=path.id,
                        person_key=key,
                        username=m.username,
                        email=m.email.strip().lower(),
                        groups=(a.group,),
                        due_on=a.due_on,
                        started_at=stamp,
                    )
                )
                added += 1
        return added

    if any(members.values()):
        result.added = await store_of(app).transaction(write)
    return result


def _group_assignment() -> sa.ColumnElement[bool]:
    return table_of(PathAssignment).c.group != ""


@dataclass
class GroupEnrolment:
    """What `enrol_group_members` did."""

    added: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)


# -- xAPI out (docs/xapi-profile.md "Learning paths") ----------------------------------------------


def path_activity(base: str, path: LearningPath) -> dict[str, Any]:
    return {
        "objectType": "Activity",
        "id": f"{base}/paths/{path.id}",
        "definition": {"type": TYPE_PATH, "name": {LANG: path.title}},
    }


def statement(
    base: str, key: str, path: LearningPath, step: PathStep | None, at: str, how: str
) -> dict[str, Any]:
    """The `completed` statement of a step (object: the step, parent: the path) or of the whole
    path (step None). A pure function; its id is derived from the object and the person, so the
    same completion queued twice is one statement."""
    base = base.rstrip("/")
    parent = path_activity(base, path)
    context: dict[str, Any] = {"platform": "Inflow"}
    if step is None:
        obj = parent
    else:
        obj = {
            "objectType": "Activity",
            "id": f"{base}/paths/{path.id}/steps/{step.id}",
            "definition": {"type": TYPE_STEP, "name": {LANG: step.title}},
        }
        context["contextActivities"] = {"parent": [parent]}
        context["extensions"] = {
            f"{base}/xapi/extensions/step-kind": step.kind,
            f"{base}/xapi/extensions/how": how,
        }
    return {
        "id": str(uuid.uuid5(NAMESPACE, f"{base}|completed|{obj['id']}|{key}")),
        "actor": {"objectType": "Agent", "account": {"homePage": base, "name": key}},
        "verb": {"id": COMPLETED, "display": {LANG: "completed"}},
        "object": obj,
        "result": {"completion": True},
        "context": context,
        "timestamp": at,
    }


async def record(
    app: web.Application, key: str, path: LearningPath, step: PathStep | None, at: str, how: str
) -> bool:
    """Queue the statement in the analytics outbox (nothing without an LRS). A failure is
    logged, never raised: the step is done."""
    analytics = app.get(keys.ANALYTICS)
    if analytics is None or analytics.builder is None:
        return False
    try:
        st = statement(analytics.builder.base, key, path, step, at, how)
        body = json.dumps(st, separators=(",", ":"), ensure_ascii=False)
        queued = await analytics.store.write(
            _queue_sync, analytics.store, st["id"], st["timestamp"][:10], body
        )
    except (sa.exc.SQLAlchemyError, OSError, TypeError, ValueError):
        log.exception("could not queue the xAPI statement of a path step")
        return False
    if queued and analytics.forwarder is not None:
        analytics.forwarder.notify()
    return bool(queued)


__all__ = [
    "LEARNER_HOWS",
    "Assigned",
    "PendingCourse",
    "Standing",
    "StepDone",
    "Ticked",
    "assigned_sync",
    "check_done",
    "enrol_sync",
    "mark_done",
    "my_path",
    "my_paths",
    "pending_course_steps",
    "standing_json",
    "standings",
    "statement",
    "tick",
    "tick_sync",
]
