"""Ranking on a library that is not the demo's (tests/ranking_content): each defect of issue 10
("Ranking defects", "Fewer, better aids", "Search that helps") has a test here, written as what a
learner on that page would expect to see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from index.analysis import FastAnalyzer
from index.text import to_text
from server.app import create_app
from tests.ranking_content.library import write_library


@pytest.fixture
async def lark(aiohttp_client: Any, make_settings: Any, tmp_path: Path) -> Any:
    content = write_library(tmp_path / "content")
    return await aiohttp_client(create_app(make_settings(content_dir=content)))


async def suggest(client: Any, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = await client.post("/api/v1/suggest", json=body, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def search(client: Any, headers: dict[str, str], q: str) -> dict[str, Any]:
    resp = await client.get("/api/v1/search", params={"q": q}, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


def related(data: dict[str, Any]) -> list[str]:
    return [a["id"] for a in data["aids"] if a["reason_code"] == "related"]


def why(data: dict[str, Any], aid_id: str) -> dict[str, Any]:
    return next(a["why"] for a in data["aids"] if a["id"] == aid_id)


async def test_tags_match_stemmed_and_multi_word(lark: Any, learner: Any) -> None:
    """Tags were indexed as whole unstemmed keywords and queried with stems: an aid tagged
    "Approvals" was never found for "approval", nor one tagged "Branch protection" for the
    phrase, in search or on a page."""
    assert (await search(lark, learner, "approval"))["results"][0]["id"] == "main-branch-rules"
    found = await search(lark, learner, '"branch protection"')
    assert [r["id"] for r in found["results"]] == ["main-branch-rules"]
    page = await suggest(
        lark, learner, url="https://forge.larkspur.test/settings", title="Approval settings"
    )
    assert related(page) == ["main-branch-rules"]
    assert why(page, "main-branch-rules")["terms"] == ["approval"]


async def test_page_words_found_only_in_a_summary_count(lark: Any, learner: Any) -> None:
    """Document frequencies counted titles and bodies only: a page word that an aid has only
    in its summary was taken for a word in no aid and dropped from the query."""
    page = await suggest(
        lark, learner, url="https://forge.larkspur.test/profile", title="Revoke access"
    )
    assert related(page) == ["forge-tokens"]


async def test_compounds_match_written_apart_or_together(lark: Any, learner: Any) -> None:
    """ "code owners" never found the aid about the CODEOWNERS file, and "timesheet" never found
    "Filling in your time sheet": compounds were neither split nor joined."""
    assert (await search(lark, learner, "code owners"))["results"][0]["id"] == "codeowners-file"
    assert (await search(lark, learner, "timesheet"))["results"][0]["id"] == "log-hours"
    page = await suggest(
        lark, learner, url="https://hours.larkspur.test/week", title="My timesheet"
    )
    assert related(page)[:1] == ["log-hours"]
    assert why(page, "log-hours")["terms"][0] == "timesheet"


async def test_derivational_forms_match(lark: Any, learner: Any) -> None:
    """Porter leaves "urgency"/"urgent", "pregnancy"/"pregnant" and "accrual"/"accrue" apart:
    a learner searching "urgency" found nothing about urgent tickets."""
    for query, expected in [
        ("urgency", "urgent-tickets"),
        ("pregnancy", "expecting-a-baby"),
        ("leave accrual", "leave-accrue"),
    ]:
        data = await search(lark, learner, query)
        assert data["results"][:1] and data["results"][0]["id"] == expected, (query, data)


async def test_short_codes_are_kept(lark: Any, learner: Any) -> None:
    """Two-character tokens were dropped from page signals, codes too: a ticket page reading
    "P1" or a page about the "W-2" found nothing."""
    page = await suggest(lark, learner, url="https://desk.larkspur.test/tickets/88", selection="P1")
    assert related(page) == ["incident-priority"]
    assert why(page, "incident-priority")["terms"] == ["p1"]
    w2 = await suggest(lark, learner, url="https://people.larkspur.test/docs", title="W-2 2025")
    assert related(w2) == ["tax-forms"]
    assert (await search(lark, learner, "w2"))["results"][0]["id"] == "tax-forms"


def test_page_text_drops_function_words_but_not_codes() -> None:
    """The page stop list missed "why", "did", "really", "their": a selected sentence's filler
    took query slots. Short ordinary words go too; codes and acronyms stay."""
    from index.schema import PAGE_ANALYZER

    assert isinstance(PAGE_ANALYZER, FastAnalyzer)
    words = [t.text for t in PAGE_ANALYZER("Why did they really reject their P1 ticket? HR go")]
    assert words == ["reject", "p1", "ticket", "hr"]


async def test_selection_words_always_get_slots(lark: Any, learner: Any) -> None:
    """Only the ten rarest stems of the whole page were queried: on a page whose navigation
    holds a dozen rarer words, the word the learner selected was cut and navigation aids won."""
    headings = [
        "Inbox", "Reports", "Dashboard", "Filters", "Saved views", "Printer", "Parking",
        "Canteen", "Lockers", "Queues", "Minute", "Reception", "Menu", "Permits",
    ]  # fmt: skip
    page = await suggest(
        lark,
        learner,
        url="https://desk.larkspur.test/tickets/12",
        title="Ticket 12",
        headings=headings,
        selection="handing over",
    )
    assert related(page)[:1] == ["reassign-ticket"], page["aids"]
    assert "handing" in why(page, "reassign-ticket")["terms"]


async def test_misspelled_selection_is_corrected(lark: Any, learner: Any) -> None:
    """A misspelled selected word ("scorcard") was lost: it is in no aid, so it was dropped."""
    page = await suggest(
        lark, learner, url="https://desk.larkspur.test/carriers/4", selection="scorcard"
    )
    assert related(page) == ["vendor-scorecard"]
    assert why(page, "vendor-scorecard")["terms"][0] == "scorecard"


async def test_no_filler_when_nothing_fits(lark: Any, learner: Any) -> None:
    """When related aids ran out, aids mapped to the app were appended alphabetically ("Mapped
    to <app>"): on a page no aid is about, the panel was full of off-topic aids."""
    page = await suggest(
        lark,
        learner,
        url="https://people.larkspur.test/profile/photo",
        title="Upload a profile picture - PeoplePort",
        headings=["Crop", "Rotate", "Brightness"],
    )
    assert page["app"]["id"] == "people"
    assert page["aids"] == []
    assert page["no_match"]["code"] == "no_related"
    # the app's name alone never makes an aid related
    named = await suggest(lark, learner, url="https://people.larkspur.test/", title="PeoplePort")
    assert named["aids"] == [] and named["no_match"] is not None


async def test_weak_matches_are_cut(lark: Any, learner: Any) -> None:
    """Related aids were everything that matched any page word, best first, up to the limit:
    a passing mention of one page word in a body ranked as "related"."""
    page = await suggest(
        lark, learner, url="https://hours.larkspur.test/week", title="Overtime this week"
    )
    # "lead" of "your lead signs off" is in log-hours' body: not a reason to show it
    assert related(page) == ["hours-overtime"]
    assert page["no_match"] is None


async def test_pinned_reason_names_owner_and_context(lark: Any, learner: Any) -> None:
    """Reasons said only "Pinned to this page": the panel needs who pinned it, for which page."""
    page = await suggest(lark, learner, url="https://forge.larkspur.test/web/merge/7")
    first = page["aids"][0]
    assert first["id"] == "merge-checklist"
    assert first["why"] == {
        "kind": "pinned",
        "terms": [],
        "pinned_by": {"context": "Merge request", "owner": "Release Office"},
        "signals": [],
    }


async def test_search_runs_the_correction_when_nothing_matches(lark: Any, learner: Any) -> None:
    """A misspelled search showed "Did you mean X?" above "0 results": the corrected query now
    runs, and the answer says what was typed so the panel can offer "Search instead for"."""
    data = await search(lark, learner, "overtme")
    assert data["corrected_from"] == "overtme"
    assert data["query"] == "overtime"
    assert [r["id"] for r in data["results"]] == ["hours-overtime"]
    plain = await search(lark, learner, "overtime")
    assert plain["corrected_from"] is None


async def test_snippets_show_the_matched_words(lark: Any, learner: Any) -> None:
    """Snippets were empty (the panel then repeated the summary) when the words matched only
    the summary: they show the matched words now, wherever they are."""
    body = (await search(lark, learner, "handover"))["results"][0]
    assert '<b class="match">handover</b>' in body["snippet_html"]
    summary = (await search(lark, learner, "revoking"))["results"][0]
    assert summary["id"] == "forge-tokens"
    assert '<b class="match">revoking</b>' in summary["snippet_html"]


_TILL_APP = """\
id: till
name: Tillbox
rules:
  - pattern: "https://till.bramble.test/**"
"""
_TILL_AIDS = {
    "refund-card": (
        "Refund a card payment",
        "Find the sale with the receipt number, choose Refund and hand the customer the slip. "
        "Refunds after the evening shift wait for the next day's batch. Managers see every "
        "refund on the Reports screen the next morning.",
    ),
    "shift-handover": (
        "Shift handover at the till",
        "Before you hand over, print the till totals. Counting the float comes last: count "
        "the float with the next cashier watching and sign the sheet.",
    ),
    "end-of-day": (
        "End of day checklist",
        "- [ ] Lock the safe and the back door\n- [x] Switch off the card reader\n"
        "  - [ ] Unplug the receipt printer",
    ),
    "gift-cards": (
        "Sell and top up gift cards",
        "Scan the gift card, enter the amount and take payment as usual.",
    ),
    "price-override": (
        "Override a price",
        "A supervisor's code is needed to change a price at the till.",
    ),
}


@pytest.fixture
async def bramble(aiohttp_client: Any, make_settings: Any, tmp_path: Path) -> Any:
    root = tmp_path / "bramble"
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    (root / "apps" / "till.yaml").write_text(_TILL_APP, encoding="utf-8")
    for aid_id, (title, body) in _TILL_AIDS.items():
        front = f"id: {aid_id}\ntitle: {title}\nsummary: Point of sale help\ntype: howto\n"
        meta = "tags: []\napps: [till]\nowner: Store Ops\nstatus: published\n"
        text = f"---\n{front}{meta}---\n\n{body}\n"
        (root / "aids" / f"{aid_id}.md").write_text(text, encoding="utf-8")
    return await aiohttp_client(create_app(make_settings(content_dir=root)))


async def test_scattered_body_words_do_not_make_an_aid_related(bramble: Any, learner: Any) -> None:
    """Issue 10: a portal's home page ("Good morning, Alex", "My tasks") showed a time-off aid
    whose steps happened to say "Morning only" and "a task": a greeting and a heading, matched
    in passing in a body, made an unrelated aid look related. Here the till's home page greets
    Sam and lists reports; the refund aid mentions "evening" and "Reports" in passing."""
    home = await suggest(
        bramble,
        learner,
        url="https://till.bramble.test/home",
        title="Home · Tillbox",
        headings=["Good evening, Sam", "Your reports", "News"],
    )
    assert related(home) == []
    assert home["no_match"]["code"] == "no_related"
    # A URL's path segments are separate names too: /evening/reports is no phrase.
    path = await suggest(
        bramble, learner, url="https://till.bramble.test/evening/reports", title="Reports"
    )
    assert related(path) == []


async def test_words_of_one_heading_together_in_a_body_count(bramble: Any, learner: Any) -> None:
    """The other side of the rule above: two words of one heading ("Counting the float") found
    in an aid's body are what the aid is about, even when its title and tags do not say so."""
    page = await suggest(
        bramble,
        learner,
        url="https://till.bramble.test/close",
        title="Close · Tillbox",
        headings=["Counting the float"],
    )
    assert related(page) == ["shift-handover"]


async def test_snippets_show_no_checklist_boxes(bramble: Any, learner: Any) -> None:
    """Search snippets of checklist aids showed a literal "[ ]" before each matched item: the
    Markdown task-list markers were indexed as text. The learner sees the item's words only."""
    found = await search(bramble, learner, "safe")
    assert [r["id"] for r in found["results"]] == ["end-of-day"]
    snippet = found["results"][0]["snippet_html"]
    assert '<b class="match">safe</b>' in snippet
    assert "[" not in snippet and "]" not in snippet
    nested = (await search(bramble, learner, "unplug"))["results"][0]["snippet_html"]
    assert "[" not in nested and "]" not in nested


def test_plain_text_drops_checklist_boxes_only() -> None:
    """The plain text of a checklist keeps its items' words, drops the boxes (ticked or not, at
    any depth, numbered or not), and keeps brackets that are the author's own text."""
    md = "Steps:\n\n- [ ] **Sign** the form\n  - [x] nested\n1. [X] numbered\n- a [ ] in text"
    assert to_text(md) == "Steps: Sign the form nested numbered a [ ] in text"


async def test_a_filter_nothing_passes_finds_nothing(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path, learner: Any
) -> None:
    """Whoosh reads an empty filter set as "no filter": searching for a type no published aid
    has, or a library whose aids are all drafts, returned every matching aid, drafts and
    restricted ones included, to a learner."""
    root = tmp_path / "drafts"
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    (root / "apps" / "till.yaml").write_text(_TILL_APP, encoding="utf-8")
    front = "id: cash-policy\ntitle: Cash float policy\nsummary: Unreleased\ntype: howto\n"
    meta = "tags: []\napps: [till]\nowner: Store Ops\nstatus: draft\n"
    text = f"---\n{front}{meta}---\n\nCount the float twice.\n"
    (root / "aids" / "cash-policy.md").write_text(text, encoding="utf-8")
    drafts = await aiohttp_client(create_app(make_settings(content_dir=root)))
    assert (await search(drafts, learner, "float"))["results"] == []
    page = await suggest(
        drafts, learner, url="https://till.bramble.test/close", title="Cash float policy"
    )
    assert page["aids"] == []


async def test_a_type_no_aid_has_finds_nothing(bramble: Any, learner: Any) -> None:
    """The same defect through the type filter: no video exists, every how-to came back."""
    resp = await bramble.get(
        "/api/v1/search", params={"q": "float", "type": "video"}, headers=learner
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["results"] == []


_LETS_APP = """\
id: lets
name: Keyhold
rules:
  - pattern: "https://lets.heron.test/**"
"""
# A letting agency's property app: (title, summary, body) of each aid.
_LETS_AIDS = {
    "tenant-duplicates": (
        "Merge duplicate tenant records",
        "Check for duplicates before you register a tenant.",
        "Search by surname and by email. Try variants of a company name, for example "
        '"Maple Court" and "Maple Court Ltd". RevOps merges the records.',
    ),
    "lease-renewal": (
        "Renew a lease",
        "Offer a renewal before the lease ends.",
        "Send the renewal offer sixty days before the end date.",
    ),
    "sign-lease": (
        "Sign a lease",
        "Send the lease for signature and file the signed copy.",
        "The tenant signs online; you countersign and file the copy.",
    ),
    "inspection-form": (
        "Inspection checklist",
        "Create an inspection record when a lease starts.",
        "Create one record per room: photograph any damage and note the meter readings.",
    ),
    "add-unit": (
        "Add a rental unit",
        "Register a unit so rent reports and maintenance reports include it.",
        "Enter the address, the number of bedrooms and the landlord.",
    ),
    "move-out": (
        "Move-out day",
        "Hand back the keys and settle the deposit.",
        "Check that the gas meter is switched off and every window is locked. Collect all keys, "
        "walk the rooms with the tenant, photograph each wall and agree any deductions. Then "
        "send the final readings to the supplier.",
    ),
    "arrears-report": (
        "Arrears reports",
        "Which tenants owe rent, and since when.",
        "Open the arrears report and filter by landlord.",
    ),
}


@pytest.fixture
async def heron(aiohttp_client: Any, make_settings: Any, tmp_path: Path) -> Any:
    root = tmp_path / "heron"
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    (root / "apps" / "lets.yaml").write_text(_LETS_APP, encoding="utf-8")
    for aid_id, (title, summary, body) in _LETS_AIDS.items():
        front = f"id: {aid_id}\ntitle: {title}\nsummary: {summary}\ntype: howto\n"
        meta = "tags: []\napps: [lets]\nowner: Lettings\nstatus: published\n"
        text = f"---\n{front}{meta}---\n\n{body}\n"
        (root / "aids" / f"{aid_id}.md").write_text(text, encoding="utf-8")
    return await aiohttp_client(create_app(make_settings(content_dir=root)))


async def test_a_records_name_is_not_the_pages_topic(heron: Any, learner: Any) -> None:
    """Issue 10: a CRM opportunity for "Acme Freight" showed the duplicate-accounts aid, whose
    body quotes "Acme Freight" as an example name. The customer's name is the record's data,
    not what the page is about. Here a lease for "Maple Court": the duplicates aid quotes that
    name; the renewal aid is the one about the page."""
    page = await suggest(
        heron,
        learner,
        url="https://lets.heron.test/leases/88",
        title="Lease #88 · Maple Court \u2013 unit 4 · Keyhold",
        headings=["Maple Court \u2013 unit 4", "Details"],
    )
    assert "tenant-duplicates" not in related(page)
    assert "sign-lease" in related(page)
    # Selected, the name is what the learner asks about: it counts.
    chosen = await suggest(
        heron, learner, url="https://lets.heron.test/leases/88", selection="Maple Court"
    )
    assert related(chosen) == ["tenant-duplicates"]


async def test_a_synonym_alone_in_a_summary_is_no_reason(heron: Any, learner: Any) -> None:
    """Issue 10: "New opportunity" showed a report-building aid because "new" was read as its
    synonym "create", found in that aid's summary. A synonym the page never says, found only in
    a summary or body, does not make an aid about the page."""
    page = await suggest(
        heron,
        learner,
        url="https://lets.heron.test/leases/new",
        title="New lease · Keyhold",
        headings=["New lease", "Lease terms"],
    )
    assert "inspection-form" not in related(page)
    assert "sign-lease" in related(page)


async def test_one_page_word_in_passing_in_a_summary_is_no_reason(heron: Any, learner: Any) -> None:
    """Issue 10: the CRM's Reports list showed the create-opportunity aid, whose summary says
    "territory reports" in passing. One page word found only in a summary needs a second page
    word or a title or tag match. Here the unit aid's summary mentions "rent reports" in passing."""
    page = await suggest(
        heron,
        learner,
        url="https://lets.heron.test/reports",
        title="Reports · Keyhold",
        headings=["Reports", "Saved reports"],
    )
    assert "add-unit" not in related(page)
    assert "arrears-report" in related(page)


async def test_words_of_one_heading_far_apart_in_a_body_are_no_reason(
    heron: Any, learner: Any
) -> None:
    """Issue 10: the CRM's Reports list ("Recent reports") showed the duplicate-accounts aid,
    whose body says "Recently viewed" in one step and "Report subscriptions" paragraphs later.
    Two words of one heading found in a body count when they are close together (one
    sentence). Here "Meter readings": the inspection aid says "note the meter readings"; the
    move-out aid says "gas meter" at the start and "final readings" at the end."""
    page = await suggest(
        heron,
        learner,
        url="https://lets.heron.test/utilities",
        title="Utilities · Keyhold",
        headings=["Meter readings"],
    )
    assert related(page) == ["inspection-form"]
