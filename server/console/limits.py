"""Form field limits (required, maxlength, min, max, pattern) taken from the resource
declarations in server/models.py, so that no limit is typed in a template and again in a model.

Templates write `{{ limits.aid.title }}` inside an `<input>`: the attributes of that field. A
field the declaration does not know (or a model that is not a pydantic model) gets none, and the
server still checks everything.
"""

from __future__ import annotations

import re
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

from markupsafe import Markup

from server import models

# resource name in templates -> the declaration's class name(s) in server/models.py, first found.
RESOURCES: Mapping[str, tuple[str, ...]] = {
    "aid": ("AidWrite", "AidIn", "Aid"),
    "app": ("AppWrite", "AppIn", "App"),
    "context": ("ContextWrite", "ContextIn", "Context"),
    "mentor": ("MentorWrite", "MentorIn", "Mentor"),
}
# An HTML pattern is a JavaScript regex (v flag), anchored: only simple Python ones carry over.
_SIMPLE_PATTERN = re.compile(r"\^?[\[\]a-zA-Z0-9\\\-{},*+?().|_]+\$?")


class FieldLimits(dict[str, Markup]):
    """field -> its attributes; an unknown field has none (never a KeyError in a template)."""

    def __missing__(self, key: str) -> Markup:
        return Markup("")


def _is_str(annotation: Any) -> bool:
    if annotation is str:
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_is_str(a) for a in get_args(annotation) if a is not type(None))
    return False


def _attrs(info: Any) -> Markup:
    """The HTML attributes of one pydantic FieldInfo."""
    found: dict[str, Any] = {}
    for item in getattr(info, "metadata", ()):
        for name in ("max_length", "min_length", "ge", "le", "pattern"):
            value = getattr(item, name, None)
            if value is not None:
                found.setdefault(name, value)
    parts: list[Markup] = []
    if info.is_required():
        parts.append(Markup("required"))
    is_text = _is_str(info.annotation)
    for key, attr, low in (
        ("max_length", "maxlength", 0),
        ("min_length", "minlength", 1),
        ("ge", "min", None),
        ("le", "max", None),
    ):
        value = found.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        if key.endswith("length") and (not is_text or value < (low or 0)):
            continue
        parts.append(Markup('{}="{}"').format(attr, value))
    pattern = found.get("pattern")
    if is_text and isinstance(pattern, str) and _SIMPLE_PATTERN.fullmatch(pattern):
        parts.append(Markup('pattern="{}"').format(pattern.removeprefix("^").removesuffix("$")))
    return Markup(" ").join(parts)


def limits_of(model: Any) -> FieldLimits:
    """field -> attributes for a pydantic model class; none for anything else."""
    fields = getattr(model, "model_fields", None)
    if not isinstance(fields, dict):
        return FieldLimits()
    return FieldLimits({name: _attrs(info) for name, info in fields.items()})


def _model(names: tuple[str, ...]) -> Any:
    for name in names:
        model = getattr(models, name, None)
        if model is not None and hasattr(model, "model_fields"):
            return model
    return None


LIMITS: Mapping[str, FieldLimits] = {
    resource: limits_of(_model(names)) for resource, names in RESOURCES.items()
}

__all__ = ["LIMITS", "FieldLimits", "limits_of"]
