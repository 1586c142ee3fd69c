"""Import (a zip or tar of the content format, streamed with limits) and export (a zip)."""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from server import keys
from server.console.common import FormState, need, render, render_form, svc
from server.console.csrf import FIELD, check_csrf
from server.errors import InflowError, PayloadTooLarge, ValidationFailed

routes = web.RouteTableDef()
CHUNK = 64 * 1024


@routes.get("/admin/import")
async def import_page(request: web.Request) -> web.Response:
    need(request)
    return render(request, "import.html", {"report": None})


@routes.post("/admin/import")
async def import_upload(request: web.Request) -> web.Response:
    """multipart/form-data: the CSRF token first, then the file; read as a stream, with limits."""
    session = need(request, "import")
    limit = request.config_dict[keys.SETTINGS].admin_max_upload_bytes
    if request.content_type != "multipart/form-data":
        raise ValidationFailed("Upload the archive with the form.")
    reader = await request.multipart()
    token: str | None = None
    data = b""
    filename = ""
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == FIELD:
            token = (await part.read(decode=True)).decode("utf-8", "replace")[:200]
        elif part.name == "archive":
            check_csrf(session.csrf, token)  # before reading a byte of the file
            filename = (part.filename or "upload")[:200]
            chunks, size = [], 0
            while chunk := await part.read_chunk(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"The archive is over the limit of {limit} bytes.")
                chunks.append(chunk)
            data = b"".join(chunks)
    check_csrf(session.csrf, token)
    if not data:
        raise ValidationFailed("Choose a zip or tar archive to upload.")
    try:
        report = await svc(request).import_archive(session.identity(), data, filename)
    except InflowError as exc:
        state = FormState({}, {}, exc.detail, exc.status)
        context = {"report": None, "problems": exc.extra}
        return render_form(request, "import.html", context, state)
    return render(request, "import.html", {"report": report, "filename": filename})


@routes.get("/admin/export")
async def export(request: web.Request) -> web.Response:
    session = need(request, "export")
    data = await svc(request).export_archive(session.identity())
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={"Content-Disposition": 'attachment; filename="inflow-content.zip"'},
    )
