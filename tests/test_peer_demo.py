"""The peer learning demo (content/demo/peer.yaml): `inflow import content/demo` (what `make run`
does) seeds tips, questions, a pairing for the demo new hire, a recommendation and a flag, and
importing again changes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.app import create_app
from server.cli import main
from server.demo import PEER_DEMO_FILE, peer_demo_objects, seed_peer_demo
from server.peer.models import AidFlag, Answer, Pairing, Question, Recommendation, Tip
from server.settings import Settings
from tests.conftest import DEMO


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INFLOW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_import_seeds_the_peer_demo_once(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    total = len(peer_demo_objects(DEMO / PEER_DEMO_FILE))
    assert main(["import", str(DEMO)]) == 0
    assert f"Peer learning demo ({DEMO / PEER_DEMO_FILE}): added {total}, renewed 0, kept 0" in (
        capsys.readouterr().out
    )
    assert main(["import", str(DEMO)]) == 0  # idempotent: `make run` imports on every start
    assert f"added 0, renewed 0, kept {total}" in capsys.readouterr().out


async def test_the_demo_shows_every_part_of_the_loop(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    data_dir: Path,
    admin: dict[str, str],
) -> None:
    assert await asyncio.to_thread(main, ["import", str(DEMO)]) == 0
    client = await aiohttp_client(create_app(make_settings(data_dir=data_dir)))
    app = client.server.app
    peer = app[keys.PEER]
    catalog = app[keys.LIBRARY].catalog
    tips = await peer.list(Tip)
    assert {t.status for t in tips} >= {"approved", "pending"}
    assert any(t.endorsed_by == "maria-lopez" and t.status == "approved" for t in tips)
    questions = {q.status: q for q in await peer.list(Question)}
    answered = questions["answered"]
    assert questions["open"].first_answer_at == ""
    (answer,) = await peer.list(Answer, question_id=answered.id)
    assert answer.accepted and answered.accepted_answer_id == answer.id
    assert answered.first_answer_at >= answered.created_at
    (pairing,) = await peer.list(Pairing, learner_username="newhire")
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert pairing.starts_on is not None and pairing.ends_on is not None
    assert pairing.starts_on <= today <= pairing.ends_on  # current: the new hire sees a mentor
    assert pairing.mentor_id in {m.id for m in catalog.mentors if m.vetted and m.active}
    (rec,) = await peer.list(Recommendation)
    assert rec.aid_id in catalog.aids and rec.context_id in catalog.contexts
    (flag,) = await peer.list(AidFlag)
    assert flag.status == "open" and flag.aid_id in catalog.aids
    # every reference of the demo file is to the demo's own apps, pages, aids and mentors
    for obj in [*tips, *questions.values()]:
        assert obj.app_id in catalog.apps
        assert obj.context_id == "" or catalog.contexts[obj.context_id].app_id == obj.app_id
    # the analytics dashboard's peer figures show it (the demo's threshold is 1 person)
    await client.close()  # one server per data directory
    demo = await aiohttp_client(create_app(make_settings(data_dir=data_dir, analytics_min_group=1)))
    body = await (await demo.get("/api/v1/analytics/peer", headers=admin)).json()
    summary = {r["figure"]: r["value"] for r in body["tables"]["summary"]["rows"]}
    assert summary["tips_submitted"] == 3 and summary["tips_pending"] == 1
    assert summary["questions_answered"] == 1 and summary["questions_unanswered"] == 1


async def test_an_ended_demo_pairing_is_renewed(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    """`make run` a month later: the demo pairing had ended, so the new hire saw no mentor."""
    client = await aiohttp_client(create_app(make_settings()))
    peer = client.server.app[keys.PEER]
    path = DEMO / PEER_DEMO_FILE
    first = await seed_peer_demo(peer, path)
    assert first["added"] > 0 and first["renewed"] == 0
    (pairing,) = await peer.list(Pairing, learner_username="newhire")
    await peer.update(dataclasses.replace(pairing, starts_on="2026-01-01", ends_on="2026-01-31"))
    again = await seed_peer_demo(peer, path)
    assert again == {"added": 0, "renewed": 1, "kept": first["added"] - 1}
    (pairing,) = await peer.list(Pairing, learner_username="newhire")
    assert pairing.ends_on is not None
    assert pairing.ends_on >= dt.datetime.now(dt.UTC).date().isoformat()


async def test_the_demo_new_hire_sees_their_mentor_first(
    aiohttp_client: Any, make_settings: Callable[..., Settings], data_dir: Path, tokens: Any
) -> None:
    """`make run`, then sign in as the demo new hire (newhire, group new-hires) on a CRM page:
    the paired mentor comes first under people, saying so."""
    assert await asyncio.to_thread(main, ["import", str(DEMO)]) == 0
    client = await aiohttp_client(create_app(make_settings(data_dir=data_dir)))
    newhire = tokens.auth(
        sub="newhire-sub",
        roles=("learner",),
        groups=("new-hires", "sales"),
        preferred_username="newhire",
    )
    resp = await client.post(
        "/api/v1/suggest",
        json={"url": "http://127.0.0.1:8080/demo/crm/opportunities/new", "title": "New"},
        headers=newhire,
    )
    assert resp.status == 200, await resp.text()
    mentors = (await resp.json())["mentors"]
    assert mentors[0]["id"] == "maria-lopez"
    assert mentors[0]["reason"] == "Your mentor for Northwind CRM"


async def test_the_demo_page_shows_tips_answers_and_recommendations(
    aiohttp_client: Any, make_settings: Callable[..., Settings], data_dir: Path, tokens: Any
) -> None:
    """What content/demo/README.md promises on the CRM's new-opportunity page: a learner sees the
    endorsed tip, the accepted answer and María's recommendation; María's inbox has the open
    question and her mentee."""
    assert await asyncio.to_thread(main, ["import", str(DEMO)]) == 0
    client = await aiohttp_client(create_app(make_settings(data_dir=data_dir)))
    page = {"url": "http://127.0.0.1:8080/demo/crm/opportunities/new", "title": "New Opportunity"}
    learner = tokens.auth(sub="demo-learner", roles=("learner",), groups=("sales",))
    resp = await client.post("/api/v1/peer/page", json=page, headers=learner)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    (tip,) = body["tips"]  # the pending tip is not shown
    assert tip["author_name"] == "Priya Shah" and tip["endorsed_by"]["id"] == "maria-lopez"
    assert [a["question_id"] for a in body["answers"]] == ["demo-q-renewal-stage"]
    assert [r["aid_id"] for r in body["recommendations"]] == ["crm-forecast-categories"]

    maria = tokens.auth(sub="demo-maria", roles=("learner", "mentor"), preferred_username="mlopez")
    inbox = await (await client.get("/api/v1/peer/inbox", headers=maria)).json()
    open_ids = [q["id"] for q in inbox["questions"] if q["status"] == "open"]
    assert open_ids == ["demo-q-split-deal"]
    mentees = await (await client.get("/api/v1/peer/mentees", headers=maria)).json()
    assert [m["learner_username"] for m in mentees["mentees"]] == ["newhire"]
