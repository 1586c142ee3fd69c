"""The web app's "Check my course progress now" against the real LRS (ralph, started by the
fixture in tests/test_analytics_xapi.py): a `completed` statement the LMS posted for the
learner's course step ticks it on the path page, through the learner API's sync."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from server.paths.models import PathAssignment, PathStep
from server.settings import Settings
from tests.test_learn import sign_in
from tests.test_paths_lrs import course_path, lrs_client, post_to_lrs, ralph, statement
from tests.test_paths_progress import add_path
from tests.tokens import TokenMaker

__all__ = ["ralph"]  # the LRS fixture


async def test_a_completed_course_is_ticked_from_the_path_page(
    aiohttp_client: Any, make_settings: Callable[..., Settings], ralph: Any, tokens: TokenMaker
) -> None:
    tag = uuid.uuid4().hex[:8]
    practice = PathStep(id="walk", kind="practice", title="Walk the line", checklist=("Walk",))
    path, activity = course_path(tag, practice)
    client: TestClient = await lrs_client(aiohttp_client, make_settings, ralph)
    await add_path(client.server.app, path, PathAssignment(path_id=path.id, group=f"mill-{tag}"))
    email = f"hand-1@mill-{tag}.example"
    token = tokens.token(sub="hand-1", roles=("learner",), groups=(f"mill-{tag}",), email=email)
    csrf = await sign_in(client, token)
    page = await (await client.get(f"/learn/paths/{path.id}")).text()
    assert "0 of 2 steps done" in page and "Check my course progress now" in page

    # nothing reported yet: checked, nothing ticked
    resp = await client.post(
        f"/learn/paths/{path.id}/sync", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303 and "notice=synced-none" in resp.headers["Location"]

    await post_to_lrs(ralph, statement(email, activity))  # what the LMS does
    resp = await client.post(f"/learn/paths/{path.id}/sync", data={"csrf_token": csrf})
    assert resp.status == 200
    page = await resp.text()
    assert "course progress was read" in page
    assert "1 of 2 steps done" in page
    assert "Check my course progress now" not in page  # the course step is done
