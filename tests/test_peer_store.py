"""PeerStore: every peer resource stored and read back as it was written, the database's
constraints as domain errors (409 / 404), transactions all or nothing, and the store wired into
the app (keys.PEER)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from server import keys
from server.app import create_app
from server.db.peer_tables import TABLES, tips
from server.models import FieldErrors, validate
from server.peer.models import (
    PEER_RESOURCES,
    AidFlag,
    Answer,
    Notification,
    Pairing,
    PairingRule,
    Question,
    Recommendation,
    Tip,
    TipReport,
)
from server.peer.store import PeerConflict, PeerNotFound, PeerStore, PeerTx
from server.settings import Settings
from server.storage import Storage


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[PeerStore]:
    storage = Storage(tmp_path / "db.sqlite3")
    await storage.open()
    try:
        yield PeerStore(storage)
    finally:
        await storage.close()


def samples() -> list[Any]:
    """One object of every peer resource, every field away from its default."""
    return [
        Tip(
            app_id="crm",
            context_id="quote-editor",
            body="Press **Ctrl+S** twice: the first saves a draft.",
            author_key="k-author",
            author_name="Ana Pérez",
            show_name=True,
            status="approved",
            reject_reason="",
            audience=("sales", "emea"),
            endorsed_by="maria",
            endorsed_at="2026-11-30T10:00:00Z",
            moderated_by="rev@example.com",
            moderated_at="2026-11-30T09:00:00Z",
            report_count=2,
        ),
        Question(
            app_id="crm",
            context_id="quote-editor",
            body="How do I apply a partner discount?",
            asker_key="k-asker",
            asker_name="",
            show_name=False,
            status="answered",
            audience=("sales",),
            accepted_answer_id="a1",
            aid_id="partner-discounts",
            unread=True,
            first_answer_at="2026-11-30T11:00:00Z",
        ),
        Pairing(
            learner_username="new.hire",
            learner_key="k-new",
            mentor_id="maria",
            app_id="crm",
            starts_on="2026-12-01",
            ends_on="2026-12-31",
            source="rule:new-hires-crm",
            created_by="admin@example.com",
        ),
        PairingRule(
            id="new-hires-crm",
            group="new-hires",
            app_id="crm",
            mentor_ids=("maria", "li"),
            days=45,
            cap=3,
            start_claim="start_date",
            active=False,
        ),
        Recommendation(
            mentor_id="maria",
            app_id="crm",
            context_id="quote-editor",
            aid_id="partner-discounts",
            note="Read this before your first quote.",
        ),
        AidFlag(
            aid_id="partner-discounts",
            mentor_id="maria",
            kind="outdated",
            comment="The 2025 rates changed.",
            status="resolved",
            resolved_by="author@example.com",
            resolved_at="2026-11-30T12:00:00Z",
        ),
        Notification(
            to_addr="maria@example.com",
            subject="A new question about CRM",
            body_text="Someone asked...\nhttps://inflow.example/admin/questions/x",
            kind="question",
            ref="q1",
            status="failed",
            attempts=5,
            last_error="550 mailbox unavailable",
            sent_at="",
        ),
    ]


async def test_every_resource_round_trips(store: PeerStore) -> None:
    """What is written is what is read: every field of every resource (tuples, flags, numbers,
    nullable dates), with a server-made id and timestamps."""
    written = samples()
    # children need their parents
    tip = await store.add(written[0])
    question = await store.add(written[1])
    written += [
        TipReport(tip_id=tip.id, reporter_key="k-rep", reason="Wrong menu name."),
        Answer(
            question_id=question.id,
            body="Use **Partner price** in the discount menu.",
            author_key="k-maria",
            author_name="María",
            mentor_id="maria",
            accepted=True,
        ),
    ]
    assert {type(o) for o in written} == set(PEER_RESOURCES)
    for obj in written[2:]:
        await store.add(obj)
    for obj in written:
        cls = type(obj)
        (stored,) = await store.list(cls, **({"id": obj.id} if obj.id else {}))
        assert len(stored.id) >= 8, cls
        assert stored.created_at.endswith("Z"), cls
        expected = dataclasses.replace(
            obj,
            **{
                f: getattr(stored, f) for f in ("id", "created_at", "updated_at") if hasattr(obj, f)
            },
        )
        assert stored == expected, cls
        assert await store.get(cls, stored.id) == stored


async def test_update_delete_and_missing(store: PeerStore) -> None:
    tip = await store.add(Tip(app_id="crm", body="A tip"))
    edited = await store.update(dataclasses.replace(tip, body="A better tip", status="pending"))
    assert (await store.get(Tip, tip.id)).body == "A better tip"
    assert edited.updated_at >= tip.updated_at
    await store.delete(Tip, tip.id)
    assert await store.find(Tip, tip.id) is None
    with pytest.raises(PeerNotFound, match="No tip with id"):
        await store.get(Tip, tip.id)
    with pytest.raises(PeerNotFound):
        await store.update(tip)
    with pytest.raises(PeerNotFound):
        await store.delete(Tip, tip.id)
    with pytest.raises(PeerNotFound, match="No pairing rule"):
        await store.get(PairingRule, "nope")


async def test_one_report_per_tip_and_reporter(store: PeerStore) -> None:
    """A second report by the same person is a conflict from the database (409 at the API),
    while another person's report of the same tip is fine."""
    tip = await store.add(Tip(app_id="crm", body="Some tip"))
    await store.add(TipReport(tip_id=tip.id, reporter_key="k1"))
    with pytest.raises(PeerConflict, match="already reported") as caught:
        await store.add(TipReport(tip_id=tip.id, reporter_key="k1", reason="again"))
    assert caught.value.status == 409
    await store.add(TipReport(tip_id=tip.id, reporter_key="k2"))
    assert await store.count(TipReport, tip_id=tip.id) == 2


async def test_one_recommendation_per_mentor_context_aid(store: PeerStore) -> None:
    rec = Recommendation(mentor_id="maria", app_id="crm", context_id="quotes", aid_id="discounts")
    await store.add(rec)
    with pytest.raises(PeerConflict, match="already recommends"):
        await store.add(dataclasses.replace(rec, note="again"))
    # another page, another mentor: fine
    await store.add(dataclasses.replace(rec, context_id="orders"))
    await store.add(dataclasses.replace(rec, mentor_id="li"))
    assert await store.count(Recommendation, aid_id="discounts") == 3


async def test_same_id_is_a_conflict(store: PeerStore) -> None:
    rule = PairingRule(id="nh", group="new-hires", app_id="crm")
    await store.add(rule)
    with pytest.raises(PeerConflict, match="with that id"):
        await store.add(rule)


async def test_children_need_and_follow_their_parent(store: PeerStore) -> None:
    """An answer to a question that does not exist is refused (404); deleting a question
    deletes its answers, deleting a tip its reports."""
    with pytest.raises(PeerNotFound):
        await store.add(Answer(question_id="gone", body="Hello"))
    question = await store.add(Question(app_id="crm", body="Why?"))
    await store.add(Answer(question_id=question.id, body="Because."))
    tip = await store.add(Tip(app_id="crm", body="Tip"))
    await store.add(TipReport(tip_id=tip.id, reporter_key="k"))
    await store.delete(Question, question.id)
    await store.delete(Tip, tip.id)
    assert await store.count(Answer) == 0
    assert await store.count(TipReport) == 0


async def test_list_filters_order_and_limit(store: PeerStore) -> None:
    for i, status in enumerate(["pending", "approved", "approved", "hidden", "approved"]):
        await store.add(
            Tip(
                app_id="crm" if i < 4 else "erp",
                context_id="quotes",
                body=f"tip {i}",
                status=status,
                created_at=f"2026-11-0{i + 1}T00:00:00Z",
            )
        )
    newest = await store.list(Tip, app_id="crm", status="approved", order_by="-created_at")
    assert [t.body for t in newest] == ["tip 2", "tip 1"]
    some = await store.list(Tip, status=["approved", "hidden"], order_by=("created_at",), limit=2)
    assert [t.body for t in some] == ["tip 1", "tip 2"]
    later = await store.list(
        Tip, where=[tips.c.created_at >= "2026-11-04"], order_by="created_at", offset=1
    )
    assert [t.body for t in later] == ["tip 4"]
    assert await store.count(Tip, status="approved") == 3
    with pytest.raises(TypeError):
        await store.list(Tip, colour="red")


async def test_transaction_is_all_or_nothing(store: PeerStore) -> None:
    """A multi-row change that fails half-way leaves nothing behind."""
    tip = await store.add(Tip(app_id="crm", body="Tip"))

    def report_twice(tx: PeerTx) -> None:
        tx.add(TipReport(tip_id=tip.id, reporter_key="k"))
        tx.execute(
            sa.update(tips).where(tips.c.id == tip.id).values(report_count=tips.c.report_count + 1)
        )
        tx.add(TipReport(tip_id=tip.id, reporter_key="k"))  # the same reporter: refused

    with pytest.raises(PeerConflict):
        await store.transaction(report_twice)
    assert (await store.get(Tip, tip.id)).report_count == 0
    assert await store.count(TipReport) == 0

    def report_once(tx: PeerTx) -> int:
        tx.add(TipReport(tip_id=tip.id, reporter_key="k"))
        current = tx.get(Tip, tip.id)
        return tx.update(
            dataclasses.replace(current, report_count=current.report_count + 1)
        ).report_count

    assert await store.transaction(report_once) == 1
    assert (await store.get(Tip, tip.id)).report_count == 1


async def test_runs_in_the_storage_thread(store: PeerStore) -> None:
    """Never on the event loop: the work runs in the storage's own thread."""
    where = await store.read(lambda tx: threading.current_thread().name)
    assert where.startswith("sqlite")
    assert where != threading.current_thread().name


def test_validation_cleans_and_limits_text() -> None:
    """Control characters are dropped and line ends made \\n before the length is checked;
    every problem is reported with its field."""
    tip = validate(Tip, {"app_id": "crm", "body": "  Use\x00 the\r\nmenu\x1b[31m  "})
    assert tip.body == "Use the\nmenu[31m"
    with pytest.raises(FieldErrors) as caught:
        validate(Tip, {"app_id": "CRM!", "body": "\x07 \x00", "show_name": "yes"})
    fields = dict(caught.value.errors)
    assert fields["body"] == "must not be empty"
    assert "app_id" in fields and "show_name" in fields
    with pytest.raises(FieldErrors) as caught:
        validate(Answer, {"question_id": "q", "body": "x" * 3001})
    assert caught.value.errors == [("body", "at most 3000 characters")]
    with pytest.raises(FieldErrors) as caught:
        validate(PairingRule, {"id": "r", "group": "g", "app_id": "crm", "days": 366, "cap": 0})
    assert {f for f, _ in caught.value.errors} == {"days", "cap"}
    with pytest.raises(FieldErrors):
        validate(AidFlag, {"aid_id": "a", "kind": "ugly"})


def test_every_resource_has_a_table() -> None:
    assert set(TABLES) == set(PEER_RESOURCES)


async def test_app_opens_the_peer_store(aiohttp_client: Any, settings: Settings) -> None:
    client = await aiohttp_client(create_app(settings))
    store = client.app[keys.PEER]
    tip = await store.add(Tip(app_id="crm", body="Wired"))
    assert (await store.get(Tip, tip.id)).body == "Wired"
