"""Import (a zip or tar of the content format, streamed with limits; a CSV of URL-to-aid
mappings, previewed then applied) and export (a zip)."""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web

from server import keys
from server.admin.mappings import MappingOps
from server.console.common import FormState, need, render, render_form, svc
from server.console.csrf import FIELD, check_csrf
from server.console.session import ConsoleSession
from server.errors import InflowError, PayloadTooLarge, ValidationFailed

routes = web.RouteTableDef()
CHUNK = 64 * 1024


@routes.get("/admin/import")
async def import_page(request: web.Request) -> web.Response:
    need(request)
    return render(request, "import.html", {"report": None})


@routes.post("/admin/import")
async def import_upload(request: web.Request) -> web.Response:
    """multipart/form-data: the CSRF token first, then the file; read as a stream, with limits.

    The same form posts an archive (`archive`, operation `import`) or a CSV of URL-to-aid
    mappings (`mappings` as a file, or `csv_text` from the confirmation; `mapping.import`):
    `step=preview` (the default) shows what the CSV would do, `step=apply` applies it."""
    session = need(request)
    limit = request.config_dict[keys.SETTINGS].admin_max_upload_bytes
    if request.content_type != "multipart/form-data":
        raise ValidationFailed("Upload the archive with the form.")
    reader = await request.multipart()
    token: str | None = None
    data = b""
    filename = ""
    kind = ""
    step = "preview"
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == FIELD:
            token = (await part.read(decode=True)).decode("utf-8", "replace")[:200]
        elif part.name == "step":
            step = (await part.read(decode=True)).decode("utf-8", "replace")[:20]
        elif part.name in {"archive", "mappings", "csv_text"}:
            check_csrf(session.csrf, token)  # before reading a byte of the file
            kind = "archive" if part.name == "archive" else "mappings"
            need(request, "import" if kind == "archive" else "mapping.import")
            filename = (part.filename or "upload")[:200]
            chunks, size = [], 0
            while chunk := await part.read_chunk(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"The {kind} file is over the limit of {limit} bytes.")
                chunks.append(chunk)
            data = b"".join(chunks)
    check_csrf(session.csrf, token)
    if kind == "mappings":
        return await _mappings(request, session, data, filename, apply=step == "apply")
    if not data:
        raise ValidationFailed("Choose a zip or tar archive to upload.")
    need(request, "import")
    try:
        report = await svc(request).import_archive(session.identity(), data, filename)
    except InflowError as exc:
        state = FormState({}, {}, exc.detail, exc.status)
        context = {"report": None, "problems": exc.extra}
        return render_form(request, "import.html", context, state)
    return render(request, "import.html", {"report": report, "filename": filename})


async def _mappings(
    request: web.Request, session: ConsoleSession, data: bytes, filename: str, *, apply: bool
) -> web.Response:
    """The CSV's plan (nothing written), or its result once confirmed; every row's errors."""
    service = svc(request)
    ops = MappingOps(service.settings, service.library, service.suggester)
    context: dict[str, Any] = {"report": None, "mappings_file": filename}
    if not data.strip():
        raise ValidationFailed("Choose a CSV file of URL-to-aid mappings to upload.")
    try:
        plan = await ops.import_mappings(session.identity(), data, dry_run=not apply)
    except InflowError as exc:
        context["mapping_errors"] = exc.extra.get("errors") or []
        state = FormState({}, {}, exc.detail, exc.status)
        return render_form(request, "import.html", context, state)
    context["mapping_plan"] = plan
    if plan["applied"]:
        s = plan["summary"]
        context["notice"] = (
            f"Mappings imported: {s['pins_added']} pin(s) added, "
            f"{s['contexts_created']} context(s) created."
        )
    else:
        context["csv_text"] = data.decode("utf-8-sig")
    return render(request, "import.html", context)


@routes.get("/admin/export")
async def export(request: web.Request) -> web.Response:
    session = need(request, "export")
    data = await svc(request).export_archive(session.identity())
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="inflow-content.zip"'},
    )
