"""The admin JSON API with forged (locally signed) tokens: workflow, concurrency, rules, import.

Role checks against the real Keycloak are in tests/test_admin_keycloak.py.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.tokens import TokenMaker

A = "/api/v1/admin"
HR_TIMEOFF = "http://127.0.0.1:8080/demo/hr/timeoff.html"


@pytest.fixture
def author(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="author-1", roles=("learner", "author"), groups=("people",))


@pytest.fixture
def reviewer(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="reviewer-1", roles=("learner", "reviewer"))


@pytest.fixture
def pipeline(tokens: TokenMaker) -> dict[str, str]:
    """Shaped like the inflow-cli service account: realm role author, client role api-write."""
    return tokens.auth(
        sub="service-account-inflow-cli",
        roles=("author",),
        azp="inflow-cli",
        resource_access={"inflow-api": {"roles": ["api-write"]}},
    )


def h(headers: dict[str, str], etag: str | None = None) -> dict[str, str]:
    return {**headers, "If-Match": etag} if etag else dict(headers)


async def suggest_ids(client: TestClient, who: dict[str, str], url: str) -> list[str]:
    resp = await client.post("/api/v1/suggest", json={"url": url}, headers=who)
    assert resp.status == 200
    return [a["id"] for a in (await resp.json())["aids"]]


async def test_aid_workflow_concurrency_history_and_suggest(
    client: TestClient,
    author: dict[str, str],
    reviewer: dict[str, str],
    admin: dict[str, str],
    learner: dict[str, str],
) -> None:
    new = {
        "id": "hr-new-aid",
        "title": "Plan your leave",
        "summary": "Zanzibar planning",
        "body": "# Plan\n\nBook early.\n",
        "type": "howto",
        "apps": ["hr"],
    }
    resp = await client.post(f"{A}/aids", json=new, headers=author)
    assert resp.status == 201, await resp.text()
    etag = resp.headers["ETag"]
    aid = await resp.json()
    assert aid["status"] == "draft" and aid["version"] == 1 and aid["owner"] == "author-1"
    # Duplicate id: 409. Creating as published: needs a publisher.
    assert (await client.post(f"{A}/aids", json=new, headers=author)).status == 409
    resp = await client.post(
        f"{A}/aids", json={**new, "id": "x-pub", "status": "published"}, headers=author
    )
    assert resp.status == 403

    # Writes need If-Match (428); two concurrent edits from the same version: second gets 412.
    url = f"{A}/aids/hr-new-aid"
    resp = await client.patch(url, json={"summary": "no etag"}, headers=author)
    assert resp.status == 428
    assert resp.content_type == "application/problem+json"
    first, second = await asyncio.gather(
        client.patch(url, json={"summary": "edit one"}, headers=h(author, etag)),
        client.patch(url, json={"summary": "edit two"}, headers=h(author, etag)),
    )
    statuses = sorted([first.status, second.status])
    assert statuses == [200, 412], statuses
    loser = first if first.status == 412 else second
    body = await loser.json()
    assert body["status"] == 412 and body["current_etag"] != etag
    resp = await client.get(url, headers=author)
    current = await resp.json()
    assert current["version"] == 2 and current["summary"] in {"edit one", "edit two"}
    etag = resp.headers["ETag"]

    # Workflow: author submits; author may not publish; reviewer publishes.
    resp = await client.post(f"{url}/transitions", json={"to": "review"}, headers=h(author, etag))
    assert resp.status == 200, await resp.text()
    etag = resp.headers["ETag"]
    resp = await client.post(
        f"{url}/transitions", json={"to": "published"}, headers=h(author, etag)
    )
    assert resp.status == 403
    assert "reviewer" in (await resp.json())["detail"]

    # Pin it to the time-off page (admin), then publish: suggest shows it within a second.
    assert "hr-new-aid" not in await suggest_ids(client, learner, HR_TIMEOFF)
    resp = await client.put(
        f"{A}/mappings/hr-new-aid",
        json={"apps": ["hr"], "contexts": ["hr-timeoff"]},
        headers=h(admin, etag),
    )
    assert resp.status == 200, await resp.text()
    etag = resp.headers["ETag"]
    resp = await client.post(
        f"{url}/transitions", json={"to": "published"}, headers=h(reviewer, etag)
    )
    assert resp.status == 200, await resp.text()
    published_at = time.monotonic()
    etag = resp.headers["ETag"]
    while "hr-new-aid" not in await suggest_ids(client, learner, HR_TIMEOFF):
        assert time.monotonic() - published_at < 1.0, "publish did not reach suggest in 1 s"
        await asyncio.sleep(0.05)
    resp = await client.post("/api/v1/suggest", json={"url": HR_TIMEOFF}, headers=learner)
    pinned = [a["id"] for a in (await resp.json())["aids"] if a["reason_code"] == "pinned"]
    assert pinned[-1] == "hr-new-aid"  # added at the end of the page's pins

    # An author may not change a published aid; a reviewer may.
    resp = await client.patch(url, json={"title": "Sneaky"}, headers=h(author, etag))
    assert resp.status == 403

    # History, diff, rollback (content only; status stays published).
    resp = await client.get(f"{url}/versions", headers=author)
    versions = (await resp.json())["versions"]
    assert [v["version"] for v in versions] == [4, 3, 2, 1]  # the remap kept apps as they were
    resp = await client.get(f"{url}/diff?from=1&to=2", headers=author)
    diff = await resp.json()
    assert diff["fields"] == ["summary"]
    assert "-summary: Zanzibar planning" in diff["diff"]
    resp = await client.post(f"{url}/rollback", json={"version": 1}, headers=h(reviewer, etag))
    assert resp.status == 200, await resp.text()
    rolled = await resp.json()
    assert rolled["version"] == 5 and rolled["summary"] == "Zanzibar planning"
    assert rolled["status"] == "published"

    # Unpublish (archive): gone from suggest at once. Deleting needs admin.
    etag = resp.headers["ETag"]
    resp = await client.post(
        f"{url}/transitions", json={"to": "archived"}, headers=h(reviewer, etag)
    )
    assert resp.status == 200
    assert "hr-new-aid" not in await suggest_ids(client, learner, HR_TIMEOFF)
    etag = resp.headers["ETag"]
    assert (await client.delete(url, headers=h(author, etag))).status == 403
    assert (await client.delete(url, headers=h(admin, etag))).status == 200
    assert (await client.get(url, headers=author)).status == 404

    # Every step is in the audit log, newest first, with who did it.
    resp = await client.get(f"{A}/audit?target_id=hr-new-aid&limit=3", headers=admin)
    page = await resp.json()
    assert [e["action"] for e in page["entries"]] == ["aid.delete", "aid.archived", "aid.rollback"]
    assert page["entries"][0]["who"]["username"] == "admin-1"
    assert page["entries"][0]["who"]["issuer"].endswith("/realms/inflow")
    resp = await client.get(
        f"{A}/audit?target_id=hr-new-aid&limit=3&cursor={page['next_cursor']}", headers=admin
    )
    actions = [e["action"] for e in (await resp.json())["entries"]]
    assert actions == ["aid.published", "aid.map", "aid.review"]
    resp = await client.get(f"{A}/audit?action=aid.create&actor=author-1", headers=admin)
    assert [e["target_id"] for e in (await resp.json())["entries"]] == ["hr-new-aid"]


async def test_apps_contexts_rules_and_tester(
    client: TestClient, admin: dict[str, str], author: dict[str, str], learner: dict[str, str]
) -> None:
    app = {
        "id": "wiki",
        "name": "<script>alert(1)</script> Wiki",
        "rules": [
            {"pattern": "https://wiki.example.com/**"},
            {"pattern": "*://127.0.0.1/demo/crm/**"},  # same as the CRM app's rule
        ],
    }
    assert (await client.post(f"{A}/apps", json=app, headers=author)).status == 403
    resp = await client.post(f"{A}/apps", json=app, headers=admin)
    assert resp.status == 201, await resp.text()
    created = await resp.json()
    codes = {w["code"] for w in created["warnings"]}
    assert {"conflict", "shadowed"} <= codes, created["warnings"]
    etag = resp.headers["ETag"]
    resp = await client.post(
        f"{A}/apps", json={"id": "bad", "name": "Bad", "rules": ["no-scheme"]}, headers=admin
    )
    assert resp.status == 422

    # Contexts: add, pin, reorder; stale app ETag is refused.
    ctx = {"id": "wiki-page", "name": "A wiki page", "rule": "https://wiki.example.com/page/*"}
    resp = await client.post(f"{A}/apps/wiki/contexts", json=ctx, headers=admin)
    assert resp.status == 201, await resp.text()
    cetag = resp.headers["ETag"]
    resp = await client.put(
        f"{A}/contexts/wiki-page/aids",
        json={"aids": ["ask-for-help", "data-privacy-basics"]},
        headers=h(admin, cetag),
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["aids"] == ["ask-for-help", "data-privacy-basics"]
    resp = await client.put(
        f"{A}/contexts/wiki-page/aids", json={"aids": ["ask-for-help"]}, headers=h(admin, cetag)
    )
    assert resp.status == 412
    resp = await client.put(
        f"{A}/apps/wiki", json={"name": "Wiki", "rules": []}, headers=h(admin, etag)
    )
    assert resp.status == 412  # the context changed the app since
    resp = await client.get(f"{A}/apps/wiki", headers=author)
    etag = resp.headers["ETag"]
    resp = await client.put(
        f"{A}/apps/wiki",
        json={"name": "Wiki", "rules": ["https://wiki.example.com/**"]},
        headers=h(admin, etag),
    )
    assert resp.status == 200, await resp.text()
    saved = await resp.json()
    assert saved["warnings"] == [] and saved["contexts"][0]["id"] == "wiki-page"

    # The rule tester: winning rule, contexts and the learner's sidebar, like suggest.
    page = "https://wiki.example.com/page/holidays"
    resp = await client.post(
        f"{A}/rules/test", json={"url": page, "role": "learner"}, headers=author
    )
    result = await resp.json()
    assert result["app"]["id"] == "wiki"
    assert [c["id"] for c in result["contexts"]] == ["wiki-page"]
    assert result["winner"]["rule"] == "https://wiki.example.com/page/*"
    assert result["winner"]["reason"]
    assert [a["id"] for a in result["aids"]][:2] == ["ask-for-help", "data-privacy-basics"]
    assert [a["id"] for a in result["aids"]] == await suggest_ids(client, learner, page)
    resp = await client.post(
        f"{A}/rules/test", json={"url": HR_TIMEOFF, "role": "learner"}, headers=author
    )
    learner_view = [a["id"] for a in (await resp.json())["aids"]]
    resp = await client.post(
        f"{A}/rules/test",
        json={"url": HR_TIMEOFF, "role": "learner", "groups": ["managers"]},
        headers=author,
    )
    manager_view = [a["id"] for a in (await resp.json())["aids"]]
    assert learner_view == await suggest_ids(client, learner, HR_TIMEOFF)
    assert "hr-approve-time-off" in manager_view and "hr-approve-time-off" not in learner_view

    # Lists paginate with cursors.
    seen: list[str] = []
    cursor = ""
    while True:
        resp = await client.get(f"{A}/apps?limit=2&cursor={cursor}", headers=author)
        body = await resp.json()
        seen += [a["id"] for a in body["apps"]]
        if not body["next_cursor"]:
            break
        cursor = body["next_cursor"]
    assert seen == sorted(seen) and "wiki" in seen and len(seen) == len(set(seen))
    assert (await client.get(f"{A}/apps?cursor=garbage", headers=author)).status == 400
    resp = await client.get(f"{A}/aids?app=hr&status=published&limit=5", headers=author)
    body = await resp.json()
    assert len(body["aids"]) == 5 and body["next_cursor"]
    assert all("hr" in a["apps"] and "body" not in a for a in body["aids"])

    # Deleting the app unmaps nothing here but drops its contexts.
    resp = await client.get(f"{A}/apps/wiki", headers=author)
    resp = await client.delete(f"{A}/apps/wiki", headers=h(admin, resp.headers["ETag"]))
    assert resp.status == 200
    assert (await client.get(f"{A}/contexts/wiki-page", headers=author)).status == 404


async def test_learners_and_strangers_are_kept_out(
    client: TestClient, learner: dict[str, str]
) -> None:
    for method, path in [
        ("GET", f"{A}/aids"),
        ("GET", f"{A}/apps"),
        ("POST", f"{A}/aids"),
        ("GET", f"{A}/audit"),
        ("POST", f"{A}/import"),
        ("GET", f"{A}/export"),
        ("POST", f"{A}/rules/test"),
    ]:
        assert (await client.request(method, path)).status == 401, path
        resp = await client.request(method, path, headers=learner)
        assert resp.status == 403, path
        assert resp.content_type == "application/problem+json"


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _zip_symlink() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("aids/link.md")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    return buf.getvalue()


def _tar(build: Any) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        build(tf)
    return buf.getvalue()


def _tar_link(kind: bytes) -> bytes:
    def build(tf: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("aids/evil.md")
        info.type = kind
        info.linkname = "../../../../etc/passwd"
        tf.addfile(info)

    return _tar(build)


def _zip_bomb() -> bytes:
    """60 MB of zeros, a few dozen KB compressed: over the 50 MB decompressed limit."""
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open("aids/bomb.md", "w", force_zip64=True) as out,
    ):
        chunk = b"\0" * (1 << 20)
        for _ in range(60):
            out.write(chunk)
    return buf.getvalue()


AID = b"---\nid: evil\ntitle: Evil\napps: [hr]\nstatus: published\n---\nBody\n"


@pytest.mark.parametrize(
    ("name", "archive"),
    [
        ("zip slip", lambda: _zip({"aids/ok.md": AID, "../x": b"owned"})),
        ("absolute", lambda: _zip({"/tmp/inflow-evil.md": AID})),
        ("backslash", lambda: _zip({"aids\\..\\..\\x.md": AID})),
        ("zip symlink", _zip_symlink),
        ("tar symlink", lambda: _tar_link(tarfile.SYMTYPE)),
        ("tar hardlink", lambda: _tar_link(tarfile.LNKTYPE)),
        ("zip bomb", _zip_bomb),
        ("too many files", lambda: _zip({f"aids/a{i}.md": b"x" for i in range(5001)})),
        ("invalid content", lambda: _zip({"aids/evil.md": b"---\nid: Evil!\n---\n"})),
    ],
)
async def test_malicious_or_invalid_archives_are_refused_with_nothing_written(
    client: TestClient,
    admin: dict[str, str],
    learner: dict[str, str],
    tmp_path: Path,
    name: str,
    archive: Any,
) -> None:
    before = await client.get(f"{A}/mappings", headers=admin)
    version = (await before.json())["version"]
    resp = await client.post(
        f"{A}/import",
        data=archive(),
        headers={**admin, "Content-Type": "application/zip"},
    )
    assert resp.status == 422, (name, await resp.text())
    problem = await resp.json()
    assert problem["type"].endswith(("archive-refused", "invalid-content")), problem
    after = await (await client.get(f"{A}/mappings", headers=admin)).json()
    assert after["version"] == version
    assert (await client.get(f"{A}/aids/evil", headers=admin)).status == 404
    assert not (tmp_path.parent / "x").exists() and not Path("/tmp/inflow-evil.md").exists()


async def test_export_then_import_round_trip_by_the_pipeline(
    client: TestClient, pipeline: dict[str, str], learner: dict[str, str], admin: dict[str, str]
) -> None:
    resp = await client.get(f"{A}/export", headers=pipeline)
    assert resp.status == 200 and resp.content_type == "application/zip"
    data = await resp.read()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
        assert "apps/hr.yaml" in names and "aids/hr-request-time-off.md" in names
        files = {n: zf.read(n) for n in names}
    # Change one aid, add one, put everything under a top folder, as a tar.gz.
    files["aids/hr-pto-policy.md"] += b"\nUpdated by CI.\n"
    files["aids/pipeline-aid.md"] = (
        b"---\nid: pipeline-aid\ntitle: From the pipeline\napps: [hr]\nstatus: published\n---\n"
        b"Shipped by CI.\n"
    )

    def build(tf: tarfile.TarFile) -> None:
        for n, content in sorted(files.items()):
            info = tarfile.TarInfo(f"content/{n}")
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))

    resp = await client.post(
        f"{A}/import?filename=ci.tar.gz",
        data=_tar(build),
        headers={**pipeline, "Content-Type": "application/gzip"},
    )
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert report["aids_created"] == ["pipeline-aid"]
    assert report["aids_updated"] == ["hr-pto-policy"]
    assert report["apps_updated"] == [] and report["apps_created"] == []
    # Suggested where it fits (no "mapped to the app" filler lists every new aid any more).
    resp = await client.post(
        "/api/v1/suggest",
        json={"url": "http://127.0.0.1:8080/demo/hr/", "title": "Shipped from the pipeline"},
        headers=learner,
    )
    assert "pipeline-aid" in [a["id"] for a in (await resp.json())["aids"]]
    resp = await client.get(f"{A}/audit?action=content.import", headers=admin)
    entry = (await resp.json())["entries"][0]
    assert entry["who"]["username"] == "service-account-inflow-cli"
    assert entry["target_id"] == "ci.tar.gz"
    # Plain authors may not import; wrong media type is 415.
    resp = await client.post(
        f"{A}/import", data=b"x", headers={**learner, "Content-Type": "application/zip"}
    )
    assert resp.status == 403
    resp = await client.post(
        f"{A}/import", data=b"x", headers={**pipeline, "Content-Type": "text/plain"}
    )
    assert resp.status == 415
