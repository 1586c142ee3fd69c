"""The authoring queue in the console (/admin/queue): items from real use with links to where they
are fixed, filters, a reviewer assigns, the author moves their own item, "Refresh now"."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

from aiohttp.test_utils import TestClient
from pydantic import TypeAdapter

from server import keys
from server.queue.models import QueueItem
from tests.test_queue import bakery, person, use_the_ovens  # noqa: F401 (the fixture)
from tests.tokens import TokenMaker


def words(page: str) -> str:
    """The text a person reads on a page: no tags, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def sign_in(client: TestClient, tokens: TokenMaker, username: str, *roles: str) -> str:
    """A console session (as the sign-in callback makes it); returns its CSRF token."""
    client.session.cookie_jar.clear()
    app = client.server.app
    token = tokens.token(sub=f"sub-{username}", roles=roles, preferred_username=username)
    identity = await app[keys.AUTHENTICATOR].authenticate(token)
    store = app[keys.ADMIN_SESSIONS]
    sid, session = await store.create(identity, {"access_token": token, "refresh_token": ""})
    client.session.cookie_jar.update_cookies({store.cookie_name: sid})
    return str(session.csrf)


def item_ids(page: str) -> list[str]:
    return re.findall(r'<tr id="item-([^"]+)"', page)


async def test_a_reviewer_refreshes_assigns_and_the_author_finishes(
    bakery: TestClient,  # noqa: F811
    tokens: TokenMaker,
) -> None:
    question = await use_the_ovens(bakery, tokens)
    csrf = await sign_in(bakery, tokens, "rita", "author", "reviewer")
    page = await (await bakery.get("/admin")).text()
    assert 'href="/admin/queue"' in page, "the nav leads to the queue"
    page = await (await bakery.get("/admin/queue")).text()
    assert "Nothing in the queue here." in page
    resp = await bakery.post(
        "/admin/queue/refresh", data={"csrf_token": csrf, "back": "/admin/queue"}
    )
    assert resp.status == 200 and resp.url.path == "/admin/queue"
    page = await resp.text()
    text = words(page)
    assert "The queue is up to date." in text
    assert len(item_ids(page)) == 4
    # each item leads to where it is fixed
    assert 'href="/admin/tester?url=https%3A%2F%2Fovens.crumb.example%2Fbatches%2Fnew"' in page
    assert 'href="/admin/aids/ovens-temp-chart"' in page
    assert 'href="/admin/aids?q=proofing+time"' in page
    assert "12 panel opens by 2 people, 30 days" in text
    assert "5 of 6 votes not helpful" in text
    assert "4 of 4 searches without results, 2 people" in text
    # the question, a week later (the job calls the service)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=9)
    await bakery.app[keys.QUEUE].refresh(now=later)
    page = await (await bakery.get("/admin/queue?kind=unanswered_question")).text()
    assert f'href="/admin/questions/{question["id"]}"' in page
    assert "waiting 9 days" in words(page)

    # filter by kind, assign the unpinned page to ana
    page = await (await bakery.get("/admin/queue?kind=unpinned_context")).text()
    [item] = item_ids(page)
    resp = await bakery.post(
        f"/admin/queue/{item}",
        data={
            "csrf_token": csrf,
            "back": "/admin/queue?kind=unpinned_context",
            "status": "open",  # left as it was: assigning moves it on
            "assignee": "Ana",
            "note": "Pin the batch guide",
        },
    )
    assert resp.status == 200 and resp.url.query.get("kind") == "unpinned_context"
    text = words(await resp.text())
    assert "Saved (recorded in the audit log)." in text
    assert "assigned ana, by rita" in text and "Pin the batch guide" in text

    # ana, an author, sees it among hers and moves it on; she may not assign
    csrf = await sign_in(bakery, tokens, "ana", "author")
    page = await (await bakery.get("/admin/queue?mine=1")).text()
    assert item_ids(page) == [item]
    assert 'aria-label="Assign ' not in page, "no assign field for an author"
    assert page.count(f'action="/admin/queue/{item}"') == 1
    others = [i for i in item_ids(await (await bakery.get("/admin/queue")).text()) if i != item]
    assert (
        f'action="/admin/queue/{others[0]}"' not in await (await bakery.get("/admin/queue")).text()
    ), "no form on items of others"
    resp = await bakery.post(
        f"/admin/queue/{item}",
        data={"csrf_token": csrf, "back": "/admin/queue?mine=1", "status": "done", "note": ""},
    )
    assert resp.status == 200
    assert item_ids(await resp.text()) == [], "done is no longer active"
    page = await (await bakery.get("/admin/queue?status=done")).text()
    assert item_ids(page) == [item]
    # a status only reviewers set, or someone else's item: the console's 403 page
    resp = await bakery.post(
        f"/admin/queue/{item}", data={"csrf_token": csrf, "status": "dismissed"}
    )
    assert resp.status == 403
    resp = await bakery.post(
        f"/admin/queue/{others[0]}", data={"csrf_token": csrf, "status": "in_progress"}
    )
    assert resp.status == 403
    resp = await bakery.post("/admin/queue/refresh", data={"csrf_token": csrf})
    assert resp.status == 403


async def test_learners_do_not_see_the_queue(
    bakery: TestClient,  # noqa: F811
    tokens: TokenMaker,
) -> None:
    await sign_in(bakery, tokens, "lea", "learner")
    resp = await bakery.get("/admin/queue")
    assert resp.status == 403
    page = await (await bakery.get("/admin/aid-flags")).text()
    assert 'href="/admin/queue"' not in page


async def test_the_item_form_takes_its_limits_from_the_declaration(
    bakery: TestClient,  # noqa: F811
    tokens: TokenMaker,
) -> None:
    """queue.html typed `maxlength="1000"` on the note and nothing on the assignee, so the
    form let a reviewer type a 300-character username the service then refused with a 422.
    Both fields' limits now come from the QueueItem declaration, like every other console form."""
    template = Path(__file__).parents[1] / "server/templates/admin/queue.html"
    assert not re.findall(r'(?:maxlength|minlength|pattern|min|max)="', template.read_text())
    declared = TypeAdapter(QueueItem).json_schema()["properties"]
    await use_the_ovens(bakery, tokens)
    csrf = await sign_in(bakery, tokens, "rita", "author", "reviewer")
    await bakery.post("/admin/queue/refresh", data={"csrf_token": csrf, "back": "/admin/queue"})
    page = await (await bakery.get("/admin/queue")).text()
    assert item_ids(page)
    for name in ("assignee", "note"):
        tags = re.findall(rf'<input name="{name}" value="[^"]*"[^>]*>', page)
        assert tags, name
        for tag in tags:
            assert f'maxlength="{declared[name]["maxLength"]}"' in tag, tag
