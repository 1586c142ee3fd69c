"""POST /api/v1/suggest: the right aids for the page, in the right order, for the right people."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from tests.sample_content import write_sample


@pytest.fixture
async def sample(aiohttp_client: Any, make_settings: Any, tmp_path: Path) -> Any:
    content = write_sample(tmp_path / "content")
    return await aiohttp_client(create_app(make_settings(content_dir=content)))


async def suggest(client: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/suggest", json=body, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_pinned_aids_come_first_in_their_order_with_reasons(
    sample: Any, learner: Any
) -> None:
    data = await suggest(
        sample,
        learner,
        url="https://acme.payroll.example.com/#/employee/42/bank",
        title="Bank details - Payroll Cloud",
    )
    assert data["app"] == {"id": "payroll", "name": "Payroll Cloud"}
    assert [c["id"] for c in data["contexts"]] == ["payroll-bank"]
    ids = [a["id"] for a in data["aids"]]
    assert ids[:2] == ["change-bank-details", "payroll-fraud-warning"]
    assert data["aids"][0]["reason_code"] == "pinned"
    assert "Pinned to this page" in data["aids"][0]["reason"]
    # the rest are not pinned, and say why they are shown
    assert {a["reason_code"] for a in data["aids"][2:]} <= {"related", "app"}
    assert data["match"]["rule"] == "https://*.payroll.example.com/#/employee/*/bank"


async def test_related_aids_come_from_page_text(sample: Any, learner: Any) -> None:
    data = await suggest(
        sample,
        learner,
        url="https://acme.payroll.example.com/home",
        title="Payroll Cloud",
        headings=["When is salary paid?"],
    )
    assert data["contexts"] == []
    related = [a for a in data["aids"] if a["reason_code"] == "related"]
    assert related, data
    assert related[0]["id"] in {"payroll-calendar", "change-bank-details"}
    assert all(a["score"] > 0 for a in related)


async def test_title_pattern_limits_a_context(sample: Any, learner: Any) -> None:
    ok = await suggest(
        sample,
        learner,
        url="https://acme.payroll.example.com/payslips/2026-10",
        title="Payslip October",
    )
    assert [c["id"] for c in ok["contexts"]] == ["payroll-payslip"]
    other = await suggest(
        sample,
        learner,
        url="https://acme.payroll.example.com/payslips/2026-10",
        title="Tax documents",
    )
    assert other["contexts"] == []


async def test_drafts_and_restricted_aids_are_never_suggested_to_learners(
    sample: Any, learner: Any, manager: Any
) -> None:
    body = {
        "url": "https://acme.payroll.example.com/overtime",
        "title": "Overtime approval",
        "headings": ["Approve overtime claims", "Pension contributions"],
        "limit": 50,
    }
    as_learner = [a["id"] for a in (await suggest(sample, learner, **body))["aids"]]
    as_manager = [a["id"] for a in (await suggest(sample, manager, **body))["aids"]]
    assert "approve-overtime" not in as_learner
    assert "approve-overtime" in as_manager
    assert "draft-pension" not in as_learner + as_manager


async def test_global_aids_are_related_anywhere_but_not_mapped(sample: Any, learner: Any) -> None:
    data = await suggest(
        sample,
        learner,
        url="https://acme.payroll.example.com/leave",
        title="Vacation days",
        limit=50,
    )
    by_id = {a["id"]: a for a in data["aids"]}
    assert by_id["holiday-pay"]["reason_code"] == "related"


async def test_unmapped_and_lookalike_pages_get_nothing(sample: Any, learner: Any) -> None:
    for url in [
        "https://example.com/payroll",
        "https://acme.payroll.example.com.evil.io/#/employee/1/bank",
        "https://evil.io/acme.payroll.example.com/",
        "https://acme.payroll.example.com@evil.io/",
        "https://payroll-example.com/app/x",
    ]:
        data = await suggest(sample, learner, url=url)
        assert data["app"] is None, url
        assert data["aids"] == [], url


async def test_repeated_contexts_are_served_from_cache_and_commits_invalidate(
    sample: Any, learner: Any, tmp_path: Path
) -> None:
    from server import keys

    app = sample.server.app
    cache = app[keys.RESULT_CACHE]
    body = {"url": "https://acme.payroll.example.com/home", "title": "Salary calendar"}
    first = await suggest(sample, learner, **body)
    hits_before = cache.hits
    second = await suggest(sample, learner, **body)
    assert second["aids"] == first["aids"]
    assert cache.hits == hits_before + 1
    # a commit bumps the generation: the next answer reflects the change, not the cache
    content = tmp_path / "content"
    (content / "aids" / "payroll-calendar.md").write_text(
        (content / "aids" / "payroll-calendar.md")
        .read_text()
        .replace("status: published", "status: archived")
    )
    await app[keys.LIBRARY].import_dir(content)
    third = await suggest(sample, learner, **body)
    assert "payroll-calendar" not in [a["id"] for a in third["aids"]]
    assert third["generation"] > first["generation"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"url": "ftp://acme.payroll.example.com/"}, 422, "http(s)"),
        ({"url": "/relative"}, 422, "absolute"),
        ({"url": "https://a.example/" + "x" * 9000}, 422, "8192 bytes"),
        ({"url": "https://a.example/", "colour": "red"}, 422, "Unknown field(s): colour"),
        ({"title": "no url"}, 422, "Missing required field(s): url"),
        ({"url": "https://a.example/", "limit": 500}, 422, "'limit'"),
        ({"url": "https://a.example/", "headings": "not a list"}, 422, "'headings'"),
    ],
)
async def test_bad_input_gets_a_clear_problem(
    sample: Any, learner: Any, body: dict[str, Any], status: int, needle: str
) -> None:
    resp = await sample.post("/api/v1/suggest", json=body, headers=learner)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert needle in problem["detail"]
    assert problem["status"] == status


async def test_oversized_body_is_413_with_a_message(sample: Any, learner: Any) -> None:
    resp = await sample.post(
        "/api/v1/suggest",
        data=b"{" + b" " * 300_000 + b"}",
        headers={**learner, "Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert resp.content_type == "application/problem+json"
    assert "too large" in (await resp.json())["detail"].lower()


async def test_non_json_body_is_refused(sample: Any, learner: Any) -> None:
    resp = await sample.post(
        "/api/v1/suggest", data="url=x", headers={**learner, "Content-Type": "text/plain"}
    )
    assert resp.status == 400
    assert "JSON" in (await resp.json())["detail"]


async def test_page_words_reach_aids_through_synonyms_and_inflections(
    sample: Any, learner: Any
) -> None:
    # the page says "PTO"; the aid says "vacation" and "holiday"
    data = await suggest(
        sample,
        learner,
        url="https://acme.payroll.example.com/balances",
        title="PTO balance",
        limit=50,
    )
    assert "holiday-pay" in [a["id"] for a in data["aids"] if a["reason_code"] == "related"]
    # the page says "Reimbursements"; the aid says "reimbursement"
    trip = await suggest(
        sample,
        learner,
        url="https://trips.example.org/claims",
        headings=["Reimbursements"],
        limit=50,
    )
    related = [a["id"] for a in trip["aids"] if a["reason_code"] == "related"]
    assert related[:1] == ["expense-receipts"]
