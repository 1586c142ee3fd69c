"""Aids: the list, the stale list, the editor (with a preview that needs no JavaScript), workflow
steps, history with diffs, roll back, delete."""

from __future__ import annotations

import asyncio
import datetime as dt
import unicodedata
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import BodyPartReader, web
from multidict import MultiDictProxy

from server import keys
from server.admin.service import TRANSITIONS, AdminService, aid_etag
from server.admin.transcripts import MAX_BYTES as TRANSCRIPT_BYTES
from server.admin.transcripts import parse_off_loop, transcript_summary
from server.console.common import (
    NOTICES,
    FormState,
    add_delete,
    add_editor,
    create_or_update,
    csv_list,
    need,
    posted,
    render,
    render_form,
    see_other,
    svc,
    text,
    whole_number,
)
from server.console.csrf import FIELD, check_csrf
from server.console.session import ConsoleSession
from server.console.words import actor, audit_comment
from server.cursor import page_by_id
from server.errors import InflowError, PayloadTooLarge, ValidationFailed
from server.health.links import broken_primary, primary_check
from server.health.service import problems_by_owner
from server.models import AID_STATUSES, AID_TYPES, Aid
from server.peer.flags import open_flags
from server.permissions import may
from server.sources.models import MAPPING_FIELDS

routes = web.RouteTableDef()
MAX_PREVIEW = 200_000
MAX_COMMENT = 2000  # a reviewer's comment when sending an aid back


@routes.get("/admin/aids")
async def aids_page(request: web.Request) -> web.Response:
    need(request, "aid.read")
    service = svc(request)
    raw = {k: request.query.get(k, "") for k in ("app", "type", "status", "owner", "stale", "q")}
    try:
        filters = service.validate_aid_filters(raw)
    except InflowError as exc:
        filters, error = {}, exc.detail
    else:
        error = ""
    aids = await service.list_aids(filters)
    page, nxt = page_by_id(aids, lambda a: a.id, request.query.get("cursor"), 50)
    next_query = urlencode({**filters, "cursor": nxt}) if nxt else ""
    return render(
        request,
        "aids.html",
        {
            "aids": page,
            "total": len(aids),
            "filters": raw,
            "apps": await service.list_apps(),
            "types": AID_TYPES,
            "statuses": AID_STATUSES,
            "next_query": next_query,
            # aids whose primary link (source) was broken at the last link check
            "broken_links": await broken_primary(
                request.config_dict[keys.PEER], [a.id for a in page]
            ),
            "today": dt.date.today(),
            "error": error,
        },
    )


@routes.get("/admin/stale")
async def stale_page(request: web.Request) -> web.Response:
    """Published aids past their review date, by owner, each with its actions: Mark verified
    (today), Open, Archive (the workflow step; both need the roles the table gives them)."""
    session = need(request, "aid.read")
    roles = frozenset(session.roles)
    aids = await svc(request).list_aids({"stale": "1"})
    store = request.config_dict[keys.PEER]
    by_owner: dict[str, list[Any]] = {}
    for aid in sorted(aids, key=lambda a: (a.verified_at or "", a.id)):
        by_owner.setdefault(aid.owner or "(no owner)", []).append(aid)
    return render(
        request,
        "stale.html",
        {
            "by_owner": sorted(by_owner.items()),
            "total": len(aids),
            "etags": {a.id: aid_etag(a) for a in aids},
            "may_verify": {a.id: _may_verify(roles, a) for a in aids},
            "may_archive": {a.id: "archived" in _steps(roles, a.status) for a in aids},
            "broken_links": await broken_primary(store, [a.id for a in aids]),
            # links of published aids that need a look, by owner (server/health)
            "link_owners": await problems_by_owner(store, None),
            "today": dt.date.today(),
        },
    )


# -- the editor ----------------------------------------------------------------------------------


def _aid_data(form: MultiDictProxy[Any], *, new: bool) -> dict[str, Any]:
    interval = whole_number(
        form, "review_interval_days", "180", "Review interval must be a whole number of days."
    )
    body = form.get("body", "")
    data: dict[str, Any] = {
        "title": text(form, "title"),
        "summary": text(form, "summary"),
        "type": text(form, "type") or "howto",
        "tags": csv_list(text(form, "tags")),
        "apps": [a for a in form.getall("apps", []) if isinstance(a, str)],
        "audience": csv_list(text(form, "audience")),
        "owner": text(form, "owner"),
        "verified_at": text(form, "verified_at") or None,
        "review_interval_days": interval,
        "source": text(form, "source"),
        "body": body.replace("\r\n", "\n") if isinstance(body, str) else "",
    }
    if new:
        data["id"] = text(form, "id")
    return data


def _aid_values(aid: Any) -> dict[str, Any]:
    """The stored aid as its form shows it (lists typed as comma-separated text)."""
    if aid is None:
        return {"type": "howto", "review_interval_days": 180}
    values = dict(aid.content_fields())
    for name in ("tags", "audience"):
        values[name] = ", ".join(values.get(name) or ())
    return values


def _steps(roles: frozenset[str], status: str) -> list[str]:
    """The workflow steps these roles may take from `status`: the table's `aid.transition`, and
    `aid.publish` for the steps that publish, unpublish or archive."""
    if not may(roles, "aid.transition"):
        return []
    publisher = may(roles, "aid.publish")
    return [
        dst
        for (src, dst), who in TRANSITIONS.items()
        if src == status and (who == "author" or publisher)
    ]


def _may_verify(roles: frozenset[str], aid: Aid) -> bool:
    """Marking verified is an edit: `aid.update`, and `aid.publish` once it is published. A
    source-owned aid is verified by its source's sync (its verified date is not a mapping)."""
    if aid.status == "archived" or aid.origin or not may(roles, "aid.update"):
        return False
    return aid.status != "published" or may(roles, "aid.publish")


async def _sent_back(service: AdminService, aid: Aid) -> dict[str, Any] | None:
    """The reviewer's comment of the step that sent a draft back ("Sent back by X, 2 hours
    ago: ..."), from that step's audit entry; None when the aid is not a draft or no one said
    why."""
    if aid.status != "draft":
        return None
    entries, _ = await service.audit(
        {"target_type": "aid", "target_id": aid.id, "action": "aid.draft"}, None, 1
    )
    if not entries or not audit_comment(entries[0]):
        return None
    entry = entries[0]
    return {"by": actor(entry), "at": entry["at"], "comment": audit_comment(entry)}


async def _editor(
    request: web.Request,
    state: FormState | None = None,
    *,
    preview_html: str = "",
    step_error: str = "",
    comment: str = "",
    status: int = 422,
) -> web.Response:
    session = need(request, "aid.read")
    roles = frozenset(session.roles)
    aid_id = request.match_info.get("id")
    service = svc(request)
    aid = await service.get_aid(aid_id) if aid_id else None
    context = {
        "aid": aid,
        "f": _aid_values(aid),
        "etag": aid_etag(aid) if aid else "",
        "steps": _steps(roles, aid.status) if aid else [],
        "apps": await service.list_apps(),
        "types": AID_TYPES,
        "preview_html": preview_html,
        "locked": aid is not None and aid.status == "published" and not may(roles, "aid.publish"),
        "may_verify": aid is not None and _may_verify(roles, aid),
        "sent_back": await _sent_back(service, aid) if aid else None,
        # mentors' open flags on the aid (server/peer/flags.py), marked at the top of the page
        "aid_flags": await open_flags(request.config_dict, aid.id)
        if aid and may(roles, "flag.read")
        else [],
        "comment": comment,
        # the last link check of its source URL (a broken one is marked at the top)
        "primary_link": await primary_check(request.config_dict[keys.PEER], aid.id)
        if aid
        else None,
        # a source-owned aid: {id, name} of the source it comes from (its content is changed there)
        "from_source": _from_source(request, aid),
        "today": dt.date.today(),
        # a video's transcript: its format, cue count and duration (parsed off the loop)
        "transcript": await asyncio.get_running_loop().run_in_executor(
            None, transcript_summary, aid
        )
        if aid and aid.type == "video"
        else None,
    }
    if step_error:
        return render(request, "aid_edit.html", {**context, "error": step_error}, status)
    return render_form(request, "aid_edit.html", context, state)


def _from_source(request: web.Request, aid: Aid | None) -> dict[str, str] | None:
    """The source a source-owned aid comes from (`origin`), named as the sources service knows
    it; None for an aid written in Inflow."""
    if aid is None or not aid.origin:
        return None
    service = request.config_dict.get(keys.SOURCES)
    ref = service.names.get(aid.origin) if service is not None else None
    return {"id": aid.origin, "name": ref.name if ref is not None else aid.origin}


async def _save_or_preview(
    request: web.Request, session: ConsoleSession, form: MultiDictProxy[Any]
) -> web.StreamResponse:
    aid_id = request.match_info.get("id")
    data = _aid_data(form, new=aid_id is None)
    if aid_id is not None and text(form, "action") != "preview":
        current = await svc(request).get_aid(aid_id)
        if current.origin:  # its content comes from its source: only the mapping is saved here
            data = {k: v for k, v in data.items() if k in MAPPING_FIELDS}
    if text(form, "action") == "preview":
        html = await request.config_dict[keys.RENDERER].render(data["body"])
        return await _editor(request, FormState.typed(form), preview_html=html)
    if aid_id is None:
        data["owner"] = data["owner"] or session.username
    return await create_or_update(
        request,
        session,
        form,
        data,
        "/admin/aids",
        AdminService.create_aid,
        AdminService.update_aid,
    )


add_editor(routes, "/admin/aids", ("aid.create", "aid.update"), _editor, _save_or_preview)


def clean_comment(raw: str) -> str:
    """A reviewer's comment as stored: plain text (shown escaped), control characters out,
    line ends as '\n'."""
    kept = "".join(
        c for c in raw.replace("\r\n", "\n") if c == "\n" or unicodedata.category(c)[0] != "C"
    )
    return kept.strip()


def _back(form: MultiDictProxy[Any], aid_id: str) -> str:
    """Where a row action returns: the stale list when sent from it, else the aid's page (a
    fixed choice, never a URL from the form)."""
    return "/admin/stale" if text(form, "back") == "stale" else f"/admin/aids/{quote(aid_id)}"


@routes.post("/admin/aids/{id}/transition")
async def aid_transition(request: web.Request) -> web.StreamResponse:
    """A workflow step. Sending an aid back to draft needs a comment (what to fix), stored
    with the step's audit entry and shown to the author on the aid's page."""
    session, aid_id, form = await posted(request, "aid.transition")
    to = text(form, "to")
    comment = clean_comment(form.get("comment", "") if isinstance(form.get("comment"), str) else "")
    if to == "draft" and not comment:
        return await _editor(
            request,
            step_error="Say what to fix: sending an aid back to draft needs a comment for its "
            "author.",
        )
    if len(comment) > MAX_COMMENT:
        return await _editor(
            request,
            step_error=f"The comment is {len(comment)} characters; at most {MAX_COMMENT}.",
            comment=comment,
        )
    try:
        await svc(request).transition(session.identity(), aid_id, to, text(form, "etag"), comment)
    except InflowError as exc:
        if exc.status >= 500:
            raise
        return await _editor(request, step_error=exc.detail, comment=comment, status=exc.status)
    raise see_other(_back(form, aid_id), to if to in NOTICES else "saved")


@routes.post("/admin/aids/{id}/verify")
async def aid_verify(request: web.Request) -> web.StreamResponse:
    """Mark verified: the verified date becomes today (a new version, audited as
    `aid.verify`); the service asks the permission table (a published aid needs aid.publish)."""
    session, aid_id, form = await posted(request, "aid.update")
    await svc(request).update_aid(
        session.identity(),
        aid_id,
        {"verified_at": dt.date.today().isoformat()},
        text(form, "etag"),
        partial=True,
        action="aid.verify",
    )
    raise see_other(_back(form, aid_id), "verified")


add_delete(routes, "/admin/aids", "aid.delete", AdminService.delete_aid, "/admin/aids")


# -- a video's transcript (docs/transcripts.md) ---------------------------------------------------


@routes.post("/admin/transcripts")
async def transcript_post(request: web.Request) -> web.StreamResponse:
    """Upload, replace (`file`) or remove (`action=remove`) the transcript of the aid `aid`:
    multipart/form-data read as a stream (a long video's captions are over the console's form
    limit), the CSRF token checked before a byte of the file is read (the path is in the
    console's SELF_CHECKED). An ordinary aid update with the page's ETag."""
    session = need(request, "transcript.write")
    token: str | None = None
    fields: dict[str, str] = {}
    data = b""
    if request.content_type == "application/x-www-form-urlencoded":  # a remove without a file
        form = await request.post()
        token = text(form, FIELD)
        fields = {name: text(form, name) for name in ("aid", "etag", "action")}
    elif request.content_type != "multipart/form-data":
        raise ValidationFailed("Upload the transcript with the form.")
    reader = await request.multipart() if request.content_type == "multipart/form-data" else None
    while reader is not None and (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file":
            check_csrf(session.csrf, token)  # before reading a byte of the file
            chunks, size = [], 0
            while chunk := await part.read_chunk(64 * 1024):
                size += len(chunk)
                if size > TRANSCRIPT_BYTES:
                    raise PayloadTooLarge(
                        f"The transcript file is over the limit of {TRANSCRIPT_BYTES} bytes."
                    )
                chunks.append(chunk)
            data = b"".join(chunks)
        elif part.name in {FIELD, "aid", "etag", "action"}:
            value = (await part.read(decode=True)).decode("utf-8", "replace")[:300]
            if part.name == FIELD:
                token = value
            else:
                fields[part.name] = value.strip()
    check_csrf(session.csrf, token)
    aid_id = fields.get("aid", "")
    remove = fields.get("action") == "remove"
    if remove:
        change = ""
    else:
        try:
            change = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed("The transcript is not UTF-8 text.") from None
        if not change.strip():
            raise ValidationFailed("Choose a WebVTT (.vtt) or SRT (.srt) file to upload.")
        await parse_off_loop(change)  # a 422 naming the line
    await svc(request).update_aid(
        session.identity(),
        aid_id,
        {"transcript": change},
        fields.get("etag"),
        partial=True,
        action="aid.transcript",
    )
    raise see_other(f"/admin/aids/{quote(aid_id)}", "saved")


# -- history, roll back, live preview ------------------------------------------------------------


@routes.get("/admin/aids/{id}/history")
async def aid_history(request: web.Request) -> web.Response:
    need(request, "aid.read")
    aid_id = request.match_info["id"]
    service = svc(request)
    aid = await service.get_aid(aid_id)
    versions = await service.versions(aid_id)
    diff: dict[str, Any] | None = None
    a, b = request.query.get("from", ""), request.query.get("to", "")
    if a.isdigit() and b.isdigit():
        diff = await service.diff(aid_id, int(a), int(b))
    elif len(versions) > 1:
        diff = await service.diff(aid_id, versions[1]["version"], versions[0]["version"])
    return render(
        request,
        "aid_history.html",
        {"aid": aid, "etag": aid_etag(aid), "versions": versions, "diff": diff},
    )


@routes.post("/admin/aids/{id}/rollback")
async def aid_rollback(request: web.Request) -> web.StreamResponse:
    session, aid_id, form = await posted(request, "aid.update")
    version = text(form, "version")
    if not version.isdigit():
        raise ValidationFailed("Pick a version to roll back to.")
    await svc(request).rollback(session.identity(), aid_id, int(version), text(form, "etag"))
    raise see_other(f"/admin/aids/{quote(aid_id)}/history", "rolled-back")


@routes.post("/admin/preview")
async def preview(request: web.Request) -> web.Response:
    """Sanitized HTML for the editor's live preview (fetch with X-CSRF-Token)."""
    need(request, "preview")
    form = await request.post()
    markdown = form.get("markdown", "")
    if not isinstance(markdown, str) or len(markdown) > MAX_PREVIEW:
        raise ValidationFailed(f"Send the Markdown (at most {MAX_PREVIEW} characters).")
    html = await request.config_dict[keys.RENDERER].render(markdown)
    return web.json_response({"html": html}, headers={"Cache-Control": "no-store"})
