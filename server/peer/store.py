"""Reading and writing the peer resources (server/peer/models.py), generically.

`PeerStore` works on any declared peer class through its table (server/db/peer_tables.py) and
its `RowCodec`: `add`, `get` / `find`, `update`, `delete`, `list`, `count`. Everything runs in
the content database's one storage thread (`Storage.call` for reads, `Storage.write` for write
transactions), never on the event loop.

A change of several rows is one transaction: `await store.transaction(fn)` runs `fn(tx)` in the
storage thread inside `BEGIN IMMEDIATE ... COMMIT`, where `tx` (a `PeerTx`) has the same
operations, synchronous, plus `execute` for a feature's own statements (a counter moved with
SQL, a join). All or nothing: an exception rolls it back. Feature modules add their specific
queries this way, in their own modules:

```python
def accept(tx: PeerTx) -> Question:
    question = tx.get(Question, question_id)
    tx.execute(sa.update(answers).where(answers.c.question_id == question.id).values(accepted=0))
    ...
    return tx.update(dataclasses.replace(question, accepted_answer_id=answer_id))

question = await app[keys.PEER].transaction(accept)
```

Constraints are the database's (one report per tip and reporter, one recommendation per mentor,
page and aid, an answer's question must exist): a violation is a `PeerConflict` (409) or, for a
missing parent, a `PeerNotFound` (404), both problem+json at the HTTP boundary
(server/errors.py's middleware).

Peer writes do not move the content version (the aid index does not hold peer data).

Other features' resources use the same store: their classes are registered with their tables
(`register(cls, table)`), as sources' are below (server/db/source_tables.py). Register from a
feature's own service module, not from its tables module: content_tables.py imports the tables
modules before this one can be imported.
"""

from __future__ import annotations

import builtins
import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa

from server.db.peer_tables import TABLES
from server.db.resource_table import RowCodec
from server.db.source_tables import TABLES as SOURCE_TABLES
from server.errors import Conflict, NotFound
from server.peer.models import new_id
from server.storage import now_iso

if TYPE_CHECKING:
    from server.storage import Changes, Storage

T = TypeVar("T")
R = TypeVar("R")

# `list(cls, order_by=...)`: column names, "-name" for descending.
OrderBy = str | Sequence[str]
# declared class -> its table and its codec: the peer resources, and those registered
_TABLES: dict[type, sa.Table] = {}
_CODECS: dict[type, RowCodec[Any]] = {}


def register(cls: type, table: sa.Table) -> None:
    """Let the store read and write `cls` (a declared resource) in `table` (derived from it with
    `resource_table`). Registering the same pair again is harmless; another table is an error."""
    known = _TABLES.get(cls)
    if known is not None and known is not table:
        raise TypeError(f"{cls.__name__} is registered with the table {known.name!r} already")
    _TABLES[cls] = table
    _CODECS.setdefault(cls, RowCodec(cls))


for _cls, _table in (*TABLES.items(), *SOURCE_TABLES.items()):
    register(_cls, _table)


def _words(cls: type) -> str:
    """'PairingRule' -> 'pairing rule' (for messages)."""
    return re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()


class PeerNotFound(NotFound):
    """No such tip, question, answer, ... (or a row names a parent that does not exist)."""


class PeerConflict(Conflict):
    """A write the database's constraints refuse: the same id, a second report of a tip by the
    same person, a second recommendation of an aid on a page by the same mentor."""


# unique constraint -> what it means to a person
_UNIQUE_MESSAGES = {
    "peer_tip_reports_once": "You have already reported this tip.",
    "peer_recommendations_once": "This mentor already recommends this aid on this page.",
}


def table_of(cls: type) -> sa.Table:
    """The table of a declared peer class (or of a class registered with `register`)."""
    try:
        return _TABLES[cls]
    except KeyError:
        raise TypeError(f"{cls.__name__} is not a peer resource (nor registered)") from None


def codec_of(cls: type[T]) -> RowCodec[T]:
    table_of(cls)
    codec: RowCodec[T] = _CODECS[cls]
    return codec


def _names(cls: type) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls))


class PeerTx:
    """The peer operations on one connection, synchronous: inside a `PeerStore.transaction` (all
    or nothing) or a `PeerStore.read` (each statement sees the latest commit)."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def execute(self, stmt: sa.Executable, params: Any = None) -> sa.CursorResult[Any]:
        """Run a statement of the caller's own (a join, a counter moved in SQL)."""
        try:
            return self.conn.execute(stmt, params)
        except sa.exc.IntegrityError as exc:
            raise _integrity(exc, stmt) from None

    # -- one object --------------------------------------------------------------------------
    def add(self, obj: T) -> T:
        """Insert a new object; an empty `id` gets a server-made one, empty `created_at` /
        `updated_at` the time now. Returns the object as stored."""
        cls = type(obj)
        names = _names(cls)
        stamp = now_iso()
        changes: dict[str, Any] = {}
        for name in ("id", "created_at", "updated_at"):
            if name in names and not getattr(obj, name):
                changes[name] = new_id() if name == "id" else stamp
        stored = dataclasses.replace(obj, **changes) if changes else obj  # type: ignore[type-var]
        self.execute(sa.insert(table_of(cls)).values(codec_of(cls).to_row(stored)))
        return stored

    def find(self, cls: type[T], id: str) -> T | None:
        table = table_of(cls)
        row = self.conn.execute(sa.select(table).where(table.c.id == id)).mappings().first()
        return None if row is None else codec_of(cls).from_row(row)

    def get(self, cls: type[T], id: str) -> T:
        """The object with this id, or PeerNotFound."""
        found = self.find(cls, id)
        if found is None:
            raise PeerNotFound(f"No {_words(cls)} with id {id!r}.")
        return found

    def update(self, obj: T) -> T:
        """Write every field of an existing object (by its id); `updated_at`, when the class has
        it, becomes the time now. Returns the object as stored; PeerNotFound when it is gone."""
        cls = type(obj)
        if "updated_at" in _names(cls):
            obj = dataclasses.replace(obj, updated_at=now_iso())  # type: ignore[type-var]
        table = table_of(cls)
        row = codec_of(cls).to_row(obj)
        id = row.pop("id")
        result = self.execute(sa.update(table).where(table.c.id == id).values(row))
        if result.rowcount == 0:
            raise PeerNotFound(f"No {_words(cls)} with id {id!r}.")
        return obj

    def delete(self, cls: type, id: str) -> None:
        """Delete one object (its answers or reports go with it); PeerNotFound when absent."""
        table = table_of(cls)
        if self.execute(sa.delete(table).where(table.c.id == id)).rowcount == 0:
            raise PeerNotFound(f"No {_words(cls)} with id {id!r}.")

    # -- many ---------------------------------------------------------------------------------
    def list(
        self,
        cls: type[T],
        *,
        where: Iterable[sa.ColumnElement[bool]] = (),
        order_by: OrderBy = (),
        limit: int | None = None,
        offset: int = 0,
        **filters: Any,
    ) -> builtins.list[T]:
        """Objects whose fields equal `filters` (a list, tuple or set means any of them), and
        whose rows pass `where`; in `order_by` order (then by id), `limit` of them from
        `offset`."""
        table = table_of(cls)
        stmt = sa.select(table).where(*_conditions(table, filters), *where)
        stmt = stmt.order_by(*_ordering(table, order_by), table.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        codec = codec_of(cls)
        return [codec.from_row(row) for row in self.conn.execute(stmt).mappings()]

    def count(
        self, cls: type, *, where: Iterable[sa.ColumnElement[bool]] = (), **filters: Any
    ) -> int:
        table = table_of(cls)
        stmt = (
            sa.select(sa.func.count())
            .select_from(table)
            .where(*_conditions(table, filters), *where)
        )
        return int(self.conn.execute(stmt).scalar_one())


def _conditions(table: sa.Table, filters: Mapping[str, Any]) -> builtins.list[Any]:
    out: builtins.list[sa.ColumnElement[bool]] = []
    for name, value in filters.items():
        if name not in table.c:
            raise TypeError(f"{table.name} has no column {name!r}")
        column = table.c[name]
        if isinstance(value, builtins.list | tuple | set | frozenset):
            out.append(column.in_(builtins.list(value)))
        elif isinstance(value, bool):
            out.append(column == int(value))
        else:
            out.append(column == value)
    return out


def _ordering(table: sa.Table, order_by: OrderBy) -> builtins.list[Any]:
    names = [order_by] if isinstance(order_by, str) else builtins.list(order_by)
    out = []
    for name in names:
        desc = name.startswith("-")
        column = name[1:] if desc else name
        if column not in table.c:
            raise TypeError(f"{table.name} has no column {column!r}")
        out.append(table.c[column].desc() if desc else table.c[column].asc())
    return out


def _integrity(exc: sa.exc.IntegrityError, stmt: Any) -> Exception:
    """A constraint violation as the domain error a person can act on."""
    text = str(exc.orig)
    lowered = text.lower()
    if "foreign key" in lowered:
        return PeerNotFound("What this refers to no longer exists.")
    table = getattr(stmt, "table", None)
    if isinstance(table, sa.Table):
        for constraint in table.constraints:
            if not isinstance(constraint, sa.UniqueConstraint) or constraint.name is None:
                continue
            columns = [f"{table.name}.{c.name}" for c in constraint.columns]
            if str(constraint.name) in text or all(c in text for c in columns):
                return PeerConflict(_UNIQUE_MESSAGES.get(str(constraint.name), "Already there."))
        if f"{table.name}.id" in text or f"{table.name}_pkey" in text:
            return PeerConflict(f"A {table.name.removeprefix('peer_')} with that id exists.")
    return PeerConflict("The database refused this change (a constraint).")


class PeerStore:
    """Async CRUD over the peer resources, in the storage thread (see the module docstring)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _tx(self) -> PeerTx:
        return PeerTx(self.storage.conn)

    async def read(self, fn: Callable[[PeerTx], R]) -> R:
        """Run `fn(tx)` in the storage thread for reads (no transaction)."""
        return await self.storage.call(lambda: fn(self._tx()))

    async def transaction(self, fn: Callable[[PeerTx], R]) -> R:
        """Run `fn(tx)` in one write transaction in the storage thread: all or nothing."""

        def run(_changes: Changes) -> R:
            return fn(self._tx())

        result, _, _ = await self.storage.write(run)
        return result

    # one-statement shortcuts -----------------------------------------------------------------
    async def add(self, obj: T) -> T:
        return await self.transaction(lambda tx: tx.add(obj))

    async def get(self, cls: type[T], id: str) -> T:
        return await self.read(lambda tx: tx.get(cls, id))

    async def find(self, cls: type[T], id: str) -> T | None:
        return await self.read(lambda tx: tx.find(cls, id))

    async def update(self, obj: T) -> T:
        return await self.transaction(lambda tx: tx.update(obj))

    async def delete(self, cls: type, id: str) -> None:
        await self.transaction(lambda tx: tx.delete(cls, id))

    async def list(
        self,
        cls: type[T],
        *,
        where: Iterable[sa.ColumnElement[bool]] = (),
        order_by: OrderBy = (),
        limit: int | None = None,
        offset: int = 0,
        **filters: Any,
    ) -> builtins.list[T]:
        conditions = builtins.list(where)
        return await self.read(
            lambda tx: tx.list(
                cls, where=conditions, order_by=order_by, limit=limit, offset=offset, **filters
            )
        )

    async def count(
        self, cls: type, *, where: Iterable[sa.ColumnElement[bool]] = (), **filters: Any
    ) -> int:
        conditions = builtins.list(where)
        return await self.read(lambda tx: tx.count(cls, where=conditions, **filters))


__all__ = [
    "PeerConflict",
    "PeerNotFound",
    "PeerStore",
    "PeerTx",
    "codec_of",
    "register",
    "table_of",
]
