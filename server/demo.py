"""Serves the demo work apps under /demo/ (static files with a single-page-app fallback), and
seeds the peer learning demo content (content/demo/peer.yaml) when the demo is imported.

The demo's sources (issue 13, docs/sources.md "Demo") are served here too: a vendor's release
notes feed (/demo/feeds/expensely/releases.rss), an intranet section with a sitemap
(/demo/intranet/), whose `{{base_url}}` placeholders become `settings.base_url`, and the git
repository made by server/sources/demo_git.py in `<data_dir>/demo-git` (over git's HTTP at
/demo-git/handbook.git). content/demo/sources.yaml seeds one source of each kind on them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from server import keys
from server.catalog import Catalog
from server.models import FieldErrors, validate
from server.paths.models import LearningPath, PathAssignment
from server.paths.service import check_references, same_assignment
from server.peer.models import (
    AidFlag,
    Answer,
    Pairing,
    PairingRule,
    Question,
    Recommendation,
    Tip,
)
from server.peer.people import audience_for
from server.peer.store import PeerStore, PeerTx
from server.security import public
from server.sources.demo_git import add_git_routes
from server.sources.models import Source

DEMO_ROOT = Path(__file__).resolve().parent / "demo_site"


def _resolve(rel: str) -> Path | None:
    root = DEMO_ROOT.resolve()
    target = (root / rel).resolve()
    if root not in target.parents and target != root:
        return None  # traversal attempt
    if target.is_dir():
        target = target / "index.html"
    if target.is_file():
        return target
    # SPA fallback: /demo/<app>/anything -> /demo/<app>/index.html
    first = rel.split("/", 1)[0]
    fallback = root / first / "index.html"
    if first and "." not in rel.rsplit("/", 1)[-1] and fallback.is_file():
        return fallback
    return None


# Files whose links must be absolute (a feed, a sitemap): `{{base_url}}` is the server's address.
BASE_URL_MARK = "{{base_url}}"
TEMPLATED = {".rss": "application/rss+xml", ".xml": "application/xml"}


def _templated(target: Path, base_url: str) -> bytes:
    return target.read_text(encoding="utf-8").replace(BASE_URL_MARK, base_url).encode()


async def _templated_response(request: web.Request, target: Path) -> web.Response:
    """A feed or sitemap with this server's address in it, answering conditional requests (a
    source's incremental read: ETag of the content, 304 when it is unchanged)."""
    base_url = request.app[keys.SETTINGS].base_url.rstrip("/")
    body = await asyncio.to_thread(_templated, target, base_url)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=TEMPLATED[target.suffix], headers=headers)


@public
async def demo_page(request: web.Request) -> web.StreamResponse:
    rel = request.match_info.get("path", "")
    if rel and not request.path.endswith("/") and (DEMO_ROOT / rel).is_dir():
        raise web.HTTPFound(f"/demo/{rel}/")
    target = _resolve(rel)
    if target is None:
        raise web.HTTPNotFound(text="No such demo page.")
    if target.suffix in TEMPLATED:
        return await _templated_response(request, target)
    return web.FileResponse(
        target,
        headers={
            "Cache-Control": "no-cache",
            "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'",
        },
    )


@public
async def demo_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/demo/")


DEMO_GIT_PREFIX = "/demo-git"
DEMO_GIT_DIR = "demo-git"  # in the data folder: `python -m server.sources.demo_git` makes it


def add_demo_routes(app: web.Application) -> None:
    app.router.add_get("/demo", demo_root)
    app.router.add_get("/demo/{path:.*}", demo_page)
    # the demo git source: <data_dir>/demo-git/handbook.git over git's HTTP (and a page per file)
    git = web.Application()
    add_git_routes(git, app[keys.SETTINGS].data_dir / DEMO_GIT_DIR)
    app.add_subapp(DEMO_GIT_PREFIX, git)


# -- peer learning demo content (content/demo/peer.yaml) --------------------------------------

PEER_DEMO_FILE = "peer.yaml"
_RELATIVE = re.compile(r"^([+-]\d+)d(?:([+-]\d+)h)?$")
_DATES = {"starts_on", "ends_on"}
_TIMES = {"created_at", "moderated_at", "endorsed_at", "first_answer_at"}
_fields = dataclasses.fields
# people of the demo file: a name becomes a demo person key, never a real account's pseudonym
_PEOPLE = {"author": "author_key", "asker": "asker_key"}
_SECTIONS: dict[str, type] = {
    "tips": Tip,
    "questions": Question,
    "answers": Answer,
    "pairing_rules": PairingRule,
    "pairings": Pairing,
    "recommendations": Recommendation,
    "flags": AidFlag,
}


def _when(value: Any, now: dt.datetime, field: str) -> Any:
    """'-6d+4h' -> the ISO time (or date, for pairings) that far from `now`; other values as is."""
    match = _RELATIVE.match(value) if isinstance(value, str) else None
    if match is None:
        return value
    when = now + dt.timedelta(days=int(match[1]), hours=int(match[2] or 0))
    if field in _DATES:
        return when.date().isoformat()
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def peer_demo_objects(path: Path, now: dt.datetime | None = None) -> list[Any]:
    """The demo file's resources, in an order that satisfies references (a question before its
    answers, a tip before what refers to it)."""
    now = now or dt.datetime.now(dt.UTC)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(data) - set(_SECTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    out: list[Any] = []
    for section, cls in _SECTIONS.items():
        for item in data.get(section) or ():
            fields = {}
            for key, value in item.items():
                name = _PEOPLE.get(key, key)
                fields[name] = f"demo:{value}" if key in _PEOPLE else _when(value, now, key)
            for name in ("mentor_ids", "audience"):
                if name in fields:
                    fields[name] = tuple(fields[name])
            if isinstance(fields.get("body"), str):
                fields["body"] = fields["body"].strip()
            if "updated_at" not in fields and any(f.name == "updated_at" for f in _fields(cls)):
                # last touched at its latest time (an approval, an endorsement, an answer)
                times = [v for k, v in fields.items() if k in _TIMES and isinstance(v, str)]
                if times:
                    fields["updated_at"] = max(times)
            out.append(cls(**fields))
    return out


async def seed_peer_demo(
    peer: PeerStore, path: Path, catalog: Catalog | None = None
) -> dict[str, int]:
    """Add the demo file's peer content that is not there yet: one transaction, idempotent.
    A demo pairing that has ended is renewed (so a later `make run` still shows it). With the
    catalog, tips and questions get the audience the page gives them (as when written).
    Returns how many were added, renewed and already there."""
    objects = peer_demo_objects(path)
    if catalog is not None:
        objects = [
            dataclasses.replace(o, audience=audience_for(catalog, o.app_id, o.context_id))
            if isinstance(o, Tip | Question) and not o.audience
            else o
            for o in objects
        ]
    today = dt.datetime.now(dt.UTC).date().isoformat()

    def seed(tx: PeerTx) -> dict[str, int]:
        counts = {"added": 0, "renewed": 0, "kept": 0}
        for obj in objects:
            found = tx.find(type(obj), obj.id)
            if found is None:
                tx.add(obj)
                counts["added"] += 1
            elif isinstance(found, Pairing) and (found.ends_on or today) < today:
                tx.update(dataclasses.replace(found, starts_on=obj.starts_on, ends_on=obj.ends_on))
                counts["renewed"] += 1
            else:
                counts["kept"] += 1
        return counts

    return await peer.transaction(seed)


# -- the demo's sources (content/demo/sources.yaml) -------------------------------------------

SOURCES_DEMO_FILE = "sources.yaml"


def demo_sources(path: Path, base_url: str) -> list[Source]:
    """The demo file's sources, `{{base_url}}` in their URLs replaced by this server's address;
    a ValueError names the source and field of what is wrong."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(data) - {"sources"}
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    out = []
    for i, item in enumerate(data.get("sources") or ()):
        fields = {
            k: v.replace(BASE_URL_MARK, base_url.rstrip("/")) if isinstance(v, str) else v
            for k, v in item.items()
        }
        try:
            out.append(validate(Source, fields))
        except FieldErrors as exc:
            problems = "; ".join(f"{f}: {m}" for f, m in exc.errors)
            raise ValueError(f"{path}: source {i + 1} ({item.get('id')}): {problems}") from exc
    return out


async def seed_demo_sources(
    peer: PeerStore, path: Path, base_url: str, catalog: Catalog | None = None
) -> dict[str, int]:
    """Add the demo sources that are not there yet (one transaction, idempotent). A demo source
    whose URL moved (another INFLOW_BASE_URL) gets the new URL. Apps the catalog does not have
    are left out. They sync when the server starts (never synced: at once)."""
    sources = demo_sources(path, base_url)
    if catalog is not None:
        sources = [
            dataclasses.replace(s, apps=tuple(a for a in s.apps if a in catalog.apps))
            for s in sources
        ]

    def seed(tx: PeerTx) -> dict[str, int]:
        counts = {"added": 0, "moved": 0, "kept": 0}
        for source in sources:
            found = tx.find(Source, source.id)
            if found is None:
                tx.add(source)
                counts["added"] += 1
            elif found.url != source.url:
                tx.update(dataclasses.replace(found, url=source.url))
                counts["moved"] += 1
            else:
                counts["kept"] += 1
        return counts

    return await peer.transaction(seed)


# -- the demo's learning paths (content/demo/paths.yaml) ---------------------------------------

PATHS_DEMO_FILE = "paths.yaml"


def demo_paths(
    path: Path, catalog: Catalog | None = None, today: dt.date | None = None
) -> tuple[list[LearningPath], list[PathAssignment]]:
    """The demo file's paths and assignments (`due_in_days` from `today`); a ValueError names
    the path or assignment and the field of what is wrong (with the catalog: what a step names
    that the content does not have)."""
    today = today or dt.datetime.now(dt.UTC).date()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(data) - {"paths", "assignments"}
    if unknown:
        raise ValueError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    paths: list[LearningPath] = []
    for i, item in enumerate(data.get("paths") or ()):
        try:
            found = validate(LearningPath, item)
            problems = check_references(found, catalog) if catalog is not None else []
            if problems:
                raise FieldErrors(problems)
        except FieldErrors as exc:
            detail = "; ".join(f"{f}: {m}" for f, m in exc.errors)
            raise ValueError(f"{path}: path {i + 1} ({item.get('id')}): {detail}") from exc
        paths.append(found)
    assignments: list[PathAssignment] = []
    for i, item in enumerate(data.get("assignments") or ()):
        fields = dict(item)
        days = fields.pop("due_in_days", None)
        if days is not None:
            fields["due_on"] = (today + dt.timedelta(days=int(days))).isoformat()
        try:
            made = validate(PathAssignment, fields)
        except FieldErrors as exc:
            detail = "; ".join(f"{f}: {m}" for f, m in exc.errors)
            raise ValueError(f"{path}: assignment {i + 1}: {detail}") from exc
        if made.path_id not in {p.id for p in paths}:
            raise ValueError(f"{path}: assignment {i + 1}: no path {made.path_id!r} in the file")
        assignments.append(dataclasses.replace(made, assigned_by="demo"))
    return paths, assignments


async def seed_demo_paths(
    peer: PeerStore, path: Path, catalog: Catalog | None = None
) -> dict[str, int]:
    """Add the demo paths and assignments that are not there yet (one transaction, idempotent):
    a path with the same id, or an assignment of the path to the same group or person, is kept
    as it is (an admin may have changed it). Returns how many were added and kept."""
    paths, assignments = demo_paths(path, catalog)

    def seed(tx: PeerTx) -> dict[str, int]:
        counts = {"paths": 0, "assignments": 0, "kept": 0}
        for found in paths:
            if tx.find(LearningPath, found.id) is None:
                tx.add(found)
                counts["paths"] += 1
            else:
                counts["kept"] += 1
        for assignment in assignments:
            if tx.count(PathAssignment, where=[same_assignment(assignment)]):
                counts["kept"] += 1
            else:
                tx.add(assignment)
                counts["assignments"] += 1
        return counts

    return await peer.transaction(seed)
