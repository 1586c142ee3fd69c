"""Form field limits (required, maxlength, minlength, min, max, pattern) taken from the resource
declarations in server/models.py, so that no limit is typed in a template and again in a model.

The declarations are read through the JSON Schema pydantic makes of them (the same one the
OpenAPI document shows), so this works for pydantic models and for dataclasses with pydantic
metadata alike. Templates write `{{ limits.aid.title }}` inside an `<input>`: the attributes of
that field. A field the declaration does not know gets none, and the server still checks all.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup
from pydantic import PydanticUserError, TypeAdapter

from server import models

# An HTML pattern is a JavaScript regex with the v flag, anchored: only simple ones carry over.
_SIMPLE_PATTERN = re.compile(r"\^?[\[\]a-zA-Z0-9\\\-{},*+?().|_]+\$?")


class FieldLimits(dict[str, Markup]):
    """field -> its attributes; an unknown field has none (never an error in a template)."""

    def __missing__(self, key: str) -> Markup:
        return Markup("")


def _html_pattern(pattern: str) -> str | None:
    """A Python regex as an HTML `pattern`: anchors dropped, a `-` at either end of a character
    class escaped (the v flag refuses it bare); None when it is not simple enough to carry."""
    if not _SIMPLE_PATTERN.fullmatch(pattern):
        return None
    body = pattern.removeprefix("^").removesuffix("$")
    return body.replace("[-", "[\\-").replace("-]", "\\-]").replace("\\\\-", "\\-")


def _types(prop: Mapping[str, Any]) -> set[str]:
    kind = prop.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    found: set[str] = set()
    for option in prop.get("anyOf", ()):
        if isinstance(option, Mapping):
            found |= _types(option)
    return found


def _attrs(prop: Mapping[str, Any], required: bool) -> Markup:
    """The HTML attributes of one JSON Schema property."""
    parts: list[Markup] = [Markup("required")] if required else []
    kinds = _types(prop)
    if "string" in kinds:
        if isinstance(prop.get("maxLength"), int):
            parts.append(Markup('maxlength="{}"').format(prop["maxLength"]))
        if isinstance(prop.get("minLength"), int) and prop["minLength"] > 0:
            parts.append(Markup('minlength="{}"').format(prop["minLength"]))
        pattern = prop.get("pattern")
        html = _html_pattern(pattern) if isinstance(pattern, str) else None
        if html:
            parts.append(Markup('pattern="{}"').format(html))
    if "integer" in kinds or "number" in kinds:
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if isinstance(prop.get(key), int | float):
                parts.append(Markup('{}="{}"').format(attr, prop[key]))
    return Markup(" ").join(parts)


def _schema(hint: Any) -> dict[str, Any]:
    return TypeAdapter(hint).json_schema(
        mode="validation", ref_template="#/components/schemas/{model}"
    )


def _field_by_field(declaration: Any) -> dict[str, Any]:
    """A dataclass whose whole schema pydantic cannot make (a field's schema names a component
    defined elsewhere): each field's own schema; a field that fails has no limits."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    hints = typing.get_type_hints(declaration, include_extras=True)
    for spec in dataclasses.fields(declaration):
        missing = spec.default is dataclasses.MISSING
        if missing and spec.default_factory is dataclasses.MISSING:
            required.append(spec.name)
        try:
            properties[spec.name] = _schema(hints[spec.name])
        except (PydanticUserError, TypeError, KeyError):
            properties[spec.name] = {}
    return {"properties": properties, "required": required}


def limits_of(declaration: Any) -> FieldLimits:
    """field -> attributes of a resource declaration (pydantic model or dataclass)."""
    if declaration is None:
        return FieldLimits()
    try:
        schema = _schema(declaration)
    except (PydanticUserError, TypeError, KeyError):
        if not dataclasses.is_dataclass(declaration):
            return FieldLimits()
        schema = _field_by_field(declaration)
    required = set(schema.get("required", ()))
    properties = schema.get("properties", {})
    return FieldLimits({name: _attrs(prop, name in required) for name, prop in properties.items()})


def _context_limits() -> FieldLimits:
    """The context form types its rule as two fields: `rule` (the pattern) and `priority`."""
    context = limits_of(getattr(models, "Context", None))
    rule = limits_of(getattr(models, "RuleSpec", None))
    if "pattern" in rule:
        context["rule"] = rule["pattern"]
    if "priority" in rule:
        context["priority"] = rule["priority"]
    return context


LIMITS: Mapping[str, FieldLimits] = {
    "aid": limits_of(getattr(models, "Aid", None)),
    "app": limits_of(getattr(models, "App", None)),
    "context": _context_limits(),
    "mentor": limits_of(getattr(models, "Mentor", None)),
}

__all__ = ["LIMITS", "FieldLimits", "limits_of"]
