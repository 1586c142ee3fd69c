"""POST /api/v1/peer/page: what the panel shows about peer learning on one page.

A small library of another company's app (not the demo's): Ledgerly, a finance app with a
month-end close page whose pinned aid is for controllers only, and a home page whose aid is for
everyone; Kim is its vetted mentor, owner@ledger.example.org owns it. Tips and questions go
through the real feature endpoints (write, moderate, answer, accept), then the page endpoint is
asked as different people.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.settings import Settings
from tests.tokens import TokenMaker

HOME = "https://ledger.example.org/app/home"
CLOSE = "https://ledger.example.org/app/close/2026-11"
ELSEWHERE = "https://unknown.example.net/whatever"
KEYS = {
    "app",
    "context",
    "tips",
    "answers",
    "my_questions",
    "my_mentors",
    "recommendations",
    "can",
    "me",
}


def write_library(root: Path) -> Path:
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    (root / "mentors").mkdir()
    (root / "apps" / "ledger.yaml").write_text(
        """id: ledger
name: Ledgerly
owners: [owner@ledger.example.org]
rules:
  - pattern: "https://ledger.example.org/app/**"
contexts:
  - id: ledger-home
    name: Ledger home
    rules: ["https://ledger.example.org/app/home"]
    aids: [ledger-tour]
  - id: ledger-close
    name: Month-end close
    rules: ["https://ledger.example.org/app/close/*"]
    aids: [ledger-close-steps]
""",
        encoding="utf-8",
    )
    for aid_id, title, audience in (
        ("ledger-tour", "A tour of Ledgerly", "[]"),
        ("ledger-close-steps", "Close the month in Ledgerly", "[controllers]"),
    ):
        (root / "aids" / f"{aid_id}.md").write_text(
            f"""---
id: {aid_id}
title: {title}
summary: How the page works.
type: howto
tags: [ledger]
apps: [ledger]
audience: {audience}
owner: finance-enablement@ledger.example.org
status: published
---
Steps for {title.lower()}.
""",
            encoding="utf-8",
        )
    (root / "mentors" / "kim-tanaka.yaml").write_text(
        """id: kim-tanaka
name: Kim Tanaka
contact: kim@ledger.example.org
can_help_with: Month-end close and reconciliations.
apps: [ledger]
topics: [close, reconcile]
username: kim
audience: []
active: true
vetted: true
vetted_by: finance-enablement
vetted_at: 2026-10-01
""",
        encoding="utf-8",
    )
    return root


@pytest.fixture
async def peer(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path
) -> TestClient:
    content = write_library(tmp_path / "ledger-content")
    return await aiohttp_client(create_app(make_settings(content_dir=content)))


class People:
    """Tokens for the people of these tests (forged, tests/tokens.py)."""

    def __init__(self, tokens: TokenMaker) -> None:
        self.tokens = tokens

    def learner(self, sub: str, *groups: str, name: str = "") -> dict[str, str]:
        extra = {"name": name} if name else {}
        return self.tokens.auth(sub=sub, roles=("learner",), groups=groups, **extra)

    def kim(self) -> dict[str, str]:
        return self.tokens.auth(
            sub="kim-sub", roles=("learner", "mentor"), preferred_username="kim", name="Kim Tanaka"
        )

    def owner(self) -> dict[str, str]:
        return self.tokens.auth(
            sub="owner-sub", roles=("learner",), email="Owner@Ledger.example.org"
        )

    def reviewer(self) -> dict[str, str]:
        return self.tokens.auth(sub="rev-sub", roles=("learner", "author", "reviewer"))


@pytest.fixture
def people(tokens: TokenMaker) -> People:
    return People(tokens)


async def page(client: TestClient, headers: dict[str, str], url: str) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/peer/page", json={"url": url, "title": "Ledgerly"}, headers=headers
    )
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def shared_and_approved(
    client: TestClient, author: dict[str, str], moderator: dict[str, str], url: str, text: str
) -> str:
    resp = await client.post(
        "/api/v1/peer/tips",
        json={"url": url, "title": "Ledgerly", "body": text, "show_name": True},
        headers=author,
    )
    assert resp.status == 201, await resp.text()
    tip_id = str((await resp.json())["id"])
    resp = await client.post(f"/api/v1/admin/tips/{tip_id}/approve", headers=moderator)
    assert resp.status == 200, await resp.text()
    return tip_id


async def test_shape_for_a_learner(peer: TestClient, people: People) -> None:
    body = await page(peer, people.learner("ann", name="Ann Archer"), HOME)
    assert set(body) == KEYS
    assert body["me"] == {"name": "Ann Archer", "mentor_id": ""}
    assert body["app"] == {"id": "ledger", "name": "Ledgerly"}
    assert body["context"] == {"id": "ledger-home", "name": "Ledger home"}
    for key in ("tips", "answers", "my_questions", "my_mentors", "recommendations"):
        assert body[key] == [], key
    assert body["can"] == {
        "tip": True,
        "ask": True,
        "answer": False,
        "moderate": False,
        "recommend": False,
        "endorse": False,
        "flag": False,
        "mentees": False,
    }


async def test_what_mentors_owners_and_reviewers_are_offered(
    peer: TestClient, people: People
) -> None:
    """A mentor was offered no Endorse button, no Flag action and no mentees in the panel: the
    page's `can` said nothing of them. Now it does, for vetted mentors of the app only."""
    kim_page = await page(peer, people.kim(), CLOSE)
    kim = kim_page["can"]
    assert kim["answer"] and kim["recommend"] and not kim["moderate"]
    assert kim["endorse"] and kim["flag"] and kim["mentees"]
    assert kim_page["me"]["mentor_id"]
    owner = (await page(peer, people.owner(), CLOSE))["can"]
    assert owner["answer"] and owner["moderate"] and not owner["recommend"]
    assert not owner["endorse"] and not owner["flag"] and not owner["mentees"]
    reviewer = (await page(peer, people.reviewer(), CLOSE))["can"]
    assert reviewer["moderate"] and not reviewer["answer"] and not reviewer["endorse"]


async def test_a_page_of_no_app_and_bad_requests_are_problems(
    peer: TestClient, people: People
) -> None:
    resp = await peer.post(
        "/api/v1/peer/page", json={"url": ELSEWHERE, "title": "x"}, headers=people.learner("ann")
    )
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    assert "not a mapped app" in await resp.text()
    for bad in ({"title": "no url"}, {"url": HOME, "extra": 1}, {"url": "ftp://x/"}):
        resp = await peer.post("/api/v1/peer/page", json=bad, headers=people.learner("ann"))
        assert resp.status == 422, bad
        assert resp.content_type == "application/problem+json"
    resp = await peer.post("/api/v1/peer/page", json={"url": HOME})
    assert resp.status == 401
    assert resp.content_type == "application/problem+json"


async def test_tips_reach_the_page_audience_only(peer: TestClient, people: People) -> None:
    """A tip on the close page (its aid is for controllers) is seen by controllers only; a tip
    on the home page (its aid is for everyone) by everyone. Pending tips show to nobody."""
    ctrl_author = people.learner("cara", "controllers", name="Cara Controller")
    moderator = people.reviewer()
    close_tip = await shared_and_approved(
        peer, ctrl_author, moderator, CLOSE, "Run the **accruals** report first."
    )
    home_tip = await shared_and_approved(
        peer, ctrl_author, moderator, HOME, "Pin your favourite ledgers."
    )
    pending = await peer.post(
        "/api/v1/peer/tips",
        json={"url": HOME, "title": "Ledgerly", "body": "Not approved yet", "show_name": False},
        headers=people.learner("dan"),
    )
    assert pending.status == 201

    controller = await page(peer, people.learner("carl", "controllers"), CLOSE)
    assert [t["id"] for t in controller["tips"]] == [close_tip]
    [tip] = controller["tips"]
    assert "<strong>accruals</strong>" in tip["body_html"]
    assert tip["author_name"] == "Cara Controller"

    outsider = await page(peer, people.learner("sales-sam", "sales"), CLOSE)
    assert outsider["tips"] == []
    home = await page(peer, people.learner("sales-sam", "sales"), HOME)
    assert [t["id"] for t in home["tips"]] == [home_tip]


async def test_reported_tips_leave_the_reporters_page(peer: TestClient, people: People) -> None:
    tip_id = await shared_and_approved(
        peer, people.learner("ann", name="Ann"), people.reviewer(), HOME, "Use Ctrl+K to search."
    )
    reporter = people.learner("rob")
    resp = await peer.post(
        f"/api/v1/peer/tips/{tip_id}/report", json={"reason": "wrong shortcut"}, headers=reporter
    )
    assert resp.status in (200, 201), await resp.text()
    assert (await page(peer, reporter, HOME))["tips"] == []
    assert [t["id"] for t in (await page(peer, people.learner("eve"), HOME))["tips"]] == [tip_id]


async def test_questions_answers_and_mine(peer: TestClient, people: People) -> None:
    """The asker sees their question with the mentor's answer (unread until read); once accepted,
    another learner on the page sees the accepted answer; nobody else sees the asker's question."""
    asker = people.learner("ann", name="Ann")
    resp = await peer.post(
        "/api/v1/peer/questions",
        json={
            "url": HOME,
            "title": "Ledgerly",
            "body": "How do I export a trial balance?",
            "show_name": False,
        },
        headers=asker,
    )
    assert resp.status == 201, await resp.text()
    qid = (await resp.json())["id"]
    assert [q["id"] for q in (await page(peer, asker, HOME))["my_questions"]] == [qid]
    assert (await page(peer, people.learner("bob"), HOME))["my_questions"] == []

    resp = await peer.post(
        f"/api/v1/peer/questions/{qid}/answers",
        json={"body": "Reports → Trial balance → **Export**."},
        headers=people.kim(),
    )
    assert resp.status == 201, await resp.text()
    answer_id = (await resp.json())["id"]
    [mine] = (await page(peer, asker, HOME))["my_questions"]
    assert mine["unread"] is True
    assert [a["id"] for a in mine["answers"]] == [answer_id]

    resp = await peer.post(
        f"/api/v1/peer/questions/{qid}/accept", json={"answer_id": answer_id}, headers=asker
    )
    assert resp.status == 200, await resp.text()
    other = await page(peer, people.learner("bob"), HOME)
    [answered] = other["answers"]
    assert answered["question_id"] == qid
    assert "<strong>Export</strong>" in answered["answer"]["body_html"]
    # Asked on the home page: not an answer of the close page.
    assert (await page(peer, people.learner("bob", "controllers"), CLOSE))["answers"] == []


async def test_similar_questions_after_a_search_on_an_empty_index(
    peer: TestClient, people: People
) -> None:
    """Incident (browser test of the panel): a learner typed a question while no question had an
    accepted answer yet (the similar-questions index was empty); after the first answer was
    accepted, every similar-questions search answered 500 (Whoosh cannot refresh a searcher
    opened on an empty index), so the panel never showed answers while typing."""
    learner = people.learner("ann")
    similar = {"url": HOME, "title": "Ledgerly", "q": "How do I export a trial balance?"}
    resp = await peer.post("/api/v1/peer/questions/similar", json=similar, headers=learner)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["answers"] == []

    resp = await peer.post(
        "/api/v1/peer/questions",
        json={
            "url": HOME,
            "title": "Ledgerly",
            "body": "How can I export the trial balance?",
            "show_name": False,
        },
        headers=learner,
    )
    qid = (await resp.json())["id"]
    resp = await peer.post(
        f"/api/v1/peer/questions/{qid}/answers",
        json={"body": "Reports, then Trial balance, then Export."},
        headers=people.kim(),
    )
    answer_id = (await resp.json())["id"]
    resp = await peer.post(
        f"/api/v1/peer/questions/{qid}/accept", json={"answer_id": answer_id}, headers=learner
    )
    assert resp.status == 200

    other = people.learner("bob")
    resp = await peer.post("/api/v1/peer/questions/similar", json=similar, headers=other)
    assert resp.status == 200, await resp.text()
    assert [a["question_id"] for a in (await resp.json())["answers"]] == [qid]
