"""Request bodies: the one size-limited reader and the one JSON parser every route uses.

`read_body(request, limit)` reads the body at most once per request and keeps the bytes on the
request, so a middleware (the debug request log) and the handler after it see the same bytes. It
never trusts Content-Length alone: a chunked or lying body is cut off at `limit` while streaming.
(aiohttp caches `request.read()`, but not `request.content`: a handler that streamed
`request.content` after a middleware had read it got an empty body, and an archive import answered
422 "empty file". Everything goes through here now.)

`parse_json(raw)` is `json.loads` plus the checks hostile input needs: at most `MAX_DEPTH` levels
of nesting (deeper made json.loads raise RecursionError: a 500), no lone surrogates in any string
or key (`"\\ud800"` is valid JSON text but not Unicode; it broke SQLite, the index and json.dumps
further down), no NaN or Infinity (JSON has neither; Python would echo them back as invalid JSON).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from server import keys
from server.errors import BadRequest, InvalidJson, PayloadTooLarge

MAX_DEPTH = 64
CHUNK = 64 * 1024


async def read_body(request: web.Request, limit: int | None = None) -> bytes:
    """The whole body, refusing more than `limit` bytes (default: the app's client_max_size).

    Reads the stream once and keeps the bytes on the request; later calls (with any limit) get
    the same bytes, or 413 if they are over that call's limit.
    """
    limit = request.client_max_size if limit is None else limit
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"Request body too large: {length} bytes; the limit is {limit}.")
    body = request.get(keys.REQUEST_BODY)
    if body is None:
        if request.body_exists and not request.can_read_body:
            # Someone called aiohttp's request.read()/json()/post(): it kept the bytes.
            body = await request.read()
        else:
            body = await _stream(request, limit)
        request[keys.REQUEST_BODY] = body
    if len(body) > limit:
        raise PayloadTooLarge(f"Request body too large: over the limit of {limit} bytes.")
    return body


async def _stream(request: web.Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body too large: over the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(raw: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a JSON text, or raise InvalidJson (a 400 problem) naming what is wrong."""
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:
        raise InvalidJson(f"The JSON is nested deeper than {max_depth} levels.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJson(f"The body is not valid JSON: {exc}") from exc
    check_json(data, max_depth)
    return data


def check_json(data: Any, max_depth: int = MAX_DEPTH) -> None:
    """Depth and lone-surrogate checks on parsed JSON, without recursion (deep input is cheap)."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, str):
            _check_text(value, path or "the body")
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise InvalidJson(
                    f"The JSON is nested deeper than {max_depth} levels (at {path or 'the top'})."
                )
            if isinstance(value, dict):
                for key, item in value.items():
                    where = f"{path}.{key}" if path else str(key)
                    _check_text(key, f"a key in {path or 'the body'}")
                    stack.append((item, depth + 1, where))
            else:
                stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))


def _check_text(text: str, where: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = where.encode("ascii", "backslashreplace").decode("ascii")
        raise InvalidJson(
            f"{shown} holds a lone surrogate (an unpaired \\ud800-\\udfff escape): "
            "that is not Unicode text.",
            fields=[shown],
        ) from None


async def read_json(request: web.Request, limit: int | None = None) -> Any:
    """A JSON body: Content-Type application/json, within `limit` bytes, parsed by parse_json."""
    if request.content_type != "application/json":
        raise BadRequest("Send the body as JSON with Content-Type: application/json.")
    return parse_json(await read_body(request, limit))


__all__ = ["MAX_DEPTH", "InvalidJson", "check_json", "parse_json", "read_body", "read_json"]
