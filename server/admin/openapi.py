"""OpenAPI entries for the admin API (merged into server/openapi.py's document)."""

from __future__ import annotations

import copy
from typing import Any

from pydantic.json_schema import JsonSchemaMode

from server.admin.tester import RuleTestRequest, RuleTestResult
from server.models import adapter
from server.permissions import describe, roles_for
from server.schemas import RULES_REQUIRED, listing, ref, requires

P = "/api/v1/admin"
PROBLEM = {"$ref": "#/components/responses/Problem"}
OBJ: dict[str, Any] = {"type": "object"}


def _ok(
    desc: str = "OK", schema: dict[str, Any] | None = None, etag: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": desc,
        "content": {"application/json": {"schema": schema or OBJ}},
    }
    if etag:
        out["headers"] = {"ETag": {"schema": {"type": "string"}}}
    return out


def _param(
    name: str, where: str = "path", required: bool = True, kind: str = "string"
) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": {"type": kind}}


IF_MATCH = {
    "name": "If-Match",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "description": "The ETag you read; missing: 428, stale: 412",
}
PAGE = [_param("limit", "query", False, "integer"), _param("cursor", "query", False)]


def _op(
    summary: str,
    operation: str,
    *,
    params: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    body_type: str = "application/json",
    ok: str = "200",
    etag: bool = False,
    write: bool = False,
    errors: tuple[int, ...] = (400, 401, 403, 404, 422),
    response: dict[str, Any] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """One operation; its roles come from the permission table (server/permissions.py)."""
    op: dict[str, Any] = {
        "summary": summary,
        "description": f"Roles: {describe(operation)}.{note}",
        "tags": ["admin"],
        "x-operation": operation,
        "x-required-roles": sorted(roles_for(operation)),
        "parameters": list(params or []) + ([IF_MATCH] if write else []),
        "responses": {ok: response or _ok(etag=etag)},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {body_type: {"schema": body}}}
    codes = set(errors) | ({412, 428} if write else set())
    op["responses"].update({str(c): PROBLEM for c in sorted(codes)})
    return op


# The rule for aids a source made (server/admin/aids.py, MAPPING_FIELDS).
SOURCE_OWNED = (
    " An aid made by a source (its `origin` set) changes here only in its apps, tags, audience,"
    " owner, review_interval_days and status: anything else is a 409 (change it at the source)."
)

# Bodies come from the declarations (server/models.py via server/schemas.py).
AID = ref("Aid")
APP = ref("App")
CONTEXT = ref("Context")
MENTOR = ref("Mentor")
AID_WRITE = ref("AidWrite")
APP_WRITE = ref("AppWrite")
CONTEXT_WRITE = ref("ContextWrite")
MENTOR_WRITE = ref("MentorWrite")
APP_ID = _param("app_id")
CTX_ID = _param("ctx_id")
AID_ID = _param("aid_id")
MENTOR_ID = _param("mentor_id")


def declared_schema(cls: type, mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
    """A declaration's JSON Schema with its nested declarations written in place (no $refs)."""
    schema = adapter(cls).json_schema(mode=mode)
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(copy.deepcopy(defs[ref.removeprefix("#/$defs/")]))
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    out: dict[str, Any] = inline(schema)
    return out


def plain_schema(cls: type, mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
    """`declared_schema` without the declaration's title (a body or an answer in a path)."""
    schema = declared_schema(cls, mode)
    schema.pop("title", None)
    return schema


def list_schema(key: str, item: dict[str, Any]) -> dict[str, Any]:
    """An answer `{key: [item, ...]}`."""
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array", "items": item}},
    }


def admin_paths() -> dict[str, Any]:
    return {
        f"{P}/apps": {
            "get": _op(
                "List apps with rules and contexts",
                "app.read",
                params=PAGE,
                response=_ok(schema=listing("App", "apps")),
            ),
            "post": _op(
                "Create an app (answer lists rule warnings)",
                "app.write",
                body=requires(APP_WRITE, "id", "name"),
                ok="201",
                response=_ok("Created", APP, etag=True),
                errors=(400, 401, 403, 409, 422),
            ),
        },
        f"{P}/apps/{{app_id}}": {
            "get": _op(
                "One app (ETag) with rule warnings",
                "app.read",
                params=[APP_ID],
                response=_ok(schema=APP, etag=True),
            ),
            "put": _op(
                "Replace name, description, rules (and contexts when sent)",
                "app.write",
                params=[APP_ID],
                body=requires(APP_WRITE, "name"),
                response=_ok(schema=APP, etag=True),
                write=True,
            ),
            "delete": _op(
                "Delete an app and its contexts; mapped aids are unmapped",
                "app.write",
                params=[APP_ID],
                write=True,
            ),
        },
        f"{P}/apps/{{app_id}}/contexts": {
            "post": _op(
                "Add a context (page) to an app",
                "context.write",
                params=[APP_ID],
                body={
                    **requires(CONTEXT_WRITE, "id", "name"),
                    "anyOf": RULES_REQUIRED,
                },
                ok="201",
                response=_ok("Created", CONTEXT, etag=True),
                errors=(400, 401, 403, 404, 409, 422),
            )
        },
        f"{P}/contexts": {
            "get": _op(
                "List contexts",
                "app.read",
                params=[_param("app", "query", False), *PAGE],
                response=_ok(schema=listing("Context", "contexts")),
            )
        },
        f"{P}/contexts/{{ctx_id}}": {
            "get": _op(
                "One context (ETag)",
                "app.read",
                params=[CTX_ID],
                response=_ok(schema=CONTEXT, etag=True),
            ),
            "patch": _op(
                "Change a context (fields not sent keep their values)",
                "context.write",
                params=[CTX_ID],
                body=CONTEXT_WRITE,
                response=_ok(schema=CONTEXT, etag=True),
                write=True,
            ),
            "delete": _op("Delete a context", "context.write", params=[CTX_ID], write=True),
        },
        f"{P}/contexts/{{ctx_id}}/aids": {
            "put": _op(
                "Set the ordered list of pinned aids",
                "context.write",
                params=[CTX_ID],
                body=ref("Pins"),
                response=_ok(schema=CONTEXT, etag=True),
                write=True,
            )
        },
        f"{P}/aids": {
            "get": _op(
                "List aids (filters: app, type, status, owner, stale, q)",
                "aid.read",
                params=[
                    *(
                        _param(n, "query", False)
                        for n in ("app", "type", "status", "owner", "stale", "q")
                    ),
                    *PAGE,
                ],
                response=_ok(schema=listing("Aid", "aids")),
            ),
            "post": _op(
                "Create an aid (draft unless a publisher says otherwise)",
                "aid.create",
                body=requires(AID_WRITE, "id", "title"),
                ok="201",
                response=_ok("Created", AID, etag=True),
                errors=(400, 401, 403, 409, 422),
            ),
        },
        f"{P}/aids/{{aid_id}}": {
            "get": _op(
                "One aid with its body (ETag)",
                "aid.read",
                params=[AID_ID],
                response=_ok(schema=AID, etag=True),
            ),
            "put": _op(
                "Replace an aid (a new version)",
                "aid.update",
                params=[AID_ID],
                body=requires(AID_WRITE, "title"),
                response=_ok(schema=AID, etag=True),
                write=True,
                errors=(400, 401, 403, 404, 409, 422),
                note=SOURCE_OWNED,
            ),
            "patch": _op(
                "Change some fields of an aid (a new version)",
                "aid.update",
                params=[AID_ID],
                body=AID_WRITE,
                response=_ok(schema=AID, etag=True),
                write=True,
                errors=(400, 401, 403, 404, 409, 422),
                note=SOURCE_OWNED,
            ),
            "delete": _op(
                "Delete an aid",
                "aid.delete",
                params=[AID_ID],
                write=True,
                errors=(400, 401, 403, 404, 409, 422),
                note=" An aid made by a source (its origin set) is archived, not deleted (409).",
            ),
        },
        f"{P}/aids/{{aid_id}}/transitions": {
            "post": _op(
                "Workflow step: draft, review, published, archived",
                "aid.transition",
                note=" Publishing steps (to or from published, archiving from review) also need "
                "the operation aid.publish (" + describe("aid.publish") + ").",
                params=[AID_ID],
                body=ref("Transition"),
                response=_ok(schema=AID, etag=True),
                write=True,
                errors=(400, 401, 403, 404, 409, 422),
            )
        },
        f"{P}/aids/{{aid_id}}/versions": {
            "get": _op("Every saved version, newest first", "aid.read", params=[AID_ID])
        },
        f"{P}/aids/{{aid_id}}/versions/{{version}}": {
            "get": _op(
                "One version's fields",
                "aid.read",
                params=[AID_ID, _param("version", kind="integer")],
            )
        },
        f"{P}/aids/{{aid_id}}/diff": {
            "get": _op(
                "Unified diff between two versions",
                "aid.read",
                params=[
                    AID_ID,
                    _param("from", "query", True, "integer"),
                    _param("to", "query", True, "integer"),
                ],
            )
        },
        f"{P}/aids/{{aid_id}}/rollback": {
            "post": _op(
                "Save an old version's content as a new version (status unchanged)",
                "aid.update",
                params=[AID_ID],
                body=ref("Rollback"),
                response=_ok(schema=AID, etag=True),
                write=True,
                errors=(400, 401, 403, 404, 409, 422),
                note=SOURCE_OWNED,
            )
        },
        f"{P}/mappings": {"get": _op("Aids per app and pinned aids per context", "app.read")},
        f"{P}/mappings/{{aid_id}}": {
            "put": _op(
                "Where an aid shows: its apps and the contexts it is pinned in",
                "mapping.write",
                params=[AID_ID],
                body=ref("Mapping"),
                etag=True,
                write=True,
            )
        },
        f"{P}/mentors": {
            "get": _op(
                "List mentors (filters: app, vetted, active, q)",
                "mentor.read",
                params=[
                    *(_param(n, "query", False) for n in ("app", "vetted", "active", "q")),
                    *PAGE,
                ],
                response=_ok(schema=listing("Mentor", "mentors")),
            ),
            "post": _op(
                "Create a mentor (vetted: true vets them as the caller, today)",
                "mentor.write",
                body=requires(MENTOR_WRITE, "id", "name", "contact"),
                ok="201",
                errors=(400, 401, 403, 409, 422),
                response=_ok("Created", MENTOR, etag=True),
            ),
        },
        f"{P}/mentors/{{mentor_id}}": {
            "get": _op(
                "One mentor (ETag)",
                "mentor.read",
                params=[MENTOR_ID],
                response=_ok(schema=MENTOR, etag=True),
            ),
            "put": _op(
                "Replace a mentor (fields not sent take their defaults; vetting stays unless sent)",
                "mentor.write",
                params=[MENTOR_ID],
                body=requires(MENTOR_WRITE, "name", "contact"),
                write=True,
                response=_ok(schema=MENTOR, etag=True),
            ),
            "patch": _op(
                'Change some fields of a mentor; {"vetted": true|false} vets or unvets',
                "mentor.write",
                note=" Changing `vetted` also needs the operation mentor.vet.",
                params=[MENTOR_ID],
                body=MENTOR_WRITE,
                write=True,
                response=_ok(schema=MENTOR, etag=True),
            ),
            "delete": _op("Delete a mentor", "mentor.write", params=[MENTOR_ID], write=True),
        },
        f"{P}/rules/test": {
            "post": _op(
                "Rule tester: every rule tried and why it matched or not, the winning app, the "
                "contexts in effect and why, the sidebar's aids for a role and groups (what "
                "suggest answers them), and the app's rule warnings",
                "rules.test",
                body=declared_schema(RuleTestRequest, "validation"),
                response=_ok(schema=declared_schema(RuleTestResult)),
            )
        },
        f"{P}/preview": {
            "post": _op(
                "Markdown to sanitized HTML",
                "preview",
                body=ref("Preview"),
            )
        },
        f"{P}/import": {
            "post": _op(
                "Import a zip or tar (raw body; application/zip, application/x-tar, "
                "application/gzip or application/octet-stream): checked, validated, all or nothing",
                "import",
                params=[_param("filename", "query", False)],
                body={"type": "string", "format": "binary"},
                body_type="application/octet-stream",
                errors=(400, 401, 403, 409, 413, 415, 422),
            )
        },
        f"{P}/export": {
            "get": _op(
                "All content as a zip in the content format",
                "export",
                response={
                    "description": "Zip archive",
                    "content": {"application/zip": {"schema": {"type": "string"}}},
                },
                errors=(401, 403),
            )
        },
        f"{P}/audit": {
            "get": _op(
                "Audit log, newest first",
                "audit.read",
                params=[
                    *(
                        _param(n, "query", False)
                        for n in ("actor", "action", "target_type", "target_id", "since", "until")
                    ),
                    *PAGE,
                ],
            )
        },
    }
