"""Learning paths in the console (/admin/paths, server/console/paths.py): a reviewer builds a path
step by step without JavaScript (add, move, remove, then save), sees the problems next to the
step's fields, assigns the path to a group with a due date and removes it; authors read but get no
editing controls; the nav links to it.

Real parts: the console with sessions made from forged tokens (tests/test_admin_console.py), a
real database and the demo catalog (only its ids: nothing here ranks)."""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

from aiohttp.test_utils import TestClient

from server import keys
from server.console.csrf import FIELD
from server.paths.models import LearningPath, PathAssignment
from tests.test_admin_console import sign_in
from tests.tokens import TokenMaker

BASE = "/admin/paths"


def words(html: str) -> str:
    """The text a person reads (tags out, entities decoded, spaces folded)."""
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def form_of(html: str) -> dict[str, Any]:
    """The editor form's fields as a browser would send them (text, selected options, checked
    boxes, textareas), without any button."""
    main = html.split("<h2>Assigned to</h2>")[0]
    out: dict[str, Any] = {}
    for m in re.finditer(r"<input ([^>]*)>", main):
        attrs = m.group(1)
        name = re.search(r'name="([^"]+)"', attrs)
        if not name:
            continue
        kind = re.search(r'type="([^"]+)"', attrs)
        value = re.search(r'value="([^"]*)"', attrs)
        if kind and kind.group(1) in {"checkbox", "radio"} and "checked" not in attrs:
            continue
        out[name.group(1)] = htmllib.unescape(value.group(1)) if value else ""
    for m in re.finditer(r'<textarea name="([^"]+)"[^>]*>(.*?)</textarea>', main, re.S):
        out[m.group(1)] = htmllib.unescape(m.group(2))
    for m in re.finditer(r'<select name="([^"]+)"[^>]*>(.*?)</select>', main, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected', m.group(2))
        first = re.search(r'<option value="([^"]*)"', m.group(2))
        out[m.group(1)] = (chosen or first).group(1) if (chosen or first) else ""  # type: ignore[union-attr]
    return out


async def post(client: TestClient, path: str, data: dict[str, Any], csrf: str) -> Any:
    return await client.post(path, data={**data, FIELD: csrf}, allow_redirects=False)


async def test_a_reviewer_builds_a_path_without_javascript(
    client: TestClient, tokens: TokenMaker
) -> None:
    csrf = await sign_in(client, tokens.token(sub="rita", roles=("learner", "author", "reviewer")))
    listing = await (await client.get(BASE)).text()
    assert 'href="/admin/paths/new"' in listing and "No learning paths yet." in listing
    assert '<a href="/admin/paths" aria-current="page">Paths</a>' in listing

    editor = await (await client.get(BASE + "/new")).text()
    form = form_of(editor)
    assert form["step_count"] == "1" and form["steps-0-kind"] == "aid"
    form.update(
        {
            "id": "crm-start",
            "title": "CRM start",
            "steps-0-title": "Log a call",
            "steps-0-aid_id": "crm-log-activity",
            "steps-0-url": "https://typed.example.org/ignored-for-an-aid-step",
        }
    )
    # add a course step: the form comes back with two steps, nothing saved yet
    resp = await post(client, BASE + "/new", {**form, "new_kind": "course", "action": "add"}, csrf)
    assert resp.status == 200
    editor = await resp.text()
    form = form_of(editor)
    assert form["step_count"] == "2" and form["steps-1-kind"] == "course"
    assert await client.app[keys.PEER].count(LearningPath) == 0
    form.update(
        {
            "steps-1-id": "course",
            "steps-1-title": "CRM course",
            "steps-1-url": "https://lms.example.com/c/1",
            "steps-1-activity_id": "not an iri",
        }
    )
    # move the course up: the order changes, what was typed stays
    resp = await post(client, BASE + "/new", {**form, "action": "up:1"}, csrf)
    form = form_of(await resp.text())
    assert (form["steps-0-id"], form["steps-1-id"]) == ("course", "step-1")
    assert form["steps-0-activity_id"] == "not an iri"

    # save: refused, the problem next to the step's field, what was typed kept
    resp = await post(client, BASE + "/new", {**form, "action": "save"}, csrf)
    assert resp.status == 422
    page = await resp.text()
    assert 'id="steps-0-activity_id-error"' in page
    assert "must be an absolute IRI" in words(page)
    assert 'aria-describedby="steps-0-activity_id-error"' in page
    form = form_of(page)
    assert form["steps-0-title"] == "CRM course"

    form["steps-0-activity_id"] = "https://lms.example.com/xapi/crm-1"
    resp = await post(client, BASE + "/new", {**form, "action": "save"}, csrf)
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/admin/paths/crm-start?notice=created"
    path = await client.app[keys.PEER].get(LearningPath, "crm-start")
    assert [(s.id, s.kind) for s in path.steps] == [("course", "course"), ("step-1", "aid")]
    assert path.steps[1].url == ""  # typed for another kind: ignored
    assert path.owner == "rita"

    # edit: remove the first step and save
    editor = await (await client.get(BASE + "/crm-start")).text()
    form = form_of(editor)
    resp = await post(client, BASE + "/crm-start", {**form, "action": "remove:0"}, csrf)
    form = form_of(await resp.text())
    assert form["step_count"] == "1"
    resp = await post(client, BASE + "/crm-start", {**form, "action": "save"}, csrf)
    assert resp.status == 303
    path = await client.app[keys.PEER].get(LearningPath, "crm-start")
    assert [s.id for s in path.steps] == ["step-1"] and path.version == 2
    # a form read before that save is stale now
    resp = await post(client, BASE + "/crm-start", {**form, "action": "save"}, csrf)
    assert resp.status == 412
    assert "Someone changed this" in words(await resp.text())

    # assign to a group with a due date, then remove it
    resp = await post(
        client,
        BASE + "/crm-start/assignments",
        {"to": "group", "who": "new-hires", "due_on": "2027-03-01"},
        csrf,
    )
    assert resp.status == 303
    page = await (await client.get(BASE + "/crm-start")).text()
    assert "group new-hires" in words(page) and 'datetime="2027-03-01' in page
    resp = await post(
        client, BASE + "/crm-start/assignments", {"to": "group", "who": "new-hires"}, csrf
    )
    assert resp.status == 409 and "assigned to the group new-hires already" in words(
        await resp.text()
    )
    [assignment] = await client.app[keys.PEER].list(PathAssignment, path_id="crm-start")
    resp = await post(client, f"{BASE}/crm-start/assignments/{assignment.id}/delete", {}, csrf)
    assert resp.status == 303
    assert await client.app[keys.PEER].count(PathAssignment) == 0

    resp = await post(client, BASE + "/crm-start/delete", {}, csrf)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/paths?notice=deleted"
    assert await client.app[keys.PEER].count(LearningPath) == 0


async def test_authors_read_paths_without_editing_controls(
    client: TestClient, tokens: TokenMaker
) -> None:
    rita = await sign_in(client, tokens.token(sub="rita", roles=("learner", "reviewer")))
    form = form_of(await (await client.get(BASE + "/new")).text())
    form.update(
        {"id": "p", "title": "P", "steps-0-title": "Read", "steps-0-aid_id": "crm-log-activity"}
    )
    assert (await post(client, BASE + "/new", {**form, "action": "save"}, rita)).status == 303
    client.session.cookie_jar.clear()
    csrf = await sign_in(client, tokens.token(sub="arthur", roles=("learner", "author")))
    listing = await (await client.get(BASE)).text()
    assert 'href="/admin/paths/p"' in listing and "/admin/paths/new" not in listing
    page = await (await client.get(BASE + "/p")).text()
    assert "Add a step" not in page and "Assign" not in words(page).split("Assigned to")[1]
    resp = await post(client, BASE + "/p", {**form, "action": "save"}, csrf)
    assert resp.status == 403
    assert (await client.get(BASE + "/new")).status == 403
