"""An aid is checked off the event loop and out of the storage thread (server/admin/aids.py).

Checking an aid parses a video's transcript (up to 500,000 characters: about 150 ms of CPU). On
the event loop that stalls every request of the server; in the storage thread it holds up every
other write. The test watches which thread the transcript parser of the aid's validation runs
in (a spy that records the thread and calls the real parser), with the real app, database and
index, and checks that the answers (201, 200, 412, 422) are those of checking in the write's
transaction.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import models

A = "/api/v1/admin"


def vtt(cues: int) -> str:
    lines = ["WEBVTT", ""]
    for n in range(cues):
        lines += [f"00:{n // 60:02d}:{n % 60:02d}.000 --> 00:{n // 60:02d}:{n % 60:02d}.900"]
        lines += [f"Step {n}: open the mileage form and enter the distance.", ""]
    return "\n".join(lines)


@pytest.fixture
def parser_threads(monkeypatch: pytest.MonkeyPatch) -> list[threading.Thread]:
    """The threads the aid validation's transcript parser ran in."""
    seen: list[threading.Thread] = []
    real = models.parse_transcript

    def spy(text: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread())
        return real(text, *args, **kwargs)

    monkeypatch.setattr(models, "parse_transcript", spy)
    return seen


def off_the_loop_and_storage(seen: list[threading.Thread], loop: threading.Thread) -> bool:
    return bool(seen) and all(t is not loop and not t.name.startswith("sqlite") for t in seen)


async def test_a_video_aid_is_checked_off_the_event_loop(
    client: TestClient, admin: dict[str, str], parser_threads: list[threading.Thread]
) -> None:
    """Incident: creating or saving a video aid with a long transcript froze the whole server
    (the panel's suggest and search included) while its transcript was parsed on the event loop,
    or held up every other write while it was parsed in the storage thread."""
    loop = threading.current_thread()
    aid = {
        "id": "mileage-video",
        "title": "Mileage video",
        "type": "video",
        "apps": ["expenses"],
        "source": "https://videos.example.com/mileage.mp4",
        "transcript": vtt(300),
    }
    resp = await client.post(f"{A}/aids", json=aid, headers=admin)
    assert resp.status == 201, await resp.text()
    assert off_the_loop_and_storage(parser_threads, loop), parser_threads

    parser_threads.clear()
    current = await (await client.get(f"{A}/aids/mileage-video", headers=admin)).json()
    resp = await client.put(
        f"{A}/aids/mileage-video",
        json={**current, "title": "Mileage claims, the video"},
        headers={**admin, "If-Match": resp.headers["ETag"]},
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["title"] == "Mileage claims, the video"
    assert off_the_loop_and_storage(parser_threads, loop), parser_threads
    etag = resp.headers["ETag"]

    parser_threads.clear()
    resp = await client.patch(
        f"{A}/aids/mileage-video", json={"tags": ["mileage"]}, headers={**admin, "If-Match": etag}
    )
    assert resp.status == 200, await resp.text()
    assert off_the_loop_and_storage(parser_threads, loop), parser_threads
    assert (await resp.json())["transcript"] == aid["transcript"]
    etag = resp.headers["ETag"]

    # the answers are those of checking in the transaction: a stale If-Match first, then the body
    broken = {"transcript": "WEBVTT\n\n00:05.000 --> 00:02.000\nbackwards\n"}
    stale = await client.patch(
        f"{A}/aids/mileage-video", json=broken, headers={**admin, "If-Match": '"aid-1-0"'}
    )
    assert stale.status == 412, await stale.text()
    bad = await client.patch(
        f"{A}/aids/mileage-video", json=broken, headers={**admin, "If-Match": etag}
    )
    assert bad.status == 422
    problem = await bad.json()
    assert "transcript" in str(problem), problem
    bad_create = await client.post(
        f"{A}/aids", json={**aid, "id": "other-video", **broken}, headers=admin
    )
    assert bad_create.status == 422
