"""Sources in the console (/admin/sources): the list with each source's last sync in words, the
new and edit forms (their fields derived from the `Source` declaration), and a source's page:
Sync now, progress while a run goes (the page refreshes itself every 2 s with a
<meta http-equiv=refresh> only while it runs: no JavaScript), the runs with their summary and
failures, the items with links to their aids, delete (archiving its aids).

Everything goes through the sources service (server/sources/service.py), so the console and the
API (/api/v1/admin/sources) cannot disagree. Who may do what comes from the permission table:
`source.read` to look, `source.write` to add, change or delete, `source.sync` for Sync now.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

from aiohttp import web
from multidict import MultiDictProxy

from server import keys
from server.console.common import (
    LONG_TEXT,
    FormState,
    csv_list,
    need,
    posted,
    render,
    render_form,
    see_other,
    submit_form,
    text,
)
from server.console.limits import LIMITS, limits_of
from server.console.session import ConsoleSession
from server.errors import InflowError
from server.models import read_only_fields
from server.sources.models import _KIND_ONLY, Source, SyncRun
from server.sources.service import SourceService
from server.sources.sync import summary_text

routes = web.RouteTableDef()
BASE = "/admin/sources"
REFRESH_SECONDS = 2
RUNS_SHOWN = 20

# The form's field attributes (required, maxlength, min, max...) from the declaration.
FORM_LIMITS = {**LIMITS, "source": limits_of(Source)}
FORM_LONG_TEXT = {**LONG_TEXT, "source": frozenset[str]()}

STATUS_WORDS = {
    "never": "never synced",
    "running": "syncing now",
    "ok": "up to date",
    "partial": "synced, some items failed",
    "failed": "last sync failed",
}
STATUS_BADGES = {"never": "draft", "running": "review", "ok": "published", "partial": "stale"}
KIND_WORDS = {"feed": "RSS or Atom feed", "website": "website section", "git": "git repository"}
# what a run counts, per kind ("12 of 40 pages")
ITEM_NOUNS = {"feed": "entries", "website": "pages", "git": "files"}
ITEM_STATE_WORDS = {"active": "current", "removed": "gone from the source", "failed": "failed"}
TRIGGER_WORDS = {"manual": "Sync now", "schedule": "schedule"}
NOTICES = {
    "sync-started": "Sync started: this page follows it.",
    "created": "Created. Sync it now, or wait for its schedule.",
    "saved": "Saved.",
    "deleted": "Deleted: the aids it made are archived and now Inflow's own.",
}

# Labels and hints of the form's fields; the fields themselves, their order, their kind of input
# and their limits come from the declaration (`form_fields`).
LABELS: dict[str, tuple[str, str]] = {
    "id": ("Id (slug)", "Prefixes the ids of the aids it makes; it cannot change later."),
    "name": ("Name", "Learners read it: “From <name>, updated …”."),
    "kind": ("Kind", ""),
    "url": (
        "URL",
        "Feed: the feed's address. Website: the sitemap's address, or the start page "
        "(crawl). Git: the repository's address (http or https).",
    ),
    "mode": ("Website: read by", "sitemap: the URLs of sitemap.xml; crawl: links from the URL."),
    "path_prefix": (
        "Website: only pages under",
        "A path such as /handbook/ (crawl; empty: the whole site).",
    ),
    "page_cap": (
        "At most this many pages (website) or files (git) a run reads",
        "With more, the run reads these and archives nothing.",
    ),
    "ref": ("Git: branch or tag", ""),
    "path": ("Git: folder in the repository", "Empty: the whole repository."),
    "allowed_hosts": (
        "Allowed hosts (comma-separated)",
        "Hosts fetching may reach, or *.example.com; empty: the host of the URL only.",
    ),
    "apps": ("Apps its aids show in", ""),
    "tags": ("Tags (comma-separated)", "Given to the aids it makes."),
    "audience": ("Audience: roles or groups, comma-separated", "Empty: everyone."),
    "owner": ("Owner", "Who answers for its aids (an e-mail address or a team)."),
    "aid_type": ("Aids are of type", "Git files may say their own type in their front matter."),
    "publish": (
        "New and changed items",
        "auto: published at once; review: wait in review for a reviewer.",
    ),
    "on_remove": (
        "When an item disappears",
        "archive: its aid is archived; keep: its aid stays as it is. Never deleted.",
    ),
    "interval_minutes": ("Sync every (minutes)", ""),
    "active": ("Active (synced on its schedule)", ""),
}
OPTION_WORDS = {
    "publish": {"auto": "publish at once", "review": "go to review"},
    "on_remove": {"archive": "archive its aid", "keep": "keep its aid"},
    "mode": {"sitemap": "sitemap", "crawl": "crawl from the start page"},
    "kind": KIND_WORDS,
}


@dataclass(frozen=True)
class FormField:
    """One field of the source form: its input (`widget`), label, hint, options (a choice),
    and the kind it belongs to ("" for every kind)."""

    name: str
    widget: Literal["text", "url", "number", "select", "checkbox", "list", "apps"]
    label: str
    hint: str = ""
    options: tuple[tuple[str, str], ...] = ()
    only: str = ""


def _unwrap(hint: Any) -> Any:
    while typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    return hint


def _widget(name: str, hint: Any) -> tuple[str, tuple[str, ...]]:
    base = _unwrap(hint)
    origin = typing.get_origin(base)
    if origin is Literal:
        return "select", tuple(str(a) for a in typing.get_args(base))
    if base is bool:
        return "checkbox", ()
    if base is int:
        return "number", ()
    if origin is tuple:
        return ("apps" if name == "apps" else "list"), ()
    return ("url" if name == "url" else "text"), ()


def form_fields() -> tuple[FormField, ...]:
    """The writable fields of `Source`, in declaration order, with their inputs."""
    hints = typing.get_type_hints(Source, include_extras=True)
    read_only = read_only_fields(Source)
    out = []
    for spec in dataclasses.fields(Source):
        if spec.name in read_only:
            continue
        widget, values = _widget(spec.name, hints[spec.name])
        label, hint = LABELS.get(spec.name, (spec.name.replace("_", " ").capitalize(), ""))
        words = OPTION_WORDS.get(spec.name, {})
        only = _KIND_ONLY[spec.name][0] if spec.name in _KIND_ONLY else ""
        if only:
            hint = f"{hint} Only for {KIND_WORDS[only]} sources; ignored for the others.".strip()
        out.append(
            FormField(
                spec.name,
                widget,  # type: ignore[arg-type]
                label,
                hint,
                tuple((v, words.get(v, v)) for v in values),
                only,
            )
        )
    return tuple(out)


FIELDS = form_fields()
_BY_NAME = {f.name: f for f in FIELDS}


def _service(request: web.Request) -> SourceService:
    return request.config_dict[keys.SOURCES]


def _values(source: Source | None) -> dict[str, Any]:
    """A source as its form shows it (lists typed as comma-separated text)."""
    values: dict[str, Any] = {}
    for f in FIELDS:
        value = getattr(source, f.name) if source else _default(f.name)
        if f.widget == "list":
            value = ", ".join(value or ())
        elif f.widget == "apps":
            value = list(value or ())
        values[f.name] = value
    return values


def _default(name: str) -> Any:
    spec = next(s for s in dataclasses.fields(Source) if s.name == name)
    return None if spec.default is dataclasses.MISSING else spec.default


def _data(form: MultiDictProxy[Any], current: Source | None) -> dict[str, Any]:
    """The service's body from the form: fields of another kind than the chosen one are left
    out (they keep their defaults), numbers as numbers when they are, lists split."""
    kind = text(form, "kind")
    data: dict[str, Any] = {}
    for f in FIELDS:
        if f.name == "id" and current is not None:
            continue
        if f.only and f.only != kind:
            continue
        if f.widget == "checkbox":
            data[f.name] = text(form, f.name) == "1"
        elif f.widget == "apps":
            data[f.name] = [a for a in form.getall(f.name, []) if isinstance(a, str)]
        elif f.widget == "list":
            data[f.name] = csv_list(text(form, f.name))
        elif f.widget == "number":
            value = text(form, f.name)
            if value:
                data[f.name] = int(value) if value.lstrip("-").isdigit() else value
        else:
            data[f.name] = text(form, f.name)
    return data


def progress_line(source: Source, progress: Mapping[str, Any] | None) -> str:
    """'12 of 40 pages: reading /handbook/expenses' while a run goes."""
    if progress is None:
        return ""
    noun = ITEM_NOUNS.get(source.kind, "items")
    done, total = int(progress.get("done") or 0), int(progress.get("total") or 0)
    counted = f"{done} of {total} {noun}" if total else "starting"
    message = str(progress.get("message") or "")
    return f"{counted}: {message}" if message and message != "starting" else counted


def run_view(run: SyncRun) -> dict[str, Any]:
    try:
        failures = json.loads(run.failures or "[]")
    except ValueError:
        failures = []
    return {
        "run": run,
        "summary": "running" if run.status == "running" else summary_text(run),
        "trigger": TRIGGER_WORDS.get(run.trigger, run.trigger),
        "failures": [f for f in failures if isinstance(f, dict)],
    }


def _page_context() -> dict[str, Any]:
    return {
        "limits": FORM_LIMITS,
        "long_text": FORM_LONG_TEXT,
        "status_words": STATUS_WORDS,
        "status_badges": STATUS_BADGES,
        "kind_words": KIND_WORDS,
    }


def _notice(request: web.Request) -> dict[str, str]:
    found = NOTICES.get(request.query.get("notice", ""))
    return {"notice": found} if found else {}


# -- the list --------------------------------------------------------------------------------


@routes.get(BASE)
async def sources_page(request: web.Request) -> web.Response:
    need(request, "source.read")
    service = _service(request)
    sources = await service.list()
    # items per source (a handful of sources: one indexed read each)
    counts = {s.id: sum(i.state == "active" for i in await service.items(s.id)) for s in sources}
    return render(
        request,
        "sources.html",
        {
            **_page_context(),
            "sources": sources,
            "running": {s.id: service.progress(s.id) is not None for s in sources},
            "counts": counts,
            **_notice(request),
        },
    )


# -- the form --------------------------------------------------------------------------------


async def _form_page(request: web.Request, state: FormState | None) -> web.Response:
    source_id = request.match_info.get("id")
    service = _service(request)
    source = await service.get(source_id) if source_id else None
    apps = sorted(request.config_dict[keys.LIBRARY].catalog.apps.values(), key=lambda a: a.name)
    return render_form(
        request,
        "sources_edit.html",
        {**_page_context(), "source": source, "fields": FIELDS, "apps": apps, "f": _values(source)},
        state,
    )


async def _save(
    request: web.Request, session: ConsoleSession, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    service = _service(request)
    source_id = request.match_info.get("id")
    if source_id is None:
        made = await service.create(session.identity(), _data(form, None))
        raise see_other(f"{BASE}/{quote(made.id)}", "created")
    current = await service.get(source_id)
    await service.replace(session.identity(), source_id, _data(form, current))
    raise see_other(f"{BASE}/{quote(source_id)}", "saved")


@routes.get(BASE + "/new")
async def new_source_page(request: web.Request) -> web.Response:
    need(request, "source.write")
    return await _form_page(request, None)


@routes.post(BASE + "/new")
async def new_source_post(request: web.Request) -> web.StreamResponse:
    return await submit_form(request, "source.write", _save, _form_page)


@routes.get(BASE + "/{id}/edit")
async def edit_source_page(request: web.Request) -> web.Response:
    need(request, "source.write")
    return await _form_page(request, None)


@routes.post(BASE + "/{id}/edit")
async def edit_source_post(request: web.Request) -> web.StreamResponse:
    return await submit_form(request, "source.write", _save, _form_page)


# -- a source's page -------------------------------------------------------------------------


async def _source_page(request: web.Request, error: str = "", status: int = 200) -> web.Response:
    need(request, "source.read")
    service = _service(request)
    source = await service.get(request.match_info["id"])
    progress = service.progress(source.id)
    runs = await service.runs(source.id, RUNS_SHOWN)
    items = await service.items(source.id)
    catalog = request.config_dict[keys.LIBRARY].catalog
    titles = {i.aid_id: catalog.aids[i.aid_id].title for i in items if i.aid_id in catalog.aids}
    statuses = {i.aid_id: catalog.aids[i.aid_id].status for i in items if i.aid_id in catalog.aids}
    app_names = {a.id: a.name for a in catalog.apps.values()}
    context: dict[str, Any] = {
        **_page_context(),
        "source": source,
        "running": progress is not None,
        "refresh_seconds": REFRESH_SECONDS,
        "progress_line": progress_line(source, progress),
        "runs": [run_view(r) for r in runs],
        "items": items,
        "item_states": ITEM_STATE_WORDS,
        "titles": titles,
        "aid_statuses": statuses,
        "app_names": app_names,
        "publish_words": OPTION_WORDS["publish"],
        "on_remove_words": OPTION_WORDS["on_remove"],
        "error": error,
        # "Sync started" only while it runs; then the last sync's line says how it went
        **(_notice(request) if progress is not None else {}),
    }
    return render(request, "sources_source.html", context, status)


@routes.get(BASE + "/{id}")
async def source_page(request: web.Request) -> web.Response:
    return await _source_page(request)


@routes.post(BASE + "/{id}/sync")
async def sync_post(request: web.Request) -> web.StreamResponse:
    """Sync now: the run starts in the background; the source's page follows it."""
    session, source_id, _ = await posted(request, "source.sync")
    service = _service(request)
    try:
        await service.start_sync(source_id, session.identity())
    except InflowError as exc:  # a run already going (409), a source gone (404): on the page
        if exc.status >= 500:
            raise
        return await _source_page(request, exc.detail, exc.status)
    raise see_other(f"{BASE}/{quote(source_id)}", "sync-started")


@routes.post(BASE + "/{id}/delete")
async def delete_post(request: web.Request) -> web.StreamResponse:
    """Delete the source; its aids are archived first (they stay, as Inflow's own)."""
    session, source_id, _ = await posted(request, "source.write")
    try:
        await _service(request).delete(session.identity(), source_id, archive=True)
    except InflowError as exc:
        if exc.status >= 500:
            raise
        return await _source_page(request, exc.detail, exc.status)
    raise see_other(BASE, "deleted")


__all__ = ["FIELDS", "form_fields", "progress_line", "routes", "run_view"]
