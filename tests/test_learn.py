"""The learner web app (/learn) with sessions made from forged tokens: sign-in redirects, every
page for a signed-in learner, deep links, the 404 page, CSRF on forms, sign-out, and that no page
shows another person's data. The real Keycloak sign-in, offline copies and axe are in
tests/browser/test_learn.py."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from aiohttp.test_utils import TestClient

from server import keys
from server.paths.models import LearningPath, PathAssignment, PathStep
from server.peer.store import PeerTx
from tests.tokens import TokenMaker

CRM_PAGE = "http://127.0.0.1:8080/demo/crm/opportunities/new"


async def sign_in(client: TestClient, token: str) -> str:
    """A web app session for `token` (as /learn/callback makes it); returns its CSRF token."""
    app = client.server.app
    identity = await app[keys.AUTHENTICATOR].authenticate(token)
    store = app[keys.LEARN_SESSIONS]
    sid, session = await store.create(identity, {"access_token": token, "refresh_token": ""})
    client.session.cookie_jar.update_cookies({store.cookie_name: sid})
    return session.csrf


def learner_token(tokens: TokenMaker, sub: str = "learner-1", **extra: str) -> str:
    return tokens.token(sub=sub, roles=("learner",), groups=("sales",), **extra)


async def test_signed_out_pages_go_to_sign_in_and_come_back(client: TestClient) -> None:
    for path in ("/learn/", "/learn/aids/crm-create-opportunity", "/learn/search?q=quote&app=crm"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 303, path
        location = urlsplit(resp.headers["Location"])
        assert location.path == "/learn/login"
        assert parse_qs(location.query) == {"next": [path]}
    # sign-in sends the browser to Keycloak with the web app's own callback and a state cookie
    resp = await client.get(
        "/learn/login", params={"next": "/learn/aids/crm-create-opportunity"}, allow_redirects=False
    )
    assert resp.status == 303
    target = urlsplit(resp.headers["Location"])
    query = parse_qs(target.query)
    assert query["redirect_uri"] == [f"{client.server.app[keys.SETTINGS].base_url}/learn/callback"]
    assert query["code_challenge_method"] == ["S256"]
    assert "inflow_learn_state" in resp.cookies
    assert resp.cookies["inflow_learn_state"]["path"] == "/learn/callback"


async def test_next_after_sign_in_stays_in_the_web_app(
    client: TestClient, tokens: TokenMaker
) -> None:
    await sign_in(client, learner_token(tokens))
    for raw in ("//evil.example", "https://evil.example/learn", "/admin/aids", "/\\evil.example"):
        resp = await client.get("/learn/login", params={"next": raw}, allow_redirects=False)
        assert resp.headers["Location"] == "/learn/", raw
    resp = await client.get("/learn/login", params={"next": "/learn/apps"}, allow_redirects=False)
    assert resp.headers["Location"] == "/learn/apps"


async def test_every_page_renders_for_a_learner(client: TestClient, tokens: TokenMaker) -> None:
    await sign_in(client, learner_token(tokens))
    pages = {
        "/learn/": "My paths",
        "/learn/search?q=opportunity": "Create a new opportunity",
        "/learn/apps": "Northwind CRM",
        "/learn/apps/crm": "Create a new opportunity",
        "/learn/aids/crm-create-opportunity": "Create a new opportunity",
        "/learn/mentors": "Mentors",
        "/learn/questions": "You have asked no questions.",
        "/learn/tips": "You have shared no tips.",
    }
    for path, words in pages.items():
        resp = await client.get(path)
        html = await resp.text()
        assert resp.status == 200, path
        assert words in html, path
        # landmarks and the skip link on every page; the CSP forbids inline scripts
        assert 'href="#main"' in html and '<main id="main"' in html and 'aria-label="Main"' in html
        assert "<script>" not in html
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["Cache-Control"] == "private, no-cache"
    # the page just read is the first of "Recently read" on the home page; /learn is its
    # short name (the page is /learn/, inside the service worker's scope)
    resp = await client.get("/learn", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/learn/"
    home = await (await client.get("/learn")).text()
    recent = home.split('id="recent-h"')[1]
    assert 'href="/learn/aids/crm-create-opportunity"' in recent


async def test_search_is_the_api_search(client: TestClient, tokens: TokenMaker) -> None:
    """Same results, same order as GET /api/v1/search for the same person and words."""
    token = learner_token(tokens)
    await sign_in(client, token)
    api = await client.get(
        "/api/v1/search",
        params={"q": "expense receipt", "limit": "20"},
        headers={"Authorization": f"Bearer {token}"},
    )
    ids = [r["id"] for r in (await api.json())["results"]]
    assert ids
    html = await (await client.get("/learn/search", params={"q": "expense receipt"})).text()
    shown = re.findall(r'<li><a href="/learn/aids/([^"]+)">', html)
    assert shown == ids
    # an app filter from a deep link is kept in the form
    html = await (
        await client.get("/learn/search", params={"q": "receipt", "app": "expenses"})
    ).text()
    assert '<option value="expenses" selected>' in html


async def test_what_is_typed_is_escaped(client: TestClient, tokens: TokenMaker) -> None:
    await sign_in(client, learner_token(tokens))
    evil = "<script>alert(1)</script>"
    resp = await client.get("/learn/search", params={"q": evil})
    html = await resp.text()
    assert evil not in html and "&lt;script&gt;" in html
    resp = await client.get("/learn/search", params={"q": "x", "app": "<b>"})
    assert resp.status == 422
    assert "<b>" not in (await resp.text()).split("<main")[1]


async def test_aid_deep_links_follow_the_api_visibility(
    client: TestClient, tokens: TokenMaker
) -> None:
    """An aid for another audience, or a draft, is a 404 page, as GET /api/v1/aids/{id} is."""
    token = learner_token(tokens)
    await sign_in(client, token)
    for aid_id in ("exp-approval-delegation", "exp-per-diem-2027", "no-such-aid"):
        api = await client.get(
            f"/api/v1/aids/{aid_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert api.status == 404
        resp = await client.get(f"/learn/aids/{aid_id}")
        assert resp.status == 404, aid_id
        assert resp.content_type == "text/html"
        assert "is available to you" in await resp.text()
    # not listed either: the app page lists what the learner may read, published only
    html = await (await client.get("/learn/apps/expenses")).text()
    assert "exp-approval-delegation" not in html and "exp-per-diem-2027" not in html
    # a manager sees the managers' aid
    client.session.cookie_jar.clear()
    await sign_in(client, tokens.token(sub="m-1", roles=("learner",), groups=("managers",)))
    assert (await client.get("/learn/aids/exp-approval-delegation")).status == 200


async def test_aid_page_renders_sanitised_body_and_transcript_cues(
    client: TestClient, tokens: TokenMaker
) -> None:
    await sign_in(client, learner_token(tokens))
    resp = await client.get("/learn/aids/crm-create-opportunity")
    html = await resp.text()
    api_body = client.server.app[keys.RENDERER]
    aid = await client.server.app[keys.LIBRARY].storage.get_aid("crm-create-opportunity")
    assert await api_body.render(aid.body) in html  # the renderer the API and panel use
    # a video with a transcript lists its cues, each opening the video at its time
    admin = {"Authorization": "Bearer " + tokens.token(sub="a-1", roles=("admin",))}
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:04.000\nOpen the quote tab.\n\n"
    vtt += "01:02:03.000 --> 01:02:05.000\nSend <b>it</b> for signature.\n"
    current = await client.get("/api/v1/admin/aids/crm-quote-video", headers=admin)
    resp = await client.put(
        "/api/v1/admin/aids/crm-quote-video/transcript",
        data=vtt.encode(),
        headers={**admin, "Content-Type": "text/vtt", "If-Match": current.headers["ETag"]},
    )
    assert resp.status == 200, await resp.text()
    html = await (await client.get("/learn/aids/crm-quote-video")).text()
    cues = html.split('id="cues-h"')[1]
    assert "0:01</a> Open the quote tab." in cues
    assert "1:02:03</a> Send it for signature." in cues


async def test_unknown_pages_are_the_web_apps_404(client: TestClient, tokens: TokenMaker) -> None:
    await sign_in(client, learner_token(tokens))
    for path in (
        "/learn/nope",
        "/learn/apps/no-such-app",
        "/learn/static/nope.py",
        "/learn/static/.x.css",
    ):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert resp.content_type == "text/html"
        html = await resp.text()
        assert "Not found" in html
        # with the navigation for a signed-in person (static files are served sessionless)
        assert ('aria-label="Main"' in html) is not path.startswith("/learn/static/")


async def test_csrf_on_forms_and_sign_out(client: TestClient, tokens: TokenMaker) -> None:
    csrf = await sign_in(client, learner_token(tokens))
    for sent in (None, "", "wrong"):
        data = {} if sent is None else {"csrf_token": sent}
        resp = await client.post("/learn/logout", data=data, allow_redirects=False)
        assert resp.status == 403, sent
        assert resp.content_type == "application/problem+json"
        assert "CSRF" in (await resp.json())["detail"]
    assert (await client.get("/learn/", allow_redirects=False)).status == 200  # still signed in
    resp = await client.post("/learn/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == "/learn/signed-out"
    assert resp.headers["Clear-Site-Data"] == '"cache", "storage"'
    assert (await client.get("/learn/", allow_redirects=False)).status == 303
    html = await (await client.get("/learn/signed-out")).text()
    assert 'data-clear-offline="1"' in html


async def test_web_app_and_console_sessions_are_separate(
    client: TestClient, tokens: TokenMaker
) -> None:
    """A /learn session cookie is no console session (and the reverse), even with the same id."""
    app = client.server.app
    token = tokens.token(sub="admin-1", roles=("learner", "author", "admin", "reviewer"))
    identity = await app[keys.AUTHENTICATOR].authenticate(token)
    sid, _ = await app[keys.LEARN_SESSIONS].create(identity, {"access_token": token})
    client.session.cookie_jar.update_cookies({app[keys.ADMIN_SESSIONS].cookie_name: sid})
    assert (await client.get("/admin", allow_redirects=False)).status == 303
    admin_sid, _ = await app[keys.ADMIN_SESSIONS].create(identity, {"access_token": token})
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({app[keys.LEARN_SESSIONS].cookie_name: admin_sid})
    assert (await client.get("/learn/", allow_redirects=False)).status == 303


async def test_no_page_shows_another_persons_questions_or_tips(
    client: TestClient, tokens: TokenMaker
) -> None:
    asker = learner_token(tokens, sub="asker-1", preferred_username="asker")
    other = learner_token(tokens, sub="other-1", preferred_username="other")
    auth = {"Authorization": f"Bearer {asker}"}
    resp = await client.post(
        "/api/v1/peer/questions",
        json={"url": CRM_PAGE, "body": "How do I split an opportunity between two regions?"},
        headers=auth,
    )
    assert resp.status == 201, await resp.text()
    resp = await client.post(
        "/api/v1/peer/tips",
        json={"url": CRM_PAGE, "body": "Tab twice to jump to the close date."},
        headers=auth,
    )
    assert resp.status == 201, await resp.text()
    await sign_in(client, asker)
    assert "split an opportunity" in await (await client.get("/learn/questions")).text()
    assert "jump to the close date" in await (await client.get("/learn/tips")).text()
    await sign_in(client, other)
    assert "split an opportunity" not in await (await client.get("/learn/questions")).text()
    assert "jump to the close date" not in await (await client.get("/learn/tips")).text()


async def test_pwa_files(client: TestClient) -> None:
    """The manifest, the worker (scope /learn/) and the offline page need no session: the
    browser fetches them by itself."""
    resp = await client.get("/learn/manifest.webmanifest")
    assert resp.status == 200
    assert resp.content_type == "application/manifest+json"
    manifest = await resp.json(content_type=None)
    assert manifest["scope"] == "/learn/" and manifest["start_url"].startswith("/learn/")
    for icon in manifest["icons"]:
        got = await client.get(icon["src"])
        assert got.status == 200 and got.content_type == icon["type"], icon
    resp = await client.get("/learn/sw.js")
    assert resp.status == 200 and resp.content_type == "text/javascript"
    assert "MAX_AIDS = 20" in await resp.text()
    resp = await client.get("/learn/offline")
    assert resp.status == 200
    html = await resp.text()
    assert "You are offline" in html and "Sign out" not in html


# -- learning paths ------------------------------------------------------------------------------

CHECKLIST = ("Open a demo opportunity", "Set the stage to Proposal")
STEPS = (
    PathStep(
        id="read", kind="aid", title="Read how to create one", aid_id="crm-create-opportunity"
    ),
    PathStep(
        id="course",
        kind="course",
        title="Pipeline course",
        url="https://lms.example/courses/pipeline",
        activity_id="https://lms.example/courses/pipeline",
    ),
    PathStep(id="try", kind="practice", title="Move a deal", checklist=CHECKLIST),
)


async def assign_path(client: TestClient) -> None:
    path = LearningPath(
        id="deals", title="Deals <basics>", description="Week **one**.", steps=STEPS
    )

    def write(tx: PeerTx) -> None:
        tx.add(path)
        tx.add(PathAssignment(path_id="deals", group="deal-desk", due_on="2030-01-31"))

    await client.server.app[keys.PEER].transaction(write)


async def test_my_paths_steps_and_done_forms(client: TestClient, tokens: TokenMaker) -> None:
    await assign_path(client)
    token = tokens.token(sub="desk-1", roles=("learner",), groups=("deal-desk",))
    csrf = await sign_in(client, token)
    home = await (await client.get("/learn")).text()
    assert "Deals &lt;basics&gt;" in home and "0 of 3 done" in home
    assert "Next: Read how to create one" in home
    html = await (await client.get("/learn/paths")).text()
    assert 'href="/learn/paths/deals"' in html
    html = await (await client.get("/learn/paths/deals")).text()
    assert "<strong>one</strong>" in html  # the description, rendered by server/render.py
    assert 'href="/learn/aids/crm-create-opportunity"' in html
    assert 'href="https://lms.example/courses/pipeline"' in html

    # the aid's page offers "Done" for its step; without the CSRF token nothing changes
    aid = await (await client.get("/learn/aids/crm-create-opportunity")).text()
    assert "Part of your path" in aid and 'action="/learn/paths/deals/steps/read/done"' in aid
    form = {"how": "aid_finished", "back": "/learn/aids/crm-create-opportunity"}
    resp = await client.post("/learn/paths/deals/steps/read/done", data=form)
    assert resp.status == 403
    resp = await client.post(
        "/learn/paths/deals/steps/read/done",
        data={**form, "csrf_token": csrf},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"].startswith("/learn/aids/crm-create-opportunity?notice=done")
    api = await client.get("/api/v1/paths/deals", headers={"Authorization": f"Bearer {token}"})
    assert (await api.json())["done"] == 1  # the learner API sees the same progress

    # a practice checklist: every line must be ticked (the API's rule, shown on the page)
    resp = await client.post(
        "/learn/paths/deals/steps/try/done",
        data={"how": "practice_confirmed", "checked": CHECKLIST[0], "csrf_token": csrf},
    )
    assert resp.status == 422
    html = await resp.text()
    assert "Set the stage to Proposal" in html.split('role="alert"')[1].split("</p>")[0]
    resp = await client.post(
        "/learn/paths/deals/steps/try/done",
        data=[("how", "practice_confirmed"), ("csrf_token", csrf)]
        + [("checked", line) for line in CHECKLIST],
        allow_redirects=False,
    )
    assert resp.status == 303 and resp.headers["Location"].startswith("/learn/paths/deals?")
    html = await (await client.get("/learn/paths/deals")).text()
    assert "2 of 3 steps done" in html and "Next: <a" in html and "Pipeline course" in html
    # a "back" that leaves the web app is ignored
    resp = await client.post(
        "/learn/paths/deals/steps/read/done",
        data={**form, "back": "//evil.example/learn/", "csrf_token": csrf},
        allow_redirects=False,
    )
    assert resp.headers["Location"].startswith("/learn/paths/deals?")


async def test_no_one_else_sees_a_path_or_its_progress(
    client: TestClient, tokens: TokenMaker
) -> None:
    await assign_path(client)
    await sign_in(client, tokens.token(sub="other-2", roles=("learner",), groups=("sales",)))
    assert "Deals" not in await (await client.get("/learn/paths")).text()
    resp = await client.get("/learn/paths/deals")
    assert resp.status == 404 and "You have no learning path" in await resp.text()
    aid = await (await client.get("/learn/aids/crm-create-opportunity")).text()
    assert "Part of your path" not in aid


async def test_course_sync_without_an_lrs_says_so(client: TestClient, tokens: TokenMaker) -> None:
    await assign_path(client)
    csrf = await sign_in(
        client, tokens.token(sub="desk-2", roles=("learner",), groups=("deal-desk",))
    )
    resp = await client.post("/learn/paths/deals/sync", data={"csrf_token": csrf})
    assert resp.status == 503
    assert "No LRS is configured" in await resp.text()
    resp = await client.post("/learn/paths/not-mine/sync", data={"csrf_token": csrf})
    assert resp.status == 404


async def test_a_callback_not_started_here_is_refused(client: TestClient) -> None:
    """A sign-in answer with no state, someone else's state or an error makes no session."""
    for query in ({}, {"state": "abc", "code": "x"}, {"error": "access_denied", "state": "abc"}):
        resp = await client.get("/learn/callback", params=query, allow_redirects=False)
        assert resp.status == 400, query
        assert resp.content_type == "text/html"
        assert "Sign in" in await resp.text()
        assert not any(c.key == "inflow-learn" for c in client.session.cookie_jar)
    # a state this browser did start, but used already (or expired): refused too
    resp = await client.get("/learn/login", allow_redirects=False)
    state = resp.cookies["inflow_learn_state"].value
    await client.server.app[keys.LEARN_SESSIONS].finish_login(state)
    client.session.cookie_jar.update_cookies({"inflow_learn_state": state})
    resp = await client.get("/learn/callback", params={"state": state, "code": "x"})
    assert resp.status == 400
    assert "expired or was used already" in await resp.text()


async def test_a_one_step_path_reads_one_step(client: TestClient, tokens: TokenMaker) -> None:
    """A path of one step said "0 of 1 steps done" on its page and to screen readers."""
    path = LearningPath(
        id="one-thing",
        title="One thing",
        steps=(PathStep(id="try", kind="practice", title="Move a deal", checklist=CHECKLIST),),
    )

    def write(tx: PeerTx) -> None:
        tx.add(path)
        tx.add(PathAssignment(path_id="one-thing", group="deal-desk"))

    await client.server.app[keys.PEER].transaction(write)
    await sign_in(client, tokens.token(sub="desk-2", roles=("learner",), groups=("deal-desk",)))
    html = await (await client.get("/learn/paths/one-thing")).text()
    assert '<span class="progress-text">0 of 1 step done</span>' in html
    assert 'aria-label="0 of 1 step done"' in html
    home = await (await client.get("/learn/")).text()
    assert 'aria-label="One thing: 0 of 1 step done"' in home
    assert "steps done" not in html + home
