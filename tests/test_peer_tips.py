"""Tips from colleagues (server/peer/tips.py, tips_api.py, console/tips.py): written on a page,
moderated by the app's owners and reviewers, shown in the panel to the page's audience.

Content of another company (not the demo's): a ledger app owned by olga@ledger.example with a
public page (invoices) and a page whose only aid is for the finance group (payroll), a wiki app
owned by someone else, a vetted mentor of the ledger and a mentor who is not vetted.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jsonschema_rs
import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.peer.models import Notification, Tip
from server.peer.tips_api import panel_tip_schema
from server.settings import Settings
from tests.keycloak import access_token, auth_settings
from tests.test_admin_console import sign_in
from tests.test_admin_keycloak import _keycloak_login, free_port
from tests.tokens import TokenMaker

INVOICES = "https://ledger.example.net/invoices/new"
PAYROLL = "https://ledger.example.net/payroll/run"
LEDGER_HOME = "https://ledger.example.net/settings"
WIKI = "https://wiki.example.net/pages/1"
UNMAPPED = "https://elsewhere.example.org/"

APPS = {
    "ledger": """\
id: ledger
name: Acme Ledger
owners: [Olga@Ledger.example]
rules:
  - pattern: "https://ledger.example.net/**"
contexts:
  - id: ledger-invoices
    name: New invoice
    rule: "https://ledger.example.net/invoices/new"
    aids: [invoice-howto]
  - id: ledger-payroll
    name: Payroll run
    rule: "https://ledger.example.net/payroll/**"
    aids: [payroll-secret]
""",
    "wiki": """\
id: wiki
name: Acme Wiki
owners: [walt@wiki.example]
rules:
  - pattern: "https://wiki.example.net/**"
contexts:
  - id: wiki-page
    name: A page
    rule: "https://wiki.example.net/pages/*"
""",
}


def _aid(aid_id: str, apps: str, audience: str) -> str:
    return f"""---
id: {aid_id}
title: {aid_id.replace("-", " ").title()}
summary: About {aid_id}
type: howto
apps: {apps}
audience: {audience}
owner: team@acme.example
status: published
---
Body of {aid_id}.
"""


AIDS = {
    "invoice-howto": _aid("invoice-howto", "[ledger]", "[]"),
    "payroll-secret": _aid("payroll-secret", "[ledger]", "[finance]"),
}
MENTORS = {
    "mira-ito": """\
id: mira-ito
name: Mira Ito
contact: mira@acme.example
apps: [ledger]
subject: mentor-1
vetted: true
vetted_by: ledger-team
""",
    "nico-unvetted": """\
id: nico-unvetted
name: Nico Unvetted
contact: nico@acme.example
apps: [ledger]
subject: mentor-2
""",
}


@pytest.fixture
def content(tmp_path: Path) -> Path:
    root = tmp_path / "acme"
    for folder, files in (("apps", APPS), ("aids", AIDS), ("mentors", MENTORS)):
        (root / folder).mkdir(parents=True)
        for name, text in files.items():
            suffix = ".md" if folder == "aids" else ".yaml"
            (root / folder / f"{name}{suffix}").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def make_client(
    aiohttp_client: Any, make_settings: Callable[..., Settings], content: Path
) -> Callable[..., Any]:
    async def make(**changes: Any) -> TestClient:
        settings = make_settings(content_dir=content, serve_demo=False, **changes)
        return await aiohttp_client(create_app(settings))

    return make


@pytest.fixture
async def client(make_client: Callable[..., Any]) -> TestClient:
    return await make_client()


class People:
    """Headers of the people of these tests."""

    def __init__(self, tokens: TokenMaker) -> None:
        self.tokens = tokens

    def learner(self, sub: str = "learner-1", groups: tuple[str, ...] = (), **kw: Any) -> Any:
        return self.tokens.auth(sub=sub, roles=("learner",), groups=groups, **kw)

    @property
    def ann(self) -> dict[str, str]:
        return self.learner("ann", name="Ann Author", email="ann@acme.example")

    @property
    def ben(self) -> dict[str, str]:
        return self.learner("ben", name="Ben Other")

    @property
    def fin(self) -> dict[str, str]:
        return self.learner("fin", groups=("finance",), name="Fin Ance")

    @property
    def olga(self) -> dict[str, str]:
        """The ledger's owner: a learner by role, an owner by e-mail (any case)."""
        return self.learner("olga", email="olga@ledger.EXAMPLE", name="Olga Owner")

    @property
    def walt(self) -> dict[str, str]:
        """The wiki's owner, who does not own the ledger."""
        return self.learner("walt", email="walt@wiki.example", name="Walt Wiki")

    @property
    def reviewer(self) -> dict[str, str]:
        return self.tokens.auth(sub="rev", roles=("reviewer",), name="Rita Reviewer")

    @property
    def mentor(self) -> dict[str, str]:
        return self.tokens.auth(sub="mentor-1", roles=("mentor",), name="Mira Ito")


@pytest.fixture
def who(tokens: TokenMaker) -> People:
    return People(tokens)


async def write(
    client: TestClient, headers: dict[str, str], body: str, url: str = INVOICES, **kw: Any
) -> Any:
    resp = await client.post(
        "/api/v1/peer/tips", json={"url": url, "title": "", "body": body, **kw}, headers=headers
    )
    return resp


async def new_tip(client: TestClient, headers: dict[str, str], body: str, **kw: Any) -> str:
    resp = await write(client, headers, body, **kw)
    assert resp.status == 201, await resp.text()
    tip_id: str = (await resp.json())["id"]
    return tip_id


async def approve(client: TestClient, headers: dict[str, str], tip_id: str) -> Any:
    return await client.post(f"/api/v1/admin/tips/{tip_id}/approve", headers=headers)


async def panel(client: TestClient, headers: dict[str, str], app: str, ctx: str) -> list[Any]:
    """What page_tips gives the panel of a page (the function the page endpoint calls)."""
    from server.peer.tips import page_tips

    app_ = client.server.app
    identity = await app_[keys.AUTHENTICATOR].authenticate(
        headers["Authorization"].removeprefix("Bearer ")
    )
    tags = None if "admin" in identity.roles else frozenset(identity.audience_tags)
    return await page_tips(app_, identity, app, ctx, tags)


async def audit(client: TestClient, target: str) -> list[dict[str, Any]]:
    storage = client.server.app[keys.LIBRARY].storage
    entries: list[dict[str, Any]] = await storage.call(
        storage.audit_page_sync, {"target_type": "tip", "target_id": target}, None, 50
    )
    return entries


# -- writing, mine, moderation --------------------------------------------------------------------


async def test_a_tip_waits_for_moderation_then_shows_on_its_page(
    client: TestClient, who: People
) -> None:
    resp = await write(client, who.ann, "Use **Ctrl+S** to save a draft invoice.", show_name=True)
    assert resp.status == 201, await resp.text()
    tip = await resp.json()
    assert tip["status"] == "pending"
    assert tip["app"] == {"id": "ledger", "name": "Acme Ledger"}
    assert tip["context"] == {"id": "ledger-invoices", "name": "New invoice"}
    assert tip["author_name"] == "Ann Author"
    assert "<strong>Ctrl+S</strong>" in tip["body_html"]
    assert await panel(client, who.ben, "ledger", "ledger-invoices") == []

    resp = await approve(client, who.reviewer, tip["id"])
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "approved"
    [shown] = await panel(client, who.ben, "ledger", "ledger-invoices")
    assert shown["id"] == tip["id"]
    assert shown["author"] == "Ann Author"
    assert shown["mine"] is False
    assert (await panel(client, who.ann, "ledger", "ledger-invoices"))[0]["mine"] is True
    # another page of the app does not show it
    assert await panel(client, who.ben, "ledger", "ledger-payroll") == []
    [entry] = await audit(client, tip["id"])
    assert entry["action"] == "tip.approve"
    assert entry["who"]["subject"] == "rev"


async def test_without_show_name_the_author_is_a_colleague(client: TestClient, who: People) -> None:
    tip_id = await new_tip(client, who.ann, "Tab through the line items.")
    await approve(client, who.reviewer, tip_id)
    [shown] = await panel(client, who.ben, "ledger", "ledger-invoices")
    assert shown["author_name"] == ""
    assert shown["author"] == "A colleague"
    rows = await client.server.app[keys.PEER].list(Tip)
    assert [r.author_name for r in rows] == [""]  # the name is not even stored


async def test_a_page_of_the_app_that_no_context_matches_is_the_whole_app(
    client: TestClient, who: People
) -> None:
    tip_id = await new_tip(client, who.ann, "Settings live under the cog.", url=LEDGER_HOME)
    await approve(client, who.reviewer, tip_id)
    # a whole-app tip shows on every page of the app
    assert [t["id"] for t in await panel(client, who.ben, "ledger", "ledger-invoices")] == [tip_id]


async def test_unmapped_page_and_limits_are_refused(client: TestClient, who: People) -> None:
    resp = await write(client, who.ann, "A tip", url=UNMAPPED)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert "not a mapped app" in (await resp.json())["detail"]
    for body in ("", "   \n\t ", "\u200b\u202e", "x" * 1001):
        resp = await write(client, who.ann, body)
        assert resp.status == 422, body
        problem = await resp.json()
        assert problem["fields"] == ["body"], problem
    resp = await write(client, who.ann, "x" * 1000)
    assert resp.status == 201
    resp = await write(client, who.ann, "ok", show_name="yes")
    assert resp.status == 422
    resp = await client.post(
        "/api/v1/peer/tips", json={"url": INVOICES, "body": "a", "extra": 1}, headers=who.ann
    )
    assert resp.status == 422
    assert (await resp.json())["fields"] == ["extra"]


async def test_bodies_are_sanitised_in_and_out(client: TestClient, who: People) -> None:
    body = (
        "Hi\x00\x07 there\r\n<script>alert('x')</script>\n\n"
        "[click](javascript:alert(1)) <img src=x onerror=alert(2)> "
        '<a href="https://ok.example/">fine</a> <iframe src="https://evil.example"></iframe>'
        "\u202egnp.exe"
    )
    tip_id = await new_tip(client, who.ann, body)
    [stored] = await client.server.app[keys.PEER].list(Tip)
    assert "\x00" not in stored.body and "\x07" not in stored.body and "\r" not in stored.body
    assert "\u202e" not in stored.body
    resp = await approve(client, who.reviewer, tip_id)
    html = (await resp.json())["body_html"]
    [shown] = await panel(client, who.ben, "ledger", "ledger-invoices")
    for out in (html, shown["body_html"]):
        assert "<script" not in out
        assert 'href="javascript' not in out  # the link is left as plain text
        assert "onerror" not in out
        assert "<iframe" not in out
        assert '<a href="https://ok.example/"' in out


async def test_mine_shows_status_and_the_rejection_reason(client: TestClient, who: People) -> None:
    first = await new_tip(client, who.ann, "First tip")
    second = await new_tip(client, who.ann, "Second tip")
    await new_tip(client, who.ben, "Ben's tip")
    resp = await client.post(
        f"/api/v1/admin/tips/{first}/reject",
        json={"reason": "Please say which menu."},
        headers=who.reviewer,
    )
    assert resp.status == 200, await resp.text()
    resp = await client.get("/api/v1/peer/tips/mine", headers=who.ann)
    mine = (await resp.json())["tips"]
    assert [t["id"] for t in mine] == [second, first]
    assert mine[1]["status"] == "rejected"
    assert mine[1]["reject_reason"] == "Please say which menu."
    assert mine[0]["status"] == "pending"
    # a rejection needs a reason
    resp = await client.post(
        f"/api/v1/admin/tips/{second}/reject", json={"reason": " "}, headers=who.reviewer
    )
    assert resp.status == 422
    [entry] = await audit(client, first)
    assert entry["action"] == "tip.reject"
    assert entry["detail"]["comment"] == "Please say which menu."


async def test_an_authors_edit_goes_back_to_moderation(client: TestClient, who: People) -> None:
    tip_id = await new_tip(client, who.ann, "Old words")
    await approve(client, who.reviewer, tip_id)
    resp = await client.put(
        f"/api/v1/peer/tips/{tip_id}", json={"body": "New words"}, headers=who.ann
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "pending"
    assert await panel(client, who.ben, "ledger", "ledger-invoices") == []
    # nobody else edits or deletes it: it is not theirs (404, its existence not disclosed)
    resp = await client.put(f"/api/v1/peer/tips/{tip_id}", json={"body": "Mine!"}, headers=who.ben)
    assert resp.status == 404
    resp = await client.delete(f"/api/v1/peer/tips/{tip_id}", headers=who.ben)
    assert resp.status == 404


async def test_a_moderators_edit_keeps_the_status_and_is_audited(
    client: TestClient, who: People
) -> None:
    tip_id = await new_tip(client, who.ann, "Sav with ctrl s")
    await approve(client, who.reviewer, tip_id)
    resp = await client.put(
        f"/api/v1/admin/tips/{tip_id}", json={"body": "Save with Ctrl+S."}, headers=who.olga
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "approved"
    [shown] = await panel(client, who.ben, "ledger", "ledger-invoices")
    assert "Save with Ctrl+S." in shown["body_html"]
    actions = [e["action"] for e in await audit(client, tip_id)]
    assert actions == ["tip.edit", "tip.approve"]


async def test_hide_takes_a_tip_out_at_once(client: TestClient, who: People) -> None:
    tip_id = await new_tip(client, who.ann, "Soon hidden")
    await approve(client, who.reviewer, tip_id)
    resp = await client.post(f"/api/v1/admin/tips/{tip_id}/hide", headers=who.olga)
    assert resp.status == 200
    assert await panel(client, who.ben, "ledger", "ledger-invoices") == []
    resp = await client.get("/api/v1/admin/tips?status=hidden", headers=who.reviewer)
    assert [t["id"] for t in (await resp.json())["tips"]] == [tip_id]


async def test_deletions_are_audited_without_the_body(client: TestClient, who: People) -> None:
    own = await new_tip(client, who.ann, "Secret words one")
    moderated = await new_tip(client, who.ann, "Secret words two")
    resp = await client.delete(f"/api/v1/peer/tips/{own}", headers=who.ann)
    assert resp.status == 204
    resp = await client.delete(f"/api/v1/admin/tips/{moderated}", headers=who.reviewer)
    assert resp.status == 204
    assert await client.server.app[keys.PEER].list(Tip) == []
    [mine] = await audit(client, own)
    [theirs] = await audit(client, moderated)
    assert mine["action"] == "tip.delete_own" and mine["who"]["subject"] == "ann"
    assert theirs["action"] == "tip.delete" and theirs["who"]["subject"] == "rev"
    for entry in (mine, theirs):
        assert "Secret" not in str(entry)
        assert entry["detail"]["app"] == "ledger"


# -- who may moderate ----------------------------------------------------------------------------


async def test_who_may_moderate(client: TestClient, who: People) -> None:
    """A learner cannot moderate; the owner of another app cannot; the app's owner (a learner
    by role, matched by e-mail in any case) and a reviewer can."""
    tip_id = await new_tip(client, who.ann, "A ledger tip")
    for headers in (who.ben, who.walt, who.mentor):
        resp = await approve(client, headers, tip_id)
        assert resp.status == 403, await resp.text()
        assert resp.content_type == "application/problem+json"
    resp = await client.get("/api/v1/admin/tips", headers=who.ben)
    assert resp.status == 200
    assert (await resp.json())["tips"] == []  # a learner who owns no app moderates nothing
    # the wiki's owner sees the wiki's queue only, without the ledger's tip
    resp = await client.get("/api/v1/admin/tips", headers=who.walt)
    assert resp.status == 200
    assert (await resp.json())["tips"] == []
    resp = await client.get("/api/v1/admin/tips?app=ledger", headers=who.olga)
    assert [t["id"] for t in (await resp.json())["tips"]] == [tip_id]
    assert (await approve(client, who.olga, tip_id)).status == 200
    assert (
        await client.post(f"/api/v1/admin/tips/{tip_id}/hide", headers=who.reviewer)
    ).status == 200
    resp = await client.get("/api/v1/admin/tips?status=bogus", headers=who.reviewer)
    assert resp.status == 422


async def test_owners_get_one_email_per_new_pending_tip(
    make_client: Callable[..., Any], who: People, smtp_server: Any
) -> None:
    client = await make_client(**smtp_server.settings())
    tip_id = await new_tip(client, who.ann, "Mail me")
    [message] = await smtp_server.wait_for(1)
    assert message.rcpt_tos == ["Olga@Ledger.example"]
    assert "Acme Ledger" in message.subject
    assert "/admin/tips?app=ledger&status=pending" in message.text
    queued = await client.server.app[keys.PEER].list(Notification)
    assert [(n.kind, n.ref) for n in queued] == [("tip.pending", tip_id)]
    # the wiki has its own owner; a wiki tip is not mailed to the ledger's
    await new_tip(client, who.ann, "Wiki tip", url=WIKI)
    [_, wiki] = await smtp_server.wait_for(2)
    assert wiki.rcpt_tos == ["walt@wiki.example"]


# -- audience, reports, endorsements --------------------------------------------------------------


async def test_a_restricted_pages_tip_is_hidden_from_others(
    client: TestClient, who: People
) -> None:
    """The payroll page's only aid is for the finance group: its tips are too."""
    tip_id = await new_tip(client, who.fin, "Run payroll before noon.", url=PAYROLL)
    [tip] = await client.server.app[keys.PEER].list(Tip)
    assert tip.audience == ("finance",)
    await approve(client, who.reviewer, tip_id)
    assert [t["id"] for t in await panel(client, who.fin, "ledger", "ledger-payroll")] == [tip_id]
    assert await panel(client, who.ben, "ledger", "ledger-payroll") == []
    # nor can an outsider report it (it is not shown to them)
    resp = await client.post(
        f"/api/v1/peer/tips/{tip_id}/report", json={"reason": "x"}, headers=who.ben
    )
    assert resp.status == 404


async def test_a_report_hides_the_tip_from_its_reporter_and_flags_it(
    client: TestClient, who: People
) -> None:
    tip_id = await new_tip(client, who.ann, "Questionable shortcut")
    await approve(client, who.reviewer, tip_id)
    resp = await client.post(
        f"/api/v1/peer/tips/{tip_id}/report", json={"reason": "Skips the approval"}, headers=who.ben
    )
    assert resp.status == 201, await resp.text()
    assert await panel(client, who.ben, "ledger", "ledger-invoices") == []
    assert [t["id"] for t in await panel(client, who.fin, "ledger", "ledger-invoices")] == [tip_id]
    resp = await client.post(
        f"/api/v1/peer/tips/{tip_id}/report", json={"reason": "again"}, headers=who.ben
    )
    assert resp.status == 409
    resp = await client.get("/api/v1/admin/tips?status=approved", headers=who.olga)
    [queued] = (await resp.json())["tips"]
    assert queued["report_count"] == 1
    assert [r["reason"] for r in queued["reports"]] == ["Skips the approval"]


async def test_a_vetted_mentor_endorses_and_the_panel_says_so(
    client: TestClient, who: People
) -> None:
    older = await new_tip(client, who.ann, "Older, endorsed")
    newer = await new_tip(client, who.ben, "Newer")
    # only approved tips are endorsed
    resp = await client.post(f"/api/v1/peer/tips/{older}/endorse", headers=who.mentor)
    assert resp.status == 404
    for tip_id in (older, newer):
        await approve(client, who.reviewer, tip_id)
    # a learner, and a mentor who is not vetted, cannot endorse
    resp = await client.post(f"/api/v1/peer/tips/{older}/endorse", headers=who.ben)
    assert resp.status == 403
    unvetted = who.tokens.auth(sub="mentor-2", roles=("mentor",))
    resp = await client.post(f"/api/v1/peer/tips/{older}/endorse", headers=unvetted)
    assert resp.status == 403
    resp = await client.post(f"/api/v1/peer/tips/{older}/endorse", headers=who.mentor)
    assert resp.status == 200, await resp.text()
    shown = await panel(client, who.fin, "ledger", "ledger-invoices")
    assert [t["id"] for t in shown] == [older, newer]  # endorsed first, then newest
    assert shown[0]["endorsed"] == "Endorsed by Mira Ito"
    assert shown[0]["endorsed_by"]["name"] == "Mira Ito"
    assert shown[1]["endorsed"] == ""


# -- rate limit ---------------------------------------------------------------------------------


async def test_writes_are_rate_limited_per_person(
    make_client: Callable[..., Any], who: People
) -> None:
    client = await make_client(peer_writes_per_hour=3)
    for i in range(3):
        assert (await write(client, who.ann, f"tip {i}")).status == 201
    resp = await write(client, who.ann, "one too many")
    assert resp.status == 429
    assert resp.content_type == "application/problem+json"
    assert int(resp.headers["Retry-After"]) > 0
    # another person is not held back
    assert (await write(client, who.ben, "ben's tip")).status == 201


# -- the console -------------------------------------------------------------------------------


async def test_console_queue_approve_reject_with_csrf(
    client: TestClient, who: People, tokens: TokenMaker
) -> None:
    tip_id = await new_tip(
        client, who.ann, "<script>alert(1)</script>\n\n**Bold** tip", show_name=True
    )
    other = await new_tip(client, who.ann, "Another tip")
    resp = await client.post(f"/api/v1/peer/tips/{other}/report", json={}, headers=who.ben)
    assert resp.status == 404  # pending: nobody else sees it yet
    csrf = await sign_in(client, tokens.token(sub="rev", roles=("reviewer",)))
    resp = await client.get("/admin/tips?app=ledger")
    assert resp.status == 200
    page = await resp.text()
    assert "<strong>Bold</strong>" in page
    assert "<script>alert(1)" not in page
    assert "Ann Author" in page and "New invoice" in page and "Acme Ledger" in page
    # without the CSRF token nothing happens
    resp = await client.post(f"/admin/tips/{tip_id}/approve", data={}, allow_redirects=False)
    assert resp.status == 403
    resp = await client.post(
        f"/admin/tips/{tip_id}/approve",
        data={"csrf_token": csrf, "app": "ledger", "status": "pending"},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/admin/tips?status=pending&app=ledger&notice=approved"
    assert [t["id"] for t in await panel(client, who.ben, "ledger", "ledger-invoices")] == [tip_id]
    # a reject without a reason shows the queue again with the problem
    resp = await client.post(
        f"/admin/tips/{other}/reject",
        data={"csrf_token": csrf, "reason": ""},
        allow_redirects=False,
    )
    assert resp.status == 422
    assert "reason" in (await resp.text())
    resp = await client.post(
        f"/admin/tips/{other}/reject",
        data={"csrf_token": csrf, "reason": "Too vague"},
        allow_redirects=False,
    )
    assert resp.status == 303
    resp = await client.get("/admin/tips?status=rejected")
    assert "Too vague" in await resp.text()


async def test_console_lets_owners_in_and_keeps_learners_out(
    client: TestClient, who: People, tokens: TokenMaker
) -> None:
    tip_id = await new_tip(client, who.ann, "For the owner")
    await sign_in(client, tokens.token(sub="ben", roles=("learner",)))
    resp = await client.get("/admin/tips")
    assert resp.status == 403
    client.session.cookie_jar.clear()
    csrf = await sign_in(
        client, tokens.token(sub="olga", roles=("learner",), email="olga@ledger.example")
    )
    resp = await client.get("/admin/tips")
    assert resp.status == 200
    page = await resp.text()
    assert tip_id in page
    assert 'href="/admin/tips" aria-current="page">Tips</a>' in page  # in the owner's nav
    resp = await client.post(
        f"/admin/tips/{tip_id}/hide", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303
    [tip] = await client.server.app[keys.PEER].list(Tip)
    assert tip.status == "hidden" and tip.moderated_by == "olga"


# -- the OpenAPI document ------------------------------------------------------------------------


async def test_the_answers_are_what_the_openapi_document_declares(
    client: TestClient, who: People
) -> None:
    """Write, mine, change, report, endorse, the queue and each moderation answer, checked
    against their schemas in the served document (derived from the Tip declaration)."""
    doc = await (await client.get("/api/v1/openapi.json")).json()

    def check(path: str, method: str, status: str, body: Any) -> None:
        op = doc["paths"][path][method]
        schema = op["responses"][status]["content"]["application/json"]["schema"]
        validator = jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})
        validator.validate(body)

    one, peer, admin = "/{tip_id}", "/api/v1/peer/tips", "/api/v1/admin/tips"
    resp = await write(client, who.ann, "Checked **tip**", show_name=True)
    tip = await resp.json()
    check(peer, "post", "201", tip)
    tid = tip["id"]
    resp = await client.put(f"{peer}/{tid}", json={"body": "Changed"}, headers=who.ann)
    check(peer + one, "put", "200", await resp.json())
    resp = await approve(client, who.reviewer, tid)
    check(admin + one + "/approve", "post", "200", await resp.json())
    resp = await client.post(f"{peer}/{tid}/endorse", headers=who.mentor)
    check(peer + one + "/endorse", "post", "200", await resp.json())
    resp = await client.post(f"{peer}/{tid}/report", json={"reason": "hm"}, headers=who.ben)
    check(peer + one + "/report", "post", "201", await resp.json())
    resp = await client.put(f"{admin}/{tid}", json={"body": "Edited"}, headers=who.reviewer)
    check(admin + one, "put", "200", await resp.json())
    resp = await client.post(f"{admin}/{tid}/reject", json={"reason": "No"}, headers=who.olga)
    check(admin + one + "/reject", "post", "200", await resp.json())
    resp = await client.post(f"{admin}/{tid}/hide", headers=who.olga)
    check(admin + one + "/hide", "post", "200", await resp.json())
    check(admin, "get", "200", await (await client.get(admin, headers=who.reviewer)).json())
    check(
        peer + "/mine",
        "get",
        "200",
        await (await client.get(peer + "/mine", headers=who.ann)).json(),
    )
    await approve(client, who.reviewer, tid)
    [shown] = await panel(client, who.fin, "ledger", "ledger-invoices")
    jsonschema_rs.Draft202012Validator(panel_tip_schema()).validate(shown)
    body = doc["paths"][peer]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"url", "title", "body", "show_name"}
    assert body["properties"]["body"]["maxLength"] == 1000


# -- an owner signs in through the real Keycloak -----------------------------------------------


@pytest.mark.keycloak
async def test_an_owner_signs_in_through_keycloak_to_the_tip_queue(
    aiohttp_client: Any, tmp_path: Path, content: Path, keycloak: Any
) -> None:
    """An app's owner with only the learner role was refused at the console's sign-in (it let
    in authors, reviewers, admins and mentors), so the e-mail's link to the queue led nowhere.
    Owners sign in now and land on the tip queue; the demo manager, who owns nothing, is let in
    for the learning path reports only (issue 14) and does not reach the queue."""
    ledger = content / "apps" / "ledger.yaml"
    ledger.write_text(
        ledger.read_text().replace("[Olga@Ledger.example]", "[Learner@Inflow.example]")
    )
    port = free_port()
    settings = Settings(
        data_dir=tmp_path / "kc-data",
        content_dir=content,
        auth=auth_settings(),
        search_threads=2,
        serve_demo=False,
        base_url=f"http://127.0.0.1:{port}",
    )
    client: TestClient = await aiohttp_client(create_app(settings), server_kwargs={"port": port})
    token = access_token("manager")
    resp = await write(client, {"Authorization": f"Bearer {token}"}, "Mind the VAT field")
    assert resp.status == 201, await resp.text()
    tip_id = (await resp.json())["id"]
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=["http://127.0.0.1:8081"])
    async with aiohttp.ClientSession(cookie_jar=jar) as kc:
        resp = await client.get(
            "/admin/login", params={"next": "/admin/tips?app=ledger"}, allow_redirects=False
        )
        back = await _keycloak_login(kc, resp.headers["Location"], "learner")
        resp = await client.get(
            urlsplit(back).path + "?" + urlsplit(back).query, allow_redirects=False
        )
        assert resp.status == 303, await resp.text()
        assert resp.headers["Location"] == "/admin/tips?app=ledger"
        page = await (await client.get("/admin/tips?app=ledger")).text()
        assert tip_id in page and "Mind the VAT field" in page
        # the manager owns nothing: no tip queue for them; their realm role `manager` (issue 14)
        # lets them in for the learning path reports only
        client.session.cookie_jar.clear()
        kc.cookie_jar.clear()
        resp = await client.get(
            "/admin/login", params={"next": "/admin/tips?app=ledger"}, allow_redirects=False
        )
        back = await _keycloak_login(kc, resp.headers["Location"], "manager")
        resp = await client.get(
            urlsplit(back).path + "?" + urlsplit(back).query, allow_redirects=False
        )
        assert resp.status == 303
        assert resp.headers["Location"] == "/admin/path-reports"
        resp = await client.get("/admin/tips?app=ledger", allow_redirects=False)
        assert resp.status == 403
