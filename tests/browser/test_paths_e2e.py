"""Learning paths end to end (issue 14's "Done when"), everything real: Debian's Chromium, the real
Keycloak (demo realm users), the real backend (a subprocess of its own) and the real LRS (ralph,
started as tests/test_analytics_xapi.py does; the backend forwards to it and reads from it).

1. An admin signs in to the console and builds a three-step path through its forms (an aid, an LMS
   course with its xAPI activity id, a practice checklist), then assigns it to the Keycloak group
   `new-hires`, due in three days.
2. The demo user `newhire` (in `new-hires`) signs in to the extension: the panel's strip shows the
   path "0 of 3"; the web app (/learn/ and /learn/paths/{id}) shows it too.
3. Opening the aid in the panel and pressing Done ticks step 1: the strip says "1 of 3", the web
   app's path page shows the step done.
4. The LMS posts a `completed` statement for the course's activity with the learner's mbox to the
   LRS; "Check my course progress now" in the web app (the learner's sync) ticks step 2.
5. Confirming the practice checklist in the web app ticks step 3: the path is finished.
6. The demo user `manager` (realm role manager) signs in to the console's report of the path and
   sees the group's counts (the backend's INFLOW_ANALYTICS_MIN_GROUP is 1, so one learner is a
   group), no names, and gets a 403 on the path editor.

Screenshots of each step: test-artifacts/paths-e2e/.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    Backend,
    Browser,
    launch,
    own_backend,
)
from tests.keycloak import access_token
from tests.test_analytics_xapi import HEADERS, PASSWORD, USER, Ralph, ralph

__all__ = ["ralph"]  # the LRS fixture, shared with tests/test_analytics_xapi.py

pytestmark = [pytest.mark.browser, pytest.mark.keycloak]

ARTIFACTS = ROOT / "test-artifacts" / "paths-e2e"
LEARNER = ("newhire", "newhire")  # demo user in the Keycloak groups new-hires and sales
LEARNER_MBOX = "mailto:newhire@inflow.example"  # the e-mail claim: the actor rule (docs/paths.md)
GROUP = "new-hires"
PATH_ID = "forecasting-fundamentals"
PATH_TITLE = "Forecasting fundamentals"
AID = "crm-forecast-categories"  # pinned on the CRM's Pipeline dashboard; in no demo path
AID_STEP = ("forecast", "Pick the right forecast category")
COURSE_STEP = ("forecast-course", "Forecasting in the CRM (LMS course)")
PRACTICE_STEP = ("practice-forecast", "Forecast your own pipeline")
CHECKLIST = [
    "Open the Pipeline dashboard",
    "Set a forecast category on three deals",
    "Compare the commit total with last week",
]


@pytest.fixture(scope="module")
def activity() -> str:
    """The course's xAPI activity id: minted per run (the LRS is shared by the session)."""
    return f"https://lms.e2e-{uuid.uuid4().hex[:8]}.example/xapi/activities/forecasting"


@pytest.fixture(scope="module")
def e2e_backend(
    tmp_path_factory: pytest.TempPathFactory, keycloak: Any, ralph: Ralph
) -> Iterator[Backend]:
    env = {
        "INFLOW_LRS_ENDPOINT": ralph.url,
        "INFLOW_LRS_USERNAME": USER,
        "INFLOW_LRS_PASSWORD": PASSWORD,
        "INFLOW_PATHS_LRS_MINUTES": "0",  # on demand only: the learner's sync ticks the course
        "INFLOW_ANALYTICS_MIN_GROUP": "1",  # one learner makes a group in this report
        "INFLOW_LRS_POLL_SECONDS": "0.2",  # the forwarder sends Inflow's statements soon
    }
    with own_backend(tmp_path_factory, "inflow-paths-e2e-backend", env) as backend:
        yield backend


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def through_keycloak(page: Any, url: str, user: tuple[str, str]) -> None:
    """Open `url`; sign in on Keycloak's login page if it shows (an SSO session skips it: then
    Keycloak's page only passes through, so this waits for the form or the target)."""
    page.goto(url)
    deadline = time.monotonic() + 20
    while page.url != url:
        assert time.monotonic() < deadline, f"no login form and not at {url}: {page.url}"
        with suppress(PlaywrightError):  # the page may be navigating under us
            if page.locator("#kc-login").count():
                page.fill("#username", user[0])
                page.fill("#password", user[1])
                page.click("#kc-login")
                break
        page.wait_for_timeout(200)
    page.wait_for_url(url, timeout=20_000)


@contextmanager
def console_page(user: tuple[str, str], url: str) -> Iterator[Any]:
    """A desktop browser of its own (its own Keycloak session), signed in to `url`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            through_keycloak(page, url, user)
            yield page
        finally:
            browser.close()


def post_statement(ralph: Ralph, activity: str) -> str:
    """What the LMS does when the learner finishes the course: a `completed` statement."""
    statement_id = str(uuid.uuid4())
    statement = {
        "id": statement_id,
        "actor": {"objectType": "Agent", "mbox": LEARNER_MBOX},
        "verb": {
            "id": "http://adlnet.gov/expapi/verbs/completed",
            "display": {"en-US": "completed"},
        },
        "object": {"objectType": "Activity", "id": activity},
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
    }
    request = urllib.request.Request(
        f"{ralph.url}/statements",
        data=json.dumps([statement]).encode(),
        headers={
            **HEADERS,
            "Content-Type": "application/json",
            "Authorization": aiohttp.encode_basic_auth(USER, PASSWORD),
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=15) as resp:
        assert resp.status == 200
    return statement_id


def my_path(backend: Backend) -> dict[str, Any]:
    """The learner's standing on the path, from the learner API (what the panel reads)."""
    request = urllib.request.Request(
        f"{backend.url}/api/v1/paths/{PATH_ID}",
        headers={"Authorization": f"Bearer {access_token(LEARNER[0])}"},
    )
    with urllib.request.urlopen(request, timeout=15) as resp:
        found: dict[str, Any] = json.load(resp)
        return found


def inflow_completions(ralph: Ralph, base: str) -> set[str]:
    """The objects of the `completed` statements Inflow sent the LRS about the path, once the
    forwarder has sent the three steps' and the path's (it sends every fraction of a second)."""
    path_iri = f"{base}/paths/{PATH_ID}"
    deadline = time.monotonic() + 30
    while True:
        found = {
            s["object"]["id"]
            for s in ralph.statements().values()
            if s["verb"]["id"] == "http://adlnet.gov/expapi/verbs/completed"
            and s["object"]["id"].startswith(path_iri)
        }
        if len(found) >= 4 or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def laid_out_in_the_card(page: Any) -> None:
    """The editor's fields stay inside its card (a step's aid list, with long aid titles, pushed
    every field past the card's right edge), and the Active box sits beside its text (it was
    centred on a line of its own)."""
    card = page.locator("form.stack").first.bounding_box()
    for field in ("select[name=steps-0-aid_id]", "input[name=title]", "input[name=steps-2-id]"):
        box = page.locator(field).bounding_box()
        assert box["x"] + box["width"] <= card["x"] + card["width"], field
    beside_its_text(page, "input[name=active]")


def beside_its_text(page: Any, box: str) -> None:
    """A checkbox or radio button on the same line as its label's text, just before it."""
    found = page.evaluate(
        """(sel) => {
          const box = document.querySelector(sel), r = box.getBoundingClientRect();
          const range = document.createRange();
          range.selectNodeContents(box.closest("label"));
          range.setStartAfter(box);
          const t = range.getClientRects()[0];
          return {boxRight: r.right, boxMid: (r.top + r.bottom) / 2,
                  textLeft: t.left, textTop: t.top, textBottom: t.bottom};
        }""",
        box,
    )
    assert found["textTop"] <= found["boxMid"] <= found["textBottom"], (box, found)
    assert 0 <= found["textLeft"] - found["boxRight"] <= 24, (box, found)


def admin_builds_and_assigns_the_path(backend: Backend, activity: str) -> None:
    base = backend.url
    with console_page(("admin", "admin"), f"{base}/admin/paths/new") as page:
        page.fill("input[name=id]", PATH_ID)
        page.fill("input[name=title]", PATH_TITLE)
        page.fill("textarea[name=description]", "Forecast like the **team** does, in a week.")
        # Step 1 (the new form's first step is an aid step).
        page.fill("input[name=steps-0-id]", AID_STEP[0])
        page.fill("input[name=steps-0-title]", AID_STEP[1])
        page.select_option("select[name=steps-0-aid_id]", AID)
        # Step 2: an LMS course (the form comes back with the new step; nothing saved yet).
        page.select_option("select[name=new_kind]", "course")
        page.click("button[name=action][value=add]")
        page.wait_for_selector("input[name=steps-1-id]")
        page.fill("input[name=steps-1-id]", COURSE_STEP[0])
        page.fill("input[name=steps-1-title]", COURSE_STEP[1])
        page.fill("input[name=steps-1-url]", activity)
        page.fill("input[name=steps-1-activity_id]", activity)
        # Step 3: practice with a checklist.
        page.select_option("select[name=new_kind]", "practice")
        page.click("button[name=action][value=add]")
        page.wait_for_selector("input[name=steps-2-id]")
        page.fill("input[name=steps-2-id]", PRACTICE_STEP[0])
        page.fill("input[name=steps-2-title]", PRACTICE_STEP[1])
        page.fill("textarea[name=steps-2-checklist]", "\n".join(CHECKLIST))
        assert page.input_value("input[name=steps-0-id]") == AID_STEP[0]  # kept across posts
        laid_out_in_the_card(page)
        shot(page, "01-console-new-path")
        page.locator("button[name=action][value=save]").first.click()
        page.wait_for_url(f"{base}/admin/paths/{PATH_ID}?**", timeout=20_000)
        assert page.locator("ol.steps > li").count() == 3

        # Assign it to the Keycloak group, due in three days (the panel's strip shows the path
        # due first, were the member on others, as `make run`'s demo new hire is).
        due = dt.date.today() + dt.timedelta(days=3)
        page.check("input[name=to][value=group]")
        page.fill("input[name=who]", GROUP)
        page.fill("input[name=due_on]", due.isoformat())
        page.click("form[action$='/assignments'] button[type=submit]")
        page.wait_for_url(f"{base}/admin/paths/{PATH_ID}?**", timeout=20_000)
        row = page.locator("table tr", has_text=f"group {GROUP}")
        assert row.count() == 1, page.inner_text("main")
        beside_its_text(page, "input[name=to][value=group]")
        beside_its_text(page, "input[name=to][value=username]")
        shot(page, "02-console-assigned")


def test_a_path_from_the_console_to_the_learner_and_the_manager(
    chromium: str, e2e_backend: Backend, ralph: Ralph, activity: str, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    base = e2e_backend.url
    path_url = f"{base}/learn/paths/{PATH_ID}"

    # 1. The admin's console.
    admin_builds_and_assigns_the_path(e2e_backend, activity)

    with launch(chromium, e2e_backend, tmp_path / "profile") as browser:
        learner_sees_and_finishes_the_path(browser, ralph, activity, path_url)

    # The server agrees, and knows how each step was done.
    standing = my_path(e2e_backend)
    assert (standing["done"], standing["total"]) == (3, 3)
    how = {s["id"]: s["how"] for s in standing["steps"]}
    assert how == {
        AID_STEP[0]: "aid_finished",
        COURSE_STEP[0]: "lrs",
        PRACTICE_STEP[0]: "practice_confirmed",
    }
    # ...and told the LRS: each step and the path completed (docs/xapi-profile.md).
    path_iri = f"{base}/paths/{PATH_ID}"
    assert inflow_completions(ralph, base) == {
        path_iri,
        *(f"{path_iri}/steps/{step}" for step, _ in (AID_STEP, COURSE_STEP, PRACTICE_STEP)),
    }

    # 6. The manager: the group's progress as counts, no names; not the editor.
    report_url = f"{base}/admin/paths/{PATH_ID}/report"
    with console_page(("manager", "manager"), report_url) as page:
        assert page.inner_text("h1") == f"Progress: {PATH_TITLE}"
        summary = page.inner_text("p.summary")
        # one learner is "1 learner" (the page said "1 learners enrolled")
        assert "1 learner enrolled, 1 completed the path" in summary, summary
        steps = page.locator("table.path-steps tbody tr")
        assert steps.count() == 3
        for i in range(3):
            assert steps.nth(i).locator("td").nth(3).inner_text() == "1 of 1"
        group = page.locator("table.path-groups tbody tr", has_text=GROUP)
        assert group.count() == 1
        cells = [c.strip() for c in group.locator("td").all_inner_texts()]
        assert cells[:3] == [GROUP, "1", "1"], cells
        assert page.locator("table.path-learners").count() == 0  # counts only
        assert LEARNER[0] not in page.inner_text("main")
        shot(page, "08-manager-report")

        page.goto(f"{report_url}?group={GROUP}")
        assert "1 learner enrolled, 1 completed the path" in page.inner_text("p.summary")

        for editor in (f"{base}/admin/paths/{PATH_ID}", f"{base}/admin/paths/new"):
            response = page.goto(editor)
            assert response is not None and response.status == 403, editor
        assert page.locator("input[name=title]").count() == 0
        shot(page, "09-manager-no-editor")
        # The way back leads to a page a manager may open (it led to the dashboard: 403 again).
        page.click("main a.button")
        page.wait_for_url(f"{base}/admin/path-reports")
        assert page.locator(f"a[href='/admin/paths/{PATH_ID}/report']").count() == 1


def learner_sees_and_finishes_the_path(
    browser: Browser, ralph: Ralph, activity: str, path_url: str
) -> None:
    base = browser.backend.url

    # 2. The panel, beside the CRM's Pipeline dashboard: the strip shows the new path.
    panel = browser.open_panel()
    browser.sign_in(panel, LEARNER)
    demo = browser.open_demo("/demo/crm/")
    demo.bring_to_front()
    browser.state(panel, "ready")
    panel.locator("#path-strip[data-state='ready']").wait_for(timeout=20_000)
    assert panel.inner_text("#path-progress") == "0 of 3"
    line = panel.inner_text("#path-line")
    assert f"Your path: {PATH_TITLE}" in line and f"next: {AID_STEP[1]}" in line, line
    assert panel.get_attribute("#path-link", "href") == path_url
    card = panel.locator(f"#pinned [data-aid='{AID}']")
    card.locator(".path-mark").wait_for()
    assert card.locator(".path-mark-label").inner_text() == "Part of your path"
    shot(panel, "03-panel-0-of-3")

    # ...and the web app, signed in through Keycloak in the same browser.
    app = browser.context.new_page()
    through_keycloak(app, f"{base}/learn/", LEARNER)
    summary = app.locator("ul.paths > li", has_text=PATH_TITLE)
    assert "0 of 3 done" in summary.inner_text()
    app.goto(path_url)
    assert app.inner_text("h1") == PATH_TITLE
    assert app.inner_text(".progress-text") == "0 of 3 steps done"
    assert app.locator("ol.steps > li").count() == 3
    shot(app, "04-learn-path-0-of-3")

    # 3. Back on the CRM (the panel follows the last active web tab): open the aid in the
    # panel and press Done; step 1 is ticked.
    demo.bring_to_front()
    card.click(timeout=20_000)
    panel.wait_for_selector("#aid-title")
    panel.click("#path-done")
    panel.wait_for_selector("#path-progress:text-is('1 of 3')")
    panel.wait_for_selector("#path-done-status:has-text('Marked done')")
    shot(panel, "05-panel-1-of-3")
    app.bring_to_front()
    app.goto(path_url)
    assert app.inner_text(".progress-text") == "1 of 3 steps done"
    assert "Done" in app.inner_text(f"#step-{AID_STEP[0]} .meta")
    assert "Next step" in app.inner_text(f"#step-{COURSE_STEP[0]} .meta")

    # 4. The LMS reports the course completed to the LRS; the learner's sync ticks step 2.
    post_statement(ralph, activity)
    app.click(f"#step-{COURSE_STEP[0]} form button[type=submit]")
    app.wait_for_url(f"{path_url}?notice=synced", timeout=20_000)
    assert app.inner_text(".progress-text") == "2 of 3 steps done"
    assert "Done" in app.inner_text(f"#step-{COURSE_STEP[0]} .meta")
    shot(app, "06-learn-course-synced")

    # 5. The practice checklist, every line ticked and confirmed: step 3, the path is finished.
    practice = app.locator(f"#step-{PRACTICE_STEP[0]}")
    boxes = practice.locator("input[name=checked]")
    assert boxes.count() == len(CHECKLIST)
    for i in range(boxes.count()):
        boxes.nth(i).check()
    practice.locator("button[type=submit]").click()
    app.wait_for_url(f"{path_url}?notice=done**", timeout=20_000)
    assert app.inner_text(".progress-text") == "3 of 3 steps done"
    assert "Path finished" in app.inner_text("main")
    assert "Done" in app.inner_text(f"#step-{PRACTICE_STEP[0]} .meta")
    shot(app, "07-learn-path-finished")
