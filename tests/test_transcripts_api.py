"""Video transcripts end to end on the API: searched and suggested with the cue where the words
are said, set and removed through the admin API, imported and exported as sidecar files.

The content is a fleet-maintenance company's (not the demo's): one app, a written how-to, and two
videos whose transcripts say things their titles and bodies do not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.app import create_app
from server.content import load_dir, write_dir
from server.errors import ContentError

FIXTURES = Path(__file__).parent / "fixtures" / "transcripts"

APP = """\
id: fleetdesk
name: FleetDesk
rules:
  - pattern: "https://fleet.larkspur.example/**"
"""


def _aid(aid_id: str, title: str, body: str, type_: str = "howto", source: str = "") -> str:
    src = f"source: {source}\n" if source else ""
    return (
        f"---\nid: {aid_id}\ntitle: {title}\nsummary: {title}\ntype: {type_}\n"
        f"apps: [fleetdesk]\naudience: []\nowner: fleet-ops@larkspur.example\n"
        f"status: published\nverified_at: 2026-09-01\n{src}---\n{body}\n"
    )


TYRE_VTT = """WEBVTT

00:00.000 --> 00:05.000
<v Priya>Hi, this is the weekly vehicle check for the delivery vans.

00:05.000 --> 00:11.500
<v Priya>Walk around the van and look at each tyre for cuts and bulges.

01:23.000 --> 01:29.000
<v Priya>Then measure the tread depth with the gauge: anything under two millimetres fails.

01:29.000 --> 01:35.000
<v Priya>Log the reading in FleetDesk before the van leaves the yard.
"""


def write_content(root: Path) -> Path:
    (root / "apps").mkdir(parents=True)
    (root / "aids").mkdir()
    (root / "apps" / "fleetdesk.yaml").write_text(APP, encoding="utf-8")
    aids = {
        "book-a-service": _aid(
            "book-a-service",
            "Book a workshop service",
            "Choose the van, pick a slot in the workshop calendar and confirm the booking.",
        ),
        "weekly-van-check": _aid(
            "weekly-van-check",
            "Weekly van check (video)",
            "A five-minute walk-through of the weekly check.",
            type_="video",
            source="https://media.larkspur.example/training/van-check.mp4",
        ),
        "fuel-card-video": _aid(
            "fuel-card-video",
            "Using your fuel card (video)",
            "How the fuel card works.",
            type_="video",
            source="https://www.youtube.com/watch?v=fuelcard01",
        ),
        "tyre-policy": _aid(
            "tyre-policy",
            "Tyre replacement policy",
            "Replace a tyre when the tread depth is under the legal minimum; the workshop logs "
            "the tread depth reading.",
            type_="policy",
        ),
    }
    for aid_id, text in aids.items():
        (root / "aids" / f"{aid_id}.md").write_text(text, encoding="utf-8")
    (root / "aids" / "weekly-van-check.vtt").write_text(TYRE_VTT, encoding="utf-8")
    srt = (
        "1\n00:00:02,000 --> 00:00:06,000\nTap the fuel card on the pump reader.\n\n"
        "2\n00:00:40,000 --> 00:00:47,500\nIf the pump declines the card, call the "
        "<i>fleet hotline</i> &amp; give the van's registration.\n"
    )
    (root / "aids" / "fuel-card-video.srt").write_text(srt, encoding="utf-8")
    return root


@pytest.fixture
async def fleet(aiohttp_client: Any, make_settings: Any, tmp_path: Path) -> Any:
    content = write_content(tmp_path / "content")
    return await aiohttp_client(create_app(make_settings(content_dir=content)))


async def search(client: Any, headers: dict[str, str], q: str) -> list[dict[str, Any]]:
    resp = await client.get("/api/v1/search", params={"q": q}, headers=headers)
    assert resp.status == 200, await resp.text()
    results: list[dict[str, Any]] = (await resp.json())["results"]
    return results


async def test_search_finds_words_said_in_a_video_and_where(fleet: Any, learner: Any) -> None:
    """A learner searches for what the trainer says ("hotline"): the video is found, and its cue
    says when it is said, with the video's URL to open there."""
    [hit] = await search(fleet, learner, "fleet hotline")
    assert hit["id"] == "fuel-card-video"
    assert hit["cue"] == {
        "start": 40.0,
        "end": 47.5,
        "text": "If the pump declines the card, call the fleet hotline & give the van's "
        "registration.",
        "source": "https://www.youtube.com/watch?v=fuelcard01",
    }
    [hit] = await search(fleet, learner, "bulges")
    assert (hit["id"], hit["cue"]["start"]) == ("weekly-van-check", 5.0)


async def test_the_cue_is_the_one_with_most_of_the_words(fleet: Any, learner: Any) -> None:
    """'van' is said in three cues; 'yard' only in the last: the cue with both is the one."""
    results = await search(fleet, learner, "van leaves yard")
    hit = next(r for r in results if r["id"] == "weekly-van-check")
    assert hit["cue"]["start"] == 89.0
    assert hit["cue"]["text"].startswith("Log the reading in FleetDesk")


async def test_no_cue_when_the_transcript_did_not_match(fleet: Any, learner: Any) -> None:
    """A video found by its body's words (not said in it), and aids that are not videos,
    carry no cue."""
    [hit] = await search(fleet, learner, "five minute")
    assert hit["id"] == "weekly-van-check" and "cue" not in hit
    [hit] = await search(fleet, learner, "workshop calendar")
    assert hit["id"] == "book-a-service" and "cue" not in hit


async def test_written_words_rank_above_spoken_ones(fleet: Any, learner: Any) -> None:
    """The policy writes "tread depth" in its body; the video only says it: the policy first
    (a transcript counts less than a body), the video still found, with its cue."""
    results = await search(fleet, learner, "tread depth")
    assert [r["id"] for r in results] == ["tyre-policy", "weekly-van-check"]
    assert results[1]["cue"]["start"] == 83.0


async def test_suggest_carries_the_cue_of_the_selected_words(fleet: Any, learner: Any) -> None:
    """On a FleetDesk page, the learner selects "tread depth gauge": the video is suggested with
    the cue where the gauge is shown; the written policy comes without one."""
    resp = await fleet.post(
        "/api/v1/suggest",
        json={
            "url": "https://fleet.larkspur.example/vans/VN-204/inspection",
            "title": "Inspection VN-204 · FleetDesk",
            "selection": "tread depth gauge",
        },
        headers=learner,
    )
    assert resp.status == 200, await resp.text()
    aids = {a["id"]: a for a in (await resp.json())["aids"]}
    assert aids["weekly-van-check"]["cue"]["start"] == 83.0
    assert "gauge" in aids["weekly-van-check"]["cue"]["text"]
    assert "cue" not in aids.get("tyre-policy", {})


async def _aid_etag(client: Any, headers: dict[str, str], aid_id: str) -> str:
    resp = await client.get(f"/api/v1/admin/aids/{aid_id}", headers=headers)
    assert resp.status == 200
    etag: str = resp.headers["ETag"]
    return etag


async def test_admin_sets_replaces_reads_and_removes_a_transcript(fleet: Any, admin: Any) -> None:
    path = "/api/v1/admin/aids/fuel-card-video/transcript"
    vtt = (FIXTURES / "onboarding.vtt").read_text(encoding="utf-8")
    etag = await _aid_etag(fleet, admin, "fuel-card-video")
    resp = await fleet.put(
        path, data=vtt.encode(), headers={**admin, "Content-Type": "text/vtt", "If-Match": etag}
    )
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {
        "aid_id": "fuel-card-video",
        "format": "vtt",
        "cues": 5,
        "duration": 3605.0,
    }
    assert resp.headers["ETag"] != etag
    # an ordinary aid version, with the transcript in it
    versions = await (
        await fleet.get("/api/v1/admin/aids/fuel-card-video/versions", headers=admin)
    ).json()
    assert len(versions["versions"]) == 2
    # searchable at once: the new words are, the old ones are not
    [hit] = await search(fleet, admin, "odometer photo")
    assert (hit["id"], hit["cue"]["start"]) == ("fuel-card-video", 15.5)
    assert await search(fleet, admin, "hotline") == []
    # read back: JSON with the text, or the file itself
    got = await fleet.get(path, headers=admin)
    assert got.headers["ETag"] == resp.headers["ETag"]
    assert (await got.json())["text"] == vtt
    raw = await fleet.get(path, headers={**admin, "Accept": "text/vtt"})
    assert raw.content_type == "text/vtt" and await raw.text() == vtt
    # replaced by JSON {text} holding SRT
    srt = (FIXTURES / "vendor-portal.srt").read_text(encoding="utf-8")
    resp = await fleet.put(
        path, json={"text": srt}, headers={**admin, "If-Match": resp.headers["ETag"]}
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["format"] == "srt"
    # removed
    resp = await fleet.delete(path, headers={**admin, "If-Match": resp.headers["ETag"]})
    assert resp.status == 200 and (await resp.json())["cues"] == 0
    assert await search(fleet, admin, "vendor portal invoice") == []
    gone = await fleet.get(path, headers=admin)
    assert gone.status == 404 and gone.content_type == "application/problem+json"


async def test_a_broken_file_is_a_422_naming_its_line(fleet: Any, admin: Any) -> None:
    etag = await _aid_etag(fleet, admin, "weekly-van-check")
    path = "/api/v1/admin/aids/weekly-van-check/transcript"
    bad = (FIXTURES / "bad-timing.vtt").read_bytes()
    resp = await fleet.put(
        path, data=bad, headers={**admin, "Content-Type": "text/vtt", "If-Match": etag}
    )
    assert resp.status == 422 and resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["line"] == 6
    assert "line 6: bad cue timing" in problem["detail"]
    # nothing changed
    [hit] = await search(fleet, admin, "bulges")
    assert hit["id"] == "weekly-van-check"


async def test_refusals(fleet: Any, admin: Any, learner: Any) -> None:
    vtt = TYRE_VTT.encode()
    kind = {"Content-Type": "text/vtt"}
    etag = await _aid_etag(fleet, admin, "book-a-service")
    # only a video has a transcript
    resp = await fleet.put(
        "/api/v1/admin/aids/book-a-service/transcript",
        data=vtt,
        headers={**admin, **kind, "If-Match": etag},
    )
    assert resp.status == 422
    assert "video" in (await resp.json())["detail"]
    # unknown aid, wrong media type, no If-Match, a learner
    path = "/api/v1/admin/aids/weekly-van-check/transcript"
    missing = await fleet.put(
        "/api/v1/admin/aids/nope/transcript", data=vtt, headers={**admin, **kind}
    )
    assert missing.status == 404 and missing.content_type == "application/problem+json"
    wrong = await fleet.put(path, data=vtt, headers={**admin, "Content-Type": "image/png"})
    assert wrong.status == 415 and wrong.content_type == "application/problem+json"
    unguarded = await fleet.put(path, data=vtt, headers={**admin, **kind})
    assert unguarded.status == 428
    denied = await fleet.put(path, data=vtt, headers={**learner, **kind})
    assert denied.status == 403 and denied.content_type == "application/problem+json"
    empty = await fleet.put(path, data=b"  \n", headers={**admin, **kind, "If-Match": "*"})
    assert empty.status == 422


def test_content_round_trip_with_sidecar_files(tmp_path: Path) -> None:
    """Export writes a video's transcript next to its aid file (.vtt or .srt as it is written);
    import reads it back unchanged."""
    content = load_dir(write_content(tmp_path / "in"))
    by_id = {a.id: a for a in content.aids}
    assert by_id["weekly-van-check"].transcript == TYRE_VTT
    assert by_id["fuel-card-video"].transcript.startswith("1\n00:00:02,000")
    out = tmp_path / "out"
    write_dir(out, content.apps, content.aids)
    assert (out / "aids" / "weekly-van-check.vtt").read_text(encoding="utf-8") == TYRE_VTT
    assert (out / "aids" / "fuel-card-video.srt").is_file()
    assert "transcript" not in (out / "aids" / "weekly-van-check.md").read_text(encoding="utf-8")
    assert not (out / "aids" / "book-a-service.vtt").exists()
    again = {a.id: a for a in load_dir(out).aids}
    assert again == by_id


def test_sidecar_errors_name_the_file_and_line(tmp_path: Path) -> None:
    root = write_content(tmp_path / "c")
    (root / "aids" / "weekly-van-check.vtt").write_text(
        (FIXTURES / "bad-timing.vtt").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (root / "aids" / "nobody.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nhi\n")
    (root / "aids" / "book-a-service.vtt").write_text(TYRE_VTT, encoding="utf-8")
    with pytest.raises(ContentError) as err:
        load_dir(root)
    found = {(f, line): msg for f, line, msg in err.value.errors}
    assert "bad cue timing" in found[("aids/weekly-van-check.vtt", 6)]
    assert "without its aid file" in found[("aids/nobody.srt", 1)]
    assert any(f == "aids/book-a-service.md" and "video" in msg for f, _, msg in err.value.errors)


async def test_console_uploads_replaces_and_removes_a_transcript(
    fleet: Any, tokens: Any, admin: Any
) -> None:
    """On the aid page: the cue count; upload a file bigger than the console's form limit (a long
    video's captions), a broken one (its line named, nothing changed), then remove it."""
    from aiohttp import FormData

    from tests.test_admin_console import etag_of, sign_in

    token = tokens.token(sub="admin-1", roles=("learner", "author", "admin", "reviewer"))
    csrf = await sign_in(fleet, token)
    page = await (await fleet.get("/admin/aids/weekly-van-check")).text()
    assert "4 cues, 1:35 long" in page

    def form(payload: bytes | None, action: str = "") -> FormData:
        data = FormData(default_to_multipart=True)  # as the page's form sends it
        data.add_field("csrf_token", csrf)
        data.add_field("aid", "weekly-van-check")
        data.add_field("etag", etag_of(page))
        if action:
            data.add_field("action", action)
        if payload is not None:
            data.add_field("file", payload, filename="captions.vtt", content_type="text/vtt")
        return data

    cues = "".join(
        f"{i // 3600}:{i // 60 % 60:02d}:{i % 60:02d}.000 --> {i // 3600}:{i // 60 % 60:02d}:"
        f"{i % 60:02d}.900\nStep {i}: check the coolant level and the wiper fluid again.\n\n"
        for i in range(4000)
    )
    long_file = f"WEBVTT\n\n{cues}".encode()
    assert len(long_file) > fleet.server.app[keys.SETTINGS].max_body_bytes
    bad = await fleet.post("/admin/transcripts", data=form(b"WEBVTT\n\n00:01 --> 00:02\nx\n"))
    assert bad.status == 422
    assert "line 3: bad cue timing" in await bad.text()
    resp = await fleet.post("/admin/transcripts", data=form(long_file))
    assert resp.status == 200, await resp.text()  # followed to the aid page
    page = await resp.text()
    assert "4000 cues, 66:39 long" in page
    [hit] = await search(fleet, admin, "coolant wiper")
    assert hit["cue"]["start"] == 0.0
    resp = await fleet.post("/admin/transcripts", data=form(None, "remove"))
    assert resp.status == 200, await resp.text()
    assert "No transcript." in await resp.text()
    assert await search(fleet, admin, "coolant wiper") == []


async def test_words_said_in_passing_do_not_make_a_video_about_the_page(
    fleet: Any, admin: Any, learner: Any
) -> None:
    """A page's title words said a minute apart in a video are passing mentions: the video is
    not suggested for the page. Said together in one sentence, they are what the video is
    about: it is suggested, with that cue."""
    path = "/api/v1/admin/aids/fuel-card-video/transcript"
    filler = " ".join(["fuel"] * 30)
    apart = (
        "WEBVTT\n\n00:01.000 --> 00:05.000\nCheck the coolant before you leave.\n\n"
        f"00:05.000 --> 00:30.000\n{filler}\n\n"
        "00:30.000 --> 00:35.000\nThe reservoir cap is blue.\n"
    )
    etag = await _aid_etag(fleet, admin, "fuel-card-video")
    resp = await fleet.put(path, json={"text": apart}, headers={**admin, "If-Match": etag})
    assert resp.status == 200, await resp.text()
    page = {
        "url": "https://fleet.larkspur.example/maintenance/fluids",
        "title": "Coolant reservoir · FleetDesk",
    }

    async def suggested() -> dict[str, Any]:
        answer = await fleet.post("/api/v1/suggest", json=page, headers=learner)
        assert answer.status == 200, await answer.text()
        return {a["id"]: a for a in (await answer.json())["aids"]}

    assert "fuel-card-video" not in await suggested()
    together = apart.replace("Check the coolant before you leave.", "Top up the coolant reservoir.")
    resp = await fleet.put(
        path, json={"text": together}, headers={**admin, "If-Match": resp.headers["ETag"]}
    )
    assert resp.status == 200, await resp.text()
    aids = await suggested()
    assert aids["fuel-card-video"]["cue"]["text"] == "Top up the coolant reservoir."


async def test_export_and_import_archives_carry_the_sidecar(fleet: Any, admin: Any) -> None:
    """The export zip holds a video's transcript beside its aid file; an archive with an edited
    one updates the aid (it was ignored as an unknown file)."""
    import io
    import zipfile

    resp = await fleet.get("/api/v1/admin/export", headers=admin)
    assert resp.status == 200
    with zipfile.ZipFile(io.BytesIO(await resp.read())) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    assert files["aids/weekly-van-check.vtt"].decode() == TYRE_VTT
    assert "aids/fuel-card-video.srt" in files
    files["aids/weekly-van-check.vtt"] = TYRE_VTT.replace("tread depth", "sidewall").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    resp = await fleet.post(
        "/api/v1/admin/import",
        data=out.getvalue(),
        headers={**admin, "Content-Type": "application/zip"},
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["aids_updated"] == ["weekly-van-check"]
    [hit] = await search(fleet, admin, "sidewall")
    assert (hit["id"], hit["cue"]["start"]) == ("weekly-van-check", 83.0)
