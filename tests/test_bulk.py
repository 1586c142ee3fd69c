"""Bulk re-map and re-tag (POST /api/v1/admin/aids-bulk): all or nothing, every bad id named,
one audit entry per changed aid, one index update for the batch; the console's bulk form.

The library is a small one of another company (a warehouse's apps), not the demo's.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.app import create_app
from server.settings import Settings
from tests.tokens import TokenMaker

A = "/api/v1/admin"

APPS = {
    "wms": """id: wms
name: Stockroom
rules: ["https://wms.example.net/**"]
contexts:
  - id: wms-receiving
    name: Receiving
    rule: "https://wms.example.net/receiving"
    aids: [wms-receive-pallet]
""",
    "yard": """id: yard
name: Yard planner
rules: ["https://yard.example.net/**"]
""",
}
AIDS = {
    "wms-receive-pallet": ("Receive a pallet", "published", "wms", "inbound"),
    "wms-count-cycle": ("Run a cycle count", "draft", "wms", "inventory"),
    "wms-damaged-goods": ("Report damaged goods", "draft", "wms", ""),
    "yard-book-dock": ("Book a dock door", "review", "yard", "inbound"),
}


def write_library(root: Path) -> Path:
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    for name, text in APPS.items():
        (root / "apps" / f"{name}.yaml").write_text(text)
    for aid_id, (title, status, app, tag) in AIDS.items():
        tags = f"[{tag}]" if tag else "[]"
        (root / "aids" / f"{aid_id}.md").write_text(
            f"---\nid: {aid_id}\ntitle: {title}\nstatus: {status}\napps: [{app}]\n"
            f"tags: {tags}\nverified_at: 2026-01-05\n---\n{title}: the steps on the floor.\n"
        )
    return root


@pytest.fixture
def lib_settings(make_settings: Callable[..., Settings], tmp_path: Path) -> Settings:
    return make_settings(content_dir=write_library(tmp_path / "warehouse"))


@pytest.fixture
async def wclient(aiohttp_client: Any, lib_settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(lib_settings))


@pytest.fixture
def author(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="author-1", roles=("learner", "author"))


async def aid(client: TestClient, who: dict[str, str], aid_id: str) -> dict[str, Any]:
    resp = await client.get(f"{A}/aids/{aid_id}", headers=who)
    assert resp.status == 200
    data: dict[str, Any] = await resp.json()
    return data


async def test_bulk_remap_and_retag_changes_every_aid_once(
    wclient: TestClient, admin: dict[str, str]
) -> None:
    """Three aids re-mapped to the yard planner and tagged at once: each gets one new version
    and one audit entry, apps and tags added at the end, removed ones gone, and the index takes
    the batch in one commit (one content version for the three)."""
    library = wclient.app[keys.LIBRARY]
    commits: list[int] = []
    original = library.index.apply

    async def counting(*args: Any, **kwargs: Any) -> Any:
        commits.append(len(args[0]))
        return await original(*args, **kwargs)

    library.index.apply = counting  # type: ignore[method-assign]
    body = {
        "ids": ["wms-receive-pallet", "wms-count-cycle", "wms-damaged-goods"],
        "add_apps": ["yard"],
        "add_tags": ["dock"],
        "remove_tags": ["inbound"],
    }
    resp = await wclient.post(f"{A}/aids/bulk", json=body, headers=admin)
    assert resp.status == 200, await resp.text()
    result = await resp.json()
    assert [c["id"] for c in result["changed"]] == body["ids"]
    assert result["unchanged"] == []
    assert commits == [3]  # one index update with the three aids, not three
    pallet = await aid(wclient, admin, "wms-receive-pallet")
    assert pallet["apps"] == ["wms", "yard"] and pallet["tags"] == ["dock"]
    assert pallet["version"] == 2
    cycle = await aid(wclient, admin, "wms-count-cycle")
    assert cycle["tags"] == ["inventory", "dock"]
    resp = await wclient.get(f"{A}/audit?action=aid.bulk", headers=admin)
    entries = (await resp.json())["entries"]
    assert sorted(e["target_id"] for e in entries) == sorted(body["ids"])
    # The same request again changes nothing: no new versions, no audit entries.
    resp = await wclient.post(f"{A}/aids/bulk", json=body, headers=admin)
    again = await resp.json()
    assert again["changed"] == [] and again["unchanged"] == body["ids"]
    assert (await aid(wclient, admin, "wms-receive-pallet"))["version"] == 2
    # Learners' suggest sees the re-map: the yard planner now has the receiving aid.
    mappings = await (await wclient.get(f"{A}/mappings", headers=admin)).json()
    assert "wms-receive-pallet" in mappings["apps"]["yard"]


async def test_one_bad_id_changes_nothing_and_every_bad_id_is_listed(
    wclient: TestClient, admin: dict[str, str]
) -> None:
    """All or nothing: two unknown ids among good ones leave every aid as it was, and the problem
    names both (not only the first)."""
    body = {
        "ids": [
            "wms-count-cycle",
            "wms-count-cycle",
            "no-such-aid",
            "wms-damaged-goods",
            "gone-too",
        ],
        "add_tags": ["audit"],
    }
    resp = await wclient.post(f"{A}/aids/bulk", json=body, headers=admin)
    assert resp.status == 422
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["bad_ids"] == ["no-such-aid", "gone-too"]
    assert [e["field"] for e in problem["errors"]] == ["ids[2]", "ids[4]"]  # places as sent
    assert (await aid(wclient, admin, "wms-count-cycle"))["version"] == 1
    assert "audit" not in (await aid(wclient, admin, "wms-count-cycle"))["tags"]


async def test_an_author_may_retag_drafts_but_not_published_aids_or_remap(
    wclient: TestClient, author: dict[str, str], admin: dict[str, str]
) -> None:
    """An author re-tags drafts; a published aid in the batch is refused (403, named, nothing
    changed), and re-mapping (apps) needs mapping.write, as one aid's mapping does."""
    ok = {"ids": ["wms-count-cycle", "yard-book-dock"], "add_tags": ["q3"]}
    resp = await wclient.post(f"{A}/aids/bulk", json=ok, headers=author)
    assert resp.status == 200, await resp.text()
    body = {"ids": ["wms-damaged-goods", "wms-receive-pallet"], "add_tags": ["q3"]}
    resp = await wclient.post(f"{A}/aids/bulk", json=body, headers=author)
    assert resp.status == 403
    problem = await resp.json()
    assert problem["bad_ids"] == ["wms-receive-pallet"]
    assert "q3" not in (await aid(wclient, admin, "wms-damaged-goods"))["tags"]
    resp = await wclient.post(
        f"{A}/aids/bulk", json={"ids": ["wms-count-cycle"], "add_apps": ["yard"]}, headers=author
    )
    assert resp.status == 403
    assert (await resp.json())["operation"] == "mapping.write"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ids": ["wms-count-cycle"]}, "add_apps"),
        ({"ids": [], "add_tags": ["x"]}, "ids"),
        ({"ids": [f"a{i}" for i in range(501)], "add_tags": ["x"]}, "ids"),
        ({"ids": ["wms-count-cycle"], "add_apps": ["nowhere"]}, "add_apps"),
        ({"ids": ["wms-count-cycle"], "add_tags": ["x"], "remove_tags": ["x"]}, "add_tags"),
        ({"ids": ["wms-count-cycle"], "add_tags": ["x"], "colour": "red"}, "colour"),
    ],
)
async def test_bulk_bodies_are_checked_by_their_declaration(
    wclient: TestClient, admin: dict[str, str], body: dict[str, Any], field: str
) -> None:
    """Nothing to change, no ids, more than 500, an unknown app, add and remove of the same
    tag, an unknown field: each a 422 naming the field."""
    resp = await wclient.post(f"{A}/aids/bulk", json=body, headers=admin)
    assert resp.status == 422, await resp.text()
    assert field in (await resp.json())["fields"]


# -- the console ---------------------------------------------------------------------------------


def words(page: str) -> str:
    """The text a person reads on a page: no tags, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split()).replace(" ,", ",")


async def console_sign_in(client: TestClient, tokens: TokenMaker, roles: tuple[str, ...]) -> str:
    """A console session (as the sign-in callback makes it); returns its CSRF token."""
    app = client.server.app
    token = tokens.token(sub="console-1", roles=roles)
    identity = await app[keys.AUTHENTICATOR].authenticate(token)
    store = app[keys.ADMIN_SESSIONS]
    sid, session = await store.create(identity, {"access_token": token, "refresh_token": ""})
    client.session.cookie_jar.update_cookies({store.cookie_name: sid})
    return str(session.csrf)


async def test_console_bulk_form_confirms_with_counts_then_changes(
    wclient: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    """The aids list has a checkbox per aid and a bulk form; sending it shows a confirmation with
    the counts and changes nothing; confirming changes the aids and says how many."""
    csrf = await console_sign_in(wclient, tokens, ("learner", "author", "admin", "reviewer"))
    page = await (await wclient.get("/admin/aids")).text()
    assert page.count('type="checkbox" name="ids"') == len(AIDS)
    assert 'action="/admin/aids-bulk"' in page
    form = [
        ("csrf_token", csrf),
        ("step", "confirm"),
        ("ids", "wms-count-cycle"),
        ("ids", "wms-damaged-goods"),
        ("ids", "wms-receive-pallet"),
        ("add_apps", "yard"),
        ("add_tags", "dock, night-shift"),
    ]
    resp = await wclient.post("/admin/aids-bulk", data=form)
    assert resp.status == 200
    confirm = words(await resp.text())
    assert "You selected 3 aid(s)" in confirm
    assert "3 will change" in confirm
    assert "Add tag(s): dock, night-shift" in confirm
    assert (await aid(wclient, admin, "wms-count-cycle"))["version"] == 1  # nothing yet
    resp = await wclient.post(
        "/admin/aids-bulk", data=[(k, "apply" if k == "step" else v) for k, v in form]
    )
    assert resp.status == 200
    done = words(await resp.text())
    assert "Changed 3 aid(s)" in done
    cycle = await aid(wclient, admin, "wms-count-cycle")
    assert cycle["apps"] == ["wms", "yard"] and cycle["tags"] == [
        "inventory",
        "dock",
        "night-shift",
    ]


async def test_console_all_on_page_and_refusals(wclient: TestClient, tokens: TokenMaker) -> None:
    """'All on this page' takes every aid listed; an author's batch with a published aid is
    refused with the aid named, and the form shows no app fields to an author."""
    csrf = await console_sign_in(wclient, tokens, ("learner", "author"))
    page = await (await wclient.get("/admin/aids?app=wms")).text()
    assert 'name="add_apps"' not in page  # re-mapping needs mapping.write
    form = {"csrf_token": csrf, "step": "confirm", "all_on_page": "1", "add_tags": "q3"}
    data = [*form.items(), *(("page_ids", i) for i in AIDS if i.startswith("wms"))]
    resp = await wclient.post("/admin/aids-bulk", data=data)
    assert "You selected 3 aid(s)" in words(await resp.text())
    apply = [(k, "apply" if k == "step" else v) for k, v in data]
    resp = await wclient.post("/admin/aids-bulk", data=apply)
    assert resp.status == 403
    text = html.unescape(await resp.text())
    assert "wms-receive-pallet" in text and "Nothing was changed" in text
    resp = await wclient.post("/admin/aids-bulk", data={"csrf_token": csrf, "add_tags": "x"})
    assert resp.status == 422
    assert "Tick the aids" in await resp.text()


async def test_the_audit_log_tells_a_bulk_change_in_words(
    wclient: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    """The console's audit page says what a bulk change did, in words, per aid."""
    body = {"ids": ["wms-count-cycle"], "add_tags": ["dock"]}
    assert (await wclient.post(f"{A}/aids/bulk", json=body, headers=admin)).status == 200
    await console_sign_in(wclient, tokens, ("learner", "author", "admin"))
    page = words(await (await wclient.get("/admin/audit")).text())
    assert "changed the apps or tags of the aid Run a cycle count (bulk change)" in page


async def test_an_aid_called_bulk_is_still_edited_in_the_console(
    wclient: TestClient, tokens: TokenMaker, admin: dict[str, str]
) -> None:
    """The bulk form's address is not /admin/aids/bulk: that is where the console saves an aid
    whose id is `bulk`, and a bulk route there took its edits."""
    new = {"id": "bulk", "title": "Bulk deliveries", "apps": ["wms"]}
    assert (await wclient.post(f"{A}/aids", json=new, headers=admin)).status == 201
    csrf = await console_sign_in(wclient, tokens, ("learner", "author", "admin"))
    page = await (await wclient.get("/admin/aids/bulk")).text()
    etag = re.search(r'name="etag" value="([^"]+)"', page)
    assert etag
    form = {"csrf_token": csrf, "etag": html.unescape(etag.group(1)), "title": "Dock 4 deliveries"}
    resp = await wclient.post("/admin/aids/bulk", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert (await aid(wclient, admin, "bulk"))["title"] == "Dock 4 deliveries"


async def test_a_dry_run_answers_what_would_change_and_writes_nothing(
    wclient: TestClient, admin: dict[str, str], author: dict[str, str]
) -> None:
    """`POST /aids/bulk?dry_run=true` was taken as a real write (the flag was ignored): a script
    asking what a re-map would touch re-mapped every aid. It answers the plan (the same one the
    console's confirmation shows), after the same role and app checks, and writes nothing."""
    body = {
        "ids": ["wms-receive-pallet", "wms-count-cycle", "no-such-aid"],
        "add_tags": ["inventory"],
    }
    resp = await wclient.post(f"{A}/aids/bulk?dry_run=true", json=body, headers=admin)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "dry_run": True,
        "change": ["wms-receive-pallet"],
        "unchanged": ["wms-count-cycle"],  # already tagged inventory
        "unknown": ["no-such-aid"],
    }
    pallet = await aid(wclient, admin, "wms-receive-pallet")
    assert pallet["version"] == 1 and "inventory" not in pallet["tags"]
    resp = await wclient.get(f"{A}/audit?action=aid.bulk", headers=admin)
    assert (await resp.json())["entries"] == []
    remap = {"ids": ["wms-count-cycle"], "add_apps": ["yard"]}
    resp = await wclient.post(f"{A}/aids/bulk?dry_run=1", json=remap, headers=author)
    assert resp.status == 403 and resp.content_type == "application/problem+json"
    assert (await resp.json())["operation"] == "mapping.write"
    for query in ("dry_run=perhaps", "dryrun=true"):
        resp = await wclient.post(f"{A}/aids/bulk?{query}", json=remap, headers=admin)
        assert resp.status == 422 and resp.content_type == "application/problem+json", query
    assert (await aid(wclient, admin, "wms-count-cycle"))["apps"] == ["wms"]
