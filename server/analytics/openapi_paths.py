"""The analytics routes' part of the OpenAPI document (merged by server/openapi.py)."""

from __future__ import annotations

from typing import Any

PROBLEM = {"$ref": "#/components/responses/Problem"}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): PROBLEM for c in codes}


def _filters() -> list[dict[str, Any]]:
    return [
        {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"}},
        {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"}},
        {"name": "app", "in": "query", "schema": {"type": "string"}},
    ]


def _path_params(*names: str) -> list[dict[str, Any]]:
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]


REPORT = {"type": "string", "enum": ["adoption", "content", "gaps", "peer"]}

# One event: the declaration's schema (server/analytics/events.py), in components.schemas.Event.
EVENT = {"$ref": "#/components/schemas/Event"}


def analytics_paths() -> dict[str, Any]:
    csv = {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}}
    report_json = {
        "description": "Tables of figures",
        "content": {
            "application/json": {
                "schema": {"type": "object", "required": ["report", "filters", "tables"]}
            }
        },
    }
    return {
        "/api/v1/events": {
            "post": {
                "summary": "Record a batch of analytics events (all or nothing; ids stored once)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["events"],
                                "properties": {
                                    "events": {
                                        "type": "array",
                                        "minItems": 1,
                                        "maxItems": 500,
                                        "items": EVENT,
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Committed",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["received", "accepted", "duplicates"],
                                    "properties": {
                                        "received": {"type": "integer"},
                                        "accepted": {"type": "integer"},
                                        "duplicates": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    **_errors(400, 401, 403, 413, 422),
                },
            }
        },
        "/api/v1/admin/analytics/{report}": {
            "get": {
                "summary": "Dashboard figures as JSON (admin)",
                "parameters": [
                    {"name": "report", "in": "path", "required": True, "schema": REPORT},
                    *_filters(),
                ],
                "responses": {"200": report_json, **_errors(401, 403, 404, 422)},
            }
        },
        "/api/v1/analytics/peer": {
            "get": {
                "summary": "The peer loop's figures: tips, questions, mentor load, answers "
                "turned into aids (docs/peer.md, Analytics)",
                "x-operation": "peer.analytics",
                "parameters": _filters(),
                "responses": {"200": report_json, **_errors(401, 403, 422)},
            }
        },
        "/api/v1/admin/analytics/{report}/{table}.csv": {
            "get": {
                "summary": "One dashboard table as CSV (admin)",
                "parameters": [*_path_params("report", "table"), *_filters()],
                "responses": {"200": csv, **_errors(401, 403, 404, 422)},
            }
        },
        "/admin/analytics": {
            "get": {
                "summary": "The analytics dashboard page (admin; console session or bearer)",
                "parameters": _filters(),
                "responses": {
                    "200": {"description": "HTML", "content": {"text/html": {}}},
                    **_errors(401, 403, 422),
                },
            }
        },
        "/admin/analytics/{report}/{table}.csv": {
            "get": {
                "summary": "CSV export of a dashboard table (admin; console session or bearer)",
                "parameters": [*_path_params("report", "table"), *_filters()],
                "responses": {"200": csv, **_errors(401, 403, 404, 422)},
            }
        },
    }
