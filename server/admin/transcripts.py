"""A video aid's transcript in the admin API (docs/transcripts.md).

GET    /api/v1/admin/aids/{aid_id}/transcript  (aid.read): JSON {aid_id, format, cues, duration,
       text}, or the file itself when Accept asks for text/vtt or application/x-subrip
PUT    /api/v1/admin/aids/{aid_id}/transcript  (transcript.write): the file as text/vtt or
       application/x-subrip (text/plain too), or JSON {"text": ...}; If-Match: the aid's ETag
DELETE /api/v1/admin/aids/{aid_id}/transcript  (transcript.write): If-Match: the aid's ETag

The transcript is a field of the aid (`Aid.transcript`): a change is an ordinary aid update
(AdminService.update_aid: a new version, the audit log, the index), so the rules of aid writes
apply (a published aid needs a reviewer; a source-owned aid is changed at its source). A file that
does not parse is a 422 naming the line (index/transcripts.py). This route reads bodies up to
`MAX_BYTES`, more than the API's default limit: a long video's captions are hundreds of KB.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from index.transcripts import Cue, TranscriptError, parse_transcript
from server import keys
from server.admin.common import aid_etag
from server.admin.openapi import AID_ID, _ok, _op
from server.admin.service import AdminService
from server.body import parse_json, read_body
from server.content import transcript_suffix
from server.errors import Forbidden, NotFound, UnsupportedMediaType, ValidationFailed
from server.models import TRANSCRIPT_MAX, Aid
from server.responses import json_response
from server.security import requires_op

routes = web.RouteTableDef()
PATH = "/api/v1/admin/aids/{aid_id}/transcript"
MAX_BYTES = 4 * TRANSCRIPT_MAX + 1024  # UTF-8 takes up to 4 bytes a character
TEXT_TYPES = {
    "text/vtt": "vtt",
    "application/x-subrip": "srt",
    "text/srt": "srt",
    "application/x-srt": "srt",
    "text/plain": "",
}
MEDIA_TYPES = {".vtt": "text/vtt", ".srt": "application/x-subrip"}


def _service(request: web.Request) -> AdminService:
    app = request.app
    return AdminService(app[keys.SETTINGS], app[keys.LIBRARY], app[keys.SUGGESTER])


def transcript_summary(aid: Aid, cues: list[Cue] | None = None) -> dict[str, Any]:
    """What the API and the console say about an aid's transcript (cues parsed when not given)."""
    if not aid.transcript:
        return {"aid_id": aid.id, "format": None, "cues": 0, "duration": 0.0}
    if cues is None:
        try:
            cues = parse_transcript(aid.transcript)
        except TranscriptError:  # stored before a stricter parser: shown, not searchable
            cues = []
    return {
        "aid_id": aid.id,
        "format": transcript_suffix(aid.transcript).lstrip("."),
        "cues": len(cues),
        "duration": round(max((c.end for c in cues), default=0.0), 3),
    }


async def parse_off_loop(text: str) -> list[Cue]:
    """Parse in a worker thread (500k characters take tens of ms); a 422 naming the line."""
    try:
        return await asyncio.get_running_loop().run_in_executor(None, parse_transcript, text)
    except TranscriptError as exc:
        raise ValidationFailed(
            f"The transcript is not valid WebVTT or SRT: {exc}",
            fields=["transcript"],
            errors=[{"field": "transcript", "message": str(exc)}],
            line=exc.line,
        ) from exc


async def _text_of(request: web.Request) -> str:
    raw = await read_body(request, MAX_BYTES)
    kind = request.content_type
    if kind == "application/json":
        data = parse_json(raw)
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise ValidationFailed(
                'Send {"text": "<WebVTT or SRT>"} as JSON, or the file itself.', fields=["text"]
            )
        text: str = data["text"]
    elif kind in TEXT_TYPES:
        try:
            text = raw.decode(request.charset or "utf-8")
        except (UnicodeDecodeError, LookupError):
            raise ValidationFailed("The transcript is not UTF-8 text.", fields=["text"]) from None
    else:
        raise UnsupportedMediaType(
            f"Send the transcript as text/vtt or application/x-subrip (or JSON), not {kind}.",
            accepted=sorted([*TEXT_TYPES, "application/json"]),
        )
    if not text.strip():
        raise ValidationFailed(
            "The transcript is empty; DELETE the transcript to remove it.", fields=["text"]
        )
    return text


def _caller(request: web.Request) -> Any:
    identity = request[keys.IDENTITY]
    if identity is None:  # the middleware never lets an anonymous caller this far
        raise Forbidden("Sign in first.")
    return identity


@routes.get(PATH)
@requires_op("aid.read")
async def get_transcript(request: web.Request) -> web.StreamResponse:
    aid = await _service(request).get_aid(request.match_info["aid_id"])
    if not aid.transcript:
        raise NotFound(f"The aid {aid.id!r} has no transcript.")
    suffix = transcript_suffix(aid.transcript)
    accept = request.headers.get("Accept", "")
    if "text/vtt" in accept or "subrip" in accept:
        return web.Response(
            text=aid.transcript,
            content_type=MEDIA_TYPES[suffix],
            headers={
                "ETag": aid_etag(aid),
                "Cache-Control": "no-store",
                "Content-Disposition": f'attachment; filename="{aid.id}{suffix}"',
            },
        )
    loop = asyncio.get_running_loop()
    summary = await loop.run_in_executor(None, transcript_summary, aid)
    return json_response({**summary, "text": aid.transcript}, etag=aid_etag(aid), no_store=True)


@routes.put(PATH)
@requires_op("transcript.write")
async def put_transcript(request: web.Request) -> web.Response:
    aid_id = request.match_info["aid_id"]
    service = _service(request)
    await service.get_aid(aid_id)  # an unknown aid is a 404 before the body is read
    text = await _text_of(request)
    cues = await parse_off_loop(text)
    aid = await service.update_aid(
        _caller(request),
        aid_id,
        {"transcript": text},
        request.headers.get("If-Match"),
        partial=True,
        action="aid.transcript",
    )
    return json_response(transcript_summary(aid, cues), etag=aid_etag(aid), no_store=True)


@routes.delete(PATH)
@requires_op("transcript.write")
async def delete_transcript(request: web.Request) -> web.Response:
    aid_id = request.match_info["aid_id"]
    service = _service(request)
    if not (await service.get_aid(aid_id)).transcript:
        raise NotFound(f"The aid {aid_id!r} has no transcript.")
    aid = await service.update_aid(
        _caller(request),
        aid_id,
        {"transcript": ""},
        request.headers.get("If-Match"),
        partial=True,
        action="aid.transcript",
    )
    return json_response(transcript_summary(aid), etag=aid_etag(aid), no_store=True)


def setup_transcripts(app: web.Application) -> None:
    """Serve the transcript routes (called by server/app.py)."""
    app.router.add_routes(routes)


def transcript_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (merged by server/openapi.py)."""
    summary = {
        "type": "object",
        "required": ["aid_id", "format", "cues", "duration"],
        "properties": {
            "aid_id": {"type": "string"},
            "format": {"type": ["string", "null"], "enum": ["vtt", "srt", None]},
            "cues": {"type": "integer", "description": "Cues with text"},
            "duration": {"type": "number", "description": "End of the last cue, seconds"},
            "text": {"type": "string", "description": "The transcript as stored (GET only)"},
        },
    }
    text = {"type": "string", "maxLength": TRANSCRIPT_MAX}
    body = {
        "type": "object",
        "required": ["text"],
        "properties": {"text": text},
    }
    put = _op(
        "Set or replace a video aid's transcript (a new aid version)",
        "transcript.write",
        params=[AID_ID],
        body=body,
        response=_ok(schema=summary, etag=True),
        write=True,
        errors=(400, 401, 403, 404, 413, 415, 422),
        note=" The body may also be the file itself, as text/vtt or application/x-subrip; "
        "a file that does not parse is a 422 naming its line (`line`).",
    )
    put["requestBody"]["content"]["text/vtt"] = {"schema": text}
    put["requestBody"]["content"]["application/x-subrip"] = {"schema": text}
    get = _op(
        "A video aid's transcript: its format, cue count and text (ETag: the aid's)",
        "aid.read",
        params=[AID_ID],
        response=_ok(schema=summary, etag=True),
        errors=(401, 403, 404),
        note=" With Accept: text/vtt or application/x-subrip, the file itself.",
    )
    get["responses"]["200"]["content"].update(
        {"text/vtt": {"schema": text}, "application/x-subrip": {"schema": text}}
    )
    return {
        "/api/v1/admin/aids/{aid_id}/transcript": {
            "get": get,
            "put": put,
            "delete": _op(
                "Remove a video aid's transcript (a new aid version)",
                "transcript.write",
                params=[AID_ID],
                response=_ok(schema=summary, etag=True),
                write=True,
                errors=(401, 403, 404, 422),
            ),
        }
    }
