"""A peer write that fails in the panel can be tried again (extension/src/panel/submit.js): the
extension in Debian's Chromium, a backend of its own, the real Keycloak."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Backend, launch, own_backend
from tests.browser.test_peer_panel import PAGE, api, open_crm
from tests.keycloak import access_token

pytestmark = [pytest.mark.browser, pytest.mark.keycloak]


@pytest.fixture(scope="module")
def retry_backend(tmp_path_factory: pytest.TempPathFactory, keycloak: Any) -> Iterator[Backend]:
    """A backend of its own: the test writes a question and hides it."""
    with own_backend(tmp_path_factory, "inflow-peer-retry") as backend:
        yield backend


def test_a_failed_accept_says_why_and_can_be_clicked_again(
    chromium: str, retry_backend: Backend, tmp_path: Path
) -> None:
    """Accept this answer re-enabled itself through the click event's currentTarget after the
    server answered; that is null by then, so when the accept failed (here: a moderator hid the
    question meanwhile) the panel showed why but the button stayed disabled for good."""
    where = {"url": f"{retry_backend.url}{PAGE}", "title": "Pipeline · Northwind CRM"}
    learner = access_token("learner")
    asked = api(
        retry_backend,
        "POST",
        "/api/v1/peer/questions",
        learner,
        {**where, "body": "Where do I set the probability of a pipeline deal?", "show_name": False},
    )
    api(
        retry_backend,
        "POST",
        f"/api/v1/peer/questions/{asked['id']}/answers",
        access_token("mlopez"),
        {"body": "In the deal's **Forecast** tab; the stage sets a default."},
    )

    with launch(chromium, retry_backend, tmp_path / "lena") as browser:
        panel = open_crm(browser, "learner")
        mine = panel.locator(f"#my-questions li.question[data-question='{asked['id']}']")
        mine.get_by_role("button", name="Show the answer").click()
        # Read: the list is drawn again without the "New answer" mark.
        panel.wait_for_selector(
            f"#my-questions li.question:not(.unread)[data-question='{asked['id']}']"
        )
        accept = mine.get_by_role("button", name="Accept this answer")
        accept.wait_for()

        api(
            retry_backend,
            "POST",
            f"/api/v1/admin/questions/{asked['id']}/hide",
            access_token("admin"),
        )
        accept.click()
        answer = mine.locator("li.answer")
        answer.get_by_text("This question was hidden by a moderator.").wait_for()
        assert accept.is_enabled(), "the person can click Accept again"
        assert mine.locator(".accepted-mark").count() == 0
