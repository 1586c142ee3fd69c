"""Learning paths' admin operations (docs/paths.md): create, change and delete paths, assign them
to groups and people. Shared by the admin API (server/paths/admin_api.py), the console
(server/console/paths.py) and the demo seeding (server/demo.py): one implementation.

- Importing this module registers the path resources with the generic store
  (server/peer/store.py), so `PeerStore` reads and writes them like the peer resources.
- Everything runs in the content database's storage thread through the store; each change is
  one transaction with its audit row (`path.create`, `path.update`, `path.delete`,
  `path.assign`, `path.unassign`).
- A path's references are checked against the catalog when it is saved: a step's aid must exist
  and not be archived, its mentor and app must exist; a 422 names the step's field
  (`steps[2].aid_id`). Later changes to the catalog do not touch saved paths (the learner side
  skips what is gone).
- `version` moves on with every save; the ETag is made from it and the creation time, and a PUT
  or DELETE with `If-Match` naming another version is a 412 (without If-Match the write goes
  through: the console and simple scripts).
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from server.admin.common import check_if_match, field_errors, strip_read_only, who
from server.db.content_tables import audit_log
from server.db.path_tables import TABLES, path_assignments
from server.errors import Conflict, NotFound
from server.models import FieldErrors, dump, read_only_fields, validate
from server.paths.models import LearningPath, PathAssignment
from server.peer.store import PeerStore, PeerTx, register
from server.storage import now_iso

if TYPE_CHECKING:
    from auth.identity import Identity
    from server.catalog import Catalog

for _cls, _table in TABLES.items():
    register(_cls, _table)

PATH_READ_ONLY = read_only_fields(LearningPath)
ASSIGNMENT_READ_ONLY = read_only_fields(PathAssignment) - {"path_id"}


class PathNotFound(NotFound):
    """No path with that id."""


class AssignmentNotFound(NotFound):
    """No assignment with that id on that path."""


# -- JSON and ETags --------------------------------------------------------------------------------


def path_json(path: LearningPath) -> dict[str, Any]:
    return dump(path)


def path_etag(path: LearningPath) -> str:
    """Version plus creation time: a deleted and re-created path starts at version 1 again."""
    stamp = hashlib.sha256(path.created_at.encode()).hexdigest()[:8]
    return f'"path-{path.version}-{stamp}"'


def assignment_json(assignment: PathAssignment) -> dict[str, Any]:
    return dump(assignment)


# -- checking a path -------------------------------------------------------------------------------


def check_references(path: LearningPath, catalog: Catalog) -> list[tuple[str, str]]:
    """What a path's steps name that the catalog does not have, as (field, message) pairs."""
    mentors = {m.id for m in catalog.mentors}
    out: list[tuple[str, str]] = []
    for i, step in enumerate(path.steps):
        where = f"steps[{i}]."
        if step.aid_id:
            meta = catalog.aids.get(step.aid_id)
            if meta is None:
                out.append((where + "aid_id", f"no aid {step.aid_id!r}"))
            elif meta.status == "archived":
                out.append((where + "aid_id", f"the aid {step.aid_id!r} is archived"))
        if step.mentor_id and step.mentor_id not in mentors:
            out.append((where + "mentor_id", f"no mentor {step.mentor_id!r}"))
        if step.app_id and step.app_id not in catalog.apps:
            out.append((where + "app_id", f"no app {step.app_id!r}"))
    return out


def parse_path(
    data: Mapping[str, Any], current: LearningPath | None, catalog: Catalog
) -> LearningPath:
    """A path from a request body: read-only fields only as GET answered them (or left out),
    every field checked, then its references; 422s name the fields (`steps[2].aid_id`)."""
    sent = dict(data)
    if current is not None:
        if sent.get("id", current.id) != current.id:
            raise field_errors(FieldErrors([("id", "differs from the one in the URL")]))
        sent["id"] = current.id
    sent = strip_read_only(
        sent, path_json(current) if current is not None else None, PATH_READ_ONLY
    )
    try:
        path = validate(LearningPath, sent)
    except FieldErrors as exc:
        raise field_errors(exc) from exc
    problems = check_references(path, catalog)
    if problems:
        raise field_errors(FieldErrors(problems))
    return path


def parse_assignment(path_id: str, data: Mapping[str, Any]) -> PathAssignment:
    sent = strip_read_only(dict(data), None, ASSIGNMENT_READ_ONLY)
    if sent.get("path_id", path_id) != path_id:
        raise field_errors(FieldErrors([("path_id", "differs from the one in the URL")]))
    sent["path_id"] = path_id
    try:
        return validate(PathAssignment, sent)
    except FieldErrors as exc:
        raise field_errors(exc) from exc


def same_assignment(assignment: PathAssignment) -> sa.ColumnElement[bool]:
    """Rows assigning the same path to the same group (or person): at most one may exist."""
    c = path_assignments.c
    if assignment.group:
        return sa.and_(c.path_id == assignment.path_id, c.group == assignment.group)
    return sa.and_(c.path_id == assignment.path_id, c.username == assignment.username)


# -- the operations --------------------------------------------------------------------------------


def _get(tx: PeerTx, path_id: str) -> LearningPath:
    found = tx.find(LearningPath, path_id)
    if found is None:
        raise PathNotFound(f"No learning path with id {path_id!r}.")
    return found


def _audit(tx: PeerTx, identity: Identity, action: str, target: str, detail: Any = None) -> None:
    issuer, subject, username = who(identity)
    tx.execute(
        sa.insert(audit_log).values(
            at=now_iso(),
            issuer=issuer,
            subject=subject,
            username=username,
            action=action,
            target_type="path",
            target_id=target,
            detail=json.dumps(detail or {}, sort_keys=True),
        )
    )


class PathService:
    """The admin operations on paths and assignments, over the generic store."""

    def __init__(self, store: PeerStore) -> None:
        self.store = store

    # -- paths -----------------------------------------------------------------------------
    async def list(self, *, active: bool | None = None) -> builtins.list[LearningPath]:
        filters: dict[str, Any] = {} if active is None else {"active": active}
        return await self.store.list(LearningPath, order_by="title", **filters)

    async def get(self, path_id: str) -> LearningPath:
        return await self.store.read(lambda tx: _get(tx, path_id))

    async def find(self, path_id: str) -> LearningPath | None:
        return await self.store.find(LearningPath, path_id)

    async def create(
        self, identity: Identity, data: Mapping[str, Any], catalog: Catalog
    ) -> LearningPath:
        path = parse_path(data, None, catalog)
        if not path.owner:
            path = dataclasses.replace(path, owner=identity.username or identity.subject)

        def op(tx: PeerTx) -> LearningPath:
            if tx.find(LearningPath, path.id) is not None:
                raise Conflict(f"A learning path with id {path.id!r} exists already.")
            stored = tx.add(dataclasses.replace(path, version=1))
            _audit(tx, identity, "path.create", stored.id, {"title": stored.title})
            return stored

        return await self.store.transaction(op)

    async def replace(
        self,
        identity: Identity,
        path_id: str,
        data: Mapping[str, Any],
        catalog: Catalog,
        *,
        if_match: str | None = None,
    ) -> LearningPath:
        current = await self.get(path_id)
        if if_match is not None:  # the precondition before the body
            check_if_match(if_match, path_etag(current))
        path = parse_path(data, current, catalog)

        def op(tx: PeerTx) -> LearningPath:
            now = _get(tx, path_id)
            if now.version != current.version:  # changed while the body was checked
                check_if_match(path_etag(current), path_etag(now))
            stored = tx.update(
                dataclasses.replace(path, version=now.version + 1, created_at=now.created_at)
            )
            _audit(tx, identity, "path.update", path_id, {"version": stored.version})
            return stored

        return await self.store.transaction(op)

    async def delete(
        self, identity: Identity, path_id: str, *, if_match: str | None = None
    ) -> None:
        """Delete a path; its assignments, enrolments and completions go with it."""

        def op(tx: PeerTx) -> None:
            now = _get(tx, path_id)
            if if_match is not None:
                check_if_match(if_match, path_etag(now))
            tx.delete(LearningPath, path_id)
            _audit(tx, identity, "path.delete", path_id, {"title": now.title})

        await self.store.transaction(op)

    # -- assignments -----------------------------------------------------------------------
    async def assignments(self, path_id: str) -> builtins.list[PathAssignment]:
        def op(tx: PeerTx) -> builtins.list[PathAssignment]:
            _get(tx, path_id)
            return tx.list(PathAssignment, path_id=path_id, order_by=("group", "username"))

        return await self.store.read(op)

    async def assign(
        self, identity: Identity, path_id: str, data: Mapping[str, Any]
    ) -> PathAssignment:
        assignment = parse_assignment(path_id, data)
        assignment = dataclasses.replace(
            assignment, assigned_by=identity.username or identity.subject
        )

        def op(tx: PeerTx) -> PathAssignment:
            _get(tx, path_id)
            if tx.count(PathAssignment, where=[same_assignment(assignment)]):
                whom = assignment.username or f"the group {assignment.group}"
                raise Conflict(f"This path is assigned to {whom} already.")
            stored = tx.add(assignment)
            detail = {"group": stored.group, "username": stored.username, "due_on": stored.due_on}
            _audit(tx, identity, "path.assign", path_id, detail)
            return stored

        return await self.store.transaction(op)

    async def unassign(self, identity: Identity, path_id: str, assignment_id: str) -> None:
        def op(tx: PeerTx) -> None:
            found = tx.find(PathAssignment, assignment_id)
            if found is None or found.path_id != path_id:
                raise AssignmentNotFound(
                    f"No assignment {assignment_id!r} of the path {path_id!r}."
                )
            tx.delete(PathAssignment, assignment_id)
            detail = {"group": found.group, "username": found.username}
            _audit(tx, identity, "path.unassign", path_id, detail)

        await self.store.transaction(op)


__all__ = [
    "AssignmentNotFound",
    "PathNotFound",
    "PathService",
    "assignment_json",
    "check_references",
    "parse_assignment",
    "parse_path",
    "path_etag",
    "path_json",
    "same_assignment",
]
