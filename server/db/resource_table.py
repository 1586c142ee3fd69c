"""A resource's table, derived from its declaration (server/models.py).

A resource's fields are declared once, in its class. The table that stores it is built from that
class here, so adding a field to a resource is one line in the class plus the Alembic revision
that adds the column to existing databases (`alembic revision --autogenerate` writes it from the
difference between these tables and the database; docs/migrations.md).

How a field is stored follows from its Python type:

| declared type          | column                                   | stored as              |
|------------------------|------------------------------------------|------------------------|
| `str` (a Literal too)  | TEXT NOT NULL, default '' when it is ''  | the text               |
| `str | None`           | TEXT NULL                                | the text or NULL       |
| `int`                  | INTEGER NOT NULL, default its default    | the number             |
| `bool`                 | INTEGER NOT NULL, default 0 or 1         | 0 / 1 (portable)       |
| `tuple[str, ...]`      | TEXT NOT NULL, default '[]'              | a JSON list            |
| `tuple[Spec, ...]`     | TEXT NOT NULL, default '[]'              | a JSON list of objects |

(`Spec` is a declared dataclass, such as a URL rule `RuleSpec`: each item is stored as an object
of its fields.) A table may leave out fields stored elsewhere (`skip`: an app's contexts, a
context's pins) and give a field a foreign key (`references`); `extra` columns are the table's
own (a context's position in its app).

The field named `id` is the primary key. A required field (no default) has no column default.
`RowCodec` turns an object into a row and back with the same rules, and builds trusted objects
without validation (rows are validated when they were written).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Callable, Collection, Mapping
from typing import Any, Generic, Literal, TypeVar

import sqlalchemy as sa

T = TypeVar("T")

_TEXT, _NULLABLE_TEXT, _INT, _BOOL, _LIST = "text", "nullable_text", "int", "bool", "list"
_OBJECTS = "objects"


def _kind(hint: Any) -> str:
    """The storage kind of a declared type (Annotated metadata already stripped)."""
    origin = typing.get_origin(hint)
    if hint is str or origin is Literal:
        return _TEXT
    if hint is bool:
        return _BOOL
    if hint is int:
        return _INT
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return _OBJECTS if dataclasses.is_dataclass(item) else _LIST
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and _kind(args[0]) == _TEXT:
            return _NULLABLE_TEXT
    raise TypeError(f"no column type for a field declared as {hint!r}")


def _fields(cls: type[Any], skip: Collection[str] = ()) -> list[tuple[dataclasses.Field[Any], str]]:
    hints = typing.get_type_hints(cls)  # include_extras=False: Annotated metadata stripped
    return [
        (f, _kind(hints[f.name])) for f in dataclasses.fields(cls) if f.init and f.name not in skip
    ]


def _item_class(cls: type[Any], name: str) -> Any:
    return typing.get_args(typing.get_type_hints(cls)[name])[0]


def _server_default(field: dataclasses.Field[Any], kind: str) -> sa.TextClause | None:
    default = field.default
    if default is dataclasses.MISSING:
        return None
    if kind == _TEXT:
        return sa.text("''") if default == "" else None
    if kind in (_LIST, _OBJECTS):
        return sa.text("'[]'")
    if kind == _BOOL:
        return sa.text("1" if default else "0")
    if kind == _INT:
        return sa.text(str(int(default)))
    return None


def resource_columns(
    cls: type[Any],
    *,
    skip: Collection[str] = (),
    references: Mapping[str, sa.ForeignKey] | None = None,
) -> list[sa.Column[Any]]:
    """One column per declared field (but `skip`), in declaration order."""
    columns: list[sa.Column[Any]] = []
    for field, kind in _fields(cls, skip):
        if field.name == "id":
            columns.append(sa.Column("id", sa.Text, primary_key=True))
            continue
        col_type = sa.Integer if kind in (_INT, _BOOL) else sa.Text
        fk = (references or {}).get(field.name)
        columns.append(
            sa.Column(
                field.name,
                col_type,
                *([fk] if fk is not None else []),
                nullable=kind == _NULLABLE_TEXT,
                server_default=_server_default(field, kind),
            )
        )
    return columns


def resource_table(
    name: str,
    metadata: sa.MetaData,
    cls: type[Any],
    *extra: sa.Column[Any],
    skip: Collection[str] = (),
    references: Mapping[str, sa.ForeignKey] | None = None,
) -> sa.Table:
    """The table that stores `cls`, one column per field (but `skip`), then `extra` columns."""
    return sa.Table(
        name, metadata, *resource_columns(cls, skip=skip, references=references), *extra
    )


class RowCodec(Generic[T]):
    """Objects of a declared resource to table rows and back, by the rules above."""

    def __init__(self, cls: type[T], skip: Collection[str] = ()) -> None:
        self.cls = cls
        fields = _fields(cls, skip)
        self.names = tuple(f.name for f, _ in fields)
        self._defaults: dict[str, Any] = {}
        for f, _ in fields:
            if f.default is not dataclasses.MISSING:
                self._defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                self._defaults[f.name] = f.default_factory()
        self._to_row: list[tuple[str, Callable[[Any], Any]]] = []
        self._from_row: list[tuple[str, Callable[[Any], Any]]] = []
        for field, kind in fields:
            if kind == _LIST:
                self._to_row.append((field.name, lambda v: json.dumps(list(v))))
                self._from_row.append((field.name, _list_from_json))
            elif kind == _OBJECTS:
                item = _item_class(cls, field.name)
                self._to_row.append((field.name, _objects_to_json))
                self._from_row.append((field.name, _objects_from_json(item)))
            elif kind == _BOOL:
                self._to_row.append((field.name, int))
                self._from_row.append((field.name, bool))
            else:
                self._to_row.append((field.name, _same))
                self._from_row.append((field.name, _same))

    def to_row(self, obj: T, **overrides: Any) -> dict[str, Any]:
        """The row for `obj`; `overrides` replace stored values (version, timestamps)."""
        row = {name: encode(getattr(obj, name)) for name, encode in self._to_row}
        row.update(overrides)
        return row

    def from_row(self, row: Mapping[Any, Any], **extra: Any) -> T:
        """A trusted object from a stored row (columns a query left out take their defaults;
        `extra` gives fields stored elsewhere)."""
        values: dict[str, Any] = dict(extra)
        for name, decode in self._from_row:
            if name in row:
                value = row[name]
                values[name] = value if decode is _same else decode(value)
            elif name in self._defaults:
                values[name] = self._defaults[name]
        return self.cls(**values)


def _same(value: Any) -> Any:
    return value


def _list_from_json(text: str) -> tuple[Any, ...]:
    # most stored lists are empty: 100k aids' tags, audiences... read at every start-up
    return () if text == "[]" else tuple(json.loads(text))


def _objects_to_json(items: Any) -> str:
    return json.dumps([dataclasses.asdict(item) for item in items])


def _objects_from_json(item: Any) -> Callable[[str], tuple[Any, ...]]:
    def decode(text: str) -> tuple[Any, ...]:
        if text == "[]":
            return ()
        return tuple(item(**data) for data in json.loads(text))

    return decode
