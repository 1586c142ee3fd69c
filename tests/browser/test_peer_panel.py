"""Peer learning end to end (issue 12 "Done when"): the extension's panel in Debian's Chromium,
the real backend (a subprocess of its own, e-mail on), the real Keycloak and a real SMTP server
(aiosmtpd, tests/smtp.py) started by this test.

- A learner shares a tip from the panel; a reviewer approves it in the console; another learner
  sees it on the page, with the author's name (she chose to show it).
- A learner asks a question from the panel; María López (a vetted CRM mentor, Keycloak user
  mlopez) gets the e-mail, follows its link to the console and answers; the learner sees the
  answer in the panel with a badge, reads and accepts it; an author turns it into a draft aid.
- A member of the Keycloak group new-hires, paired with a mentor by a pairing rule, sees
  "Your mentor for Northwind CRM" first under people.

Each person uses a browser profile of their own (one Keycloak session each), one after the other.
Screenshots: test-artifacts/peer/.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    KEYCLOAK_URL,
    ROOT,
    Backend,
    Browser,
    launch,
    own_backend,
)
from tests.keycloak import access_token
from tests.smtp import SmtpServer

pytestmark = [pytest.mark.browser, pytest.mark.keycloak]

ARTIFACTS = ROOT / "test-artifacts" / "peer"
PAGE = "/demo/crm/"  # Pipeline dashboard: its pinned aids are for everyone


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def peer_backend(
    tmp_path_factory: pytest.TempPathFactory, keycloak: Any, smtp: SmtpServer
) -> Iterator[Backend]:
    """A backend of its own (these tests write tips, questions, aids and pairings), sending its
    e-mail to the test's SMTP server."""
    env = {
        "INFLOW_SMTP_HOST": smtp.host,
        "INFLOW_SMTP_PORT": str(smtp.port),
        "INFLOW_SMTP_FROM": "Inflow <inflow@example.org>",
        "INFLOW_SMTP_POLL_SECONDS": "1",
        "INFLOW_SMTP_BACKOFF_INITIAL_SECONDS": "0.2",
        "INFLOW_SMTP_BACKOFF_MAX_SECONDS": "1",
    }
    with own_backend(tmp_path_factory, "inflow-peer-backend", env) as backend:
        yield backend


@pytest.fixture
def extension(chromium: str, peer_backend: Backend, tmp_path: Path) -> Iterator[Any]:
    """Opens one extension profile after another: `with extension("p1") as browser: ...`."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def open_profile(name: str) -> Any:
        return launch(chromium, peer_backend, tmp_path / name)

    yield open_profile


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


class Console:
    """A plain Chromium (no extension) for one person's console session."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def __enter__(self) -> Any:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self._browser = self._pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        context = self._browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = context.new_page()
        self.page.on("dialog", lambda dialog: dialog.accept())
        return self

    def __exit__(self, *exc: object) -> None:
        self._browser.close()
        self._pw.stop()

    def sign_in(self, path: str, user: str) -> Any:
        """Open `path` of the console, signing in on Keycloak's page as `user`."""
        page = self.page
        url = path if path.startswith("http") else f"{self.backend.url}{path}"
        page.goto(url)
        page.wait_for_selector("#username", timeout=20_000)
        assert page.url.startswith(f"{KEYCLOAK_URL}/realms/inflow/")
        page.fill("#username", user)
        page.fill("#password", user)
        page.click("#kc-login")
        page.wait_for_url(re.compile(re.escape(self.backend.url) + r"/admin"), timeout=20_000)
        return page


def open_crm(browser: Browser, user: str) -> Any:
    """Sign `user` in to the extension; the panel shows the CRM dashboard and its peer section."""
    panel = browser.open_panel()
    browser.sign_in(panel, (user, user))
    demo = browser.open_demo(PAGE)
    demo.bring_to_front()
    browser.state(panel, "ready")
    panel.wait_for_selector("#peer[aria-busy='false'] #tips-heading", timeout=20_000)
    return panel


def wait_for_mail(smtp: SmtpServer, to: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in smtp.received():
            if to in message.rcpt_tos:
                return message
        time.sleep(0.2)
    raise AssertionError(f"no e-mail to {to}; got {[m.rcpt_tos for m in smtp.received()]}")


def test_a_tip_shared_approved_and_seen(extension: Any, peer_backend: Backend) -> None:
    tip = "Filter the pipeline by **close date** before the Monday review."
    with extension("lena") as browser:
        panel = open_crm(browser, "learner")
        assert panel.locator("#share-tip").is_visible()
        # By keyboard: open "Share a tip", write, tick "show my name", send with Ctrl+Enter.
        panel.focus("#share-tip > summary")
        panel.keyboard.press("Enter")
        panel.focus("#share-tip-body")
        panel.keyboard.type(tip)
        assert panel.inner_text("#share-tip-count") == f"{len(tip)}/1000"
        assert "Lena Learner" in panel.inner_text("#share-tip label.check")
        panel.keyboard.press("Tab")
        panel.keyboard.press("Space")
        assert panel.is_checked("#share-tip-show-name")
        panel.focus("#share-tip-body")
        panel.keyboard.press("Control+Enter")
        panel.wait_for_selector("#share-tip-status:has-text('reviewer approves')")
        shot(panel, "01-tip-shared")
        # Pending: not on the page yet, not even for its author.
        assert panel.locator("#tips li").count() == 0

    with Console(peer_backend) as console:
        page = console.sign_in("/admin/tips", "admin")
        article = page.locator("article.tip", has_text="close date")
        assert article.count() == 1
        assert "Lena Learner" in article.inner_text()
        shot(page, "02-tip-queue")
        article.get_by_role("button", name="Approve").click()
        page.wait_for_load_state()
        page.goto(f"{peer_backend.url}/admin/tips?status=approved")
        assert page.locator("article.tip", has_text="close date").count() == 1

    with extension("max") as browser:
        panel = open_crm(browser, "manager")
        item = panel.locator("#tips li.tip", has_text="close date")
        item.wait_for()
        assert item.locator("strong", has_text="close date").count() == 1  # Markdown, sanitised
        assert "Lena Learner" in item.inner_text()
        shot(panel, "03-tip-seen")
        # Reported: gone from the reporter's panel (moderators see the report).
        item.get_by_role("button", name=re.compile("Report")).click()
        item.locator("input[type=text]").fill("The review is on Tuesdays here")
        item.get_by_role("button", name="Send report").click()
        item.get_by_text("You will not see this tip again").wait_for()
        panel.reload()
        browser.state(panel, "ready")
        panel.wait_for_selector("#peer[aria-busy='false'] #tips-heading", timeout=20_000)
        assert panel.locator("#tips li.tip", has_text="close date").count() == 0


def test_a_question_mailed_answered_seen_and_made_an_aid(
    extension: Any, peer_backend: Backend, smtp: SmtpServer
) -> None:
    question = "How do I pick the forecast category for a pipeline deal that slipped a quarter?"
    answer = "Move it to **Pipeline** and set the new close date; Commit is for this quarter only."
    with extension("lena-asks") as browser:
        panel = open_crm(browser, "learner")
        panel.click("#ask > summary")
        panel.fill("#ask-body", question)
        panel.click("#ask-send")
        panel.wait_for_selector("#ask-status:has-text('Sent')")
        panel.wait_for_selector("#my-questions li.question")
        assert "Waiting for an answer" in panel.inner_text("#my-questions")
        shot(panel, "04-question-asked")

    mail = wait_for_mail(smtp, "maria.lopez@example.com")
    link = re.search(rf"{re.escape(peer_backend.url)}/admin/questions/[\w-]+", mail.text)
    assert link, mail.text
    assert "forecast category" in mail.text

    with Console(peer_backend) as console:
        page = console.sign_in(link.group(0), "mlopez")
        assert "forecast category" in page.inner_text("main")
        page.fill("#answer-body", answer)
        page.get_by_role("button", name="Send answer").click()
        page.wait_for_selector("section.answer")
        shot(page, "05-mentor-answered")

    with extension("lena-reads") as browser:
        panel = open_crm(browser, "learner")
        assert panel.text_content("#unread-badge") == "1 new"
        mine = panel.locator("#my-questions li.question").first
        assert "New answer" in mine.inner_text()
        shot(panel, "06-answer-badge")
        mine.get_by_role("button", name="Show the answer").click()
        item = mine.locator("li.answer")
        assert item.locator("strong", has_text="Pipeline").count() == 1
        assert "María López" in item.inner_text()
        item.get_by_role("button", name="Accept this answer").click()
        panel.wait_for_selector("#my-questions .accepted-mark")
        assert panel.locator("#unread-badge").count() == 0
        shot(panel, "07-answer-accepted")

    qid = link.group(0).rsplit("/", 1)[1]
    with Console(peer_backend) as console:
        page = console.sign_in(f"/admin/questions/{qid}", "author")
        page.get_by_role("button", name="Turn into a draft aid").click()
        page.wait_for_url(re.compile(r"/admin/aids/[^/?]+\?notice=created"), timeout=20_000)
        shot(page, "08-draft-aid")
        body = page.content()
        assert f"/admin/questions/{qid}" in body  # the draft links back to the question
        assert "Commit is for this quarter only" in body


def test_a_new_hire_sees_the_paired_mentor_first(extension: Any, peer_backend: Backend) -> None:
    admin = access_token("admin")
    rule = {
        "id": "test-crm-new-hires",
        "group": "new-hires",
        "app_id": "crm",
        "mentor_ids": ["dev-patel"],
        "days": 30,
        "cap": 5,
        "start_claim": "",
        "active": True,
    }
    api(peer_backend, "POST", "/api/v1/admin/pairing-rules", admin, rule)
    api(peer_backend, "POST", "/api/v1/admin/pairing-rules/test-crm-new-hires/run", admin, {})
    pairings = api(peer_backend, "GET", "/api/v1/admin/pairings", admin)["pairings"]
    assert any(p["learner_username"] == "newhire" for p in pairings), pairings

    with extension("nora") as browser:
        panel = open_crm(browser, "newhire")
        panel.wait_for_selector("#mentors li.mentor.paired")
        first = panel.locator("#mentors > li").first
        assert first.get_attribute("data-paired") == "true"
        assert "Your mentor for Northwind CRM" in first.inner_text()
        paired = panel.locator("#mentors > li.paired")
        ids = [paired.nth(i).get_attribute("data-mentor") for i in range(paired.count())]
        assert "dev-patel" in ids
        # Listed once: Dev Patel is also one of the CRM's people who can help.
        assert panel.locator("#mentors > li[data-mentor='dev-patel']").count() == 1
        shot(panel, "09-new-hire-mentor")


def test_a_mentor_answers_from_the_panel_and_others_see_it_while_typing(
    extension: Any, peer_backend: Backend
) -> None:
    """María answers from her own panel (the questions of the app, this page's first) and
    recommends an aid; once the asker accepted the answer, another learner typing a similar
    question sees it before sending, and sees "Recommended by María López" on the aid."""
    where = {"url": f"{peer_backend.url}{PAGE}", "title": "Pipeline · Northwind CRM"}
    learner, maria = access_token("learner"), access_token("mlopez")
    asked = api(
        peer_backend,
        "POST",
        "/api/v1/peer/questions",
        learner,
        {
            **where,
            "body": "Which stage is a deal in after the first demo call?",
            "show_name": False,
        },
    )
    api(
        peer_backend,
        "POST",
        "/api/v1/peer/recommendations",
        maria,
        {**where, "aid_id": "crm-stage-definitions", "note": "Read before the forecast call"},
    )

    with extension("maria-panel") as browser:
        panel = open_crm(browser, "mlopez")
        item = panel.locator(f"#inbox li[data-inbox='{asked['id']}']")
        item.wait_for()
        assert "on this page" in item.inner_text()
        item.locator("textarea").fill("**Discovery** until the buyer agreed on next steps.")
        item.get_by_role("button", name="Send answer").click()
        item.get_by_text("Answer sent").wait_for()
        shot(panel, "10-mentor-answers-in-panel")

    mine = api(peer_backend, "GET", "/api/v1/peer/questions/mine", learner)
    [question] = [q for q in mine["questions"] if q["id"] == asked["id"]]
    answer_id = question["answers"][0]["id"]
    api(
        peer_backend,
        "POST",
        f"/api/v1/peer/questions/{asked['id']}/accept",
        learner,
        {"answer_id": answer_id},
    )

    with extension("max-types") as browser:
        panel = open_crm(browser, "manager")
        card = panel.locator("#pinned [data-aid='crm-stage-definitions']")
        card.get_by_text("Recommended by María López").wait_for()
        panel.click("#ask > summary")
        panel.type("#ask-body", "Which stage is a deal in after a demo call?", delay=10)
        similar = panel.locator("#similar-list li")
        similar.first.wait_for(timeout=20_000)
        assert similar.first.locator("strong", has_text="Discovery").count() == 1
        shot(panel, "11-similar-while-typing")


def test_an_author_reads_the_rejection_edits_and_deletes_their_tip(
    extension: Any, peer_backend: Backend
) -> None:
    """The author had no way to see in the panel why a reviewer turned their tip down, nor to fix
    or remove it: "Your tips" shows the reason, an edit goes back to review, a delete asks first."""
    where = {"url": f"{peer_backend.url}{PAGE}", "title": "Pipeline · Northwind CRM"}
    author, admin = access_token("manager"), access_token("admin")
    tip = api(
        peer_backend,
        "POST",
        "/api/v1/peer/tips",
        author,
        {**where, "body": "Skip the stage field, nobody reads it.", "show_name": False},
    )
    api(
        peer_backend,
        "POST",
        f"/api/v1/admin/tips/{tip['id']}/reject",
        admin,
        {"reason": "The stage drives the forecast: it must be set"},
    )

    with extension("max-edits") as browser:
        panel = open_crm(browser, "manager")
        item = panel.locator(f"#my-tips li[data-my-tip='{tip['id']}']")
        item.wait_for(timeout=20_000)
        assert "Not published: The stage drives the forecast: it must be set" in item.inner_text()
        shot(panel, "12-your-tip-rejected")
        # Edit by keyboard: the form says it goes back to review.
        item.get_by_role("button", name="Edit this tip").focus()
        panel.keyboard.press("Enter")
        box = item.locator("textarea")
        assert box.input_value() == "Skip the stage field, nobody reads it."
        assert "goes back to review" in item.inner_text()
        box.fill("Set the **stage** before the forecast call: it drives the forecast.")
        panel.keyboard.press("Control+Enter")
        item.get_by_text("It goes back to review").wait_for()
        panel.locator(
            f"#my-tips li[data-my-tip='{tip['id']}']", has_text="Waiting for review"
        ).wait_for()
        item = panel.locator(f"#my-tips li[data-my-tip='{tip['id']}']")
        assert item.locator("strong", has_text="stage").count() == 1
        mine = api(peer_backend, "GET", "/api/v1/peer/tips/mine", author)["tips"]
        assert [t["status"] for t in mine if t["id"] == tip["id"]] == ["pending"]
        # Delete: asks first; Keep keeps it, Delete removes it.
        item.get_by_role("button", name="Delete this tip").click()
        item.get_by_role("button", name="Keep").click()
        assert api(peer_backend, "GET", "/api/v1/peer/tips/mine", author)["tips"]
        item.get_by_role("button", name="Delete this tip").click()
        assert "Delete this tip?" in item.inner_text()
        item.get_by_role("button", name="Delete", exact=True).click()
        panel.locator(f"#my-tips li[data-my-tip='{tip['id']}']").wait_for(state="detached")
        mine = api(peer_backend, "GET", "/api/v1/peer/tips/mine", author)["tips"]
        assert tip["id"] not in [t["id"] for t in mine]


def test_a_mentor_endorses_a_tip_from_the_panel(extension: Any, peer_backend: Backend) -> None:
    """A mentor could endorse only through the API: the panel offers María "Endorse" on an
    approved tip of her app, it becomes "Endorsed by you", and a learner sees "Endorsed by
    María López" on the tip."""
    where = {"url": f"{peer_backend.url}{PAGE}", "title": "Pipeline · Northwind CRM"}
    author, admin = access_token("learner"), access_token("admin")
    body = "Log the **next step** on the deal before you hang up."
    tip = api(
        peer_backend,
        "POST",
        "/api/v1/peer/tips",
        author,
        {**where, "body": body, "show_name": True},
    )
    api(peer_backend, "POST", f"/api/v1/admin/tips/{tip['id']}/approve", admin, {})

    with extension("maria-endorses") as browser:
        panel = open_crm(browser, "mlopez")
        item = panel.locator(f"#tips li[data-tip='{tip['id']}']")
        item.wait_for(timeout=20_000)
        button = item.get_by_role("button", name=re.compile("Endorse this tip"))
        button.focus()
        panel.keyboard.press("Enter")
        item.get_by_role("button", name="Endorsed by you").wait_for()
        shot(panel, "13-mentor-endorses")

    with extension("lena-sees-endorsed") as browser:
        panel = open_crm(browser, "learner")
        item = panel.locator(f"#tips li[data-tip='{tip['id']}']")
        item.wait_for(timeout=20_000)
        assert "Endorsed by María López" in item.inner_text()
        # The author does not endorse; a learner has no Endorse button.
        assert item.get_by_role("button", name=re.compile("Endorse")).count() == 0


def test_a_learner_deletes_a_question_and_a_mentor_flags_an_aid_and_sees_a_mentee(
    extension: Any, peer_backend: Backend
) -> None:
    """A learner could not take back a question from the panel, and a mentor could neither flag
    an aid nor see their mentees there: the learner deletes their question (asked first), María
    flags an aid as outdated for its owner and sees her mentee with the mentee's open question."""
    where = {"url": f"{peer_backend.url}{PAGE}", "title": "Pipeline · Northwind CRM"}
    learner, manager = access_token("learner"), access_token("manager")
    maria, admin = access_token("mlopez"), access_token("admin")
    gone = api(
        peer_backend,
        "POST",
        "/api/v1/peer/questions",
        learner,
        {**where, "body": "Where do I change the currency of a deal?", "show_name": False},
    )
    maria_page = api(peer_backend, "POST", "/api/v1/peer/page", maria, where)
    app_id, mentor_id = maria_page["app"]["id"], maria_page["me"]["mentor_id"]
    pairing = {"learner_username": "manager", "mentor_id": mentor_id, "app_id": app_id, "days": 30}
    api(peer_backend, "POST", "/api/v1/admin/pairings", admin, pairing)
    api(peer_backend, "POST", "/api/v1/peer/page", manager, where)  # the mentee is seen
    open_q = api(
        peer_backend,
        "POST",
        "/api/v1/peer/questions",
        manager,
        {**where, "body": "Who approves a discount above 20 percent?", "show_name": False},
    )

    with extension("lena-deletes") as browser:
        panel = open_crm(browser, "learner")
        item = panel.locator(f"#my-questions li[data-question='{gone['id']}']")
        item.wait_for(timeout=20_000)
        item.get_by_role("button", name="Delete this question").click()
        assert "Delete this question and its answers?" in item.inner_text()
        item.get_by_role("button", name="Delete", exact=True).click()
        item.wait_for(state="detached", timeout=20_000)
        mine = api(peer_backend, "GET", "/api/v1/peer/questions/mine", learner)["questions"]
        assert gone["id"] not in [q["id"] for q in mine]

    with extension("maria-flags") as browser:
        panel = open_crm(browser, "mlopez")
        mentee = panel.locator("#mentees li.mentee", has_text="manager")
        mentee.wait_for(timeout=20_000)
        assert "Northwind CRM · until" in mentee.inner_text()
        assert mentee.locator(f"li[data-question='{open_q['id']}']").count() == 1
        shot(panel, "14-mentor-mentees")
        panel.click("#pinned [data-aid='crm-stage-definitions']")
        panel.wait_for_selector("#aid-title")
        panel.click("#flag-aid > summary")
        panel.select_option("#flag-kind", "outdated")
        panel.fill("#flag-comment", "The Negotiation stage was renamed Proposal last quarter.")
        panel.get_by_role("button", name="Send flag").click()
        panel.get_by_text("The aid's owner has been told").wait_for()
        shot(panel, "15-mentor-flags-aid")
    flags = api(peer_backend, "GET", "/api/v1/admin/aid-flags", admin)["flags"]
    assert any(
        f["aid_id"] == "crm-stage-definitions"
        and f["kind"] == "outdated"
        and "renamed" in f["comment"]
        for f in flags
    ), flags
