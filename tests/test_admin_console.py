"""The admin console (/admin) with sessions made from forged tokens: pages, CSRF, escaping,
open redirects, concurrency and the publish flow through forms. The real Keycloak sign-in is in
tests/test_admin_keycloak.py, the real browser in tests/browser/test_admin_console.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from pydantic import TypeAdapter

from server import keys
from server.console.csrf import safe_next
from server.models import Aid, App, Mentor
from server.permissions import may
from tests.tokens import TokenMaker

EVIL_NEXT = [
    "//evil.example",
    "//evil.example/admin",
    "/\\evil.example",
    "\\\\evil.example",
    "https:evil.example",
    "https://evil.example",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/%252F%252Fevil.example",
    "/admin\r\nLocation: https://evil.example",
    "/\t/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
]


async def sign_in(client: TestClient, token: str) -> str:
    """A console session for `token` (as the callback would make it); returns its CSRF token."""
    app = client.server.app
    identity = await app[keys.AUTHENTICATOR].authenticate(token)
    store = app[keys.ADMIN_SESSIONS]
    sid, session = await store.create(identity, {"access_token": token, "refresh_token": ""})
    client.session.cookie_jar.update_cookies({store.cookie_name: sid})
    return session.csrf


@pytest.fixture
def admin_token(tokens: TokenMaker) -> str:
    return tokens.token(sub="admin-1", roles=("learner", "author", "admin", "reviewer"))


def etag_of(html: str) -> str:
    """The ETag a console page's form sends back."""
    found = re.search(r'name="etag" value="([^"]+)"', html)
    assert found, "no ETag on the page"
    return found.group(1).replace("&#34;", '"')


def test_next_only_ever_stays_local() -> None:
    for raw in EVIL_NEXT:
        assert safe_next(raw) == "/admin", raw
    assert safe_next("/admin/aids?status=review") == "/admin/aids?status=review"
    assert safe_next("/admin/aids/x#history") == "/admin/aids/x#history"


async def test_signed_out_and_learner_are_kept_out(client: TestClient, tokens: TokenMaker) -> None:
    resp = await client.get("/admin/aids?status=review", allow_redirects=False)
    assert resp.status == 303
    location = urlsplit(resp.headers["Location"])
    assert location.path == "/admin/login"
    assert parse_qs(location.query) == {"next": ["/admin/aids?status=review"]}
    await sign_in(client, tokens.token(sub="learner-1", roles=("learner",)))
    for path in ("/admin", "/admin/aids", "/admin/apps", "/admin/audit", "/admin/import"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 403, path
        assert "authors, reviewers and admins" in await resp.text()


async def test_signed_in_next_redirects_stay_local(client: TestClient, admin_token: str) -> None:
    await sign_in(client, admin_token)
    for raw in EVIL_NEXT:
        resp = await client.get("/admin/login", params={"next": raw}, allow_redirects=False)
        assert resp.status == 303
        assert resp.headers["Location"] == "/admin", raw


async def test_csrf_missing_or_wrong_is_403_and_changes_nothing(
    client: TestClient, admin_token: str
) -> None:
    csrf = await sign_in(client, admin_token)
    form = {"id": "csrf-app", "name": "CSRF", "rules": "https://csrf.example/**"}
    for token in (None, "", "wrong", csrf[:-1] + ("A" if csrf[-1] != "A" else "B")):
        data = dict(form) if token is None else {**form, "csrf_token": token}
        resp = await client.post("/admin/apps", data=data, allow_redirects=False)
        assert resp.status == 403, token
        assert resp.content_type == "application/problem+json"
        assert "CSRF" in (await resp.json())["detail"]
    resp = await client.post("/admin/logout", data={"csrf_token": "wrong"}, allow_redirects=False)
    assert resp.status == 403
    upload = FormData()
    upload.add_field("csrf_token", "wrong")
    upload.add_field("archive", b"PK\x05\x06" + b"\0" * 18, filename="x.zip")
    resp = await client.post("/admin/import", data=upload, allow_redirects=False)
    assert resp.status == 403
    assert "csrf-app" not in client.server.app[keys.LIBRARY].catalog.apps
    resp = await client.post(
        "/admin/apps", data={**form, "csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303
    assert "csrf-app" in client.server.app[keys.LIBRARY].catalog.apps


async def test_every_value_is_escaped(client: TestClient, admin_token: str) -> None:
    csrf = await sign_in(client, admin_token)
    evil = "<script>alert('app')</script>"
    resp = await client.post(
        "/admin/apps",
        data={"csrf_token": csrf, "id": "evil", "name": evil, "rules": "https://evil.test/**"},
    )
    assert resp.status == 200
    for path in ("/admin/apps", "/admin/apps/evil", "/admin/tester?url=https://evil.test/x"):
        html = await (await client.get(path)).text()
        assert "&lt;script&gt;alert(&#39;app&#39;)&lt;/script&gt;" in html, path
        assert "<script>alert" not in html, path
    resp = await client.get("/admin/aids?owner=<img src=x onerror=alert(1)>")
    html = await resp.text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'self'")


async def test_write_pin_and_publish_through_the_forms(
    client: TestClient, admin_token: str, learner: dict[str, str]
) -> None:
    csrf = await sign_in(client, admin_token)
    for path in (
        "/admin",
        "/admin/aids",
        "/admin/aids/new",
        "/admin/stale",
        "/admin/import",
        "/admin/audit",
        "/admin/tester",
        "/admin/contexts/hr-timeoff",
    ):
        assert (await client.get(path)).status == 200, path
    resp = await client.post(
        "/admin/aids/new",
        data={
            "csrf_token": csrf,
            "id": "console-aid",
            "title": "Carry over unused leave",
            "summary": "Quokka rules",
            "type": "howto",
            "apps": "hr",
            "body": "**Five days** carry over.",
            "review_interval_days": "90",
        },
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/admin/aids/console-aid?notice=created"
    page = await (await client.get("/admin/aids/console-aid")).text()
    etag_value = etag_of(page)

    # Preview (no JS): sanitized; the live preview endpoint answers JSON.
    resp = await client.post(
        "/admin/aids/console-aid",
        data={
            "csrf_token": csrf,
            "etag": etag_value,
            "title": "T",
            "action": "preview",
            "body": "<script>x()</script>\n\n**bold**",
        },
    )
    html = await resp.text()
    assert "<strong>bold</strong>" in html and "<script>x()" not in html
    resp = await client.post(
        "/admin/preview",
        data={"markdown": "<img src=x onerror=alert(1)>*hi*"},
        headers={"X-CSRF-Token": csrf},
    )
    preview = (await resp.json())["html"]
    assert "onerror" not in preview and "<em>hi</em>" in preview

    # Two editors saved from the same version: the second gets 412 and keeps its text.
    form = {
        "csrf_token": csrf,
        "etag": etag_value,
        "title": "Carry over unused leave",
        "apps": "hr",
        "body": "First editor.",
    }
    assert (
        await client.post("/admin/aids/console-aid", data=form, allow_redirects=False)
    ).status == 303
    resp = await client.post(
        "/admin/aids/console-aid", data={**form, "body": "Second editor."}, allow_redirects=False
    )
    assert resp.status == 412
    assert "Second editor." in await resp.text()

    # Pin to the time-off page, move it to the top, publish: the learner's suggest shows it.
    ctx_page = await (await client.get("/admin/contexts/hr-timeoff")).text()
    cetag = etag_of(ctx_page)
    resp = await client.post(
        "/admin/contexts/hr-timeoff/pins",
        data={"csrf_token": csrf, "etag": cetag, "aid": "console-aid", "move": "add"},
        allow_redirects=False,
    )
    assert resp.status == 303
    for _ in range(4):
        ctx_page = await (await client.get("/admin/contexts/hr-timeoff")).text()
        cetag = etag_of(ctx_page)
        resp = await client.post(
            "/admin/contexts/hr-timeoff/pins",
            data={"csrf_token": csrf, "etag": cetag, "aid": "console-aid", "move": "up"},
            allow_redirects=False,
        )
        assert resp.status == 303
    assert client.server.app[keys.LIBRARY].catalog.contexts["hr-timeoff"].aids[0] == "console-aid"
    page = await (await client.get("/admin/aids/console-aid")).text()
    etag_value = etag_of(page)
    resp = await client.post(
        "/admin/aids/console-aid/transition",
        data={"csrf_token": csrf, "etag": etag_value, "to": "published"},
        allow_redirects=False,
    )
    assert resp.status == 303
    resp = await client.post(
        "/api/v1/suggest",
        json={"url": "http://127.0.0.1:8080/demo/hr/timeoff.html"},
        headers=learner,
    )
    assert (await resp.json())["aids"][0]["id"] == "console-aid"

    history = await (await client.get("/admin/aids/console-aid/history?from=1&to=3")).text()
    assert "First editor." in history and "published" in history
    audit = await (await client.get("/admin/audit?target_id=console-aid")).text()
    assert "aid.published" in audit and "admin-1" in audit

    # Sign out: the session is gone.
    resp = await client.post("/admin/logout", data={"csrf_token": csrf}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/admin/signed-out"
    assert (await client.get("/admin", allow_redirects=False)).status == 303


async def test_session_cookie_flags(
    aiohttp_client: Any, make_settings: Any, admin_token: str
) -> None:
    from server.app import create_app

    for base_url, name, secure in (
        ("http://127.0.0.1:8080", "inflow_session", False),
        ("https://inflow.example", "__Host-inflow_session", True),
    ):
        client = await aiohttp_client(create_app(make_settings(base_url=base_url)))
        store = client.server.app[keys.ADMIN_SESSIONS]
        assert store.cookie_name == name
        from aiohttp import web

        response = web.Response()
        store.set_cookie(response, "sid")
        header = response.cookies[name].output(header="").strip()
        assert header.startswith(f"{name}=sid")
        assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header
        assert ("Secure" in header) is secure
        await client.close()


async def test_sign_in_starts_on_the_configured_host(
    aiohttp_client: Any, make_settings: Any
) -> None:
    """Opened on another host name than base_url (localhost vs 127.0.0.1), the state cookie
    would be set on a host the Keycloak callback never reaches: start over on base_url's host."""
    from server.app import create_app

    client = await aiohttp_client(create_app(make_settings(base_url="http://localhost:8080")))
    resp = await client.get("/admin/login", params={"next": "/admin/aids"}, allow_redirects=False)
    assert resp.status == 303
    location = urlsplit(resp.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == (
        "http",
        "localhost:8080",
        "/admin/login",
    )
    assert parse_qs(location.query) == {"next": ["/admin/aids"], "moved": ["1"]}


# -- what each role sees and may do: the permission table, never the console's own role lists --

DRAFT = "/admin/aids/exp-per-diem-2027"  # a draft aid of the demo content
# operation -> (page, what on that page shows the action to a user who may take it)
ACTIONS: list[tuple[str, str, str]] = [
    ("aid.create", "/admin/aids", 'href="/admin/aids/new"'),
    ("aid.update", DRAFT, 'value="save"'),
    ("aid.transition", DRAFT, 'class="step-review"'),
    ("aid.publish", DRAFT, 'class="step-published"'),
    ("aid.delete", DRAFT, f'action="{DRAFT}/delete"'),
    ("app.write", "/admin/apps", 'action="/admin/apps"'),
    ("app.write", "/admin/apps/hr", ">Save app<"),
    ("app.write", "/admin/apps/hr", 'action="/admin/apps/hr/delete"'),
    ("context.write", "/admin/apps/hr", 'action="/admin/apps/hr/contexts"'),
    ("context.write", "/admin/contexts/hr-timeoff", ">Save context<"),
    ("context.write", "/admin/contexts/hr-timeoff", 'action="/admin/contexts/hr-timeoff/pins"'),
    ("mentor.write", "/admin/mentors", 'href="/admin/mentors/new"'),
    ("mentor.write", "/admin/mentors/ana-costa", ">Save mentor<"),
    ("mentor.vet", "/admin/mentors", 'action="/admin/mentors/ana-costa/vetting"'),
    ("mentor.vet", "/admin/mentors/ana-costa", 'action="/admin/mentors/ana-costa/vetting"'),
    ("import", "/admin/import", 'action="/admin/import"'),
    ("export", "/admin/import", 'href="/admin/export"'),
    ("audit.read", "/admin", 'href="/admin/audit"'),
    ("analytics.read", "/admin", 'href="/admin/analytics"'),
]
ROLES = {
    "author": ("learner", "author"),
    "reviewer": ("learner", "reviewer"),
    "admin": ("learner", "admin"),
}


@pytest.mark.parametrize("who", sorted(ROLES))
async def test_each_role_sees_exactly_the_actions_the_permission_table_allows(
    client: TestClient, tokens: TokenMaker, who: str
) -> None:
    """The console decided its buttons from role lists of its own, which had drifted from the
    routes and the service: a reviewer-only user was shown the export link the service then
    refused with 403. Every button now follows server/permissions.py."""
    roles = ROLES[who]
    await sign_in(client, tokens.token(sub=f"{who}-1", roles=roles))
    pages: dict[str, str] = {}
    for operation, path, marker in ACTIONS:
        if path not in pages:
            resp = await client.get(path)
            assert resp.status == 200, (who, path)
            pages[path] = await resp.text()
        assert (marker in pages[path]) is may(roles, operation), (who, operation, path, marker)
    # A published aid is edited only with aid.publish (state-dependent): others see it read-only.
    published = await (await client.get("/admin/aids/ask-for-help")).text()
    editable = may(roles, "aid.update") and may(roles, "aid.publish")
    assert ('value="save"' in published) is editable, who
    assert (re.search(r'<input name="title"[^>]* readonly', published) is None) is editable, who
    # The link works for whoever is shown it (the service reads the same table).
    resp = await client.get("/admin/export", allow_redirects=False)
    assert resp.status == (200 if may(roles, "export") else 403), who
    # What the workflow promises, in words: only reviewers and admins publish, only admins delete.
    assert ('class="step-published"' in pages[DRAFT]) is (who != "author")
    assert (f'action="{DRAFT}/delete"' in pages[DRAFT]) is (who == "admin")


def _upload(csrf: str) -> FormData:
    upload = FormData()
    upload.add_field("csrf_token", csrf)
    upload.add_field("archive", b"PK\x05\x06" + b"\0" * 18, filename="x.zip")
    return upload


async def test_a_post_the_table_forbids_is_refused_even_without_its_button(
    client: TestClient, tokens: TokenMaker
) -> None:
    """Hiding a button is no protection: a POST crafted by hand (or from a page opened before
    the roles changed) must be refused with the 403 page and change nothing."""
    app = client.server.app
    library = app[keys.LIBRARY]
    for who in ("author", "reviewer"):
        csrf = await sign_in(client, tokens.token(sub=f"{who}-2", roles=ROLES[who]))
        refused: list[tuple[str, Any]] = [
            ("/admin/apps", {"id": "sneaky", "name": "Sneaky", "rules": "https://s.example/**"}),
            ("/admin/apps/hr", {"name": "Renamed", "rules": "https://s.example/**"}),
            ("/admin/apps/hr/delete", {}),
            ("/admin/apps/hr/contexts", {"id": "sneaky-ctx", "name": "S", "rule": "*://s/**"}),
            ("/admin/contexts/hr-timeoff/pins", {"aid": "exp-per-diem-2027", "move": "add"}),
            ("/admin/contexts/hr-timeoff/delete", {}),
            (f"{DRAFT}/delete", {}),
            ("/admin/mentors/new", {"id": "sneaky-mentor", "name": "S", "contact": "@s"}),
            ("/admin/mentors/ana-costa", {"name": "Renamed", "contact": "@s", "active": "1"}),
            ("/admin/mentors/ana-costa/vetting", {"vetted": "0"}),
            ("/admin/mentors/ana-costa/delete", {}),
            ("/admin/import", _upload(csrf)),
        ]
        for path, data in refused:
            if isinstance(data, dict):
                data = {**data, "csrf_token": csrf}
            resp = await client.post(path, data=data, allow_redirects=False)
            assert resp.status == 403, (who, path, resp.status)
            assert resp.content_type == "text/html", (who, path)
            assert "Not allowed" in await resp.text(), (who, path)
        resp = await client.get("/admin/audit", allow_redirects=False)
        assert resp.status == 403, who
    catalog = library.catalog
    assert "sneaky" not in catalog.apps and catalog.apps["hr"].name != "Renamed"
    assert "hr-timeoff" in catalog.contexts and "sneaky-ctx" not in catalog.contexts
    assert "exp-per-diem-2027" not in catalog.contexts["hr-timeoff"].aids
    assert "exp-per-diem-2027" in catalog.aids
    mentor_page = await (await client.get("/admin/mentors/ana-costa")).text()
    assert '<span class="badge published">vetted</span>' in mentor_page
    assert "Renamed" not in mentor_page

    # An author sending the publish step by hand: refused by the table's aid.publish.
    csrf = await sign_in(client, tokens.token(sub="author-3", roles=ROLES["author"]))
    page = await (await client.get(DRAFT)).text()
    etag = etag_of(page)
    resp = await client.post(
        f"{DRAFT}/transition",
        data={"csrf_token": csrf, "etag": etag, "to": "published"},
        allow_redirects=False,
    )
    assert resp.status == 403
    assert library.catalog.aids["exp-per-diem-2027"].status == "draft"


# -- a refused form comes back as typed, with a message beside each field ------------------------


def _field_error(html: str, name: str) -> str:
    found = re.search(rf'<span class="field-error" id="{name}-error">([^<]*)</span>', html)
    assert found, f"no message beside {name!r}"
    return found.group(1)


async def test_a_refused_form_comes_back_with_what_was_typed_and_each_fields_message(
    client: TestClient, admin_token: str
) -> None:
    """Every console form is shown again by one helper after a refusal: status 422, the values
    the user typed (never the stored ones, never lost), and the message beside its field."""
    csrf = await sign_in(client, admin_token)
    typed = "Payroll <b>bold</b>"
    resp = await client.post(
        "/admin/apps",
        data={"csrf_token": csrf, "id": "Not A Slug!", "name": typed, "rules": "https://p.ex/**"},
    )
    assert resp.status == 422
    html = await resp.text()
    assert 'value="Payroll &lt;b&gt;bold&lt;/b&gt;"' in html and "<b>bold" not in html
    assert "https://p.ex/**</textarea>" in html
    assert _field_error(html, "id")
    assert 'name="id" type="text" value="Not A Slug!"' in html

    resp = await client.post(
        "/admin/aids/new",
        data={
            "csrf_token": csrf,
            "id": "typed-aid",
            "title": "",
            "summary": "Kept summary",
            "apps": ["hr", "crm"],
            "tags": "one, two",
            "body": "Words I do not want to type again.",
        },
    )
    assert resp.status == 422
    html = await resp.text()
    assert _field_error(html, "title")
    assert "Words I do not want to type again.</textarea>" in html
    assert 'value="Kept summary"' in html and 'value="one, two"' in html
    assert html.count("checked") >= 2  # both apps stay ticked

    # The context form on the app page: its own values and messages, the app form untouched.
    resp = await client.post(
        "/admin/apps/hr/contexts",
        data={
            "csrf_token": csrf,
            "id": "typed-ctx",
            "name": "Typed",
            "rules": "*://x/**\nnot a rule",
        },
    )
    assert resp.status == 422
    html = await resp.text()
    assert "not a rule" in _field_error(html, "rules")
    assert 'value="typed-ctx"' in html and "*://x/**\nnot a rule</textarea>" in html
    hr_name = client.server.app[keys.LIBRARY].catalog.apps["hr"].name
    assert f'name="name" type="text" value="{hr_name}"' in html

    # Stale ETag: 412, and the text stays.
    resp = await client.post(
        "/admin/mentors/ana-costa",
        data={"csrf_token": csrf, "etag": '"stale"', "name": "New name", "contact": "@ana"},
    )
    assert resp.status == 412
    assert 'value="New name"' in await resp.text()


# -- limits: declared once, in server/models.py ---------------------------------------------------

TEMPLATES = Path(__file__).resolve().parent.parent / "server" / "templates" / "admin"


async def test_form_limits_come_from_the_resource_declarations(
    client: TestClient, admin_token: str
) -> None:
    """The templates typed their own limits, which drifted from the validators (the app
    description allowed 2,000 characters in the form while the service stored 9,000). Forms
    now take maxlength, min, max, pattern and required from the declarations; none is typed."""
    for template in sorted(TEMPLATES.glob("*.html")):
        typed = re.findall(r'(?:maxlength|minlength|pattern|min|max)="', template.read_text())
        assert not typed, f"{template.name} types a limit: {typed}"

    def declared(cls: type, name: str) -> dict[str, Any]:
        schema = TypeAdapter(cls).json_schema(ref_template="#/components/schemas/{model}")
        return dict(schema["properties"][name])

    await sign_in(client, admin_token)
    checks = [
        ("/admin/aids/new", Aid, "title", "maxLength", "maxlength"),
        ("/admin/aids/new", Aid, "summary", "maxLength", "maxlength"),
        ("/admin/aids/new", Aid, "review_interval_days", "maximum", "max"),
        ("/admin/apps", App, "description", "maxLength", "maxlength"),
        ("/admin/mentors/new", Mentor, "name", "maxLength", "maxlength"),
    ]
    for path, cls, name, key, attr in checks:
        html = await (await client.get(path)).text()
        tag = re.search(rf'<(?:input|textarea) name="{name}"[^>]*>', html)  # long text: textarea
        assert tag, (path, name)
        assert f'{attr}="{declared(cls, name)[key]}"' in tag.group(0), (path, name, tag.group(0))
    html = await (await client.get("/admin/aids/new")).text()
    title = re.search(r'<input name="title"[^>]*>', html)
    assert title and " required" in title.group(0)  # required in the declaration
    summary = re.search(r'<input name="summary"[^>]*>', html)
    assert summary and " required" not in summary.group(0)
