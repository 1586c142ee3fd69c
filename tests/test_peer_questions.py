"""Questions answered by the right people (issue 12): routing to mentors and owners by e-mail
(a real aiosmtpd server), answers, the unread badge, accepting, similar questions found by other
words, audiences, draft aids, permissions and limits.

The content is not the demo's: a small library of another company (Harbor Freight's fleet portal
and warehouse system), so routing and similarity are judged on words the demo never uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from tests.smtp import SmtpServer
from tests.tokens import TokenMaker

Q = "/api/v1/peer/questions"
TRIPS = "https://fleet.harbor.example/trips/4711"
FUEL = "https://fleet.harbor.example/fuel-cards"
PAYROLL = "https://fleet.harbor.example/driver-pay"
DOCK = "https://wms.harbor.example/dock/3"
OWNER = "fleet-lead@harbor.example"

APPS = {
    "fleet": f"""id: fleet
name: Harbor Fleet Portal
description: Trips, fuel cards and driver pay.
owners: [{OWNER}]
rules:
  - pattern: "https://fleet.harbor.example/**"
contexts:
  - id: fleet-trips
    name: Trip log
    rule: "https://fleet.harbor.example/trips/**"
    aids: [fleet-log-trip]
  - id: fleet-fuel
    name: Fuel cards
    rule: "https://fleet.harbor.example/fuel-cards"
    aids: [fleet-fuel-card]
  - id: fleet-pay
    name: Driver pay
    rule: "https://fleet.harbor.example/driver-pay"
    aids: [fleet-driver-pay]
""",
    "wms": """id: wms
name: Harbor Warehouse
description: Docks and inventory.
rules:
  - pattern: "https://wms.harbor.example/**"
contexts:
  - id: wms-dock
    name: Dock schedule
    rule: "https://wms.harbor.example/dock/**"
    aids: []
""",
}
AIDS = {
    "fleet-log-trip": ("Log a trip", "howto", "[]"),
    "fleet-fuel-card": ("Use a fuel card", "howto", "[]"),
    # Every aid pinned to the driver pay page is for drivers only: so are its questions.
    "fleet-driver-pay": ("Driver pay rates", "policy", "[drivers]"),
}
MENTORS = {
    # name, contact, apps, topics, username
    "rosa-diaz": ("Rosa Díaz", "rosa.diaz@harbor.example", "[fleet]", "[mileage, trip]", "rdiaz"),
    "omar-ali": ("Omar Ali", "omar.ali@harbor.example", "[fleet]", "[fuel card]", "oali"),
    "kim-lee": ("Kim Lee", "kim.lee@harbor.example", "[wms]", "[dock]", "klee"),
    "nina-vos": ("Nina Vos", "@nina.vos", "[fleet]", "[tolls]", "nvos"),  # chat handle: no mail
}


def write_library(root: Path) -> Path:
    for sub in ("apps", "aids", "mentors"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for app_id, text in APPS.items():
        (root / "apps" / f"{app_id}.yaml").write_text(text, encoding="utf-8")
    for aid_id, (title, kind, audience) in AIDS.items():
        (root / "aids" / f"{aid_id}.md").write_text(
            f"---\nid: {aid_id}\ntitle: {title}\ntype: {kind}\napps: [fleet]\n"
            f"audience: {audience}\nstatus: published\n---\n{title}.\n",
            encoding="utf-8",
        )
    for mentor_id, (name, contact, apps, topics, username) in MENTORS.items():
        (root / "mentors" / f"{mentor_id}.yaml").write_text(
            f'id: {mentor_id}\nname: {name}\ncontact: "{contact}"\napps: {apps}\n'
            f"topics: {topics}\nusername: {username}\nvetted: true\nvetted_by: fleet-ops\n",
            encoding="utf-8",
        )
    return root


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    return write_library(tmp_path / "harbor")


@pytest.fixture
async def peer(
    aiohttp_client: Any, make_settings: Any, library_dir: Path, smtp_server: SmtpServer
) -> TestClient:
    settings = make_settings(content_dir=library_dir, **smtp_server.settings())
    return await aiohttp_client(create_app(settings))


def learner(tokens: TokenMaker, sub: str = "driver-1", **kw: Any) -> dict[str, str]:
    return tokens.auth(sub=sub, roles=("learner",), **kw)


def mentor(tokens: TokenMaker, username: str) -> dict[str, str]:
    return tokens.auth(sub=f"sub-{username}", roles=("mentor",), preferred_username=username)


async def ask(
    client: TestClient, who: dict[str, str], url: str, body: str, **extra: Any
) -> dict[str, Any]:
    resp = await client.post(Q, json={"url": url, "title": "", "body": body, **extra}, headers=who)
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def answer(client: TestClient, who: dict[str, str], qid: str, body: str) -> dict[str, Any]:
    resp = await client.post(f"{Q}/{qid}/answers", json={"body": body}, headers=who)
    assert resp.status == 201, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def mine(client: TestClient, who: dict[str, str]) -> dict[str, Any]:
    resp = await client.get(f"{Q}/mine", headers=who)
    assert resp.status == 200, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def answered(
    client: TestClient,
    tokens: TokenMaker,
    url: str,
    body: str,
    reply: str,
    by: str = "rdiaz",
    **kw: Any,
) -> str:
    """A question asked, answered by a mentor (Rosa of the fleet) and accepted; its id."""
    asker = learner(tokens, **kw)
    qid = (await ask(client, asker, url, body))["id"]
    aid = (await answer(client, mentor(tokens, by), qid, reply))["id"]
    resp = await client.post(f"{Q}/{qid}/accept", json={"answer_id": aid}, headers=asker)
    assert resp.status == 200, await resp.text()
    return str(qid)


# -- routing ---------------------------------------------------------------------------------------


async def test_a_question_reaches_the_fitting_mentor_and_the_owner_by_email(
    peer: TestClient, tokens: TokenMaker, smtp_server: SmtpServer
) -> None:
    """The mentor of the app whose topic fits the page gets one e-mail with a link to the
    question in the console, as does the app's owner; the fleet's fuel-card mentor (no fitting
    topic) and the warehouse's mentor (another app) get none."""
    q = await ask(peer, learner(tokens), TRIPS, "How is mileage counted when a trip has two stops?")
    got = await smtp_server.wait_for(2)
    to = sorted(addr for m in got for addr in m.rcpt_tos)
    assert to == sorted(["rosa.diaz@harbor.example", OWNER])
    message = got[0]
    assert "Harbor Fleet Portal" in message.subject
    assert "two stops" in message.text
    assert f"/admin/questions/{q['id']}" in message.text
    assert "A colleague" in message.text  # the asker did not show their name


async def test_without_a_fitting_topic_every_mentor_of_the_app_is_asked(
    peer: TestClient, tokens: TokenMaker, smtp_server: SmtpServer
) -> None:
    await ask(peer, learner(tokens), DOCK, "Who do I call when the truck is late?")
    got = await smtp_server.wait_for(1)
    assert [m.rcpt_tos for m in got] == [["kim.lee@harbor.example"]]


async def test_an_unmapped_page_is_refused(peer: TestClient, tokens: TokenMaker) -> None:
    resp = await peer.post(
        Q, json={"url": "https://elsewhere.example/x", "body": "Hello?"}, headers=learner(tokens)
    )
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert "not a mapped app" in (await resp.json())["detail"]


# -- answer, unread, read, accept ----------------------------------------------------------------


async def test_answer_then_unread_then_read_then_accept(
    peer: TestClient, tokens: TokenMaker, smtp_server: SmtpServer
) -> None:
    asker = learner(tokens)
    q = await ask(peer, asker, TRIPS, "Do I log **waiting time** at the dock?", show_name=False)
    assert q["status"] == "open" and q["unread"] is False and "asker_key" not in q
    assert "<strong>waiting time</strong>" in q["body_html"]
    await smtp_server.wait_for(2)

    reply = await answer(peer, mentor(tokens, "rdiaz"), q["id"], "Yes: log it as *idle*.")
    assert reply["author_name"] == "Rosa Díaz" and reply["mentor_id"] == "rosa-diaz"
    assert "<em>idle</em>" in reply["body_html"]
    mine1 = await mine(peer, asker)
    assert mine1["unread"] == 1
    [mq] = mine1["questions"]
    assert mq["status"] == "answered" and mq["unread"] is True and mq["first_answer_at"]
    # answers are not e-mailed to learners: still only the two e-mails of the question
    assert len(smtp_server.received()) == 2

    resp = await peer.post(f"{Q}/{q['id']}/read", headers=asker)
    assert resp.status == 200 and (await resp.json())["unread"] is False
    assert (await mine(peer, asker))["unread"] == 0

    resp = await peer.post(f"{Q}/{q['id']}/accept", json={"answer_id": reply["id"]}, headers=asker)
    assert resp.status == 200, await resp.text()
    accepted = await resp.json()
    assert accepted["accepted_answer_id"] == reply["id"]
    assert [a["accepted"] for a in accepted["answers"]] == [True]


async def test_only_the_asker_reads_accepts_and_deletes(
    peer: TestClient, tokens: TokenMaker
) -> None:
    q = await ask(peer, learner(tokens), TRIPS, "Where do I log a ferry crossing?")
    reply = await answer(peer, mentor(tokens, "rdiaz"), q["id"], "Under tolls.")
    other = learner(tokens, sub="driver-2")
    for method, path, body in (
        ("POST", f"{Q}/{q['id']}/read", None),
        ("POST", f"{Q}/{q['id']}/accept", {"answer_id": reply["id"]}),
        ("DELETE", f"{Q}/{q['id']}", None),
    ):
        resp = await peer.request(method, path, json=body, headers=other)
        assert resp.status == 404, (method, path, resp.status)
    assert (await mine(peer, other))["questions"] == []


async def test_a_learner_deletes_their_question_and_it_is_audited(
    peer: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    asker = learner(tokens)
    qid = await answered(peer, tokens, TRIPS, "Is a detour logged as a trip?", "Yes, as one.")
    resp = await peer.delete(f"{Q}/{qid}", headers=asker)
    assert resp.status == 204
    assert (await mine(peer, asker))["questions"] == []
    resp = await peer.get(
        "/api/v1/admin/audit", params={"action": "question.delete"}, headers=admin
    )
    assert resp.status == 200, await resp.text()
    entries = (await resp.json())["entries"]
    assert [e["target_id"] for e in entries] == [qid]
    assert entries[0]["who"]["subject"] != "driver-1"  # a person key, never the subject
    # gone from the similar answers too
    resp = await peer.post(
        f"{Q}/similar", json={"url": TRIPS, "q": "detour trip"}, headers=learner(tokens, "d-3")
    )
    assert (await resp.json())["answers"] == []


# -- similar questions ---------------------------------------------------------------------------


async def test_similar_questions_are_found_by_inflected_words_and_synonyms(
    peer: TestClient, tokens: TokenMaker
) -> None:
    """'refunded' finds 'refund' (stems), 'reimbursement' finds 'refund' and 'miles' finds
    'mileage' (synonyms), on the same app; the page's own questions come first; another app's
    answered question is never offered."""
    await answered(
        peer, tokens, TRIPS, "How do I get my mileage refunded?", "Attach the odometer photo."
    )
    await answered(peer, tokens, FUEL, "Can I get a refund for fuel I paid myself?", "Yes.")
    await answered(
        peer, tokens, DOCK, "How are refunds for dock fees handled?", "Finance.", by="klee"
    )
    other = learner(tokens, sub="driver-9")
    resp = await peer.post(
        f"{Q}/similar",
        json={"url": TRIPS, "title": "Trip 4711", "q": "reimbursement for the miles I drove"},
        headers=other,
    )
    assert resp.status == 200, await resp.text()
    found = (await resp.json())["answers"]
    assert [f["question"] for f in found][:1] == ["How do I get my mileage refunded?"]
    assert found[0]["same_page"] is True
    assert "odometer" in found[0]["answer"]["body_html"]
    assert all("dock" not in f["question"] for f in found)

    resp = await peer.post(
        f"{Q}/similar", json={"url": TRIPS, "q": "refunding fuel"}, headers=other
    )
    texts = [f["question"] for f in (await resp.json())["answers"]]
    assert "Can I get a refund for fuel I paid myself?" in texts


async def test_page_answers_and_similar_respect_the_audience(
    peer: TestClient, tokens: TokenMaker
) -> None:
    """A question on a page whose aids are all for drivers is for drivers: other learners never
    see its accepted answer."""
    drivers = {"groups": ("drivers",)}
    qid = await answered(
        peer, tokens, PAYROLL, "When is overtime paid out?", "On the 15th.", **drivers
    )
    driver = learner(tokens, sub="driver-5", groups=("drivers",))
    clerk = learner(tokens, sub="clerk-1", groups=("office",))
    ask_similar = {"url": PAYROLL, "q": "overtime payout date"}
    resp = await peer.post(f"{Q}/similar", json=ask_similar, headers=driver)
    assert [f["question_id"] for f in (await resp.json())["answers"]] == [qid]
    resp = await peer.post(f"{Q}/similar", json=ask_similar, headers=clerk)
    assert (await resp.json())["answers"] == []

    from server import keys
    from server.peer.questions import page_answers

    app = peer.app
    service = app[keys.QUESTIONS]
    assert service is not None
    ident = app[keys.AUTHENTICATOR]
    clerk_id = await ident.authenticate(clerk["Authorization"].split()[1])
    driver_id = await ident.authenticate(driver["Authorization"].split()[1])
    seen = await page_answers(app, driver_id, "fleet", "fleet-pay", driver_id.audience_tags)
    assert [a["question_id"] for a in seen] == [qid]
    assert await page_answers(app, clerk_id, "fleet", "fleet-pay", clerk_id.audience_tags) == []


# -- draft aid -----------------------------------------------------------------------------------


async def test_an_author_turns_the_accepted_answer_into_a_draft_aid_once(
    peer: TestClient, tokens: TokenMaker
) -> None:
    qid = await answered(
        peer, tokens, FUEL, "What if the fuel card is declined?", "Call dispatch at 555-0100."
    )
    author = tokens.auth(sub="author-1", roles=("author",), preferred_username="writer")
    resp = await peer.post(f"/api/v1/admin/questions/{qid}/draft-aid", headers=author)
    assert resp.status == 201, await resp.text()
    made = await resp.json()
    aid_id = made["aid_id"]
    assert made["question"]["aid_id"] == aid_id
    resp = await peer.get(f"/api/v1/admin/aids/{aid_id}", headers=author)
    aid = await resp.json()
    assert aid["status"] == "draft" and aid["apps"] == ["fleet"]
    assert aid["title"] == "What if the fuel card is declined?"
    assert "Call dispatch at 555-0100." in aid["body"]
    assert f"/admin/questions/{qid}" in aid["body"]  # the link back to the question
    resp = await peer.post(f"/api/v1/admin/questions/{qid}/draft-aid", headers=author)
    assert resp.status == 409
    problem = await resp.json()
    assert problem["aid_id"] == aid_id and aid_id in problem["detail"]
    learner_h = learner(tokens, sub="driver-7")
    resp = await peer.post(f"/api/v1/admin/questions/{qid}/draft-aid", headers=learner_h)
    assert resp.status == 403


# -- permissions, moderation, limits -------------------------------------------------------------


async def test_who_may_answer(peer: TestClient, tokens: TokenMaker) -> None:
    """A learner, a mentor of another app, and an unvetted or unlinked mentor role are refused;
    the app's owner (by the token's e-mail) answers, named as the owner."""
    q = await ask(peer, learner(tokens), TRIPS, "Can I swap trucks mid-trip?")
    for who in (
        learner(tokens, sub="driver-2"),
        mentor(tokens, "klee"),  # the warehouse's mentor
        mentor(tokens, "nobody"),  # the mentor role without a mentor record
    ):
        resp = await peer.post(f"{Q}/{q['id']}/answers", json={"body": "Yes"}, headers=who)
        assert resp.status == 403, await resp.text()
        assert resp.content_type == "application/problem+json"
    owner = tokens.auth(sub="lead-1", roles=("learner",), email=OWNER.upper(), name="Fleet Lead")
    reply = await answer(peer, owner, q["id"], "Only with the depot's approval.")
    assert reply["mentor_id"] == ""


async def test_inbox_of_a_mentor_holds_their_apps_questions(
    peer: TestClient, tokens: TokenMaker
) -> None:
    await ask(peer, learner(tokens), TRIPS, "Trip question?")
    await ask(peer, learner(tokens), DOCK, "Dock question?")
    resp = await peer.get("/api/v1/peer/inbox", headers=mentor(tokens, "rdiaz"))
    assert [q["body"] for q in (await resp.json())["questions"]] == ["Trip question?"]
    resp = await peer.get("/api/v1/peer/inbox", headers=learner(tokens, sub="x"))
    assert (await resp.json())["questions"] == []


async def test_hide_by_reviewer_or_owner_only(
    peer: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    qid = await answered(peer, tokens, TRIPS, "Is a trailer swap a new trip?", "No.")
    resp = await peer.post(
        f"/api/v1/admin/questions/{qid}/hide", headers=learner(tokens, sub="driver-3")
    )
    assert resp.status == 403
    reviewer = tokens.auth(sub="rev-1", roles=("reviewer",))
    resp = await peer.post(f"/api/v1/admin/questions/{qid}/hide", headers=reviewer)
    assert resp.status == 200 and (await resp.json())["status"] == "hidden"
    resp = await peer.post(
        f"{Q}/similar", json={"url": TRIPS, "q": "trailer swap"}, headers=learner(tokens, "d-4")
    )
    assert (await resp.json())["answers"] == []
    resp = await peer.get("/api/v1/admin/audit", params={"action": "question.hide"}, headers=admin)
    assert [e["target_id"] for e in (await resp.json())["entries"]] == [qid]


async def test_limits(peer: TestClient, tokens: TokenMaker) -> None:
    who = learner(tokens)
    resp = await peer.post(Q, json={"url": TRIPS, "body": "x" * 1001}, headers=who)
    assert resp.status == 422 and resp.content_type == "application/problem+json"
    resp = await peer.post(Q, json={"url": TRIPS, "body": " \x00\x07 "}, headers=who)
    assert resp.status == 422  # only control characters: empty once cleaned
    q = await ask(peer, who, TRIPS, "Bell\x07 in the\x00 question?")
    assert q["body"] == "Bell in the question?"
    resp = await peer.post(
        f"{Q}/{q['id']}/answers", json={"body": "y" * 3001}, headers=mentor(tokens, "rdiaz")
    )
    assert resp.status == 422


async def test_writes_are_rate_limited_per_person(
    aiohttp_client: Any, make_settings: Any, library_dir: Path, tokens: TokenMaker
) -> None:
    client = await aiohttp_client(
        create_app(make_settings(content_dir=library_dir, peer_writes_per_hour=2))
    )
    who = learner(tokens)
    for n in range(2):
        await ask(client, who, TRIPS, f"Question {n}?")
    resp = await client.post(Q, json={"url": TRIPS, "body": "Third?"}, headers=who)
    assert resp.status == 429, await resp.text()
    assert resp.content_type == "application/problem+json"
    await ask(client, learner(tokens, sub="driver-2"), TRIPS, "Someone else's question?")


async def test_the_index_is_rebuilt_from_the_database_at_start_up(
    aiohttp_client: Any, make_settings: Any, library_dir: Path, tokens: TokenMaker
) -> None:
    """The database is the source of truth: an index folder removed while the server was down
    is rebuilt at start-up, so accepted answers are found again."""
    settings = make_settings(content_dir=library_dir)
    client = await aiohttp_client(create_app(settings))
    await answered(client, tokens, TRIPS, "How do I split a trip?", "Use Split in the menu.")
    await client.close()
    import shutil

    shutil.rmtree(settings.data_dir / "questions-index")
    client = await aiohttp_client(create_app(settings))
    resp = await client.post(
        f"{Q}/similar", json={"url": TRIPS, "q": "splitting trips"}, headers=learner(tokens, "z")
    )
    assert [f["question"] for f in (await resp.json())["answers"]] == ["How do I split a trip?"]


# -- the console ---------------------------------------------------------------------------------


async def test_a_mentor_answers_in_the_console(peer: TestClient, tokens: TokenMaker) -> None:
    """A mentor (no author or reviewer role) signs in for the questions inbox only: the other
    console pages send them there; they see their app's question, answer it with the form, and
    the asker gets the unread badge."""
    from tests.test_admin_console import sign_in

    asker = learner(tokens)
    q = await ask(peer, asker, TRIPS, "Where do I log a tyre change? <script>alert(1)</script>")
    await ask(peer, learner(tokens), DOCK, "A dock question nobody here answers")
    csrf = await sign_in(
        peer, tokens.token(sub="sub-rdiaz", roles=("mentor",), preferred_username="rdiaz")
    )
    for path in ("/admin", "/admin/aids"):
        resp = await peer.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"] == "/admin/questions", path
    resp = await peer.get("/admin/questions")
    page = await resp.text()
    assert resp.status == 200
    assert f'href="/admin/questions/{q["id"]}"' in page
    assert "dock question" not in page
    resp = await peer.get(f"/admin/questions/{q['id']}")
    page = await resp.text()
    assert "tyre change?" in page and "<script>alert" not in page  # the learner's HTML is inert
    assert 'action="/admin/questions/' in page and "Send answer" in page
    resp = await peer.post(
        f"/admin/questions/{q['id']}/answers",
        data={"csrf_token": csrf, "body": "Under *maintenance*."},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    resp = await peer.get(resp.headers["Location"])
    assert "Under <em>maintenance</em>." in await resp.text()
    assert (await mine(peer, asker))["unread"] == 1


async def test_an_author_makes_a_draft_aid_in_the_console_once(
    peer: TestClient, tokens: TokenMaker
) -> None:
    from tests.test_admin_console import sign_in

    qid = await answered(peer, tokens, FUEL, "Is diesel for the reefer unit on the card?", "Yes.")
    csrf = await sign_in(peer, tokens.token(sub="author-1", roles=("author",)))
    resp = await peer.get("/admin/questions")
    assert f"/admin/questions/{qid}" in await resp.text()
    resp = await peer.get(f"/admin/questions/{qid}")
    assert "Turn into a draft aid" in await resp.text()
    resp = await peer.post(
        f"/admin/questions/{qid}/draft-aid", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303
    location = resp.headers["Location"]
    assert location.startswith("/admin/aids/")
    aid_id = location.split("?")[0].rsplit("/", 1)[1]
    resp = await peer.post(f"/admin/questions/{qid}/draft-aid", data={"csrf_token": csrf})
    assert resp.status == 409
    assert aid_id in await resp.text()


async def test_an_owner_answers_and_hides_in_the_console(
    peer: TestClient, tokens: TokenMaker
) -> None:
    """An app's owner with no console role (a learner whose e-mail is among the fleet's owners)
    opens the questions inbox, sees only the fleet's questions, answers one and hides another."""
    from tests.test_admin_console import sign_in

    first = await ask(peer, learner(tokens), TRIPS, "Who signs off a trip over 800 km?")
    second = await ask(peer, learner(tokens), FUEL, "Spam spam spam")
    await ask(peer, learner(tokens), DOCK, "A warehouse question")
    csrf = await sign_in(
        peer, tokens.token(sub="lead-1", roles=("learner",), email=OWNER, name="Fleet Lead")
    )
    resp = await peer.get("/admin/questions")
    page = await resp.text()
    assert resp.status == 200, page
    assert first["id"] in page and second["id"] in page and "warehouse" not in page
    resp = await peer.post(
        f"/admin/questions/{first['id']}/answers",
        data={"csrf_token": csrf, "body": "The depot lead."},
        allow_redirects=False,
    )
    assert resp.status == 303, await resp.text()
    resp = await peer.post(
        f"/admin/questions/{second['id']}/hide", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert resp.status == 303
    resp = await peer.get("/api/v1/peer/inbox", headers=tokens.auth(sub="rev", roles=("reviewer",)))
    statuses = {q["id"]: q["status"] for q in (await resp.json())["questions"]}
    assert statuses[first["id"]] == "answered" and statuses[second["id"]] == "hidden"


async def test_a_mentor_asking_is_not_emailed_their_own_question(
    peer: TestClient, tokens: TokenMaker, smtp_server: SmtpServer
) -> None:
    """Rosa asks on a trip page: she is the only mentor whose topic fits, so the app's other
    mentors are asked instead (Omar; Nina's contact is a chat handle), and the owner."""
    rosa = tokens.auth(sub="sub-rdiaz", roles=("mentor", "learner"), preferred_username="rdiaz")
    await ask(peer, rosa, TRIPS, "Has the mileage rate for trips changed this year?")
    got = await smtp_server.wait_for(2)
    assert sorted(a for m in got for a in m.rcpt_tos) == sorted([OWNER, "omar.ali@harbor.example"])


async def test_the_index_is_kept_when_it_agrees_and_rebuilt_when_not(tmp_path: Path) -> None:
    """A restart keeps an index that holds exactly the database's answered questions (no
    re-indexing of thousands at every start); one that misses a change (made while it was
    closed, e.g. by another node) is rebuilt, so an edited answer is never served stale."""
    from server.peer.question_index import QuestionDoc, QuestionIndex

    docs = [
        QuestionDoc("q1", "fleet", "fleet-trips", (), "How do I log a ferry?", "Under tolls."),
        QuestionDoc("q2", "fleet", "", ("drivers",), "Night shift pay?", "Time and a half."),
    ]
    index = QuestionIndex(tmp_path / "questions-index")
    assert await index.open(docs) is True  # nothing on disk yet
    await index.close()
    index = QuestionIndex(tmp_path / "questions-index")
    assert await index.open(docs) is False  # agrees: kept
    await index.close()
    changed = [docs[0], QuestionDoc("q2", "fleet", "", ("drivers",), "Night shift pay?", "Double.")]
    index = QuestionIndex(tmp_path / "questions-index")
    assert await index.open(changed) is True
    hits = await index.similar("night pay", app_id="fleet", context_id="", audience=None, limit=5)
    assert [h.id for h in hits] == ["q2"]
    await index.close()
