"""Opaque cursors for keyset pagination, one format for every list of the API.

A cursor is URL-safe base64 of a small JSON object; the server never trusts what it decodes:
anything it did not give out is a 400.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from server.errors import BadRequest


def encode_payload(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def decode_payload(
    cursor: str, message: str = "The cursor is not one this server gave out."
) -> Any:
    """The decoded JSON (any shape: the caller checks it), or BadRequest."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as exc:
        raise BadRequest(message, parameter="cursor") from exc


def encode_cursor(after: str | int) -> str:
    return encode_payload({"after": after})


def decode_cursor(cursor: str | None) -> Any:
    """The `after` key a cursor holds (a str or int), None without a cursor."""
    if not cursor:
        return None
    data = decode_payload(cursor)
    after = data.get("after") if isinstance(data, dict) else None
    if not isinstance(after, str | int) or isinstance(after, bool):
        raise BadRequest("The cursor is not one this server gave out.", parameter="cursor")
    return after


def page_by_id(items: list[Any], key: Callable[[Any], str], cursor: str | None, limit: int) -> Any:
    """Keyset pagination over items sorted by `key`: (page, next_cursor)."""
    after = decode_cursor(cursor)
    if after is not None:
        items = [i for i in items if key(i) > str(after)]
    page = items[:limit]
    more = len(items) > limit
    return page, (encode_cursor(key(page[-1])) if more and page else None)
