"""The OpenAPI 3.1 document. tests/test_openapi.py checks it against the registered routes."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server.admin.bulk_api import bulk_paths
from server.admin.openapi import admin_paths
from server.admin.templates_api import template_paths
from server.admin.transcripts import transcript_paths
from server.admin.usage import usage_paths
from server.analytics.openapi_paths import analytics_paths
from server.health.api import health_paths
from server.models import AID_TYPES
from server.paths.admin_api import path_admin_paths
from server.paths.learner_api import learner_paths
from server.peer.page import page_paths
from server.peer.pairings_api import pairing_paths
from server.peer.questions_api import question_paths
from server.peer.recs_api import rec_paths
from server.peer.tips_api import tips_paths
from server.permissions import describe, roles_for
from server.queue.api import queue_paths
from server.schemas import components
from server.security import public
from server.sources.api import source_paths

PROBLEM = {"$ref": "#/components/responses/Problem"}
BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

AID_ITEM = {"$ref": "#/components/schemas/SuggestedAid"}
MENTOR_ITEM = {"$ref": "#/components/schemas/SuggestedMentor"}


def _json(schema: dict[str, Any], desc: str = "OK") -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): PROBLEM for c in codes}


# Routes outside the admin API and the operation of server/permissions.py each performs (the admin
# entries name theirs in server/admin/openapi.py). tests/test_permissions.py checks both against
# the handlers' own marks.
OPERATIONS: dict[tuple[str, str], str] = {
    ("/api/v1/suggest", "post"): "suggest",
    ("/api/v1/search", "get"): "search",
    ("/api/v1/aids/{aid_id}", "get"): "aid.view",
    ("/api/v1/rules", "get"): "rules.read",
    ("/api/v1/feedback", "post"): "feedback",
    ("/api/v1/events", "post"): "events",
    ("/api/v1/admin/analytics/{report}", "get"): "analytics.read",
    ("/api/v1/admin/analytics/{report}/{table}.csv", "get"): "analytics.read",
    ("/admin/analytics", "get"): "analytics.read",
    ("/admin/analytics/{report}/{table}.csv", "get"): "analytics.read",
}


def with_permissions(paths: dict[str, Any]) -> dict[str, Any]:
    """Write each operation's roles from the permission table: `x-operation`,
    `x-required-roles` and a "Roles: ..." sentence in the description."""
    for path, methods in paths.items():
        for method, op in methods.items():
            name = op.get("x-operation") or OPERATIONS.get((path, method))
            if name is None:
                continue
            op["x-operation"] = name
            op["x-required-roles"] = sorted(roles_for(name))
            sentence = f"Roles: {describe(name)}."
            description = op.get("description", "")
            if not description.startswith("Roles:"):
                op["description"] = f"{sentence} {description}".strip()
    return paths


def document() -> dict[str, Any]:
    doc = _document()
    with_permissions(doc["paths"])
    return doc


def _document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Inflow API",
            "version": "1.0.0",
            "description": "Job aids for the page a learner is on. Errors are RFC 9457 "
            "problem+json bodies.",
        },
        "components": {
            "schemas": components(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT (Keycloak access token)",
                }
            },
            "responses": {
                "Problem": {
                    "description": "Problem",
                    "content": {
                        "application/problem+json": {
                            "schema": {
                                "type": "object",
                                "required": ["type", "title", "status", "detail"],
                                "properties": {
                                    "type": {"type": "string"},
                                    "title": {"type": "string"},
                                    "status": {"type": "integer"},
                                    "detail": {"type": "string"},
                                    "request_id": {
                                        "type": "string",
                                        "description": "The request's id (server/logs.py), "
                                        "also in the X-Request-Id header: quote it to find "
                                        "the request in the server's log.",
                                    },
                                },
                            }
                        }
                    },
                }
            },
        },
        "security": BEARER,
        "paths": {
            **admin_paths(),
            **usage_paths(),
            **template_paths(),
            **transcript_paths(),
            **bulk_paths(),
            **pairing_paths(),
            **tips_paths(),
            **page_paths(),
            **question_paths(),
            **rec_paths(),
            **health_paths(),
            **source_paths(),
            **queue_paths(),
            **path_admin_paths(),
            **learner_paths(),
            "/api/v1/suggest": {
                "post": {
                    "summary": "Aids for a page: pinned, then related above a cut-off (no filler), "
                    "and up to three vetted peer mentors for the app",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/PageRequest"}
                            }
                        },
                    },
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["app", "contexts", "aids", "mentors", "match"],
                                "properties": {
                                    "app": {"type": ["object", "null"]},
                                    "contexts": {"type": "array"},
                                    "match": {"type": ["object", "null"]},
                                    "generation": {"type": "integer"},
                                    "aids": {"type": "array", "items": AID_ITEM},
                                    "no_match": {
                                        "oneOf": [
                                            {"$ref": "#/components/schemas/NoMatch"},
                                            {"type": "null"},
                                        ]
                                    },
                                    "mentors": {
                                        "type": "array",
                                        "maxItems": 3,
                                        "items": MENTOR_ITEM,
                                    },
                                },
                            }
                        ),
                        **_errors(400, 401, 403, 413, 422, 503),  # 503: index rebuilding
                    },
                }
            },
            "/api/v1/search": {
                "get": {
                    "summary": "Full-text search over the aids the caller may see",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 256},
                        },
                        {"name": "app", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "type",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": list(AID_TYPES),
                            },
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 50},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": [
                                    "query",
                                    "total",
                                    "results",
                                    "did_you_mean",
                                    "next_cursor",
                                ],
                                "properties": {
                                    "query": {"type": "string"},
                                    "total": {"type": "integer"},
                                    "matched": {"type": "string", "enum": ["all", "any"]},
                                    "results": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/SearchResult"},
                                    },
                                    "did_you_mean": {"type": ["string", "null"]},
                                    "corrected_from": {
                                        "type": ["string", "null"],
                                        "description": "The query as typed, when it found "
                                        "nothing and these are the results of `query`, its "
                                        "spelling correction",
                                    },
                                    "next_cursor": {"type": ["string", "null"]},
                                },
                            }
                        ),
                        **_errors(400, 401, 403, 422, 503),  # 503: index rebuilding
                    },
                }
            },
            "/api/v1/aids/{aid_id}": {
                "get": {
                    "summary": "One aid with its body as sanitized HTML (ETag, 304)",
                    "parameters": [
                        {
                            "name": "aid_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": _json({"$ref": "#/components/schemas/LearnerAid"}),
                        "304": {"description": "Not modified"},
                        **_errors(401, 403, 404),
                    },
                }
            },
            "/api/v1/rules": {
                "get": {
                    "summary": "Compiled app and context URL rules, for matching in the browser",
                    "responses": {
                        "200": _json(
                            {"type": "object", "required": ["version", "apps", "contexts"]}
                        ),
                        "304": {"description": "Not modified"},
                        **_errors(401, 403),
                    },
                }
            },
            "/api/v1/feedback": {
                "post": {
                    "summary": "Was this aid helpful?",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["aid_id", "helpful"],
                                    "properties": {
                                        "aid_id": {"type": "string", "maxLength": 64},
                                        "helpful": {"type": "boolean"},
                                        "url": {"type": "string", "maxLength": 8192},
                                        "comment": {"type": "string", "maxLength": 2000},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": _json({"type": "object"}, "Recorded"),
                        **_errors(400, 401, 403, 404, 413, 422),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Alive",
                    "security": [],
                    "responses": {"200": _json({"type": "object"})},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Database, index and identity keys ready",
                    "security": [],
                    "responses": {
                        "200": _json({"type": "object"}),
                        "503": _json({"type": "object"}, "Not ready"),
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": _json({"type": "object"})},
                }
            },
            **analytics_paths(),
        },
    }


@public
async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(document())


def add_openapi_route(app: web.Application) -> None:
    app.router.add_get("/api/v1/openapi.json", openapi_json)
