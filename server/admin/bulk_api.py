"""Bulk work in the admin API: many aids at once, and a CSV of URL-to-aid mappings.

POST /api/v1/admin/aids/bulk               (aid.bulk; re-mapping also mapping.write; ?dry_run=true)
POST /api/v1/admin/mappings/import         (mapping.import; text/csv; ?dry_run=true)

The operations are server/admin/bulk.py and server/admin/mappings.py; docs/api.md describes them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import keys
from server.admin.api import caller, resource_body
from server.admin.bulk import MAX_BULK, BulkAids, BulkOps, parse_bulk
from server.admin.mappings import MAX_ROWS, MAX_URL_CHARS, MappingOps
from server.admin.openapi import _ok, _op, _param
from server.api.validation import known_query
from server.body import read_body
from server.errors import UnsupportedMediaType, ValidationFailed
from server.models import adapter
from server.responses import json_response
from server.schemas import REF, _array_limits
from server.security import requires_op

routes = web.RouteTableDef()
PREFIX = "/api/v1/admin"
CSV_TYPES = frozenset({"text/csv", "application/csv"})
TRUE, FALSE = frozenset({"1", "true", "yes"}), frozenset({"", "0", "false", "no"})


def _config(request: web.Request) -> tuple[Any, Any, Any]:
    app = request.app
    return app[keys.SETTINGS], app[keys.LIBRARY], app[keys.SUGGESTER]


@routes.post(f"{PREFIX}/aids/bulk")
@requires_op("aid.bulk")
async def bulk_aids(request: web.Request) -> web.Response:
    dry_run = _dry_run(request)
    body = parse_bulk(await resource_body(request))
    ops = BulkOps(*_config(request))
    if dry_run:  # what would change (the console's confirmation), nothing written
        return json_response(ops.dry_run(caller(request), body), no_store=True)
    result = await ops.bulk_aids(caller(request), body)
    return json_response(result, no_store=True)


def _dry_run(request: web.Request) -> bool:
    """The `dry_run` query flag; any other query parameter is refused."""
    known_query(request, {"dry_run"})
    return dry_run_flag(request.query.get("dry_run"))


def dry_run_flag(value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValidationFailed("'dry_run' must be true or false.", fields=["dry_run"])


@routes.post(f"{PREFIX}/mappings/import")
@requires_op("mapping.import")
async def import_mappings(request: web.Request) -> web.Response:
    dry_run = _dry_run(request)
    if request.content_type not in CSV_TYPES:
        raise UnsupportedMediaType("Send the CSV as the raw body with Content-Type text/csv.")
    data = await read_body(request, request.app[keys.SETTINGS].admin_max_upload_bytes)
    report = await MappingOps(*_config(request)).import_mappings(
        caller(request), data, dry_run=dry_run
    )
    return json_response(report, no_store=True)


def bulk_paths() -> dict[str, Any]:
    """This module's part of the OpenAPI document (merged by server/openapi.py); the bulk body's
    schema comes from its declaration (BulkAids)."""
    body = _array_limits(adapter(BulkAids).json_schema(mode="validation", ref_template=REF))
    body.pop("$defs", None)
    row = {
        "type": "object",
        "required": ["row", "url", "aid", "app", "context", "action"],
        "properties": {
            "row": {"type": "integer"},
            "url": {"type": "string"},
            "aid": {"type": "string"},
            "app": {"type": "string"},
            "context": {"type": "string"},
            "context_name": {"type": "string"},
            "rule": {"type": "string", "description": "The new context's rule (create)"},
            "action": {"type": "string", "enum": ["pin", "create", "unchanged"]},
        },
    }
    report = {
        "type": "object",
        "required": ["dry_run", "applied", "summary", "rows", "contexts_created"],
        "properties": {
            "dry_run": {"type": "boolean"},
            "applied": {"type": "boolean"},
            "summary": {"type": "object", "additionalProperties": {"type": "integer"}},
            "rows": {"type": "array", "items": row},
            "contexts_created": {"type": "array", "items": {"type": "object"}},
        },
    }
    changed = {
        "type": "object",
        "required": ["changed", "unchanged"],
        "properties": {
            "changed": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id", "version", "apps", "tags"],
                    "properties": {
                        "id": {"type": "string"},
                        "version": {"type": "integer"},
                        "apps": {"type": "array", "items": {"type": "string"}},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
            "unchanged": {"type": "array", "items": {"type": "string"}},
        },
    }
    ids = {"type": "array", "items": {"type": "string"}}
    would = {
        "type": "object",
        "description": "?dry_run=true: what would change; nothing is written",
        "required": ["dry_run", "change", "unchanged", "unknown"],
        "properties": {
            "dry_run": {"type": "boolean"},
            "change": ids,
            "unchanged": ids,
            "unknown": ids,
        },
    }
    return {
        f"{PREFIX}/aids/bulk": {
            "post": _op(
                f"Re-map and re-tag up to {MAX_BULK} aids at once: all of them or none",
                "aid.bulk",
                note=" Adding or removing apps also needs the operation mapping.write; a "
                "published aid, aid.publish. Any unknown or not allowed id: nothing changes and "
                "the problem lists every one (`bad_ids`, `errors`). With `dry_run=true` nothing is "
                "written: the answer lists the ids that would change, those already as asked and "
                "the unknown ones, after the same role and app checks.",
                params=[_param("dry_run", "query", False, "boolean")],
                body=body,
                response=_ok(schema={"oneOf": [changed, would]}),
                errors=(400, 401, 403, 413, 422),
            )
        },
        f"{PREFIX}/mappings/import": {
            "post": _op(
                "Import a CSV of URL-to-aid mappings (url,aid[,context][,priority]): pins aids "
                "in the contexts the URLs land in, or new contexts; every row's errors at once",
                "mapping.import",
                note=f" At most {MAX_ROWS} rows, URLs of at most {MAX_URL_CHARS} characters. "
                "A problem's `errors` lists {row, column, message}; nothing is applied then.",
                params=[_param("dry_run", "query", False, "boolean")],
                body={"type": "string"},
                body_type="text/csv",
                response=_ok(schema=report),
                errors=(400, 401, 403, 409, 413, 415, 422),
            )
        },
    }


__all__ = ["bulk_paths", "routes"]
