"""GET /api/v1/search: stemming, synonyms, spelling, snippets, pagination, scope, refusals."""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.app import create_app
from tests.sample_content import write_sample


@pytest.fixture
async def sample(aiohttp_client: Any, make_settings: Any, tmp_path: Path) -> Any:
    content = write_sample(tmp_path / "content")
    return await aiohttp_client(create_app(make_settings(content_dir=content)))


async def search(client: Any, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    resp = await client.get("/api/v1/search", params=params, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_inflected_words_match(sample: Any, learner: Any) -> None:
    data = await search(sample, learner, q="changing banks")
    assert data["results"][0]["id"] == "change-bank-details"


async def test_synonyms_find_aids_that_use_another_word(sample: Any, learner: Any) -> None:
    data = await search(sample, learner, q="refund")
    assert "expense-receipts" in [r["id"] for r in data["results"]]  # says "reimbursement"
    data = await search(sample, learner, q="pto")
    assert [r["id"] for r in data["results"]] == ["holiday-pay"]  # says "vacation", "holiday"


async def test_snippets_highlight_and_escape(sample: Any, learner: Any) -> None:
    data = await search(sample, learner, q="payslip")
    hit = next(r for r in data["results"] if r["id"] == "read-your-payslip")
    assert '<b class="match">payslip</b>' in hit["snippet_html"]
    assert "<script" not in hit["snippet_html"]


async def test_did_you_mean(sample: Any, learner: Any) -> None:
    data = await search(sample, learner, q="paysilp")
    assert data["did_you_mean"] == "payslip"


async def test_all_words_first_then_any(sample: Any, learner: Any) -> None:
    data = await search(sample, learner, q="payslip flights")
    assert data["matched"] == "any"  # no aid has both words
    assert {"read-your-payslip", "book-a-trip"} <= {r["id"] for r in data["results"]}
    data = await search(sample, learner, q="payslip deductions")
    assert data["matched"] == "all"
    assert [r["id"] for r in data["results"]] == ["read-your-payslip"]


async def test_pagination_with_cursor(sample: Any, admin: Any) -> None:
    first = await search(sample, admin, q="salary payslip bank", limit=2)
    assert len(first["results"]) == 2 and first["next_cursor"]
    second = await search(
        sample, admin, q="salary payslip bank", limit=2, cursor=first["next_cursor"]
    )
    ids1 = {r["id"] for r in first["results"]}
    ids2 = {r["id"] for r in second["results"]}
    assert ids2 and not ids1 & ids2
    wrong = await sample.get(
        "/api/v1/search", params={"q": "other", "cursor": first["next_cursor"]}, headers=admin
    )
    assert wrong.status == 400
    assert "different query" in (await wrong.json())["detail"]


async def test_scope_never_widens(sample: Any, learner: Any, manager: Any) -> None:
    assert (await search(sample, learner, q="overtime"))["results"] == []
    assert [r["id"] for r in (await search(sample, manager, q="overtime"))["results"]] == [
        "approve-overtime"
    ]
    # field syntax in the text is just words, never a field query
    assert (await search(sample, learner, q="status:draft pension"))["results"] == []
    travel = await search(sample, learner, q="receipts salary", app="travel")
    assert {r["id"] for r in travel["results"]} <= {"expense-receipts", "book-a-trip"}


@pytest.mark.parametrize(
    ("q", "needle"),
    [
        ("*", "Wildcards"),
        ("*bank", "Wildcards"),
        ("?ank", "Wildcards"),
        ("", "empty"),
        ("x" * 300, "limit is 256"),
        (" ".join(["word"] * 20), "limit is 16"),
    ],
)
async def test_refused_queries(sample: Any, learner: Any, q: str, needle: str) -> None:
    resp = await sample.get("/api/v1/search", params={"q": q}, headers=learner)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    assert needle in (await resp.json())["detail"]


async def test_unknown_parameter_is_refused(sample: Any, learner: Any) -> None:
    resp = await sample.get(
        "/api/v1/search", params={"q": "bank", "status": "draft"}, headers=learner
    )
    assert resp.status == 422
    assert "status" in (await resp.json())["detail"]


async def test_did_you_mean_corrects_ordinary_typos(sample: Any, learner: Any) -> None:
    data = await search(sample, learner, q="holidy reciepts")
    assert data["did_you_mean"] == "holiday receipts"
    data = await search(sample, learner, q="payslp")
    assert data["did_you_mean"] == "payslip"


async def test_long_unknown_words_cost_the_corrector_a_bounded_number_of_lookups(
    sample: Any, learner: Any
) -> None:
    """Incident: 16 long unknown words in one search took 0.85-2.4 s in the spelling corrector
    (one Levenshtein walk of the lexicon per word); two such senders slowed every learner's
    search to 3 s. Now a request hands at most a few ordinary-length words to the corrector."""
    index = sample.server.app[keys.LIBRARY].index
    limits = index.spelling_limits
    rng = random.Random(16)
    junk = ["".join(rng.choice(string.ascii_lowercase) for _ in range(15)) for _ in range(16)]
    before = index.spelling_lookups
    await search(sample, learner, q=" ".join(junk))
    assert index.spelling_lookups - before <= limits.max_corrections == 3
    # Words too long to be typos are not looked up at all, however many there are.
    before = index.spelling_lookups
    very_long = " ".join(w + w for w in junk[:8])  # 30 letters each
    await search(sample, learner, q=very_long)
    assert index.spelling_lookups == before
    # And a typo next to the junk is still caught when it comes first.
    data = await search(sample, learner, q="paysilp " + " ".join(junk[:10]))
    assert data["did_you_mean"] is not None and data["did_you_mean"].startswith("payslip ")
