"""Mentors paired with new hires (server/peer/pairings.py): manual pairings, rules over a real
Keycloak group, expiry, the paired mentor first under people, the mentor's mentees, contact.

The content is a small library of another company (Ledgerly's books app, its own mentors), not
the demo's. API tests use forged tokens; the rule tests read a real Keycloak group in a throw-away
copy of the inflow realm (tests/keycloak.py `temporary_realm`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.db.peer_tables import questions as questions_table
from server.db.resource_table import RowCodec
from server.models import Mentor
from server.peer import pairings as pairings_module
from server.peer.directory import Member
from server.peer.models import PairingRule, Question
from server.peer.pairings import plan_rule
from server.settings import Settings
from tests.keycloak import KeycloakInfo, admin, auth_settings, password_tokens, temporary_realm
from tests.tokens import TokenMaker

A = "/api/v1/admin"
INVOICE_PAGE = {"url": "https://books.ledgerly.test/invoices/new", "title": "New invoice"}

APP = """\
id: books
name: Ledgerly Books
description: Invoices, bills and payroll for a small accounting firm.
rules:
  - pattern: "*://books.ledgerly.test/**"
contexts:
  - id: books-invoice-new
    name: New invoice
    rule: "*://books.ledgerly.test/invoices/new"
    aids: [books-send-invoice]
"""
AID = """\
---
id: books-send-invoice
title: Send an invoice on time
summary: Draft, check and send a client invoice.
type: howto
tags: [invoice, billing]
apps: [books]
owner: finance-ops@ledgerly.test
status: published
---
Fill the client, the lines and the due date, then send.
"""
MENTORS = {
    # Ines knows invoices: on the invoice page she fits best.
    "ines-ruiz": "name: Ines Ruiz\ncontact: ines@ledgerly.test\ntopics: [invoice, billing]\n",
    "kofi-mensah": "name: Kofi Mensah\ncontact: kofi@ledgerly.test\ntopics: [payroll]\n"
    "username: kmensah\n",
    "zoe-park": "name: Zoe Park\ncontact: zoe@ledgerly.test\ntopics: [bills]\n",
    # volunteered, not vetted: never paired
    "uli-stein": "name: Uli Stein\ncontact: uli@ledgerly.test\ntopics: [invoice]\nvetted: false\n",
}


def write_library(root: Path) -> Path:
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    (root / "mentors").mkdir()
    (root / "apps" / "books.yaml").write_text(APP, encoding="utf-8")
    (root / "aids" / "books-send-invoice.md").write_text(AID, encoding="utf-8")
    for mentor_id, body in MENTORS.items():
        vetting = "" if "vetted: false" in body else "vetted: true\nvetted_by: finance-ops\n"
        text = f"id: {mentor_id}\napps: [books]\n{body}{vetting}"
        (root / "mentors" / f"{mentor_id}.yaml").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    return write_library(tmp_path / "ledgerly")


@pytest.fixture
async def books(
    aiohttp_client: Any, make_settings: Callable[..., Settings], library_dir: Path
) -> TestClient:
    settings = make_settings(content_dir=library_dir, pairing_run_interval_seconds=0)
    return await aiohttp_client(create_app(settings))


def who(tokens: TokenMaker, username: str, *roles: str, sub: str | None = None) -> dict[str, str]:
    return tokens.auth(
        sub=sub or f"sub-{username}", roles=roles or ("learner",), preferred_username=username
    )


async def pair(client: TestClient, admin_h: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = await client.post(f"{A}/pairings", json=body, headers=admin_h)
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def people(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    resp = await client.post("/api/v1/suggest", json=INVOICE_PAGE, headers=headers)
    assert resp.status == 200, await resp.text()
    mentors: list[dict[str, Any]] = (await resp.json())["mentors"]
    return mentors


# -- the plan: fair spread, cap, idempotence (pure) -------------------------------------------


def _mentor(mentor_id: str, username: str = "") -> Mentor:
    return Mentor(
        mentor_id, mentor_id.title(), f"{mentor_id}@x.test", apps=("books",), username=username
    )


def test_plan_spreads_least_loaded_first_never_over_the_cap() -> None:
    rule = PairingRule(id="r", group="g", app_id="books", days=30, cap=2)
    pool = [_mentor("b-mentor"), _mentor("a-mentor"), _mentor("c-mentor")]
    members = [Member(f"user{i}") for i in (5, 3, 1, 4, 2, 6)]
    plan = plan_rule(rule, members, pool, {"a-mentor": 1}, (), dt.date(2026, 3, 1))
    got = [(m.username, mentor) for m, mentor, _ in plan.pairs]
    # b and c start at 0 (b first by id), a at 1; ties by id; a fills at 2, then the cap holds
    assert got == [
        ("user1", "b-mentor"),
        ("user2", "c-mentor"),
        ("user3", "a-mentor"),
        ("user4", "b-mentor"),
        ("user5", "c-mentor"),
    ]
    assert plan.unpaired == ["user6"]
    assert plan.loads == {"a-mentor": 2, "b-mentor": 2, "c-mentor": 2}
    assert {until for _, _, until in plan.pairs} == {dt.date(2026, 3, 30)}
    again = plan_rule(rule, members, pool, plan.loads, [u for u, _ in got], dt.date(2026, 3, 1))
    assert again.pairs == [] and again.already_paired == [u for u, _ in sorted(got)]


def test_plan_start_date_window_and_nobody_mentors_themselves() -> None:
    rule = PairingRule(id="r", group="g", app_id="books", days=10, cap=5, start_claim="start")
    day = dt.date(2026, 3, 20)
    members = [
        Member("fresh", attributes={"start": ("2026-03-15",)}),
        Member("today", attributes={"start": ("2026-03-20",)}),
        Member("old", attributes={"start": ("2026-03-10",)}),  # 10 days ago: outside
        Member("future", attributes={"start": ("2026-04-01",)}),
        Member("none"),
        Member("kmensah", attributes={"start": ("2026-03-19",)}),
    ]
    pool = [_mentor("kofi", username="kmensah")]
    plan = plan_rule(rule, members, pool, {}, (), day)
    assert [(m.username, until) for m, _, until in plan.pairs] == [
        ("fresh", dt.date(2026, 3, 24)),  # their first 10 days, counted from the start date
        ("today", dt.date(2026, 3, 29)),
    ]
    assert plan.not_new == ["future", "old"] and plan.no_start_date == ["none"]
    assert plan.unpaired == ["kmensah"]


# -- manual pairing, the learner's people, expiry -----------------------------------------------


async def test_paired_mentor_comes_first_under_people_with_your_mentor_for(
    books: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    nora = who(tokens, "nora")
    before = [m["id"] for m in await people(books, nora)]
    assert before[0] == "ines-ruiz"  # best topic fit on the invoice page
    await pair(books, admin, learner_username="Nora", mentor_id="zoe-park", app_id="books", days=30)
    after = await people(books, nora)
    assert [m["id"] for m in after][:2] == ["zoe-park", "ines-ruiz"]
    assert after[0]["reason"] == "Your mentor for Ledgerly Books"
    assert len(after) == len({m["id"] for m in after}) <= 3
    # another learner keeps the usual order
    assert [m["id"] for m in await people(books, who(tokens, "omar"))] == before


async def test_only_admins_pair_and_every_refusal_is_a_problem(
    books: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    body = {"learner_username": "nora", "mentor_id": "zoe-park", "app_id": "books", "days": 5}
    rule = {"id": "hires", "group": "new-hires", "app_id": "books"}
    for headers in (
        who(tokens, "ann", "learner", "author", "reviewer"),
        who(tokens, "kmensah", "mentor"),
    ):
        for method, path, data in (
            ("POST", f"{A}/pairings", body),
            ("GET", f"{A}/pairings", None),
            ("POST", f"{A}/pairing-rules", rule),
            ("GET", f"{A}/pairing-rules", None),
        ):
            resp = await books.request(method, path, json=data, headers=headers)
            assert resp.status == 403, (method, path)
            assert resp.content_type == "application/problem+json"
    bad = [
        ({**body, "mentor_id": "uli-stein"}, "mentor_id"),  # not vetted
        ({**body, "app_id": "nope"}, "app_id"),
        ({**body, "days": 0}, "days"),
        ({**body, "days": None, "ends_on": "2001-01-01"}, "ends_on"),
        ({**body, "learner_username": "no spaces"}, "learner_username"),
    ]
    for data, field in bad:
        resp = await books.post(f"{A}/pairings", json=data, headers=admin)
        assert resp.status == 422, data
        assert resp.content_type == "application/problem+json"
        assert field in (await resp.json())["fields"]
    await pair(books, admin, **body)
    resp = await books.post(f"{A}/pairings", json={**body, "mentor_id": "ines-ruiz"}, headers=admin)
    assert resp.status == 409  # one current mentor per learner and app
    assert resp.content_type == "application/problem+json"


async def test_a_pairing_ends_on_its_own_and_stays_for_analytics(
    books: TestClient,
    tokens: TokenMaker,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    nora = who(tokens, "nora")
    made = await pair(
        books, admin, learner_username="nora", mentor_id="zoe-park", app_id="books", days=3
    )
    start = dt.date.fromisoformat(made["starts_on"])
    assert made["ends_on"] == (start + dt.timedelta(days=2)).isoformat()
    assert made["source"] == "manual" and made["mentor_name"] == "Zoe Park"
    assert (await people(books, nora))[0]["id"] == "zoe-park"
    monkeypatch.setattr(pairings_module, "today", lambda: start + dt.timedelta(days=3))
    assert "zoe-park" not in [m["id"] for m in (await people(books, nora))[:1]]
    listed = await (await books.get(f"{A}/pairings", headers=admin)).json()
    assert listed["pairings"] == []
    kept = await (await books.get(f"{A}/pairings?ended=true", headers=admin)).json()
    assert [p["id"] for p in kept["pairings"]] == [made["id"]]
    # the same learner may be paired again once it has ended
    await pair(books, admin, learner_username="nora", mentor_id="ines-ruiz", app_id="books", days=3)


async def test_the_learner_key_binds_a_pairing_to_the_first_account_seen(
    books: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    """A username alone is not a person: once the paired learner has been seen, another account
    with the same username (another subject) does not get their mentor."""
    made = await pair(
        books, admin, learner_username="nora", mentor_id="zoe-park", app_id="books", days=9
    )
    assert made["learner_key"] == ""
    assert (await people(books, who(tokens, "nora", sub="nora-1")))[0]["id"] == "zoe-park"
    seen = await (await books.get(f"{A}/pairings/{made['id']}", headers=admin)).json()
    assert seen["learner_key"] not in ("", "nora-1", "sub-nora")
    assert (await people(books, who(tokens, "nora", sub="nora-2")))[0]["id"] != "zoe-park"
    assert (await people(books, who(tokens, "nora", sub="nora-1")))[0]["id"] == "zoe-park"


# -- the mentor's mentees, contact ----------------------------------------------------------------


async def test_mentor_sees_mentees_and_their_open_questions(
    books: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    nora = who(tokens, "nora")
    await pair(
        books, admin, learner_username="nora", mentor_id="kofi-mensah", app_id="books", days=20
    )
    await people(books, nora)  # nora is seen: her person key is on the pairing
    app = books.server.app
    storage = app[keys.LIBRARY].storage
    key = storage.pseudonymize(tokens.issuer, "sub-nora")
    codec = RowCodec(Question)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    def add(qid: str, status: str, asker: str) -> Callable[[Any], None]:
        q = Question(
            id=qid,
            app_id="books",
            context_id="books-invoice-new",
            body=f"How do I **void** invoice {qid}?",
            asker_key=asker,
            status=status,
            created_at=stamp,
            updated_at=stamp,
        )

        def op(changes: Any) -> None:
            storage.conn.execute(sa.insert(questions_table).values(codec.to_row(q)))

        return op

    for qid, status, asker in (
        ("q-open", "open", key),
        ("q-done", "answered", key),
        ("q-other", "open", "k2"),
    ):
        await storage.write(add(qid, status, asker))
    kofi = who(tokens, "kmensah", "learner", "mentor")
    resp = await books.get("/api/v1/peer/mentees", headers=kofi)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    assert data["mentor"] == {"id": "kofi-mensah", "name": "Kofi Mensah"}
    [mentee] = data["mentees"]
    assert (mentee["learner_username"], mentee["app_id"], mentee["app_name"]) == (
        "nora",
        "books",
        "Ledgerly Books",
    )
    assert [q["id"] for q in mentee["open_questions"]] == ["q-open"]
    assert "<strong>void</strong>" in mentee["open_questions"][0]["body_html"]
    # a learner is refused; the mentor role without a Mentor resource has nobody
    resp = await books.get("/api/v1/peer/mentees", headers=who(tokens, "nora"))
    assert resp.status == 403
    assert resp.content_type == "application/problem+json"
    resp = await books.get("/api/v1/peer/mentees", headers=who(tokens, "someone", "mentor"))
    assert await resp.json() == {"mentor": None, "mentees": []}


async def test_contact_records_an_event_without_content(
    books: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    nora = who(tokens, "nora")
    await pair(books, admin, learner_username="nora", mentor_id="zoe-park", app_id="books", days=5)
    resp = await books.post("/api/v1/peer/mentors/zoe-park/contact", headers=nora)
    assert resp.status == 204, await resp.text()
    for mentor_id in ("uli-stein", "nobody"):  # not vetted, unknown
        resp = await books.post(f"/api/v1/peer/mentors/{mentor_id}/contact", headers=nora)
        assert resp.status == 404
        assert resp.content_type == "application/problem+json"
    path = books.server.app[keys.SETTINGS].events_db_path

    def read() -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT type, app, context, aid, data, user FROM events").fetchall()

    rows = await asyncio.get_running_loop().run_in_executor(None, read)
    assert [r[:5] for r in rows] == [("mentor_contacted", "books", "", "", "{}")]
    assert rows[0][5] not in ("", "sub-nora", "nora")  # the pseudonym, not the person


async def test_rules_are_declared_resources(books: TestClient, admin: dict[str, str]) -> None:
    rule = {"id": "hires", "group": "/new-hires", "app_id": "books", "mentor_ids": ["zoe-park"]}
    resp = await books.post(f"{A}/pairing-rules", json=rule, headers=admin)
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    assert (made["group"], made["days"], made["cap"], made["active"]) == ("new-hires", 30, 5, True)
    assert (await books.post(f"{A}/pairing-rules", json=rule, headers=admin)).status == 409
    for bad, field in (
        ({**rule, "id": "two", "app_id": "nope"}, "app_id"),
        ({**rule, "id": "two", "mentor_ids": ["ghost"]}, "mentor_ids"),
        ({**rule, "id": "two", "cap": 0}, "cap"),
        ({**rule, "id": "two", "days": 366}, "days"),
    ):
        resp = await books.post(f"{A}/pairing-rules", json=bad, headers=admin)
        assert resp.status == 422, bad
        assert field in (await resp.json())["fields"]
    resp = await books.put(f"{A}/pairing-rules/hires", json={**rule, "cap": 2}, headers=admin)
    assert resp.status == 200 and (await resp.json())["cap"] == 2
    listed = await (await books.get(f"{A}/pairing-rules", headers=admin)).json()
    assert [r["id"] for r in listed["rules"]] == ["hires"]
    assert (await books.delete(f"{A}/pairing-rules/hires", headers=admin)).status == 204
    assert (await books.get(f"{A}/pairing-rules/hires", headers=admin)).status == 404


# -- rules over a real Keycloak group ---------------------------------------------------------

REALM = "inflow-pairing-test"
# The realm of the current group_realm fixture. xdist may run this module's Keycloak tests apart,
# so the module fixture can be torn down and made again in one run: each copy gets a name of its
# own, since the dev Keycloak failed to import a realm under the name of one it had just deleted
# (a user-role foreign key violation, then "already exists").
CURRENT = {"realm": REALM}


@pytest.fixture(scope="module")
def group_realm(keycloak: KeycloakInfo) -> Iterator[KeycloakInfo]:
    """A copy of the inflow realm whose `new-hires` group holds the realm's demo new hire and
    five more: three who started recently, one long ago, one without a start date."""
    name = f"{REALM}-{secrets.token_hex(4)}"
    with temporary_realm(name) as info:
        CURRENT["realm"] = name
        kc = admin(name)
        group_id = kc.get_group_by_path("/new-hires")["id"]
        today = dt.datetime.now(dt.UTC).date()
        people_ = {
            "newhire": 2,
            "hire-a": 0,
            "hire-b": 5,
            "hire-c": 12,
            "veteran": 400,
            "nodate": None,
        }
        for username, ago in people_.items():
            attributes = (
                {}
                if ago is None
                else {"start_date": [(today - dt.timedelta(days=ago)).isoformat()]}
            )
            if username == "newhire":
                user_id = kc.get_user_id(username)
                user = kc.get_user(user_id)
                kc.update_user(user_id, {**user, "attributes": attributes})
            else:
                user_id = kc.create_user(
                    {
                        "username": username,
                        "enabled": True,
                        "email": f"{username}@ledgerly.test",
                        "firstName": username,
                        "lastName": "Test",
                        "attributes": attributes,
                        "credentials": [
                            {"type": "password", "value": username, "temporary": False}
                        ],
                    }
                )
            kc.group_user_add(user_id, group_id)
        yield info


@pytest.fixture
async def kc_books(
    aiohttp_client: Any, tmp_path: Path, group_realm: KeycloakInfo, library_dir: Path
) -> TestClient:
    settings = Settings(
        data_dir=tmp_path / "data",
        content_dir=library_dir,
        auth=auth_settings(realm=group_realm.realm),
        search_threads=2,
        pairing_run_interval_seconds=0,
    )
    return await aiohttp_client(create_app(settings))


def bearer(username: str) -> dict[str, str]:
    password = username if username != "admin" else "admin"
    token = password_tokens(username, password, realm=CURRENT["realm"])
    return {"Authorization": f"Bearer {token['access_token']}"}


@pytest.mark.keycloak
async def test_a_rule_pairs_new_group_members_fairly_capped_and_only_once(
    kc_books: TestClient,
) -> None:
    adm = bearer("admin")
    rule = {
        "id": "new-hires-books",
        "group": "new-hires",
        "app_id": "books",
        "mentor_ids": ["kofi-mensah", "zoe-park", "uli-stein"],
        "days": 30,
        "cap": 1,
        "start_claim": "start_date",
    }
    resp = await kc_books.post(f"{A}/pairing-rules", json=rule, headers=adm)
    assert resp.status == 201, await resp.text()
    run = await kc_books.post(f"{A}/pairing-rules/new-hires-books/run", headers=adm)
    assert run.status == 200, await run.text()
    first = await run.json()
    assert first["members"] == 6
    assert [(p["learner_username"], p["mentor_id"]) for p in first["paired"]] == [
        ("hire-a", "kofi-mensah"),
        ("hire-b", "zoe-park"),
    ]
    assert [u["learner_username"] for u in first["unpaired"]] == ["hire-c", "newhire"]
    assert "1 mentees" in first["unpaired"][0]["reason"]
    assert first["not_new"] == ["veteran"] and first["no_start_date"] == ["nodate"]
    assert first["pool_skipped"] == [
        {"mentor_id": "uli-stein", "reason": "not a vetted, active mentor of books"}
    ]
    # twice: nobody is paired twice; a bigger cap then pairs the two left over, one each
    again = await (
        await kc_books.post(f"{A}/pairing-rules/new-hires-books/run", headers=adm)
    ).json()
    assert again["paired"] == [] and again["already_paired"] == ["hire-a", "hire-b"]
    await kc_books.put(f"{A}/pairing-rules/new-hires-books", json={**rule, "cap": 2}, headers=adm)
    third = await (
        await kc_books.post(f"{A}/pairing-rules/new-hires-books/run", headers=adm)
    ).json()
    assert [(p["learner_username"], p["mentor_id"]) for p in third["paired"]] == [
        ("hire-c", "kofi-mensah"),
        ("newhire", "zoe-park"),
    ]
    until = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=30 - 2 - 1)).isoformat()
    assert third["paired"][1]["until"] == until  # newhire started 2 days ago: 30 days from then
    listed = await (await kc_books.get(f"{A}/pairings?app=books", headers=adm)).json()
    assert sorted(p["learner_username"] for p in listed["pairings"]) == [
        "hire-a",
        "hire-b",
        "hire-c",
        "newhire",
    ]
    assert {p["source"] for p in listed["pairings"]} == {"rule:new-hires-books"}
    # the new hire, signed in through Keycloak, sees the mentor first on the app's page
    resp = await kc_books.post("/api/v1/suggest", json=INVOICE_PAGE, headers=bearer("newhire"))
    mentors = (await resp.json())["mentors"]
    assert (mentors[0]["id"], mentors[0]["reason"]) == (
        "zoe-park",
        "Your mentor for Ledgerly Books",
    )
    # the console's Run now tells the same story
    csrf = await console_session(kc_books, adm["Authorization"].split(" ", 1)[1])
    page = await kc_books.post(
        "/admin/pairing-rules/new-hires-books/run", data={"csrf_token": csrf}
    )
    html = await page.text()
    assert page.status == 200 and "Run of new-hires-books: 0 paired" in html
    assert "4 already paired" in html and "1 without a start date" in html


@pytest.mark.keycloak
async def test_a_rule_on_a_group_keycloak_does_not_have_says_so(kc_books: TestClient) -> None:
    adm = bearer("admin")
    rule = {"id": "ghosts", "group": "no-such-group", "app_id": "books"}
    assert (await kc_books.post(f"{A}/pairing-rules", json=rule, headers=adm)).status == 201
    resp = await kc_books.post(f"{A}/pairing-rules/ghosts/run", headers=adm)
    assert resp.status == 422  # the rule is wrong, Keycloak is fine: not a 5xx
    assert resp.content_type == "application/problem+json"
    assert "no-such-group" in (await resp.json())["detail"]


# -- the console ------------------------------------------------------------------------------


async def console_session(client: TestClient, token: str) -> str:
    """A console session for `token` (as the sign-in callback makes it); its CSRF token."""
    app = client.server.app
    identity = await app[keys.AUTHENTICATOR].authenticate(token)
    store = app[keys.ADMIN_SESSIONS]
    sid, session = await store.create(identity, {"access_token": token, "refresh_token": ""})
    client.session.cookie_jar.update_cookies({store.cookie_name: sid})
    return str(session.csrf)


async def test_console_pairs_by_hand_makes_a_rule_and_ends_a_pairing(
    books: TestClient, tokens: TokenMaker
) -> None:
    author = tokens.token(sub="author-1", roles=("learner", "author", "reviewer"))
    await console_session(books, author)
    assert (await books.get("/admin/pairings")).status == 403
    csrf = await console_session(books, tokens.token(sub="admin-1", roles=("learner", "admin")))
    page = await books.get("/admin/pairings")
    assert page.status == 200
    assert "No current pairings." in await page.text()
    form = {
        "csrf_token": csrf,
        "learner_username": "nora",
        "mentor_id": "kofi-mensah",
        "app_id": "books",
    }
    resp = await books.post("/admin/pairings", data={**form, "days": "14"})
    html = await resp.text()
    assert resp.status == 200 and "Created." in html
    assert "nora" in html and "Kofi Mensah" in html and "(not seen yet)" in html
    again = await books.post("/admin/pairings", data={**form, "mentor_id": "zoe-park", "days": "3"})
    assert again.status == 409
    assert "already has a mentor for books" in await again.text()
    rule = {
        "csrf_token": csrf,
        "id": "hires",
        "group": "new-hires",
        "app_id": "books",
        "days": "30",
    }
    resp = await books.post("/admin/pairing-rules", data={**rule, "cap": "2", "active": "1"})
    assert "Run now" in await resp.text()
    [listed] = (await (await books.get(f"{A}/pairing-rules", headers=admin_h(tokens))).json())[
        "rules"
    ]
    assert (listed["id"], listed["cap"], listed["mentor_ids"]) == ("hires", 2, [])
    pairing_id = (await (await books.get(f"{A}/pairings", headers=admin_h(tokens))).json())[
        "pairings"
    ][0]["id"]
    resp = await books.post(f"/admin/pairings/{pairing_id}/end", data={"csrf_token": csrf})
    assert "No current pairings." in await resp.text()


def admin_h(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="admin-1", roles=("learner", "admin"))


@pytest.mark.keycloak
async def test_active_rules_run_by_themselves_on_the_interval(
    aiohttp_client: Any, tmp_path: Path, group_realm: KeycloakInfo, library_dir: Path
) -> None:
    """INFLOW_PAIRING_RUN_INTERVAL_SECONDS: an active rule pairs new members without anyone
    pressing Run now; an inactive one does not run."""
    settings = Settings(
        data_dir=tmp_path / "data",
        content_dir=library_dir,
        auth=auth_settings(realm=group_realm.realm),
        search_threads=2,
        pairing_run_interval_seconds=0.5,
    )
    client = await aiohttp_client(create_app(settings))
    adm = bearer("admin")
    base = {"group": "new-hires", "app_id": "books", "days": 30, "cap": 10}
    for rule in (
        {**base, "id": "on", "mentor_ids": ["zoe-park"], "start_claim": "start_date"},
        {**base, "id": "off", "mentor_ids": ["kofi-mensah"], "active": False},
    ):
        assert (await client.post(f"{A}/pairing-rules", json=rule, headers=adm)).status == 201
    found: list[dict[str, Any]] = []
    for _ in range(120):  # the first run comes after one interval
        found = (await (await client.get(f"{A}/pairings", headers=adm)).json())["pairings"]
        if found:
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.0)  # a few more runs: still nobody twice
    found = (await (await client.get(f"{A}/pairings", headers=adm)).json())["pairings"]
    assert sorted(p["learner_username"] for p in found) == ["hire-a", "hire-b", "hire-c", "newhire"]
    assert {(p["mentor_id"], p["source"], p["created_by"]) for p in found} == {
        ("zoe-park", "rule:on", "pairing-scheduler")
    }


async def test_pairing_changes_are_audited_in_words(books: TestClient, tokens: TokenMaker) -> None:
    admin_h_ = admin_h(tokens)
    made = await pair(
        books, admin_h_, learner_username="nora", mentor_id="zoe-park", app_id="books", days=4
    )
    assert (await books.delete(f"{A}/pairings/{made['id']}", headers=admin_h_)).status == 204
    assert (await books.get(f"{A}/pairings/{made['id']}", headers=admin_h_)).status == 404
    await console_session(books, tokens.token(sub="admin-1", roles=("learner", "admin")))
    html = await (await books.get("/admin/audit")).text()
    assert f"paired a learner with a mentor (the pairing {made['id']})" in html
    assert f"ended the pairing {made['id']}" in html
