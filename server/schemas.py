"""OpenAPI schemas of the declared resources (server/models.py), collected once as components.

Responses use each declaration's serialization schema (what `dump()` serves, read-only fields
marked `readOnly`); request schemas are derived from them: the same properties (read-only ones
stay, marked, because a client may send back what it read), nothing required that the server sets,
and the input shortcuts the declarations accept (a rule as just its pattern, a context's one
`rule` and its separate `priority`).
"""

from __future__ import annotations

import copy
from typing import Any

from server.admin.rules import RuleWarning
from server.analytics.events import event_schema
from server.models import (
    AID_COMPUTED,
    LEARNER_AID_FIELDS,
    LEARNER_BODIES,
    OPERATION_BODIES,
    Aid,
    App,
    Context,
    Mentor,
    adapter,
)

REF = "#/components/schemas/{model}"
RESOURCES: tuple[type, ...] = (Aid, App, Context, Mentor)
# A new context names its rules, as a list or as its one-rule shorthand.
RULES_REQUIRED: list[dict[str, Any]] = [{"required": ["rules"]}, {"required": ["rule"]}]


def ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _response_schema(cls: type, defs: dict[str, Any]) -> dict[str, Any]:
    schema = adapter(cls).json_schema(mode="serialization", by_alias=True, ref_template=REF)
    defs.update(schema.pop("$defs", {}))
    _array_limits(schema)
    return schema


def _array_limits(node: Any) -> Any:
    """pydantic writes a list's size limit as maxLength when a validator wraps the list; JSON
    Schema calls it maxItems."""
    if isinstance(node, dict):
        if node.get("type") == "array" and "maxLength" in node:
            node["maxItems"] = node.pop("maxLength")
        for value in node.values():
            _array_limits(value)
    elif isinstance(node, list):
        for value in node:
            _array_limits(value)
    return node


def _write(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    props: dict[str, Any] = out.get("properties", {})
    read_only = {k for k, v in props.items() if v.get("readOnly")}
    required = [r for r in out.get("required", []) if r not in read_only]
    if required:
        out["required"] = required
    else:
        out.pop("required", None)
    return out


def _rule_input() -> dict[str, Any]:
    return {
        "oneOf": [
            {"type": "string", "minLength": 1, "description": "A URL rule (docs/url-rules.md)"},
            ref("RuleSpec"),
        ]
    }


def components() -> dict[str, Any]:
    """Every resource schema, responses and requests, for `components.schemas`."""
    defs: dict[str, Any] = {}
    out: dict[str, Any] = {}
    for cls in RESOURCES:
        out[cls.__name__] = _response_schema(cls, defs)
    # computed, read-only parts of the served JSON
    out["Aid"]["properties"].update(copy.deepcopy(AID_COMPUTED))
    # rule warnings served with an app or context just saved or read (server/admin/rules.py)
    out["RuleWarning"] = _response_schema(RuleWarning, defs)
    warnings = {"type": "array", "readOnly": True, "items": ref("RuleWarning")}
    out["App"]["properties"]["warnings"] = copy.deepcopy(warnings)
    out["Context"]["properties"]["warnings"] = copy.deepcopy(warnings)
    out.update({k: _array_limits(v) for k, v in defs.items() if k not in out})
    for cls in RESOURCES:
        out[f"{cls.__name__}Write"] = _write(out[cls.__name__])
    ctx_write = out["ContextWrite"]
    ctx_write["properties"]["rules"] = {
        **ctx_write["properties"]["rules"],
        "items": _rule_input(),
    }
    ctx_write["properties"]["rule"] = {
        **_rule_input(),
        "description": "One rule: the same as `rules` with that rule only (give one of the two)",
    }
    ctx_write["properties"]["priority"] = {
        "type": "integer",
        "minimum": -1000,
        "maximum": 1000,
        "description": "The priority of the rules given as just their pattern",
    }
    # `rules` or its one-rule shorthand `rule`: the request requires neither by name
    ctx_write["required"] = [r for r in ctx_write.get("required", []) if r != "rules"]
    app_write = out["AppWrite"]
    app_write["properties"]["rules"] = {
        **app_write["properties"]["rules"],
        "items": _rule_input(),
    }
    app_write["properties"]["contexts"] = {
        **app_write["properties"]["contexts"],
        "items": {"allOf": [ref("ContextWrite")], "anyOf": RULES_REQUIRED},
    }
    learner = copy.deepcopy(out["Aid"])
    learner["properties"] = {k: learner["properties"][k] for k in LEARNER_AID_FIELDS}
    learner["properties"]["source"] = {"type": ["string", "null"], "description": "http(s) URL"}
    learner["properties"]["body_html"] = {"type": "string", "description": "Sanitized HTML"}
    learner["properties"]["provenance"] = {  # server/sources/provenance.py
        "type": ["object", "null"],
        "description": "The source the aid comes from (null: written in Inflow)",
        "required": ["source_id", "source_name", "kind", "url", "updated_at"],
        "properties": {
            "source_id": {"type": "string"},
            "source_name": {"type": "string"},
            "kind": {"type": "string", "enum": ["feed", "website", "git"]},
            "url": {"type": ["string", "null"]},
            "updated_at": {"type": "string"},
        },
    }
    learner["required"] = [*LEARNER_AID_FIELDS, "body_html", "provenance"]
    learner["description"] = "A published aid as learners see it (the Aid declaration's fields)"
    out["LearnerAid"] = learner
    for cls in (*OPERATION_BODIES, *LEARNER_BODIES):  # bodies of operations (pins, suggest, ...)
        body = adapter(cls).json_schema(mode="validation", ref_template=REF)
        out.update(body.pop("$defs", {}))
        out[cls.__name__] = _array_limits(body)
    event = event_schema(REF)  # analytics events, declared in server/analytics/events.py
    out.update(event.pop("$defs", {}))
    out["Event"] = event
    return out


def listing(name: str, key: str) -> dict[str, Any]:
    """A page of a list: `{key: [...], next_cursor}`."""
    return {
        "type": "object",
        "required": [key, "next_cursor"],
        "additionalProperties": False,
        "properties": {
            key: {"type": "array", "items": ref(name)},
            "next_cursor": {"type": ["string", "null"]},
        },
    }


def requires(schema: dict[str, Any], *names: str) -> dict[str, Any]:
    """A request schema with `names` required (e.g. the id and title of a new aid)."""
    return {"allOf": [schema], "required": list(names)}
