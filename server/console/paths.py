"""Learning paths in the console (docs/paths.md): the list, the editor with its ordered steps, and
each path's assignments to groups and people.

No JavaScript: the editor is one form whose buttons say what to do. "Add a step", "Remove",
"Move up" and "Move down" post the form back and show it again with the steps changed (nothing
is saved until "Save"); "Save" creates or replaces the path and redirects (303), or shows the form
again with every problem next to its field (`steps[2].url`). A step's fields of another kind than
the one chosen are ignored when the form is read (changing a step's kind does not trip over what
was typed for the old one). The operations are server/paths/service.py's, like the API's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server import keys
from server.console.common import csv_list, need, posted, render, see_other, text
from server.console.limits import limits_of
from server.errors import InflowError
from server.paths.models import KIND_FIELDS, STEP_KINDS, LearningPath, PathAssignment, PathStep
from server.paths.service import PathService, assignment_json, path_etag, path_json

routes = web.RouteTableDef()
BASE = "/admin/paths"
# form limits from the declarations (server/console/limits.py): none is typed in a template
PATH_LIMITS, STEP_LIMITS = limits_of(LearningPath), limits_of(PathStep)
ASSIGNMENT_LIMITS = limits_of(PathAssignment)
KIND_NAMES = {
    "aid": "Read an aid",
    "course": "An LMS course",
    "practice": "Practise with a checklist",
    "mentor": "Talk to a mentor",
}


def _service(request: web.Request) -> PathService:
    return PathService(request.config_dict[keys.PEER])


def _catalog(request: web.Request) -> Any:
    return request.config_dict[keys.LIBRARY].catalog


# -- reading the editor's form ---------------------------------------------------------------------


def _step_from_form(form: Mapping[str, Any], i: int) -> dict[str, Any]:
    prefix = f"steps-{i}-"
    kind = text(form, prefix + "kind")
    step: dict[str, Any] = {"id": text(form, prefix + "id"), "kind": kind}
    step["title"] = text(form, prefix + "title")
    step["note"] = text(form, prefix + "note")
    for name in KIND_FIELDS.get(kind, ()):  # another kind's fields: ignored
        value = text(form, prefix + name)
        step[name] = (
            [ln.strip() for ln in value.splitlines() if ln.strip()]
            if (name == "checklist")
            else value
        )
    return step


def _path_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    count = text(form, "step_count")
    n = int(count) if count.isdigit() else 0
    return {
        "id": text(form, "id"),
        "title": text(form, "title"),
        "description": text(form, "description"),
        "audience": csv_list(text(form, "audience")),
        "owner": text(form, "owner"),
        "active": text(form, "active") == "1",
        "steps": [_step_from_form(form, i) for i in range(min(n, 60))],
    }


def _new_step_id(steps: list[dict[str, Any]]) -> str:
    taken = {s.get("id") for s in steps}
    n = len(steps) + 1
    while f"step-{n}" in taken:
        n += 1
    return f"step-{n}"


def _edit_steps(data: dict[str, Any], action: str, new_kind: str) -> bool:
    """Apply an editor button (add, remove:i, up:i, down:i) to the steps; False: not one."""
    steps: list[dict[str, Any]] = data["steps"]
    if action == "add":
        kind = new_kind if new_kind in STEP_KINDS else "aid"
        steps.append({"id": _new_step_id(steps), "kind": kind, "title": ""})
        return True
    verb, _, index = action.partition(":")
    if not index.isdigit() or int(index) >= len(steps):
        return False
    i = int(index)
    if verb == "remove":
        del steps[i]
    elif verb == "up" and i > 0:
        steps[i - 1], steps[i] = steps[i], steps[i - 1]
    elif verb == "down" and i + 1 < len(steps):
        steps[i + 1], steps[i] = steps[i], steps[i + 1]
    elif verb not in {"up", "down"}:
        return False
    return True


# -- pages -----------------------------------------------------------------------------------------


async def _editor(
    request: web.Request,
    data: dict[str, Any],
    *,
    current: LearningPath | None,
    error: str = "",
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    catalog = _catalog(request)
    aids = sorted(
        (a for a in catalog.aids.values() if a.status != "archived"), key=lambda a: a.title.lower()
    )
    context: dict[str, Any] = {
        "data": data,
        "current": current,
        "etag": path_etag(current) if current is not None else "",
        "assignments": [],
        "error": error,
        "errs": dict(errors or {}),
        "pl": PATH_LIMITS,
        "sl": STEP_LIMITS,
        "al": ASSIGNMENT_LIMITS,
        "kinds": STEP_KINDS,
        "kind_names": KIND_NAMES,
        "kind_fields": KIND_FIELDS,
        "aids": aids,
        "mentors": sorted(catalog.mentors, key=lambda m: m.name.lower()),
        "apps": sorted(catalog.apps.values(), key=lambda a: a.name.lower()),
    }
    if current is not None:
        found = await _service(request).assignments(current.id)
        context["assignments"] = [assignment_json(a) for a in found]
    return render(request, "paths_edit.html", context, status)


def _problems(exc: InflowError) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in exc.extra.get("errors") or ():
        if isinstance(item, dict) and item.get("field"):
            out.setdefault(str(item["field"]), str(item.get("message", "")))
    return out


@routes.get(BASE)
async def paths_page(request: web.Request) -> web.Response:
    need(request, "path.read")
    service = _service(request)
    paths = await service.list()
    counts = {p.id: len(await service.assignments(p.id)) for p in paths}
    return render(request, "paths.html", {"paths": paths, "assignment_counts": counts})


@routes.get(BASE + "/new")
async def new_path(request: web.Request) -> web.Response:
    session = need(request, "path.write")
    data = {
        "id": "",
        "title": "",
        "description": "",
        "audience": [],
        "owner": session.identity().username,
        "active": True,
        "steps": [{"id": "step-1", "kind": "aid", "title": ""}],
    }
    return await _editor(request, data, current=None)


@routes.get(BASE + "/{id}")
async def edit_path(request: web.Request) -> web.Response:
    need(request, "path.read")
    path = await _service(request).get(request.match_info["id"])
    return await _editor(request, path_json(path), current=path)


async def _submit(request: web.Request, current: LearningPath | None) -> web.StreamResponse:
    session = need(request, "path.write")
    form = await request.post()
    data = _path_from_form(form)
    if current is not None:
        data["id"] = current.id
    action = text(form, "action") or "save"
    if action != "save":
        _edit_steps(data, action, text(form, "new_kind"))
        return await _editor(request, data, current=current)
    service, catalog = _service(request), _catalog(request)
    try:
        if current is None:
            saved = await service.create(session.identity(), data, catalog)
        else:
            saved = await service.replace(
                session.identity(),
                current.id,
                data,
                catalog,
                if_match=text(form, "etag") or None,
            )
    except InflowError as exc:
        return await _editor(
            request,
            data,
            current=current,
            error=exc.detail,
            errors=_problems(exc),
            status=exc.status,
        )
    raise see_other(f"{BASE}/{saved.id}", "created" if current is None else "saved")


@routes.post(BASE + "/new")
async def create_path(request: web.Request) -> web.StreamResponse:
    return await _submit(request, None)


@routes.post(BASE + "/{id}")
async def save_path(request: web.Request) -> web.StreamResponse:
    need(request, "path.write")
    current = await _service(request).get(request.match_info["id"])
    return await _submit(request, current)


@routes.post(BASE + "/{id}/delete")
async def delete_path(request: web.Request) -> web.StreamResponse:
    session, path_id, _ = await posted(request, "path.write")
    await _service(request).delete(session.identity(), path_id)
    raise see_other(BASE, "deleted")


@routes.post(BASE + "/{id}/assignments")
async def assign(request: web.Request) -> web.StreamResponse:
    session, path_id, form = await posted(request, "path.assign")
    service = _service(request)
    data: dict[str, Any] = {
        "group" if text(form, "to") != "username" else "username": text(form, "who"),
        "due_on": text(form, "due_on") or None,
    }
    try:
        await service.assign(session.identity(), path_id, data)
    except InflowError as exc:
        path = await service.get(path_id)
        response = await _editor(
            request, path_json(path), current=path, error=exc.detail, status=exc.status
        )
        return response
    raise see_other(f"{BASE}/{path_id}", "saved")


@routes.post(BASE + "/{id}/assignments/{assignment_id}/delete")
async def unassign(request: web.Request) -> web.StreamResponse:
    session, path_id, _ = await posted(request, "path.assign")
    await _service(request).unassign(
        session.identity(), path_id, request.match_info["assignment_id"]
    )
    raise see_other(f"{BASE}/{path_id}", "deleted")


__all__ = ["routes"]
