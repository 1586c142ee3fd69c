"""Mentors reinforce curated content: they recommend aids for a page ("Rosa Ortiz recommends
this" in the panel, and a bounded lift among the page's related aids) and flag aids as wrong or
outdated to their owners (an e-mail read from a real SMTP server, the console's Flags page, a mark
on the aid's page, resolve with an audit entry).

The content is a small library of another company (Brightwater Utilities' field-service app and its
finance app), not the demo's: two aids that fit the meter-reading page equally well, so a
recommendation is the only thing telling them apart.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from tests.smtp import SmtpServer
from tests.test_admin_console import sign_in
from tests.tokens import TokenMaker

FIELD_APP = """\
id: fieldbook
name: Fieldbook
rules:
  - pattern: "https://field.brightwater.example/**"
contexts:
  - id: meter-reading
    name: Meter reading
    rule: "https://field.brightwater.example/meters/*"
    aids: [read-a-meter]
  - id: outage-report
    name: Outage report
    rule: "https://field.brightwater.example/outages/*"
    aids: []
"""

LEDGER_APP = """\
id: ledger
name: Ledger
rules:
  - pattern: "https://ledger.brightwater.example/**"
"""


def _aid(
    aid_id: str,
    title: str,
    body: str,
    *,
    apps: str = "[fieldbook]",
    owner: str = "field-ops@brightwater.example",
    audience: str = "[]",
    status: str = "published",
) -> str:
    return f"""---
id: {aid_id}
title: {title}
summary: {title}
type: howto
tags: []
apps: {apps}
audience: {audience}
owner: {owner}
status: {status}
verified_at: 2026-09-01
---
{body}
"""


# "estimated-reading-north" and "-south" fit the meter page equally (same words but one).
AIDS = {
    "read-a-meter": _aid(
        "read-a-meter", "Read a meter", "Open the meter lid, photograph the dial, type the reading."
    ),
    "estimated-reading-north": _aid(
        "estimated-reading-north",
        "Estimated meter reading (north depot)",
        "When the meter dial is unreadable, enter an estimated meter reading and a photo.",
    ),
    "estimated-reading-south": _aid(
        "estimated-reading-south",
        "Estimated meter reading (south depot)",
        "When the meter dial is unreadable, enter an estimated meter reading and a photo.",
    ),
    "meter-seal-broken": _aid(
        "meter-seal-broken",
        "Broken meter seal",
        "A broken meter seal is reported to the revenue protection team with a photo.",
        owner="Revenue Protection",
    ),
    "supervisor-meter-audit": _aid(
        "supervisor-meter-audit",
        "Meter reading audit",
        "Supervisors audit one meter reading in twenty.",
        audience="[supervisors]",
    ),
    "draft-meter-faq": _aid(
        "draft-meter-faq", "Meter reading FAQ", "Meter reading questions.", status="draft"
    ),
    "storm-outage": _aid(
        "storm-outage", "Report a storm outage", "Report the outage with the street and the time."
    ),
    "close-the-month": _aid(
        "close-the-month", "Close the month", "Post accruals.", apps="[ledger]"
    ),
}

MENTORS = {
    "rosa-ortiz": """\
id: rosa-ortiz
name: Rosa Ortiz
contact: rosa.ortiz@brightwater.example
apps: [fieldbook]
topics: [meter]
subject: mentor-rosa
vetted: true
vetted_by: field-ops
""",
    "kim-berg": """\
id: kim-berg
name: Kim Berg
contact: kim.berg@brightwater.example
apps: [ledger]
topics: [accruals]
subject: mentor-kim
vetted: true
vetted_by: finance
""",
    "ada-stone": """\
id: ada-stone
name: Ada Stone
contact: ada.stone@brightwater.example
apps: [fieldbook]
topics: [meter]
subject: mentor-ada
vetted: true
vetted_by: field-ops
""",
}

METER_PAGE = {
    "url": "https://field.brightwater.example/meters/88231",
    "title": "Meter reading: estimated reading",
    "headings": ["Estimated meter reading", "Meter dial"],
}
OUTAGE_PAGE = {
    "url": "https://field.brightwater.example/outages/12",
    "title": "Outage report: estimated meter reading",
    "headings": ["Estimated meter reading", "Meter dial"],
}
NORTH, SOUTH = "estimated-reading-north", "estimated-reading-south"


def write_content(root: Path) -> Path:
    for sub in ("apps", "aids", "mentors"):
        (root / sub).mkdir(parents=True)
    (root / "apps" / "fieldbook.yaml").write_text(FIELD_APP, encoding="utf-8")
    (root / "apps" / "ledger.yaml").write_text(LEDGER_APP, encoding="utf-8")
    for aid_id, text in AIDS.items():
        (root / "aids" / f"{aid_id}.md").write_text(text, encoding="utf-8")
    for mentor_id, text in MENTORS.items():
        (root / "mentors" / f"{mentor_id}.yaml").write_text(text, encoding="utf-8")
    return root


@pytest.fixture
async def field(aiohttp_client: Any, make_settings: Any, tmp_path: Path) -> TestClient:
    content = write_content(tmp_path / "content")
    client: TestClient = await aiohttp_client(create_app(make_settings(content_dir=content)))
    return client


@pytest.fixture
def rosa(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="mentor-rosa", roles=("mentor",))


@pytest.fixture
def ada(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="mentor-ada", roles=("mentor",))


@pytest.fixture
def kim(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="mentor-kim", roles=("mentor",))


@pytest.fixture
def author(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="author-1", roles=("author",))


async def recommend(
    client: TestClient, who: dict[str, str], aid: str, page: dict[str, Any] = METER_PAGE, **kw: Any
) -> Any:
    body = {"url": page["url"], "title": page["title"], "aid_id": aid, **kw}
    return await client.post("/api/v1/peer/recommendations", json=body, headers=who)


async def suggested(
    client: TestClient, who: dict[str, str], page: dict[str, Any] = METER_PAGE
) -> list[dict[str, Any]]:
    resp = await client.post("/api/v1/suggest", json={**page, "limit": 8}, headers=who)
    assert resp.status == 200, await resp.text()
    aids: list[dict[str, Any]] = (await resp.json())["aids"]
    return aids


def related(aids: list[dict[str, Any]]) -> list[str]:
    return [a["id"] for a in aids if a["reason_code"] == "related"]


def recommended_signal(item: dict[str, Any]) -> dict[str, Any] | None:
    for part in (item.get("why") or {}).get("signals", []):
        if part.get("kind") == "recommended":
            return dict(part)
    return None


async def panel_recs(
    client: TestClient, who: dict[str, str], context: str = "meter-reading"
) -> list[dict[str, Any]]:
    """What the panel's "Recommended by" part gets (server/peer/page.py calls this), with the
    caller's audience tags as suggest computes them."""
    from server.peer.recommendations import page_recommendations

    identity = await client.server.app[keys.AUTHENTICATOR].authenticate(
        who["Authorization"].removeprefix("Bearer ")
    )
    tags = None if "admin" in identity.roles else frozenset(identity.audience_tags)
    return await page_recommendations(client.server.app, identity, "fieldbook", context, tags)


# -- recommending ----------------------------------------------------------------------------------


async def test_a_recommended_aid_ranks_above_an_equal_one_only_on_its_page(
    field: TestClient, rosa: dict[str, str], learner: dict[str, str]
) -> None:
    before = await suggested(field, learner)
    assert before[0]["id"] == "read-a-meter" and before[0]["reason_code"] == "pinned"
    order = related(before)
    assert {NORTH, SOUTH} <= set(order), order
    lower = max((NORTH, SOUTH), key=order.index)  # whichever the index put second
    higher = NORTH if lower == SOUTH else SOUTH
    assert recommended_signal(next(a for a in before if a["id"] == lower)) is None

    resp = await recommend(field, rosa, lower, note="Use this one: it has the photo rule.")
    assert resp.status == 201, await resp.text()
    rec = await resp.json()
    assert (rec["aid_id"], rec["context_id"], rec["mentor_name"]) == (
        lower,
        "meter-reading",
        "Rosa Ortiz",
    )

    after = await suggested(field, learner)
    assert after[0]["id"] == "read-a-meter" and after[0]["reason_code"] == "pinned"
    now = related(after)
    assert now.index(lower) < now.index(higher), (order, now)
    item = next(a for a in after if a["id"] == lower)
    signal = recommended_signal(item)
    assert signal is not None
    assert signal["text"] == "Recommended by Rosa Ortiz"
    assert signal["mentors"] == ["Rosa Ortiz"]

    # on the app's other page the recommendation says nothing
    other = await suggested(field, learner, OUTAGE_PAGE)
    assert all(recommended_signal(a) is None for a in other)


async def test_a_recommendation_never_lifts_an_aid_above_a_pin_and_is_bounded(
    field: TestClient, rosa: dict[str, str], ada: dict[str, str], learner: dict[str, str]
) -> None:
    """Two mentors recommending the least related aid move it up, but never above the pinned
    aid: pins keep their place and order."""
    order = related(await suggested(field, learner))
    last = order[-1]
    for who in (rosa, ada):
        assert (await recommend(field, who, last)).status == 201
    after = await suggested(field, learner)
    assert after[0]["id"] == "read-a-meter" and after[0]["reason_code"] == "pinned"
    item = next(a for a in after if a["id"] == last)
    assert item["reason_code"] == "related"
    signal = recommended_signal(item)
    assert signal is not None and signal["count"] == 2
    assert signal["text"] == "Recommended by Ada Stone and Rosa Ortiz" or signal["text"] == (
        "Recommended by Rosa Ortiz and Ada Stone"
    )
    # A recommendation of the pinned aid changes nothing about the pins.
    assert (await recommend(field, rosa, "read-a-meter")).status == 201
    again = await suggested(field, learner)
    assert again[0]["id"] == "read-a-meter" and recommended_signal(again[0]) is None


async def test_the_panel_shows_who_recommends_what_to_whom_it_may_see(
    field: TestClient,
    rosa: dict[str, str],
    ada: dict[str, str],
    learner: dict[str, str],
    tokens: TokenMaker,
) -> None:
    assert (await recommend(field, rosa, NORTH, note="The photo rule matters.")).status == 201
    assert (await recommend(field, ada, NORTH)).status == 201
    assert (await recommend(field, ada, "storm-outage")).status == 201
    # recommended again: one recommendation, the note changed
    resp = await recommend(field, rosa, NORTH, note="Photo first.")
    assert resp.status == 200, await resp.text()
    # a restricted aid recommended by a supervisor-side mentor: only its audience sees it
    supervisor_mentor = tokens.auth(sub="mentor-ada", roles=("mentor",), groups=("supervisors",))
    assert (await recommend(field, supervisor_mentor, "supervisor-meter-audit")).status == 201

    recs = await panel_recs(field, learner)
    assert [r["aid_id"] for r in recs] == [NORTH, "storm-outage"]
    north = recs[0]
    assert north["title"] == "Estimated meter reading (north depot)"
    assert north["text"] in {
        "Rosa Ortiz and Ada Stone recommend this",
        "Ada Stone and Rosa Ortiz recommend this",
    }
    notes = {m["name"]: m["note"] for m in north["mentors"]}
    assert notes == {"Rosa Ortiz": "Photo first.", "Ada Stone": ""}
    assert all(not m["mine"] for m in north["mentors"])
    assert recs[1]["text"] == "Ada Stone recommends this"
    # the mentor sees their own recommendation marked as theirs (to take it back)
    mine = await panel_recs(field, rosa)
    assert [m["mine"] for m in mine[0]["mentors"] if m["name"] == "Rosa Ortiz"] == [True]
    # a supervisor also sees the restricted aid
    boss = tokens.auth(sub="boss", roles=("learner",), groups=("supervisors",))
    assert "supervisor-meter-audit" in [r["aid_id"] for r in await panel_recs(field, boss)]
    # another page of the app: only what holds there
    assert await panel_recs(field, learner, "outage-report") == []


async def test_taking_a_recommendation_back(
    field: TestClient, rosa: dict[str, str], learner: dict[str, str]
) -> None:
    assert (await recommend(field, rosa, NORTH)).status == 201
    assert [r["aid_id"] for r in await panel_recs(field, learner)] == [NORTH]
    body = {"url": METER_PAGE["url"], "title": METER_PAGE["title"], "aid_id": NORTH}
    resp = await field.delete("/api/v1/peer/recommendations", json=body, headers=rosa)
    assert resp.status == 204, await resp.text()
    assert await panel_recs(field, learner) == []
    assert all(recommended_signal(a) is None for a in await suggested(field, learner))
    resp = await field.delete("/api/v1/peer/recommendations", json=body, headers=rosa)
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"


async def test_who_may_recommend(
    field: TestClient,
    kim: dict[str, str],
    learner: dict[str, str],
    tokens: TokenMaker,
    rosa: dict[str, str],
) -> None:
    # a learner: the role is missing
    resp = await recommend(field, learner, NORTH)
    assert resp.status == 403 and resp.content_type == "application/problem+json"
    # a vetted mentor of another app (Ledger) may not recommend on Fieldbook's pages
    resp = await recommend(field, kim, NORTH)
    assert resp.status == 403, await resp.text()
    assert "Fieldbook" in (await resp.json())["detail"]
    # the mentor role without a vetted mentor behind it
    stranger = tokens.auth(sub="someone-else", roles=("mentor",))
    assert (await recommend(field, stranger, NORTH)).status == 403
    # what may not be recommended: an unpublished aid, an aid of another app, an unmapped page
    assert (await recommend(field, rosa, "draft-meter-faq")).status == 404
    assert (await recommend(field, rosa, "supervisor-meter-audit")).status == 404
    resp = await recommend(field, rosa, "close-the-month")
    assert resp.status == 422, await resp.text()
    resp = await recommend(
        field, rosa, NORTH, {"url": "https://elsewhere.example/x", "title": "Elsewhere"}
    )
    assert resp.status == 422
    assert "not a mapped app" in await resp.text()
    # limits from the declaration: a note of 201 characters
    resp = await recommend(field, rosa, NORTH, note="x" * 201)
    assert resp.status == 422 and (await resp.json())["errors"][0]["field"] == "note"
    assert await panel_recs(field, learner) == []


async def test_an_unvetted_mentor_no_longer_counts(
    field: TestClient, rosa: dict[str, str], learner: dict[str, str], admin: dict[str, str]
) -> None:
    """A mentor whose vetting is withdrawn stops lifting aids and is no longer shown, without
    anyone touching the recommendations."""
    assert (await recommend(field, rosa, NORTH)).status == 201
    assert await panel_recs(field, learner) != []
    resp = await field.get("/api/v1/admin/mentors/rosa-ortiz", headers=admin)
    etag = resp.headers["ETag"]
    resp = await field.patch(
        "/api/v1/admin/mentors/rosa-ortiz",
        json={"vetted": False},
        headers={**admin, "If-Match": etag},
    )
    assert resp.status == 200, await resp.text()
    assert await panel_recs(field, learner) == []
    assert all(recommended_signal(a) is None for a in await suggested(field, learner))


# -- flags -----------------------------------------------------------------------------------------


async def flag(
    client: TestClient, who: dict[str, str], aid: str, kind: str = "outdated", comment: str = ""
) -> Any:
    body = {"kind": kind, "comment": comment or "The photo rule changed in October."}
    return await client.post(f"/api/v1/peer/aids/{aid}/flag", json=body, headers=who)


@pytest.fixture
async def mailing(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path, smtp_server: SmtpServer
) -> TestClient:
    content = write_content(tmp_path / "content")
    settings = make_settings(
        content_dir=content, base_url="https://inflow.brightwater.example", **smtp_server.settings()
    )
    client: TestClient = await aiohttp_client(create_app(settings))
    return client


async def test_a_flag_mails_the_aids_owner(
    mailing: TestClient, smtp_server: SmtpServer, rosa: dict[str, str]
) -> None:
    resp = await flag(mailing, rosa, NORTH, "outdated", "Estimates now need two photos.")
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    assert (made["kind"], made["status"], made["mentor_name"]) == ("outdated", "open", "Rosa Ortiz")
    [message] = await smtp_server.wait_for(1)
    assert message.rcpt_tos == ["field-ops@brightwater.example"]
    assert "Rosa Ortiz" in message.subject and "outdated" in message.subject
    assert "Estimated meter reading (north depot)" in message.subject
    assert "Estimates now need two photos." in message.text
    assert f"https://inflow.brightwater.example/admin/aids/{NORTH}" in message.text


async def test_an_owner_that_is_no_address_is_not_mailed(
    mailing: TestClient, smtp_server: SmtpServer, rosa: dict[str, str], author: dict[str, str]
) -> None:
    resp = await flag(mailing, rosa, "meter-seal-broken", "wrong", "The team was renamed.")
    assert resp.status == 201, await resp.text()
    # then one that is: only that one arrives (the first one was never queued)
    assert (await flag(mailing, rosa, SOUTH)).status == 201
    got = await smtp_server.wait_for(1)
    assert [m.rcpt_tos for m in got] == [["field-ops@brightwater.example"]]
    assert SOUTH not in got[0].subject and "south depot" in got[0].subject
    listed = await (await mailing.get("/api/v1/admin/aid-flags", headers=author)).json()
    assert {f["aid_id"] for f in listed["flags"]} == {"meter-seal-broken", SOUTH}


async def test_who_may_flag_and_see_flags(
    field: TestClient,
    learner: dict[str, str],
    kim: dict[str, str],
    rosa: dict[str, str],
    author: dict[str, str],
) -> None:
    resp = await flag(field, learner, NORTH)
    assert resp.status == 403 and resp.content_type == "application/problem+json"
    assert (await flag(field, rosa, "draft-meter-faq")).status == 404
    assert (await flag(field, rosa, NORTH, kind="boring")).status == 422
    resp = await field.post(
        f"/api/v1/peer/aids/{NORTH}/flag", json={"kind": "wrong", "comment": ""}, headers=rosa
    )
    assert resp.status == 422, "a flag says what is wrong"
    assert (await flag(field, rosa, NORTH)).status == 201
    again = await flag(field, rosa, NORTH)
    assert again.status == 409 and again.content_type == "application/problem+json"
    assert (await flag(field, kim, NORTH, kind="wrong")).status == 201  # any vetted mentor
    # learners and mentors do not read the flag list; authors do
    for who in (learner, rosa):
        resp = await field.get("/api/v1/admin/aid-flags", headers=who)
        assert resp.status == 403
    resp = await field.get("/api/v1/admin/aid-flags", headers=author)
    assert resp.status == 200
    flags = (await resp.json())["flags"]
    assert sorted((f["mentor_name"], f["kind"]) for f in flags) == [
        ("Kim Berg", "wrong"),
        ("Rosa Ortiz", "outdated"),
    ]
    resp = await field.get("/api/v1/admin/aid-flags?status=nonsense", headers=author)
    assert resp.status == 422


async def test_resolving_a_flag_is_audited_and_happens_once(
    field: TestClient, rosa: dict[str, str], author: dict[str, str], admin: dict[str, str]
) -> None:
    made = await (await flag(field, rosa, NORTH)).json()
    resp = await field.post(f"/api/v1/admin/aid-flags/{made['id']}/resolve", headers=rosa)
    assert resp.status == 403, "the mentor who flagged it does not close it"
    resp = await field.post(f"/api/v1/admin/aid-flags/{made['id']}/resolve", headers=author)
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert (done["status"], done["resolved_by"]) == ("resolved", "author-1")
    assert done["resolved_at"]
    resp = await field.post(f"/api/v1/admin/aid-flags/{made['id']}/resolve", headers=author)
    assert resp.status == 409
    assert (await field.post("/api/v1/admin/aid-flags/nope/resolve", headers=author)).status == 404
    open_now = await (await field.get("/api/v1/admin/aid-flags", headers=author)).json()
    assert open_now["flags"] == []
    every = await (await field.get("/api/v1/admin/aid-flags?status=all", headers=author)).json()
    assert [f["status"] for f in every["flags"]] == ["resolved"]
    resp = await field.get(
        f"/api/v1/admin/audit?action=aid.flag_resolved&target_id={NORTH}", headers=admin
    )
    assert resp.status == 200, await resp.text()
    [entry] = (await resp.json())["entries"]
    assert entry["who"]["username"] == "author-1"
    assert entry["detail"]["flag"] == made["id"]
    # and the mentor may flag the aid again once their flag is closed
    assert (await flag(field, rosa, NORTH)).status == 201


async def test_the_console_lists_flags_marks_the_aid_and_resolves(
    field: TestClient, rosa: dict[str, str], tokens: TokenMaker
) -> None:
    made = await (await flag(field, rosa, NORTH, "wrong", "Photo <b>first</b>, then type.")).json()
    csrf = await sign_in(field, tokens.token(sub="author-1", roles=("author",)))
    aids = await (await field.get("/admin/aids")).text()
    assert 'href="/admin/aid-flags"' in aids, "the Aids page leads to the flags"
    page = await field.get("/admin/aid-flags")
    assert page.status == 200
    html = await page.text()
    assert "Estimated meter reading (north depot)" in html and "Rosa Ortiz" in html
    assert "Photo &lt;b&gt;first&lt;/b&gt;, then type." in html  # a comment is text, not HTML
    aid_page = await (await field.get(f"/admin/aids/{NORTH}")).text()
    assert 'id="open-flags"' in aid_page and "1 open flag from mentors" in aid_page
    other = await (await field.get(f"/admin/aids/{SOUTH}")).text()
    assert 'id="open-flags"' not in other
    resp = await field.post(
        f"/admin/aid-flags/{made['id']}/resolve",
        data={"csrf_token": csrf, "back": f"/admin/aids/{NORTH}"},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"].startswith(f"/admin/aids/{NORTH}")
    aid_page = await (await field.get(f"/admin/aids/{NORTH}")).text()
    assert 'id="open-flags"' not in aid_page
    listed = await (await field.get("/admin/aid-flags?status=resolved")).text()
    assert "resolved" in listed and "author-1" in listed


async def test_the_openapi_document_describes_the_routes(field: TestClient) -> None:
    doc = await (await field.get("/api/v1/openapi.json")).json()
    post = doc["paths"]["/api/v1/peer/recommendations"]["post"]
    assert post["x-operation"] == "aid.recommend" and "mentor" in post["x-required-roles"]
    props = post["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert props["note"]["maxLength"] == 200
    flag_op = doc["paths"]["/api/v1/peer/aids/{aid_id}/flag"]["post"]
    schema = flag_op["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["kind"]["enum"] == ["wrong", "outdated"]
    assert doc["paths"]["/api/v1/admin/aid-flags"]["get"]["x-operation"] == "flag.read"


async def test_a_recommendation_another_node_wrote_shows_after_the_reload(
    field: TestClient, learner: dict[str, str]
) -> None:
    """Recommendations live in memory; one written elsewhere (another node, `inflow import`
    seeding the demo) is read by the background reload, not only after a restart."""
    from server.peer.models import Recommendation

    app = field.server.app
    cache = app[keys.PEER_RECS]
    rec = Recommendation(
        mentor_id="ada-stone", app_id="fieldbook", context_id="meter-reading", aid_id=SOUTH
    )
    await app[keys.PEER].add(rec)
    assert await panel_recs(field, learner) == []  # memory only: not read per request
    task = asyncio.create_task(cache.run(app[keys.PEER], interval=0.01))
    try:
        for _ in range(500):
            if await panel_recs(field, learner):
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    [shown] = await panel_recs(field, learner)
    assert (shown["aid_id"], shown["text"]) == (SOUTH, "Ada Stone recommends this")


async def test_recommending_and_flagging_count_as_peer_writes(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path, rosa: dict[str, str]
) -> None:
    """Each is a write a person makes: past INFLOW_PEER_WRITES_PER_HOUR it waits (429)."""
    content = write_content(tmp_path / "content")
    client = await aiohttp_client(
        create_app(make_settings(content_dir=content, peer_writes_per_hour=2))
    )
    assert (await recommend(client, rosa, NORTH)).status == 201
    assert (await flag(client, rosa, SOUTH)).status == 201
    resp = await recommend(client, rosa, SOUTH)
    assert resp.status == 429 and resp.content_type == "application/problem+json"
    assert int(resp.headers["Retry-After"]) > 0


async def test_an_owner_lists_the_flags_on_the_aids_they_own(
    field: TestClient, rosa: dict[str, str], tokens: TokenMaker
) -> None:
    """`mine=1`: an author sees the flags on aids whose owner is their e-mail address (the
    token's `email` claim), in the API and the console."""
    assert (await flag(field, rosa, NORTH)).status == 201
    assert (await flag(field, rosa, "meter-seal-broken", "wrong", "Renamed team.")).status == 201
    owner = tokens.auth(sub="ops-lead", roles=("author",), email="Field-Ops@brightwater.example")
    resp = await field.get("/api/v1/admin/aid-flags?mine=1", headers=owner)
    assert resp.status == 200, await resp.text()
    assert [f["aid_id"] for f in (await resp.json())["flags"]] == [NORTH]
    everyone = await (await field.get("/api/v1/admin/aid-flags", headers=owner)).json()
    assert len(everyone["flags"]) == 2
    no_mail = tokens.auth(sub="author-2", roles=("author",))
    resp = await field.get("/api/v1/admin/aid-flags?mine=1", headers=no_mail)
    assert (await resp.json())["flags"] == []
    assert (await field.get("/api/v1/admin/aid-flags?mine=x", headers=owner)).status == 422
    await sign_in(field, owner["Authorization"].removeprefix("Bearer "))
    html = await (await field.get("/admin/aid-flags?mine=1")).text()
    assert "only aids I own (Field-Ops@brightwater.example)" in html
    assert "Estimated meter reading (north depot)" in html and "Broken meter seal" not in html
