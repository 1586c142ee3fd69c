"""Learning paths in the panel (issue 14): the extension in Debian's Chromium, the real backend (a
subprocess of its own: this test writes a path and progress), the real Keycloak.

An admin creates a three-step path through the admin API and assigns it to the Keycloak group
`sales`, which the demo user `learner` is in; the learner has done its first step (through the
learner API, as the web app would). In the panel, on the CRM's Pipeline dashboard:
- the strip says "Your path: … — 1 of 3 — next: <step 2>", its title linking to the web app's
  path page;
- the pinned aid that is step 2 carries "Part of your path" (step 1's aid: "… · done"; an aid of
  no path: nothing);
- pressing Done on that aid makes the strip "2 of 3" at once, and the server agrees;
- ticking the last box of step 3's checklist aid finishes the path: "3 of 3 — complete".
- signing out hides the strip and forgets the cached list.

axe-core finds no serious or critical problem in the panel with the strip, marks and Done box.
Screenshots: test-artifacts/paths/.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import ROOT, Backend, Browser, launch, own_backend
from tests.keycloak import access_token

pytestmark = [pytest.mark.browser, pytest.mark.keycloak]

ARTIFACTS = ROOT / "test-artifacts" / "paths"
AXE = ROOT / "extension" / "node_modules" / "axe-core" / "axe.min.js"
PAGE = "/demo/crm/"  # Pipeline dashboard: pins stage definitions, the checklist, forecast FAQ
PATH_ID = "pipeline-basics"
STEPS = [
    # step id, aid id, step title
    ("stages", "crm-stage-definitions", "Learn the pipeline stages"),
    ("forecast", "crm-forecast-categories", "Pick the right forecast category"),
    ("hygiene", "crm-pipeline-review-checklist", "Run the weekly pipeline review"),
]


@pytest.fixture(scope="module")
def paths_backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    with own_backend(tmp_path_factory, "inflow-paths-backend") as backend:
        yield backend


@pytest.fixture
def browser(chromium: str, paths_backend: Backend, tmp_path: Path) -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with launch(chromium, paths_backend, tmp_path / "profile") as b:
        yield b


def api(backend: Backend, method: str, path: str, token: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{backend.url}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=15) as resp:
        text = resp.read()
        return json.loads(text) if text else None


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical findings on the page (evaluated through the DevTools
    protocol, which the extension page's CSP does not apply to)."""
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])}: {v['nodes'][0]['target']})"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def mine(backend: Backend, token: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        p for p in api(backend, "GET", "/api/v1/paths/mine", token) if p["path"]["id"] == PATH_ID
    ]
    assert len(found) == 1, found
    return found[0]


def test_path_strip_marks_and_done(browser: Browser, paths_backend: Backend) -> None:
    admin = access_token("admin")
    api(
        paths_backend,
        "POST",
        "/api/v1/admin/paths",
        admin,
        {
            "id": PATH_ID,
            "title": "Pipeline basics",
            "description": "Three things every rep does in the **first week**.",
            "steps": [
                {"id": step, "kind": "aid", "aid_id": aid, "title": title}
                for step, aid, title in STEPS
            ],
        },
    )
    # Due soon: of the learner's paths (demo ones too, if any) this is the one due first.
    due = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    api(
        paths_backend,
        "POST",
        f"/api/v1/admin/paths/{PATH_ID}/assignments",
        admin,
        {"group": "sales", "due_on": due},
    )
    learner = access_token("learner")
    api(
        paths_backend,
        "POST",
        f"/api/v1/paths/{PATH_ID}/steps/stages/done",
        learner,
        {"how": "aid_finished"},
    )
    assert mine(paths_backend, learner)["done"] == 1

    panel = browser.open_panel()
    browser.sign_in(panel)
    demo = browser.open_demo(PAGE)
    demo.bring_to_front()
    browser.state(panel, "ready")

    # The strip: which path, how far, what next; the title opens the web app's path page.
    strip = panel.locator("#path-strip[data-state='ready']")
    strip.wait_for(timeout=20_000)
    assert panel.inner_text("#path-progress") == "1 of 3"
    line = panel.inner_text("#path-line")
    assert "Your path: Pipeline basics" in line
    assert "next: Pick the right forecast category" in line
    assert panel.get_attribute("#path-link", "href") == (
        f"{paths_backend.url}/learn/paths/{PATH_ID}"
    )
    assert panel.locator("#path-meter").get_attribute("value") == "1"

    # Marks on the pinned aids: step 2 open, step 1 done.
    card = panel.locator("#pinned [data-aid='crm-forecast-categories']")
    card.locator(".path-mark").wait_for()
    assert card.locator(".path-mark-label").inner_text() == "Part of your path"
    assert "Pipeline basics, step 2 of 3" in card.inner_text()  # what a screen reader hears
    done_mark = panel.locator("#pinned [data-aid='crm-stage-definitions'] .path-mark-label")
    assert done_mark.inner_text() == "Part of your path · done"
    assert panel.locator("#related .path-mark").count() == 0  # aids of no path: no mark
    shot(panel, "01-strip-and-marks")
    assert serious_violations(panel) == []

    # Done on the aid (by keyboard): the strip says 2 of 3 at once; the server agrees.
    card.click()
    panel.wait_for_selector("#aid-title")
    box = panel.locator("#path-done-box")
    assert "step 2 of 3 of your path “Pipeline basics”" in box.inner_text()
    panel.focus("#path-done")
    shot(panel, "02-aid-with-done")
    panel.keyboard.press("Enter")
    panel.wait_for_selector("#path-progress:text-is('2 of 3')")
    panel.wait_for_selector("#path-done-status:has-text('Marked done')")
    assert "Next: Run the weekly pipeline review" in panel.inner_text("#path-done-status")
    assert panel.locator("#path-done").count() == 0
    assert "✓ Done" in box.inner_text()
    assert panel.evaluate("document.activeElement.id") == "path-done-status"
    shot(panel, "03-done-2-of-3")
    assert serious_violations(panel) == []
    standing = mine(paths_backend, learner)
    assert standing["done"] == 2
    forecast = next(s for s in standing["steps"] if s["id"] == "forecast")
    assert (forecast["done"], forecast["how"]) == (True, "aid_finished")

    # Back home, the mark says done; the next step opens from the strip.
    panel.click("#back")
    forecast_mark = "#pinned [data-aid='crm-forecast-categories'] .path-mark-label"
    panel.wait_for_selector(f"{forecast_mark}:text-is('Part of your path · done')")
    assert panel.inner_text("#path-next") == "Run the weekly pipeline review"
    panel.click("#path-next")
    panel.wait_for_selector("#aid-title:has-text('pipeline hygiene checklist')")

    # The checklist aid: ticking its last box finishes the step, and the path.
    boxes = panel.locator("input.tick")
    boxes.first.wait_for()
    for i in range(boxes.count()):
        if not boxes.nth(i).is_checked():
            boxes.nth(i).check()
    panel.wait_for_selector("#path-progress:text-is('3 of 3')")
    panel.wait_for_selector("#path-strip[data-state='complete'] #path-complete")
    panel.wait_for_selector("#path-done-status:has-text('You finished “Pipeline basics”')")
    shot(panel, "04-path-complete")
    standing = mine(paths_backend, learner)
    assert (standing["done"], standing["total"]) == (3, 3)

    # The cached list is this person's: it leaves with them at sign-out.
    assert browser.session_storage("paths") is not None
    panel.click("#sign-out")
    browser.state(panel, "signed-out")
    assert panel.locator("#path-strip").is_hidden()
    assert browser.session_storage("paths") is None
