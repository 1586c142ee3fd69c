"""Aids a source made (`origin` set) are changed at the source: in Inflow only where they show, to
whom, who owns them, their review interval and their workflow status change; anything else is a
409 problem naming what may change here, and deleting one is a 409 too (archive it instead).

The hazard: an author fixes a typo in an aid that comes from the intranet; the next sync
overwrites the fix without a word, or, had the aid been deleted, makes it again. Either way the
edit is lost; people must be told where to make it.

The source-owned aids are written the way the sync writes them (Storage through the library's
write path), not through the admin API.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys
from server.models import Aid, validate
from server.sources.models import MAPPING_FIELDS, Source
from server.storage import Changes
from tests.tokens import TokenMaker

A = "/api/v1/admin"
URL = f"{A}/aids/handbook-mileage"
EDITABLE = "apps, tags, audience, owner, review_interval_days, status"


@pytest.fixture
def author(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="author-1", roles=("learner", "author"))


@pytest.fixture
def reviewer(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="reviewer-1", roles=("learner", "reviewer"))


def h(headers: dict[str, str], etag: str) -> dict[str, str]:
    return {**headers, "If-Match": etag}


async def _sync_writes(client: TestClient, *aids: Aid) -> None:
    """What a sync does: each aid saved through Storage in the library's write path."""
    library = client.app[keys.LIBRARY]
    for aid in aids:

        def save(changes: Changes, aid: Aid = aid) -> None:
            library.storage.save_aid_tx(aid, "source:handbook", changes)

        await library.write(save)


@pytest.fixture
async def owned(client: TestClient) -> Aid:
    """The source 'Finance handbook' and an aid it made, saved twice (version 2 retitled)."""
    await client.app[keys.PEER].add(
        validate(
            Source,
            {
                "id": "handbook",
                "name": "Finance handbook",
                "kind": "git",
                "url": "https://git.example.org/finance/handbook.git",
                "apps": ["expenses"],
            },
        )
    )
    first = dataclasses.replace(
        validate(
            Aid,
            {
                "id": "handbook-mileage",
                "title": "Mileage claims",
                "summary": "How to claim mileage.",
                "body": "Claim **0.30 per km** in the expense form.",
                "apps": ["expenses"],
                "tags": ["travel"],
                "status": "published",
                "verified_at": "2026-11-30",
                "source": "https://git.example.org/finance/handbook/blob/main/mileage.md",
            },
        ),
        origin="handbook",
    )
    second = dataclasses.replace(first, title="Claiming mileage")
    await _sync_writes(client, first, second)
    return second


async def _get(client: TestClient, who: dict[str, str]) -> tuple[dict[str, Any], str]:
    resp = await client.get(URL, headers=who)
    assert resp.status == 200, await resp.text()
    return await resp.json(), resp.headers["ETag"]


async def _refused(resp: Any) -> dict[str, Any]:
    assert resp.status == 409, await resp.text()
    assert resp.content_type == "application/problem+json"
    problem: dict[str, Any] = await resp.json()
    return problem


async def test_changing_what_the_source_owns_is_a_409_naming_the_editable_fields(
    client: TestClient, owned: Aid, reviewer: dict[str, str]
) -> None:
    data, etag = await _get(client, reviewer)
    assert data["origin"] == "handbook" and data["version"] == 2

    resp = await client.patch(URL, json={"title": "Mileage (fixed)"}, headers=h(reviewer, etag))
    problem = await _refused(resp)
    assert problem["detail"] == (
        f"This aid comes from source 'Finance handbook'; change it there. Here you may change: "
        f"{EDITABLE}."
    )
    assert problem["fields"] == ["title"] and problem["editable"] == list(MAPPING_FIELDS)
    assert problem["source"] == "handbook"

    # a full replacement that changes the body is refused too, naming every changed field
    changed = {**data, "body": "Claim 0.35 per km.", "summary": "Now 0.35."}
    resp = await client.put(URL, json=changed, headers=h(reviewer, etag))
    assert (await _refused(resp))["fields"] == ["body", "summary"]

    after, same_etag = await _get(client, reviewer)
    assert after == data and same_etag == etag  # nothing was written


async def test_the_mapping_fields_still_change_here_and_the_origin_stays(
    client: TestClient, owned: Aid, reviewer: dict[str, str]
) -> None:
    data, etag = await _get(client, reviewer)
    patch = {"tags": ["travel", "car"], "owner": "Finance team", "review_interval_days": 90}
    resp = await client.patch(URL, json=patch, headers=h(reviewer, etag))
    assert resp.status == 200, await resp.text()
    patched = await resp.json()
    assert patched["tags"] == ["travel", "car"] and patched["owner"] == "Finance team"
    assert patched["origin"] == "handbook" and patched["version"] == 3

    # read, change a mapping field, send it all back (read-only fields as read): accepted
    data, etag = await _get(client, reviewer)
    resp = await client.put(URL, json={**data, "audience": ["finance"]}, headers=h(reviewer, etag))
    assert resp.status == 200, await resp.text()
    put = await resp.json()
    assert put["audience"] == ["finance"] and put["origin"] == "handbook"
    assert put["title"] == "Claiming mileage"

    # the origin itself is the sync's: changing it is a 422 like any read-only field
    resp = await client.put(
        URL, json={**put, "origin": ""}, headers=h(reviewer, resp.headers["ETag"])
    )
    assert resp.status == 422 and (await resp.json())["fields"] == ["origin"]

    # the workflow is a mapping field too: a reviewer archives it
    data, etag = await _get(client, reviewer)
    resp = await client.post(
        f"{URL}/transitions", json={"to": "archived"}, headers=h(reviewer, etag)
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["status"] == "archived"


async def test_rolling_back_the_sources_content_is_refused(
    client: TestClient, owned: Aid, reviewer: dict[str, str]
) -> None:
    _, etag = await _get(client, reviewer)
    resp = await client.post(f"{URL}/rollback", json={"version": 1}, headers=h(reviewer, etag))
    problem = await _refused(resp)
    assert problem["fields"] == ["title"]
    assert (await _get(client, reviewer))[0]["title"] == "Claiming mileage"


async def test_deleting_a_source_owned_aid_is_a_409_archive_it_instead(
    client: TestClient, owned: Aid, admin: dict[str, str]
) -> None:
    _, etag = await _get(client, admin)
    resp = await client.delete(URL, headers=h(admin, etag))
    problem = await _refused(resp)
    assert problem["detail"].startswith(
        "This aid comes from source 'Finance handbook': archive it instead"
    )
    assert (await _get(client, admin))[0]["id"] == "handbook-mileage"


async def test_a_client_cannot_claim_an_origin_and_aids_written_here_keep_none(
    client: TestClient, author: dict[str, str]
) -> None:
    aid = {"id": "my-own-aid", "title": "Mine", "apps": ["expenses"]}
    resp = await client.post(f"{A}/aids", json={**aid, "origin": "handbook"}, headers=author)
    assert resp.status == 422 and (await resp.json())["fields"] == ["origin"]
    resp = await client.post(f"{A}/aids", json=aid, headers=author)
    assert resp.status == 201, await resp.text()
    etag = resp.headers["ETag"]
    created = await resp.json()
    assert created["origin"] == ""
    resp = await client.patch(
        f"{A}/aids/my-own-aid", json={"title": "Mine, retitled"}, headers=h(author, etag)
    )
    assert resp.status == 200 and (await resp.json())["origin"] == ""


async def test_the_aids_list_leaves_transcripts_out(
    client: TestClient, author: dict[str, str]
) -> None:
    """A list of 50 videos must not carry 50 transcripts of up to 500 kB; one aid's GET has it
    (so what GET returns can be sent back with PUT without losing it)."""
    vtt = "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nOpen the mileage form.\n"
    aid = {"id": "mileage-video", "title": "Mileage video", "type": "video", "transcript": vtt}
    resp = await client.post(f"{A}/aids", json={**aid, "apps": ["expenses"]}, headers=author)
    assert resp.status == 201, await resp.text()
    resp = await client.get(f"{A}/aids?q=mileage-video", headers=author)
    listed = (await resp.json())["aids"]
    assert [a["id"] for a in listed] == ["mileage-video"]
    assert "transcript" not in listed[0] and "body" not in listed[0]
    one = await (await client.get(f"{A}/aids/mileage-video", headers=author)).json()
    assert one["transcript"] == vtt
