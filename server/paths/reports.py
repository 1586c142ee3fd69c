"""A learning path's progress report for managers and L&D (docs/paths.md "Reports").

    GET /api/v1/admin/paths/{path_id}/report?group=      path.report

Per step: learners enrolled, done, rate; per group: enrolled, completed; the path as a whole; and
the **stalls**: for each step, the learners whose next step it is and who have done nothing on
the path for `STALL_DAYS` days or more (the step people are stuck before), most first.

Privacy, as analytics (docs/analytics.md): figures about fewer than `INFLOW_ANALYTICS_MIN_GROUP`
learners are not shown. A report (the whole path, or the `group` asked for) of fewer learners
says only that it is too small (`hidden`), and a group row of fewer learners is left out (counted
in `groups_hidden`). Learners are never named, except to admins, who also get the list of learners
(username, progress, next step, last activity): they follow up with people; managers
(`manager`) and L&D reviewers see counts only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.helpers import ChainMapProxy

from auth.identity import Identity
from server import keys
from server.admin.openapi import _ok, _op, _param
from server.api.validation import known_query
from server.errors import Forbidden, NotFound, ValidationFailed
from server.paths import service as _registered  # noqa: F401  (registers the path tables)
from server.paths.models import Enrolment, LearningPath, StepCompletion
from server.paths.progress import now, parse_time
from server.peer.store import PeerTx
from server.responses import json_response
from server.security import requires_op

routes = web.RouteTableDef()
REPORT = "/api/v1/admin/paths/{path_id}/report"
STALL_DAYS = 7
GROUP_MAX = 255


def may_name(identity: Identity) -> bool:
    """Are learners named to this caller? Admins only."""
    return "admin" in identity.roles


@dataclass(frozen=True)
class _Learner:
    enrolment: Enrolment
    done: dict[str, str]  # step id -> completed_at

    def last_activity(self) -> dt.datetime | None:
        times = [parse_time(t) for t in (self.enrolment.started_at, *self.done.values())]
        known = [t for t in times if t is not None]
        return max(known) if known else None


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 3) if whole else 0.0


def build(
    path: LearningPath,
    enrolments: list[Enrolment],
    completions: list[StepCompletion],
    *,
    group: str,
    min_group: int,
    names: bool,
    at: dt.datetime,
) -> dict[str, Any]:
    """The report (a pure function of what was read; `at` is now)."""
    done: dict[str, dict[str, str]] = {}
    for c in completions:
        done.setdefault(c.person_key, {})[c.step_id] = c.completed_at
    if group:
        enrolments = [e for e in enrolments if group in e.groups]
    learners = [_Learner(e, done.get(e.person_key, {})) for e in enrolments]
    step_ids = [s.id for s in path.steps]

    def complete(learner: _Learner) -> bool:
        return all(s in learner.done for s in step_ids)

    enrolled = len(learners)
    out: dict[str, Any] = {
        "path": {
            "id": path.id,
            "title": path.title,
            "active": path.active,
            "steps": len(path.steps),
        },
        "group": group,
        "min_group": min_group,
        "stall_days": STALL_DAYS,
        "hidden": enrolled < min_group,
        "enrolled": None,
        "completed": None,
        "rate": None,
        "steps": [],
        "groups": [],
        "groups_hidden": 0,
        "stalls": [],
        "stall": None,
    }
    if names:
        out["learners"] = [_learner_row(path, lr, at) for lr in learners]
    if out["hidden"]:
        return out
    finished = sum(1 for lr in learners if complete(lr))
    out.update(enrolled=enrolled, completed=finished, rate=_rate(finished, enrolled))
    out["steps"] = [
        {
            "id": s.id,
            "title": s.title,
            "kind": s.kind,
            "enrolled": enrolled,
            "done": (n := sum(1 for lr in learners if s.id in lr.done)),
            "rate": _rate(n, enrolled),
        }
        for s in path.steps
    ]
    by_group: dict[str, list[_Learner]] = {}
    for lr in learners:
        for g in lr.enrolment.groups:
            by_group.setdefault(g, []).append(lr)
    rows = []
    for g, members in sorted(by_group.items()):
        if len(members) < min_group:
            out["groups_hidden"] += 1
            continue
        fin = sum(1 for lr in members if complete(lr))
        rows.append(
            {
                "group": g,
                "enrolled": len(members),
                "completed": fin,
                "rate": _rate(fin, len(members)),
            }
        )
    out["groups"] = rows
    stuck: dict[str, int] = {}
    for lr in learners:
        nxt = next((s for s in step_ids if s not in lr.done), None)
        last = lr.last_activity()
        if nxt is None or last is None or at - last < dt.timedelta(days=STALL_DAYS):
            continue
        stuck[nxt] = stuck.get(nxt, 0) + 1
    titles = {s.id: s.title for s in path.steps}
    order = {sid: i for i, sid in enumerate(step_ids)}
    stalls = [
        {"step_id": sid, "title": titles[sid], "learners": n}
        for sid, n in sorted(stuck.items(), key=lambda kv: (-kv[1], order[kv[0]]))
    ]
    out["stalls"] = stalls
    out["stall"] = stalls[0] if stalls else None
    return out


def _learner_row(path: LearningPath, lr: _Learner, at: dt.datetime) -> dict[str, Any]:
    nxt = next((s for s in path.steps if s.id not in lr.done), None)
    last = lr.last_activity()
    return {
        "username": lr.enrolment.username,
        "done": sum(1 for s in path.steps if s.id in lr.done),
        "total": len(path.steps),
        "next_step": nxt.id if nxt is not None else None,
        "due_on": lr.enrolment.due_on,
        "started_at": lr.enrolment.started_at,
        "completed_at": lr.enrolment.completed_at or None,
        "last_activity_at": last.isoformat().replace("+00:00", "Z") if last else None,
        "idle_days": (at - last).days if last else None,
    }


def check_group(value: str) -> str:
    group = value.strip().lstrip("/")
    if len(group) > GROUP_MAX:
        raise ValidationFailed(f"'group' is longer than {GROUP_MAX} characters.", fields=["group"])
    return group


async def report(
    app: web.Application | ChainMapProxy, identity: Identity, path_id: str, group: str = ""
) -> dict[str, Any]:
    """The report of one path (any path, active or not), for a caller who holds path.report.
    `app`: the application, or a request's `config_dict` (the console is a sub-app)."""

    def read(tx: PeerTx) -> tuple[LearningPath | None, list[Enrolment], list[StepCompletion]]:
        path = tx.find(LearningPath, path_id)
        if path is None:
            return None, [], []
        return (
            path,
            tx.list(Enrolment, path_id=path_id),
            tx.list(StepCompletion, path_id=path_id),
        )

    path, enrolments, completions = await app[keys.PEER].read(read)
    if path is None:
        raise NotFound(f"No learning path {path_id!r}.")
    # thousands of learners times 50 steps is work for a thread, not the event loop
    return await asyncio.to_thread(
        functools.partial(
            build,
            path,
            enrolments,
            completions,
            group=check_group(group),
            min_group=app[keys.SETTINGS].analytics_min_group,
            names=may_name(identity),
            at=now(),
        )
    )


@routes.get(REPORT)
@requires_op("path.report")
async def report_route(request: web.Request) -> web.Response:
    identity = request[keys.IDENTITY]
    if identity is None:
        raise Forbidden("Sign in first.")
    known_query(request, {"group"})
    data = await report(
        request.app, identity, request.match_info["path_id"], request.query.get("group", "")
    )
    return json_response(data, no_store=True)


def report_schema() -> dict[str, Any]:
    count = {"type": ["integer", "null"]}
    rate = {"type": ["number", "null"]}
    step_row = {
        "type": "object",
        "required": ["id", "title", "kind", "enrolled", "done", "rate"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "kind": {"type": "string"},
            "enrolled": {"type": "integer"},
            "done": {"type": "integer"},
            "rate": {"type": "number"},
        },
    }
    group_row = {
        "type": "object",
        "required": ["group", "enrolled", "completed", "rate"],
        "properties": {
            "group": {"type": "string"},
            "enrolled": {"type": "integer"},
            "completed": {"type": "integer"},
            "rate": {"type": "number"},
        },
    }
    stall = {
        "type": "object",
        "required": ["step_id", "title", "learners"],
        "properties": {
            "step_id": {"type": "string"},
            "title": {"type": "string"},
            "learners": {"type": "integer"},
        },
    }
    properties: dict[str, Any] = {
        "path": {"type": "object", "required": ["id", "title", "active", "steps"]},
        "group": {"type": "string"},
        "min_group": {"type": "integer"},
        "stall_days": {"type": "integer"},
        "hidden": {
            "type": "boolean",
            "description": "true: fewer learners than min_group; no figures are given",
        },
        "enrolled": count,
        "completed": count,
        "rate": rate,
        "steps": {"type": "array", "items": step_row},
        "groups": {"type": "array", "items": group_row},
        "groups_hidden": {"type": "integer", "description": "groups under min_group, left out"},
        "stalls": {"type": "array", "items": stall},
        "stall": {"oneOf": [stall, {"type": "null"}]},
        "learners": {
            "type": "array",
            "description": "Admins only: each enrolled learner by username",
            "items": {"type": "object"},
        },
    }
    required = sorted(k for k in properties if k != "learners")
    return {"type": "object", "required": required, "properties": properties}


def report_paths() -> dict[str, Any]:
    op = _op(
        "A path's progress: per step, per group, and where learners stall",
        "path.report",
        params=[_param("path_id"), _param("group", "query", False)],
        response=_ok(schema=report_schema()),
        note=" Figures of fewer learners than INFLOW_ANALYTICS_MIN_GROUP are not shown; "
        "learners are named to admins only.",
        errors=(401, 403, 404, 422),
    )
    op["tags"] = ["paths"]
    return {REPORT: {"get": op}}


__all__ = ["STALL_DAYS", "build", "may_name", "report", "report_paths", "routes"]
