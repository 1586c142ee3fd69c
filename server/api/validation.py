"""Request-body validation: a JSON object, known fields only, typed, within limits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from server.body import read_json
from server.errors import ValidationFailed


def known_query(
    request: web.BaseRequest | Mapping[str, str], allowed: Iterable[str] = ()
) -> dict[str, str]:
    """The query's parameters (a request's, or a query already read, as the console's forms
    pass); a 422 naming those not in `allowed` (a typo is not ignored). Every API's one check."""
    query = request.query if isinstance(request, web.BaseRequest) else request
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise ValidationFailed(f"Unknown parameter(s): {', '.join(unknown)}.", fields=unknown)
    return {k: query[k] for k in query}


async def json_object(
    request: web.Request, allowed: set[str], required: set[str]
) -> dict[str, Any]:
    data = await read_json(request)  # the app's body limit (413), depth, lone surrogates
    if not isinstance(data, dict):
        raise ValidationFailed("The body must be a JSON object.")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValidationFailed(
            f"Unknown field(s): {', '.join(unknown)}. Allowed: {', '.join(sorted(allowed))}.",
            fields=unknown,
        )
    missing = sorted(required - set(data))
    if missing:
        raise ValidationFailed(f"Missing required field(s): {', '.join(missing)}.", fields=missing)
    return data


def text_field(data: dict[str, Any], name: str, max_len: int, default: str = "") -> str:
    value = data.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValidationFailed(f"'{name}' must be a string.", fields=[name])
    if len(value) > max_len:
        raise ValidationFailed(
            f"'{name}' is {len(value)} characters; the limit is {max_len}.", fields=[name]
        )
    return value


def int_field(value: Any, name: str, lo: int, hi: int, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ValidationFailed(f"'{name}' must be a whole number.", fields=[name]) from None
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValidationFailed(f"'{name}' must be a whole number from {lo} to {hi}.", fields=[name])
    return value


def page_url(value: Any, max_bytes: int) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationFailed("'url' must be the page's URL as a string.", fields=["url"])
    if len(value.encode()) > max_bytes:
        raise ValidationFailed(f"'url' is longer than {max_bytes} bytes.", fields=["url"])
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValidationFailed(f"'url' is not a valid URL: {exc}", fields=["url"]) from exc
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        raise ValidationFailed("'url' must be an absolute http(s) URL.", fields=["url"])
    return value


def string_list(data: dict[str, Any], name: str, max_items: int, max_len: int) -> tuple[str, ...]:
    value = data.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed(f"'{name}' must be a list of strings.", fields=[name])
    if len(value) > max_items:
        raise ValidationFailed(
            f"'{name}' has {len(value)} entries; the limit is {max_items}.", fields=[name]
        )
    for v in value:
        if len(v) > max_len:
            raise ValidationFailed(
                f"An entry of '{name}' is over {max_len} characters.", fields=[name]
            )
    return tuple(value)
