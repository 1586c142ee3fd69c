"""The git connector against real repositories: made with `git init` and commits in the test,
served by a real HTTP server on 127.0.0.1 (git's smart HTTP through `git http-backend`, the demo's
server code; the dumb HTTP transport from the upstream fixture), cloned by the connector."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from server import keys
from server.app import create_app
from server.fetch import FetchPolicy, SafeFetcher
from server.settings import Settings
from server.sources.connectors import CONNECTORS
from server.sources.connectors.base import (
    Failed,
    Item,
    Listing,
    SyncContext,
    SyncError,
    Unchanged,
)
from server.sources.connectors.git import GitConnector
from server.sources.demo_git import add_git_routes, build, git_env
from server.sources.models import Source, SourceItem
from tests.upstream import Upstream

VTT = """WEBVTT

00:00:01.000 --> 00:00:05.000
Open the dispatch board and pick the truck.

00:01:23.000 --> 00:01:30.000
Drag the delivery onto a free slot to reschedule it.
"""


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(), check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


class Repo:
    """A working repository whose commits are pushed to a bare one the server serves."""

    def __init__(self, work: Path, bare: Path) -> None:
        self.work, self.bare = work, bare
        work.mkdir(parents=True)
        git(work, "init", "-q", "--initial-branch=main")
        git(work.parent, "init", "-q", "--bare", str(bare))

    def write(self, path: str, text: str | bytes) -> None:
        file = self.work / path
        file.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            file.write_bytes(text)
        else:
            file.write_text(text, encoding="utf-8")

    def remove(self, path: str) -> None:
        (self.work / path).unlink()

    def commit(self, message: str = "docs") -> str:
        git(self.work, "add", "--all")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "--tags", str(self.bare), "main")
        git(self.bare, "update-server-info")  # for the dumb HTTP transport
        return git(self.work, "rev-parse", "HEAD")

    def tag(self, name: str) -> None:
        git(self.work, "tag", "-a", name, "-m", f"release {name}")
        git(self.work, "push", "-q", str(self.bare), name)
        git(self.bare, "update-server-info")


class GitServer:
    def __init__(self, server: TestServer, root: Path, hits: list[str]) -> None:
        self.server, self.root, self.hits = server, root, hits

    def url(self, name: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.server.port}/{name}"

    def repo(self, tmp: Path, name: str = "docs.git") -> Repo:
        return Repo(tmp / f"work-{name}", self.root / name)


@pytest.fixture
async def git_server(tmp_path: Path) -> AsyncIterator[GitServer]:
    """Bare repositories in tmp_path/served over smart HTTP; /slow.git/... never answers in time;
    /moved.git/... redirects to /docs.git/..."""
    root = tmp_path / "served"
    root.mkdir()
    hits: list[str] = []

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        hits.append(f"{request.method} {request.path}")
        response: web.StreamResponse = await handler(request)
        return response

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(text="late")

    async def moved(request: web.Request) -> web.Response:
        target = f"/docs.git/{request.match_info['tail']}?{request.query_string}"
        return web.Response(status=302, headers={"Location": target})

    app = web.Application(middlewares=[count])
    app.router.add_route("*", "/slow.git/{tail:.*}", slow)
    app.router.add_route("*", "/moved.git/{tail:.*}", moved)
    add_git_routes(app, root)
    server = TestServer(app, host="127.0.0.1", handler_cancellation=True, shutdown_timeout=0.5)
    await server.start_server()
    try:
        yield GitServer(server, root, hits)
    finally:
        await server.close()


@pytest.fixture
async def fetcher() -> AsyncIterator[SafeFetcher]:
    async with SafeFetcher(user_agent="InflowTest/1 (+http://inflow.test)") as f:
        yield f


MakeCtx = Callable[..., SyncContext]


@pytest.fixture
def make_ctx(tmp_path: Path, fetcher: SafeFetcher) -> MakeCtx:
    runs = iter(range(1000))

    def make(
        source: Source,
        *,
        before: Listing | None = None,
        allow_private: bool = True,
        **policy: Any,
    ) -> SyncContext:
        work = tmp_path / f"run-{next(runs)}"
        work.mkdir()
        previous: dict[str, SourceItem] = {}
        for entry in before.entries if before else ():
            state = "failed" if isinstance(entry, Failed) else "active"
            error = entry.reason if isinstance(entry, Failed) else ""
            previous[entry.external_id] = SourceItem(
                source_id=source.id, external_id=entry.external_id, state=state, error=error
            )
        return SyncContext(
            fetcher=fetcher,
            policy=FetchPolicy(allowed_hosts=source.hosts(), allow_private=allow_private, **policy),
            source=source,
            previous=previous,
            validators=dict(before.validators) if before else {},
            work_dir=work,
        )

    return make


def git_source(url: str, **fields: Any) -> Source:
    return Source(id="fleet-docs", name="Fleet docs", kind="git", url=url, **fields)


def by_id(listing: Listing) -> dict[str, Item | Unchanged | Failed]:
    return {e.external_id: e for e in listing.entries}


def items(listing: Listing) -> dict[str, Item]:
    return {e.external_id: e for e in listing.entries if isinstance(e, Item)}


DISPATCH = """---
title: Reschedule a delivery on the dispatch board
summary: Drag the delivery to a free slot; the driver's app updates at once.
type: howto
apps: [dispatch]
tags: [reschedule, delivery]
audience: [dispatchers]
owner: ops@fleetco.example
---
Open **Dispatch board**, find the delivery and drag it to a free slot.
"""

PLAIN = """

# Fuel card limits

Every truck's fuel card allows **400 litres a day**. Ask the depot manager for more.

- Diesel only.
"""


async def test_front_matter_and_plain_markdown_files_become_items(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    """A repository of docs: front matter sets the aid's fields, plain Markdown takes its title
    from the heading (else the file name); only `*.md` under `path`; symlinks are not followed;
    a file whose name is not UTF-8 (it could not be stored as an external id) is skipped; a
    `.vtt` beside a video's file is its transcript."""
    repo = git_server.repo(tmp_path)
    repo.write("README.md", "# About this repository\n")
    repo.write("guides/dispatch/reschedule.md", DISPATCH)
    repo.write("guides/fuel-cards.md", PLAIN)
    repo.write("guides/tyre_pressure.md", "Check tyre pressure every Monday, cold.\n")
    repo.write("guides/logo.png", b"\x89PNG\r\n\x1a\n")
    repo.write(
        "guides/loading-video.md",
        "---\ntitle: Load a trailer safely\ntype: video\n"
        "source: https://video.fleetco.example/loading\n---\nWatch before your first shift.\n",
    )
    repo.write("guides/loading-video.vtt", VTT)
    os.symlink("../README.md", repo.work / "guides" / "readme-link.md")
    os.symlink("/etc/passwd", repo.work / "guides" / "passwd.md")
    with open(os.fsencode(repo.work / "guides") + b"/caf\xe9.md", "wb") as latin1_name:
        latin1_name.write(b"# Not UTF-8 in its name\n")
    repo.commit()

    listing = await GitConnector().list(
        make_ctx(git_source(git_server.url("docs.git"), path="guides"))
    )

    got = items(listing)
    assert sorted(got) == [
        "guides/dispatch/reschedule.md",
        "guides/fuel-cards.md",
        "guides/loading-video.md",
        "guides/tyre_pressure.md",
    ]
    assert len(listing.entries) == 4 and listing.complete
    fm = got["guides/dispatch/reschedule.md"]
    assert fm.title == "Reschedule a delivery on the dispatch board"
    assert fm.summary.startswith("Drag the delivery")
    assert fm.type == "howto" and fm.tags == ("reschedule", "delivery")
    assert fm.fields["apps"] == ["dispatch"] and fm.fields["audience"] == ["dispatchers"]
    assert fm.fields["owner"] == "ops@fleetco.example"
    assert "id" not in fm.fields  # not given: the sync names the aid
    assert fm.body.startswith("Open **Dispatch board**")
    assert fm.url == git_server.url("docs/blob/main/guides/dispatch/reschedule.md")

    plain = got["guides/fuel-cards.md"]
    assert plain.title == "Fuel card limits"
    assert "Fuel card limits" not in plain.body  # the heading became the title
    assert (
        plain.summary
        == "Every truck's fuel card allows 400 litres a day. Ask the depot manager for more."
    )
    assert plain.type == "" and plain.fields == {} and plain.tags == ()

    assert got["guides/tyre_pressure.md"].title == "Tyre pressure"

    video = got["guides/loading-video.md"]
    assert video.type == "video" and video.transcript == VTT
    assert video.url == "https://video.fleetco.example/loading"
    assert all(not i.transcript for k, i in got.items() if k != "guides/loading-video.md")
    assert listing.validators["commit"] == git(repo.work, "rev-parse", "HEAD")


async def test_a_broken_front_matter_fails_that_file_with_its_line(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    """A file whose front matter is wrong fails with the file, line and message `inflow import`
    gives; the other files still come through."""
    repo = git_server.repo(tmp_path)
    repo.write("ok.md", "# Fine\n\nText.\n")
    repo.write("bad-type.md", "---\ntitle: Wrong type\ntype: tutorial\n---\nBody\n")
    repo.write("bad-yaml.md", "---\ntitle: [unclosed\n---\nBody\n")
    repo.write("unclosed.md", "---\ntitle: No end\nBody\n")
    repo.write("bad-vtt.md", "---\ntitle: A video\ntype: video\n---\nWatch it.\n")
    repo.write("bad-vtt.vtt", "WEBVTT\n\n00:00:05.000 --> 00:00:01.000\nBackwards\n")
    repo.commit()

    entries = by_id(await GitConnector().list(make_ctx(git_source(git_server.url("docs.git")))))

    assert isinstance(entries["ok.md"], Item)
    bad = entries["bad-type.md"]
    assert isinstance(bad, Failed)
    assert bad.reason.startswith("bad-type.md:3: type:")
    assert isinstance(entries["bad-yaml.md"], Failed)
    assert entries["bad-yaml.md"].reason.startswith("bad-yaml.md:")
    assert "YAML syntax error" in entries["bad-yaml.md"].reason
    assert isinstance(entries["unclosed.md"], Failed)
    assert "missing YAML front matter" in entries["unclosed.md"].reason
    vtt = entries["bad-vtt.md"]
    assert isinstance(vtt, Failed) and vtt.reason.startswith("bad-vtt.vtt:3:")


async def test_a_new_commit_shows_changes_and_removals_and_the_same_commit_clones_nothing(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    """A second commit that edits one file and deletes another is what the next listing has;
    when nothing was committed since, nothing is cloned and every file is listed unchanged."""
    repo = git_server.repo(tmp_path)
    repo.write("a.md", "# Alpha\n\nFirst text.\n")
    repo.write("b.md", "# Beta\n\nStays.\n")
    repo.write("c.md", "# Gamma\n\nGoes away.\n")
    repo.write("d.md", "---\ntype: nonsense\n---\nBroken.\n")
    repo.commit()
    source = git_source(git_server.url("docs.git"))
    first = await GitConnector().list(make_ctx(source))
    assert sorted(items(first)) == ["a.md", "b.md", "c.md"]

    ctx = make_ctx(source, before=first)
    again = await GitConnector().list(ctx)
    assert not (ctx.work_dir / "repo").exists()  # nothing cloned
    assert by_id(again) == {
        "a.md": Unchanged("a.md"),
        "b.md": Unchanged("b.md"),
        "c.md": Unchanged("c.md"),
        "d.md": by_id(first)["d.md"],  # still failed, with its reason
    }
    assert again.validators == first.validators

    repo.write("a.md", "# Alpha, revised\n\nSecond text.\n")
    repo.remove("c.md")
    commit = repo.commit("revise a, drop c")
    second = await GitConnector().list(make_ctx(source, before=first))
    got = items(second)
    assert sorted(got) == ["a.md", "b.md"]
    assert got["a.md"].title == "Alpha, revised" and "Second text." in got["a.md"].body
    assert got["b.md"] == items(first)["b.md"]
    assert second.validators["commit"] == commit != first.validators["commit"]


async def test_a_tag_as_ref_reads_the_tagged_commit(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    repo = git_server.repo(tmp_path)
    repo.write("policy.md", "# Overtime policy\n\nVersion one.\n")
    repo.commit()
    repo.tag("v1.0")
    repo.write("policy.md", "# Overtime policy\n\nVersion two, not released.\n")
    repo.write("draft.md", "# Draft\n")
    repo.commit()
    source = git_source(git_server.url("docs.git"), ref="v1.0")

    listing = await GitConnector().list(make_ctx(source))

    got = items(listing)
    assert list(got) == ["policy.md"] and "Version one." in got["policy.md"].body
    assert got["policy.md"].url.endswith("/docs/blob/v1.0/policy.md")
    # the same tag again: its commit has not moved, nothing is cloned
    ctx = make_ctx(source, before=listing)
    again = await GitConnector().list(ctx)
    assert again.entries == [Unchanged("policy.md")]
    assert not (ctx.work_dir / "repo").exists()


async def test_a_missing_branch_fails_the_run(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    repo = git_server.repo(tmp_path)
    repo.write("a.md", "# A\n")
    repo.commit()
    with pytest.raises(SyncError, match="nope"):
        await GitConnector().list(make_ctx(git_source(git_server.url("docs.git"), ref="nope")))


async def test_the_dumb_http_transport_works_too(
    upstream: Upstream, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    """A repository published as static files (`git update-server-info`), which cannot make a
    shallow clone: the connector clones it whole."""
    repo = Repo(tmp_path / "work", tmp_path / "static" / "docs.git")
    repo.write("howto/a.md", "# Static\n\nServed as files.\n")
    repo.commit()
    upstream.serve_dir("/git", tmp_path / "static")

    listing = await GitConnector().list(make_ctx(git_source(upstream.url("/git/docs.git"))))

    assert items(listing)["howto/a.md"].title == "Static"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///srv/git/docs.git", "scheme|bad_url"),
        ("ssh://git@127.0.0.1/docs.git", "scheme"),
        ("ext::sh -c touch% /tmp/pwned", "scheme|bad_url"),
    ],
)
async def test_only_http_urls_are_cloned(
    make_ctx: MakeCtx, tmp_path: Path, url: str, reason: str
) -> None:
    """file://, ssh:// and git's own transports are refused before git runs."""
    source = Source(id="fleet-docs", name="Fleet docs", kind="git", url=url, allowed_hosts=())
    ctx = make_ctx(source)
    with pytest.raises(SyncError, match=reason):
        await GitConnector().list(ctx)
    assert not (ctx.work_dir / "repo").exists()


async def test_a_host_outside_the_allowlist_is_refused(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    git_server.repo(tmp_path).write("a.md", "# A\n")
    source = git_source(git_server.url("docs.git"), allowed_hosts=("git.fleetco.example",))
    with pytest.raises(SyncError, match="host_not_allowed"):
        await GitConnector().list(make_ctx(source))
    assert git_server.hits == []


async def test_a_private_address_is_refused_unless_allowed(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    repo = git_server.repo(tmp_path)
    repo.write("a.md", "# A\n")
    repo.commit()
    source = git_source(git_server.url("docs.git", host="localhost"))
    with pytest.raises(SyncError, match="private_address"):
        await GitConnector().list(make_ctx(source, allow_private=False))
    assert git_server.hits == []
    assert list(items(await GitConnector().list(make_ctx(source)))) == ["a.md"]


async def test_a_redirect_is_not_followed(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    """git would follow a redirect to a host the safe fetcher never checked: it may not."""
    repo = git_server.repo(tmp_path)
    repo.write("a.md", "# A\n")
    repo.commit()
    with pytest.raises(SyncError, match="git clone failed"):
        await GitConnector().list(make_ctx(git_source(git_server.url("moved.git"))))
    assert not any(hit.startswith("GET /docs.git/") for hit in git_server.hits)


async def test_a_clone_over_the_time_limit_is_stopped(
    git_server: GitServer, make_ctx: MakeCtx
) -> None:
    """A server that never answers: the clone is stopped at its limit and the run fails."""
    ctx = make_ctx(git_source(git_server.url("slow.git")), timeout=0.3)
    with pytest.raises(SyncError, match="longer than"):
        await GitConnector().list(ctx)
    assert any("/slow.git/" in hit for hit in git_server.hits)


async def test_a_repository_over_the_size_cap_is_refused(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    """A repository bigger than CLONE_SIZE_FACTOR x max_bytes is not read."""
    repo = git_server.repo(tmp_path)
    repo.write("a.md", "# A\n")
    repo.write("video.bin", os.urandom(600_000))  # random: git cannot compress it
    repo.commit()
    ctx = make_ctx(git_source(git_server.url("docs.git")), max_bytes=20_000)  # cap 400 kB
    with pytest.raises(SyncError, match="larger than 400,000 bytes"):
        await GitConnector().list(ctx)


async def test_a_file_over_the_size_limit_fails_alone(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    repo = git_server.repo(tmp_path)
    repo.write("small.md", "# Small\n")
    repo.write("big.md", "# Big\n\n" + "word " * 5000)
    repo.commit()
    ctx = make_ctx(git_source(git_server.url("docs.git")), max_bytes=20_000)
    entries = by_id(await GitConnector().list(ctx))
    assert isinstance(entries["small.md"], Item)
    assert entries["big.md"] == Failed("big.md", "big.md: the file is larger than 20,000 bytes")


async def test_page_cap_limits_the_files_read(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    """More Markdown files than the source's page_cap: the first ones by path are read and the
    listing is incomplete, so the sync archives none of the others."""
    repo = git_server.repo(tmp_path)
    for name in ("a", "b", "c"):
        repo.write(f"{name}.md", f"# {name.upper()}\n")
    repo.commit()
    ctx = make_ctx(git_source(git_server.url("docs.git"), page_cap=2))
    listing = await GitConnector().list(ctx)
    assert sorted(items(listing)) == ["a.md", "b.md"] and not listing.complete


async def test_the_demo_repository(git_server: GitServer, make_ctx: MakeCtx) -> None:
    """The demo's handbook (content/demo-sources/docs/) as `make run` serves it."""
    build(git_server.root)
    source = git_source(git_server.url("handbook.git"), path="handbook", ref="v1")
    listing = await GitConnector().list(make_ctx(source))
    got = items(listing)
    assert len(got) == len(listing.entries) >= 3
    assert any(i.transcript for i in got.values())
    assert all(i.fields.get("apps") for i in got.values())  # each shows in a demo app
    titles = {i.title for i in got.values()}
    assert "Hand over your accounts when you change territory" in titles  # from its heading


def test_git_is_a_connector() -> None:
    assert isinstance(CONNECTORS["git"], GitConnector)


async def test_files_read_in_one_run_are_capped_in_total(
    git_server: GitServer, tmp_path: Path, make_ctx: MakeCtx
) -> None:
    """Files that compress well make a small clone but much text: what one run reads is capped
    (CLONE_SIZE_FACTOR x max_bytes, like the clone); the rest fail and keep their aids."""
    repo = git_server.repo(tmp_path)
    for n in range(30):
        repo.write(f"page-{n:02}.md", f"# Page {n}\n\n" + "same words again " * 1100)
    repo.commit()
    ctx = make_ctx(git_source(git_server.url("docs.git")), max_bytes=20_000)  # cap 400 kB
    listing = await GitConnector().list(ctx)
    read = items(listing)
    failed = [e for e in listing.entries if isinstance(e, Failed)]
    assert len(read) == 21 and sorted(read)[-1] == "page-20.md"
    assert len(failed) == 9
    assert failed[0].reason == (
        "page-21.md: not read (the files of one run may total 400,000 bytes)"
    )


# -- a full sync through the app (sync engine, database, index) ------------------------------

A = "/api/v1/admin"
FLEET_APP = """\
id: fleet
name: FleetCo Dispatch
rules:
  - pattern: "https://dispatch.fleetco.example/**"
"""


@pytest.fixture
async def fleet(aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path) -> Any:
    library = tmp_path / "fleetco"
    (library / "apps").mkdir(parents=True)
    (library / "aids").mkdir()
    (library / "apps" / "fleet.yaml").write_text(FLEET_APP, encoding="utf-8")
    settings = make_settings(content_dir=library, fetch_allow_private=True, jobs=False)
    return await aiohttp_client(create_app(settings))


async def source_aids(client: Any, admin: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The git source's aids as the admin API serves them, by title."""
    resp = await client.get(f"{A}/aids?limit=200", headers=admin)
    assert resp.status == 200, await resp.text()
    out = {}
    for row in (await resp.json())["aids"]:
        aid = await (await client.get(f"{A}/aids/{row['id']}", headers=admin)).json()
        if aid["origin"] == "fleet-docs":
            out[aid["title"]] = aid
    return out


async def test_a_full_sync_of_a_git_source(
    fleet: Any,
    git_server: GitServer,
    tmp_path: Path,
    admin: dict[str, str],
    learner: dict[str, str],
) -> None:
    """An admin adds a git source and syncs it: each file is an aid with its provenance; a new
    commit's edit and removal show up at the next sync; a file with broken front matter is
    reported with its line and changes nothing else."""
    repo = git_server.repo(tmp_path)
    repo.write("guides/reschedule.md", DISPATCH.replace("apps: [dispatch]", "apps: [fleet]"))
    repo.write("guides/fuel-cards.md", PLAIN)
    repo.write(
        "guides/loading.md",
        "---\ntitle: Load a trailer safely\ntype: video\n"
        "source: https://video.fleetco.example/loading\n---\nWatch before your first shift.\n",
    )
    repo.write("guides/loading.vtt", VTT)
    repo.commit()
    body = {
        "id": "fleet-docs",
        "name": "Fleet handbook",
        "kind": "git",
        "url": git_server.url("docs.git"),
        "path": "guides",
        "apps": ["fleet"],
        "tags": ["handbook"],
        "owner": "ops@fleetco.example",
        "publish": "auto",
    }
    resp = await fleet.post(f"{A}/sources", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    sources = fleet.server.app[keys.SOURCES]

    run = await sources.sync("fleet-docs")
    assert (run.status, run.added, run.failed) == ("ok", 3, 0), run.error

    aids = await source_aids(fleet, admin)
    reschedule = aids["Reschedule a delivery on the dispatch board"]
    assert reschedule["status"] == "published"
    assert reschedule["apps"] == ["fleet"] and reschedule["audience"] == ["dispatchers"]
    assert reschedule["source"] == git_server.url("docs/blob/main/guides/reschedule.md")
    fuel = aids["Fuel card limits"]
    assert fuel["tags"] == ["handbook"] and fuel["owner"] == "ops@fleetco.example"
    assert fuel["type"] == "howto"
    seen = await (await fleet.get(f"/api/v1/aids/{fuel['id']}", headers=learner)).json()
    assert seen["provenance"]["kind"] == "git"
    assert seen["provenance"]["source_name"] == "Fleet handbook"
    loading = aids["Load a trailer safely"]
    assert (
        loading["type"] == "video" and loading["source"] == "https://video.fleetco.example/loading"
    )
    assert loading["transcript"] == VTT  # loading.vtt beside loading.md

    repo.write("guides/fuel-cards.md", PLAIN.replace("400 litres", "450 litres"))
    repo.remove("guides/loading.md")
    repo.remove("guides/loading.vtt")
    repo.write("guides/broken.md", "---\ntitle: Broken\napps: fleet: yes\n---\nText\n")
    repo.commit("raise the fuel limit, drop the video")
    run = await sources.sync("fleet-docs")
    assert (run.added, run.changed, run.unchanged, run.removed, run.failed) == (0, 1, 1, 1, 1)
    assert run.status == "partial"
    assert "guides/broken.md:3:" in run.failures

    after = await source_aids(fleet, admin)
    assert "**450 litres a day**" in after["Fuel card limits"]["body"]
    assert after["Load a trailer safely"]["status"] == "archived"
    assert "Broken" not in after

    # nothing committed since: every file unchanged, the broken one still reported
    run = await sources.sync("fleet-docs")
    assert (run.added, run.changed, run.unchanged, run.removed, run.failed) == (0, 0, 2, 0, 1)
