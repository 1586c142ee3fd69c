"""Who a caller is to peer learning (server/peer/people.py) and the per-person write limit
(server/peer/limits.py), on a small library of another company's apps, aids and mentors."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from auth.identity import Identity
from server import keys
from server.app import create_app
from server.catalog import Catalog
from server.models import Aid, App, Context, Mentor, RuleSpec
from server.peer import people
from server.peer.limits import check_peer_rate
from server.settings import Settings
from server.storage import Storage
from tests.tokens import TokenMaker


def who(
    sub: str = "u-1",
    *,
    roles: tuple[str, ...] = ("learner",),
    username: str | None = None,
    email: str | None = None,
    name: str | None = None,
) -> Identity:
    return Identity(
        issuer="https://sso.fabrikam.test/realms/ops",
        subject=sub,
        username=username if username is not None else sub,
        roles=frozenset(roles),
        groups=frozenset(),
        client_id="inflow-extension",
        expires_at=0.0,
        email=email,
        name=name,
    )


def aid(aid_id: str, audience: tuple[str, ...] = (), status: str = "published") -> Aid:
    return Aid(id=aid_id, title=aid_id, apps=("wms",), audience=audience, status=status)


def fabrikam() -> Catalog:
    """A warehouse system of Fabrikam: a picking page whose aids are all for pickers or leads,
    a returns page with one aid for everyone, a dock page with only a draft."""
    contexts = (
        Context(
            id="picking",
            app_id="wms",
            name="Picking",
            rules=(RuleSpec("https://wms.fabrikam.test/pick/*"),),
            aids=("pick-basics", "pick-lead", "pick-draft", "ghost"),
        ),
        Context(
            id="returns",
            app_id="wms",
            name="Returns",
            rules=(RuleSpec("https://wms.fabrikam.test/returns/*"),),
            aids=("returns-leads", "returns-all"),
        ),
        Context(
            id="dock",
            app_id="wms",
            name="Dock",
            rules=(RuleSpec("https://wms.fabrikam.test/dock/*"),),
            aids=("dock-draft",),
        ),
    )
    apps = [
        App(
            id="wms",
            name="Fabrikam WMS",
            rules=(RuleSpec("https://wms.fabrikam.test/*"),),
            contexts=contexts,
            owners=("Ops.Lead@Fabrikam.test", "it-wms@fabrikam.test"),
        ),
        App(id="tms", name="Fabrikam TMS", rules=(RuleSpec("https://tms.fabrikam.test/*"),)),
    ]
    aids = [
        aid("pick-basics", ("pickers",)),
        aid("pick-lead", ("shift-leads", "pickers")),
        aid("pick-draft", (), status="draft"),  # learners never see it: it does not widen
        aid("returns-leads", ("shift-leads",)),
        aid("returns-all"),
        aid("dock-draft", ("pickers",), status="draft"),
    ]
    mentors = [
        Mentor(
            id="ines",
            name="Inés",
            contact="@ines",
            apps=("wms",),
            vetted=True,
            vetted_by="a",
            subject="sub-ines",
            username="ines",
        ),
        Mentor(
            id="olu",
            name="Olu",
            contact="@olu",
            apps=("wms",),
            vetted=True,
            vetted_by="a",
            username="Olu.A",
        ),
        Mentor(id="pat", name="Pat", contact="@pat", apps=("wms",), username="pat"),  # not vetted
        Mentor(
            id="rae",
            name="Rae",
            contact="@rae",
            apps=("wms",),
            vetted=True,
            vetted_by="a",
            active=False,
            username="rae",
        ),
    ]
    return Catalog.build(1, apps, aids, mentors)


def test_audience_is_no_wider_than_the_pages_aids() -> None:
    catalog = fabrikam()
    # every published aid restricted: the union of their audiences
    assert people.audience_for(catalog, "wms", "picking") == ("pickers", "shift-leads")
    # one aid for everyone: everyone
    assert people.audience_for(catalog, "wms", "returns") == ()
    # only a draft, the whole app, an unknown page, a page of another app: everyone
    assert people.audience_for(catalog, "wms", "dock") == ()
    assert people.audience_for(catalog, "wms", "") == ()
    assert people.audience_for(catalog, "wms", "nowhere") == ()
    assert people.audience_for(catalog, "tms", "picking") == ()


def test_visible_to() -> None:
    assert people.visible_to((), frozenset())
    assert people.visible_to(("pickers",), frozenset({"learner", "pickers"}))
    assert not people.visible_to(("pickers", "shift-leads"), frozenset({"learner", "drivers"}))
    assert people.visible_to(("pickers",), None)  # admins see everything
    assert people.narrowed(("pickers", "shift-leads"), ("pickers",))
    assert people.narrowed((), ("pickers",))
    assert not people.narrowed(("pickers",), ("pickers", "drivers"))
    assert not people.narrowed(("pickers",), ())  # to everyone would widen it


def test_mentor_of_needs_the_role_and_a_vetted_active_linked_record() -> None:
    catalog = fabrikam()
    mentor = ("learner", "mentor")
    found = people.mentor_of(who("sub-ines", roles=mentor, username="ines"), catalog)
    assert found is not None and found.id == "ines"
    # a record with a subject is matched by subject only: a recycled username is not enough
    assert people.mentor_of(who("sub-other", roles=mentor, username="ines"), catalog) is None
    # no subject on the record: the username, case-insensitively
    found = people.mentor_of(who("x", roles=mentor, username="olu.a"), catalog)
    assert found is not None and found.id == "olu"
    # the record without the role, an unvetted or inactive record, nobody
    assert people.mentor_of(who("sub-ines", username="ines"), catalog) is None
    assert people.mentor_of(who("p", roles=mentor, username="pat"), catalog) is None
    assert people.mentor_of(who("r", roles=mentor, username="rae"), catalog) is None
    assert people.mentor_of(None, catalog) is None


def test_owners_by_email_case_insensitively() -> None:
    catalog = fabrikam()
    wms = catalog.apps["wms"]
    assert people.owns_app(who(email="ops.lead@fabrikam.test"), wms)
    assert not people.owns_app(who(email="ops.lead@fabrikam.test"), catalog.apps["tms"])
    assert not people.owns_app(who(email=None, username="ops.lead@fabrikam.test"), wms)
    assert people.owned_apps(who(email="IT-WMS@fabrikam.test"), catalog) == {"wms"}


def test_display_name() -> None:
    assert people.display_name(who(name="Ana  Pérez\x00", username="ana")) == "Ana Pérez"
    assert people.display_name(who(username="ana.p")) == "ana.p"
    assert people.display_name(who(name="x" * 500)) == "x" * 120


async def test_person_key_is_the_analytics_pseudonym(tmp_path: Path) -> None:
    """Stable and not the subject: the same person gets the same key, others another."""
    storage = Storage(tmp_path / "db.sqlite3", analytics_secret="a-long-enough-test-secret")
    await storage.open()
    try:
        a, b = who("sub-a"), who("sub-b")
        key = people.person_key(storage, a)
        assert key == people.person_key(storage, dataclasses.replace(a, username="renamed"))
        assert key != people.person_key(storage, b)
        assert "sub-a" not in key
        assert key == storage.pseudonymize(a.issuer, a.subject)
    finally:
        await storage.close()


async def _write(request: web.Request) -> web.Response:
    await check_peer_rate(request)
    return web.json_response({"ok": True}, status=201)


def _sync_write(request: web.Request) -> Any:
    check_peer_rate(request)  # the plain-call spelling works too
    return web.json_response({"ok": True}, status=201)


async def _sync_handler(request: web.Request) -> web.Response:
    response: web.Response = _sync_write(request)
    return response


@pytest.mark.parametrize("path", ["/api/v1/peer/_test", "/api/v1/peer/_test_sync"])
async def test_peer_writes_are_limited_per_person(
    aiohttp_client: Any, make_settings: Any, tokens: TokenMaker, path: str
) -> None:
    """A person past INFLOW_PEER_WRITES_PER_HOUR gets a 429 problem with Retry-After (about an
    hour / N); another person still writes."""
    settings: Settings = make_settings(peer_writes_per_hour=3)
    app = create_app(settings)
    app.router.add_post("/api/v1/peer/_test", _write)
    app.router.add_post("/api/v1/peer/_test_sync", _sync_handler)
    client = await aiohttp_client(app)
    ana = tokens.auth(sub="ana", roles=("learner",))
    ben = tokens.auth(sub="ben", roles=("learner",))
    for _ in range(3):
        assert (await client.post(path, headers=ana)).status == 201
    refused = await client.post(path, headers=ana)
    assert refused.status == 429
    assert refused.content_type == "application/problem+json"
    body = await refused.json()
    assert body["status"] == 429 and "try again" in body["detail"]
    assert 1000 <= int(refused.headers["Retry-After"]) <= 1200  # one write back every 20 min
    assert (await client.post(path, headers=ben)).status == 201


async def test_no_limit_when_off(
    aiohttp_client: Any, make_settings: Any, tokens: TokenMaker
) -> None:
    app = create_app(make_settings(peer_writes_per_hour=0))
    app.router.add_post("/api/v1/peer/_test", _write)
    client = await aiohttp_client(app)
    assert keys.PEER_WRITES not in client.app
    ana = tokens.auth(sub="ana", roles=("learner",))
    for _ in range(25):
        assert (await client.post("/api/v1/peer/_test", headers=ana)).status == 201
