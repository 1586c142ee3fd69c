"""One JSON response helper for every JSON route (UTF-8 as is, not \\u-escaped)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def json_response(
    data: Any,
    status: int = 200,
    *,
    etag: str | None = None,
    no_store: bool = False,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """`data` as application/json; `etag` sets ETag, `no_store` Cache-Control: no-store."""
    out = dict(headers or {})
    if no_store:
        out["Cache-Control"] = "no-store"
    if etag:
        out["ETag"] = etag
    return web.json_response(data, status=status, headers=out, dumps=_dumps)
