"""The content database: the source of truth for aids, apps, contexts, mentors and feedback.

Tables are declared once in `server/db/content_tables.py` (SQLAlchemy Core) and changed only by
Alembic revisions (`server/migrations/content/`); opening the store upgrades the database to the
newest revision (and refuses one made by a newer Inflow).

One connection, used only from one dedicated thread (a single-worker executor), so the database is
never touched on the event loop and writes are naturally serialized. Reads run outside any
transaction (each statement sees the latest commit); writes are explicit `BEGIN IMMEDIATE` ...
`COMMIT` transactions, all or nothing. Every write transaction bumps `content_version`, which the
index records so start-up can tell whether the two agree.

On PostgreSQL (`url`, INFLOW_DATABASE_URL) the same: reads in autocommit, and a write transaction
takes the content store's advisory lock, so several nodes' writes are serialized as one node's
are (server/db/engine.py, docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from server.analytics.pseudonym import Pseudonymizer, load_key
from server.db import migrate
from server.db.cluster_tables import content_changes
from server.db.content_tables import (
    admin_sessions,
    aid_versions,
    aids,
    apps,
    audit_log,
    context_aids,
    contexts,
    feedback,
    mentors,
    meta,
)
from server.db.engine import (
    Reconnect,
    begin_immediate,
    commit,
    database_engine,
    manual_transactions,
    rollback,
    sqlite_engine,
)
from server.db.resource_table import RowCodec
from server.errors import AidNotFound, NotFound
from server.models import Aid, App, Context, Mentor

T = TypeVar("T")

# The PostgreSQL channel a content transaction notifies with its new version (server/follow.py)
CHANGES_CHANNEL = "inflow_content"
CHANGES_PAGE = 1000  # change rows read at once by a catching-up node

AID_COLUMNS = tuple(c.name for c in aids.columns)
MENTOR_COLUMNS = tuple(c.name for c in mentors.columns)
# the catalog's aids: without their body and transcript (the big texts only the index needs)
_AID_META_COLUMNS = [c for c in aids.columns if c.name not in {"body", "transcript"}]

# Statements on the hot paths (import, publish) are built once: building and cache-keying a Core
# statement per call cost more than SQLite's own work (10k aids imported in 60 s instead of 4 s).
_AID_BY_ID = sa.select(aids).where(aids.c.id == sa.bindparam("id"))
_AIDS_BY_IDS = sa.select(aids).where(aids.c.id.in_(sa.bindparam("ids", expanding=True)))
_MENTOR_BY_ID = sa.select(mentors).where(mentors.c.id == sa.bindparam("id"))


@cache
def _bump_statement(dialect: str) -> sa.Executable:
    module = postgresql if dialect == "postgresql" else sqlite
    insert = module.insert(meta).values(key="content_version", value="1")
    stmt: sa.Executable = insert.on_conflict_do_update(
        index_elements=[meta.c.key],
        set_={"value": sa.cast(sa.cast(meta.c.value, sa.Integer) + 1, sa.Text)},
    ).returning(meta.c.value)
    return stmt


@cache
def _upsert_statement(table: sa.Table, dialect: str) -> sa.Executable:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE SET every other column (SQLite and
    PostgreSQL both have it); executed with a dict holding every column."""
    insert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    return insert.on_conflict_do_update(
        index_elements=keys,
        set_={c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys},
    )


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


AIDS: RowCodec[Aid] = RowCodec(Aid)
MENTORS: RowCodec[Mentor] = RowCodec(Mentor)
# apps and their contexts: the same declarations, contexts and pins in tables of their own
APPS: RowCodec[App] = RowCodec(App, skip={"contexts"})
CONTEXTS: RowCodec[Context] = RowCodec(Context, skip={"aids"})
_aid_from_row = AIDS.from_row
_mentor_from_row = MENTORS.from_row
_READ_PAGE = 2000  # rows fetched at once by _plain_rows


def _plain_rows(result: sa.CursorResult[*tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    """A whole-table read's rows as plain dicts, fetched a page at a time: at start-up (100k aids,
    96k contexts) SQLAlchemy's RowMapping (a Python-level `in` per field per row) and a fetch per
    row cost several seconds of the catalog's load."""
    keys = list(result.keys())
    for page in result.partitions(_READ_PAGE):
        for row in page:
            yield dict(zip(keys, row, strict=True))


def _aid_values(aid: Aid, version: int, created: str, stamp: str) -> dict[str, Any]:
    return AIDS.to_row(aid, version=version, created_at=created, updated_at=stamp)


def _mentor_values(mentor: Mentor, created: str, stamp: str) -> dict[str, Any]:
    return MENTORS.to_row(mentor, created_at=created, updated_at=stamp)


class Storage:
    """Async facade over one database connection living in one thread.

    `analytics_secret` and `key_dir` (default: the database's folder, which is the data directory)
    locate the analytics key, the same one analytics events are pseudonymized with: a migration
    that pseudonymizes stored people needs it. `url` (INFLOW_DATABASE_URL) puts the content on
    another database, PostgreSQL for many nodes (docs/scale-out.md); "" is the SQLite file `path`.
    """

    def __init__(
        self,
        path: Path,
        *,
        analytics_secret: str = "",
        key_dir: Path | None = None,
        url: str = "",
    ):
        self.path = path
        self.url = url
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._engine: sa.Engine | None = None
        self._conn: sa.Connection | None = None
        self._reconnect = Reconnect("content")  # after the database went away (server/db/errors.py)
        self._analytics_secret = analytics_secret
        self._key_dir = key_dir if key_dir is not None else path.parent
        self._pseudonymizer: Pseudonymizer | None = None
        self.applied_revisions: list[str] = []

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        engine = database_engine(self.url) if self.url else sqlite_engine(self.path)
        try:
            self.applied_revisions = migrate.upgrade(
                engine, "content", pseudonymize=self.pseudonymize
            )
            conn = engine.connect()
        except BaseException:
            engine.dispose()
            raise
        manual_transactions(conn)
        self._engine, self._conn = engine, conn

    def pseudonymize(self, issuer: str, subject: str) -> str:
        """The analytics pseudonym of (issuer, subject); loads the analytics key on first use."""
        if self._pseudonymizer is None:
            self._pseudonymizer = Pseudonymizer(load_key(self._analytics_secret, self._key_dir))
        return self._pseudonymizer(issuer, subject)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def close_sync(self) -> None:
        self._close()

    async def close(self) -> None:
        if self._conn is not None or self._engine is not None:
            await self._run(self._close)
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._guarded, fn, *args)

    def _guarded(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in the storage thread; a lost or refusing database becomes
        `DatabaseUnavailable` (the dead connection is dropped: the next call connects again).
        A write transaction that failed so was rolled back, not committed."""
        try:
            return fn(*args)
        except Exception as exc:
            if self._engine is None:
                raise  # not open (or opening): start-up reports the driver's own error
            unavailable = self._reconnect.failed(exc, self._conn)
            if unavailable is None:
                raise
            self._conn = None
            raise unavailable from exc

    @property
    def conn(self) -> sa.Connection:
        """The store's connection (storage thread only); made again after an outage."""
        if self._conn is None:
            engine = self._engine
            assert engine is not None, "storage is not open"
            self._conn = self._reconnect.connect(lambda: manual_transactions(engine.connect()))
        return self._conn

    def _x(self, stmt: sa.Executable, params: Any = None) -> sa.CursorResult[*tuple[Any, ...]]:
        return self.conn.execute(stmt, params)

    def _upsert(self, table: sa.Table, values: dict[str, Any]) -> None:
        """Insert a whole row, or update every column of the row with its primary key."""
        self._x(_upsert_statement(table, self.conn.dialect.name), values)

    def _transaction(self, fn: Callable[[], T]) -> T:
        """Run `fn` in one write transaction: all or nothing."""
        begin_immediate(self.conn)
        try:
            result = fn()
            commit(self.conn)
        except BaseException:
            rollback(self.conn)
            raise
        return result

    # -- sync helpers (run in the storage thread, or directly by the CLI) -------------------
    def open_sync(self) -> None:
        self._open()

    def _bump_version(
        self,
        upserts: Iterable[str] = (),
        deletes: Iterable[str] = (),
        *,
        catalog: bool = False,
        mentors: bool = False,
    ) -> int:
        """content_version + 1 in one statement (INSERT ... ON CONFLICT DO UPDATE ... RETURNING):
        two nodes bumping at once get two numbers, never the same one.

        In the same transaction, the change log's row for the new version (what changed: aid ids
        upserted and deleted, whether apps/contexts or mentors changed), which other nodes apply
        to their index and catalog (Library.catch_up); on PostgreSQL also a NOTIFY on
        `inflow_content` with the version, delivered to the listening nodes at COMMIT."""
        version = int(self._x(_bump_statement(self.conn.dialect.name)).scalar_one())
        self._x(
            sa.insert(content_changes).values(
                version=version,
                at=now_iso(),
                upserts=json.dumps(list(dict.fromkeys(upserts))),
                deletes=json.dumps(list(dict.fromkeys(deletes))),
                catalog=int(catalog),
                mentors=int(mentors),
            )
        )
        if self.conn.dialect.name == "postgresql":
            self._x(sa.select(sa.func.pg_notify(CHANGES_CHANNEL, str(version))))
        return version

    def changes_after_sync(self, version: int, limit: int = CHANGES_PAGE) -> list[ChangeRow]:
        """The change log's rows after `version`, oldest first, at most `limit`."""
        t = content_changes.c
        rows = self._x(
            sa.select(t.version, t.upserts, t.deletes, t.catalog, t.mentors)
            .where(t.version > version)
            .order_by(t.version)
            .limit(limit)
        )
        return [
            ChangeRow(int(r[0]), json.loads(r[1]), json.loads(r[2]), bool(r[3]), bool(r[4]))
            for r in rows
        ]

    def aids_by_ids_sync(self, ids: list[str]) -> list[Aid]:
        """The stored aids among `ids` (missing ones left out), read in chunks."""
        out: list[Aid] = []
        for start in range(0, len(ids), 500):
            rows = self._x(_AIDS_BY_IDS, {"ids": ids[start : start + 500]}).mappings()
            out.extend(_aid_from_row(r) for r in rows)
        return out

    def prune_changes_sync(self, before: str, keep_from: int | None) -> int:
        """Delete change rows written before `before` (ISO time) and, when `keep_from` is given,
        only rows with a version at or below it (a snapshot at that version still needs the
        rows after it). Returns how many went."""
        t = content_changes.c
        where = [t.at < before]
        if keep_from is not None:
            where.append(t.version <= keep_from)
        return self._transaction(
            lambda: int(self._x(sa.delete(content_changes).where(*where)).rowcount)
        )

    def content_version_sync(self) -> int:
        value = self._x(
            sa.select(meta.c.value).where(meta.c.key == "content_version")
        ).scalar_one_or_none()
        return int(value) if value is not None else 0

    def all_aids_sync(self) -> list[Aid]:
        rows = _plain_rows(self._x(sa.select(aids).order_by(aids.c.id)))
        return [_aid_from_row(r) for r in rows]

    def all_aid_metas_sync(self) -> list[Aid]:
        """Every aid without its body and transcript (the catalog's needs)."""
        rows = _plain_rows(self._x(sa.select(*_AID_META_COLUMNS).order_by(aids.c.id)))
        return [_aid_from_row(r) for r in rows]

    def count_aids_sync(self) -> int:
        return int(self._x(sa.select(sa.func.count()).select_from(aids)).scalar_one())

    def _find_aid(self, aid_id: str) -> Aid | None:
        row = self._x(_AID_BY_ID, {"id": aid_id}).mappings().first()
        return None if row is None else _aid_from_row(row)

    def get_aid_sync(self, aid_id: str) -> Aid:
        aid = self._find_aid(aid_id)
        if aid is None:
            raise AidNotFound(f"No aid with id {aid_id!r}.")
        return aid

    def all_apps_sync(self) -> list[App]:
        app_rows = list(_plain_rows(self._x(sa.select(apps).order_by(apps.c.id))))
        ctx_rows = _plain_rows(
            self._x(
                sa.select(contexts).order_by(contexts.c.app_id, contexts.c.position, contexts.c.id)
            )
        )
        pins: dict[str, list[str]] = {}
        for pin in self._x(
            sa.select(context_aids.c.context_id, context_aids.c.aid_id).order_by(
                context_aids.c.context_id, context_aids.c.position
            )
        ):
            pins.setdefault(pin[0], []).append(pin[1])
        by_app: dict[str, list[Context]] = {}
        for c in ctx_rows:
            by_app.setdefault(c["app_id"], []).append(
                CONTEXTS.from_row(c, aids=tuple(pins.get(c["id"], ())))
            )
        return [APPS.from_row(a, contexts=tuple(by_app.get(a["id"], ()))) for a in app_rows]

    def _upsert_aid(self, aid: Aid, saved_by: str, stamp: str) -> tuple[Aid, str]:
        """Insert or update; returns the stored aid and 'created' | 'updated' | 'unchanged'."""
        old = self._find_aid(aid.id)
        if old is not None:
            if old.content_fields() == aid.content_fields():
                return old, "unchanged"
            version, created, change = old.version + 1, old.created_at, "updated"
        else:
            version, created, change = 1, stamp, "created"
        row = _aid_values(aid, version, created, stamp)
        self._upsert(aids, row)
        self._upsert(
            aid_versions,
            {
                "aid_id": aid.id,
                "version": version,
                "data": json.dumps(aid.content_fields()),
                "saved_at": stamp,
                "saved_by": saved_by,
            },
        )
        return _aid_from_row(row), change  # what was just written, as a read would return it

    def _upsert_aids(
        self, items: list[Aid], saved_by: str, stamp: str
    ) -> list[tuple[Aid, Aid, str]]:
        """`_upsert_aid` for many aids at once (an import): the stored aids are read in chunks and
        the changed rows written with executemany. Returns (given, stored, change) in order."""
        existing: dict[str, Aid] = {}
        ids = [a.id for a in items]
        for start in range(0, len(ids), 500):
            rows = self._x(_AIDS_BY_IDS, {"ids": ids[start : start + 500]}).mappings()
            existing.update((r["id"], _aid_from_row(r)) for r in rows)
        out: list[tuple[Aid, Aid, str]] = []
        aid_rows: list[dict[str, Any]] = []
        version_rows: list[dict[str, Any]] = []
        for aid in items:
            old = existing.get(aid.id)
            if old is not None and old.content_fields() == aid.content_fields():
                out.append((aid, old, "unchanged"))
                continue
            if old is not None:
                version, created, change = old.version + 1, old.created_at, "updated"
            else:
                version, created, change = 1, stamp, "created"
            row = _aid_values(aid, version, created, stamp)
            aid_rows.append(row)
            version_rows.append(
                {
                    "aid_id": aid.id,
                    "version": version,
                    "data": json.dumps(aid.content_fields()),
                    "saved_at": stamp,
                    "saved_by": saved_by,
                }
            )
            existing[aid.id] = stored = _aid_from_row(row)  # a repeated id compares with this
            out.append((aid, stored, change))
        if aid_rows:
            self._x(_upsert_statement(aids, self.conn.dialect.name), aid_rows)
            self._x(_upsert_statement(aid_versions, self.conn.dialect.name), version_rows)
        return out

    def _replace_app(self, app: App) -> str:
        exists = self._x(sa.select(apps.c.id).where(apps.c.id == app.id)).first() is not None
        before = self._app_snapshot(app.id) if exists else None
        self._upsert(apps, APPS.to_row(app))
        # The contexts are replaced whole (their pins go with them: ON DELETE CASCADE).
        self._x(sa.delete(contexts).where(contexts.c.app_id == app.id))
        ctx_rows = [
            CONTEXTS.to_row(ctx, app_id=app.id, position=pos)
            for pos, ctx in enumerate(app.contexts)
        ]
        if ctx_rows:
            self._x(sa.insert(contexts), ctx_rows)
        pin_rows = [
            {"context_id": ctx.id, "aid_id": aid_id, "position": i}
            for ctx in app.contexts
            for i, aid_id in enumerate(ctx.aids)
        ]
        if pin_rows:
            self._x(sa.insert(context_aids), pin_rows)
        if before is None:
            return "created"
        return "unchanged" if before == self._app_snapshot(app.id) else "updated"

    def _app_snapshot(self, app_id: str) -> str:
        rows: list[Any] = [tuple(r) for r in self._x(sa.select(apps).where(apps.c.id == app_id))]
        rows += [
            tuple(r)
            for r in self._x(
                sa.select(contexts).where(contexts.c.app_id == app_id).order_by(contexts.c.id)
            )
        ]
        rows += [
            tuple(r)
            for r in self._x(
                sa.select(context_aids)
                .join(contexts, contexts.c.id == context_aids.c.context_id)
                .where(contexts.c.app_id == app_id)
                .order_by(context_aids.c.context_id, context_aids.c.position)
            )
        ]
        return json.dumps(rows)

    def import_sync(
        self,
        apps: Iterable[App],
        aids: Iterable[Aid],
        saved_by: str = "import",
        mentors: Iterable[Mentor] = (),
    ) -> dict[str, Any]:
        """Upsert everything in ONE transaction: all or nothing. Returns a change report."""
        report: dict[str, list[str]] = {
            "aids_created": [],
            "aids_updated": [],
            "aids_unchanged": [],
            "apps_created": [],
            "apps_updated": [],
            "apps_unchanged": [],
            "mentors_created": [],
            "mentors_updated": [],
            "mentors_unchanged": [],
        }
        changed_aids: list[Aid] = []
        stamp = now_iso()

        def run() -> int:
            for aid, stored, change in self._upsert_aids(list(aids), saved_by, stamp):
                report[f"aids_{change}"].append(aid.id)
                if change != "unchanged":
                    changed_aids.append(stored)
            for app in apps:
                change = self._replace_app(app)
                report[f"apps_{change}"].append(app.id)
            for mentor in mentors:
                _, change = self._upsert_mentor(mentor, stamp)
                report[f"mentors_{change}"].append(mentor.id)
            apps_changed = bool(report["apps_created"] or report["apps_updated"])
            mentors_changed = bool(report["mentors_created"] or report["mentors_updated"])
            if not (changed_aids or apps_changed or mentors_changed):
                return self.content_version_sync()
            return self._bump_version(
                [a.id for a in changed_aids], catalog=apps_changed, mentors=mentors_changed
            )

        version = self._transaction(run)
        return {"content_version": version, "changed_aids": changed_aids, **report}

    # -- feedback (under the analytics privacy rules: docs/analytics.md) ---------------------
    def add_feedback_sync(
        self,
        aid_id: str,
        helpful: bool,
        comment: str,
        user_key: str,
        app_id: str = "",
        context_id: str = "",
    ) -> int:
        """Store one feedback row. `user_key` is the analytics pseudonym (never who someone is);
        no page URL is kept, only the app and context the page matched."""
        result = self._x(
            sa.insert(feedback).values(
                aid_id=aid_id,
                helpful=int(helpful),
                comment=comment,
                app_id=app_id,
                context_id=context_id,
                user_key=user_key,
                created_at=now_iso(),
            )
        )
        pk = result.inserted_primary_key
        return int(pk[0]) if pk else 0

    def feedback_counts_sync(self, aid_id: str) -> tuple[int, int]:
        row = self._x(
            sa.select(sa.func.coalesce(sa.func.sum(feedback.c.helpful), 0), sa.func.count()).where(
                feedback.c.aid_id == aid_id
            )
        ).one()
        up, total = int(row[0]), int(row[1])
        return up, total - up

    def purge_feedback_sync(self, before_day: str) -> int:
        """Delete feedback given before the day `before_day` (YYYY-MM-DD, UTC): the analytics
        retention, applied by the same purge as the events."""
        return int(self._x(sa.delete(feedback).where(feedback.c.created_at < before_day)).rowcount)

    def ping_sync(self) -> int:
        return self.count_aids_sync()

    # -- async API ---------------------------------------------------------------------------
    async def all_aid_metas(self) -> list[Aid]:
        return await self._run(self.all_aid_metas_sync)

    async def count_aids(self) -> int:
        return await self._run(self.count_aids_sync)

    async def all_aids(self) -> list[Aid]:
        return await self._run(self.all_aids_sync)

    async def get_aid(self, aid_id: str) -> Aid:
        return await self._run(self.get_aid_sync, aid_id)

    async def all_apps(self) -> list[App]:
        return await self._run(self.all_apps_sync)

    async def content_version(self) -> int:
        return await self._run(self.content_version_sync)

    async def import_content(
        self,
        apps: list[App],
        aids: list[Aid],
        saved_by: str = "import",
        mentors: list[Mentor] | None = None,
    ) -> dict[str, Any]:
        return await self._run(self.import_sync, apps, aids, saved_by, mentors or [])

    async def all_mentors(self) -> list[Mentor]:
        return await self._run(self.all_mentors_sync)

    async def add_feedback(
        self,
        aid_id: str,
        helpful: bool,
        comment: str,
        user_key: str,
        app_id: str = "",
        context_id: str = "",
    ) -> int:
        return await self._run(
            self.add_feedback_sync, aid_id, helpful, comment, user_key, app_id, context_id
        )

    async def feedback_counts(self, aid_id: str) -> tuple[int, int]:
        return await self._run(self.feedback_counts_sync, aid_id)

    async def purge_feedback(self, before_day: str) -> int:
        return await self._run(self.purge_feedback_sync, before_day)

    async def ping(self) -> int:
        return await self._run(self.ping_sync)

    # -- admin API and console (server/admin, server/console) ---------------------------------
    # Writes run `fn(changes)` inside ONE transaction in the storage thread; `fn` records what it
    # changed so the Library can update the index and the catalog afterwards.

    def write_sync(self, fn: Callable[[Changes], T]) -> tuple[T, Changes, int]:
        changes = Changes()

        def run() -> tuple[T, int]:
            result = fn(changes)
            if not changes.any:
                return result, self.content_version_sync()
            version = self._bump_version(
                [a.id for a in changes.upserts],
                changes.deletes,
                catalog=changes.catalog,
                mentors=changes.mentors,
            )
            return result, version

        result, version = self._transaction(run)
        return result, changes, version

    async def write(self, fn: Callable[[Changes], T]) -> tuple[T, Changes, int]:
        return await self._run(self.write_sync, fn)

    async def changes_after(self, version: int, limit: int = CHANGES_PAGE) -> list[ChangeRow]:
        return await self._run(self.changes_after_sync, version, limit)

    async def aids_by_ids(self, ids: list[str]) -> list[Aid]:
        return await self._run(self.aids_by_ids_sync, ids)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a read-only sync helper of this class in the storage thread."""
        return await self._run(fn, *args)

    def get_app_sync(self, app_id: str) -> App:
        for app in self.all_apps_sync():
            if app.id == app_id:
                return app
        raise NotFound(f"No app with id {app_id!r}.")

    def save_aid_tx(self, aid: Aid, saved_by: str, changes: Changes) -> tuple[Aid, str]:
        """Within write_sync: insert or update an aid (a new version when anything changed)."""
        stored, change = self._upsert_aid(aid, saved_by, now_iso())
        if change != "unchanged":
            changes.upserts.append(stored)
        return stored, change

    def delete_aid_tx(self, aid_id: str, changes: Changes) -> None:
        self._x(sa.delete(aids).where(aids.c.id == aid_id))
        self._x(sa.delete(aid_versions).where(aid_versions.c.aid_id == aid_id))
        unpinned = self._x(sa.delete(context_aids).where(context_aids.c.aid_id == aid_id))
        changes.deletes.append(aid_id)
        changes.catalog = changes.catalog or unpinned.rowcount > 0

    def save_app_tx(self, app: App, changes: Changes) -> str:
        change = self._replace_app(app)
        if change != "unchanged":
            changes.catalog = True
        return change

    def delete_app_tx(self, app_id: str, changes: Changes) -> None:
        self._x(sa.delete(apps).where(apps.c.id == app_id))  # contexts and pins cascade
        changes.catalog = True

    # -- mentors -------------------------------------------------------------------------------
    def all_mentors_sync(self) -> list[Mentor]:
        rows = self._x(sa.select(mentors).order_by(mentors.c.id)).mappings()
        return [_mentor_from_row(r) for r in rows]

    def get_mentor_sync(self, mentor_id: str) -> Mentor:
        row = self._x(_MENTOR_BY_ID, {"id": mentor_id}).mappings().first()
        if row is None:
            raise NotFound(f"No mentor with id {mentor_id!r}.")
        return _mentor_from_row(row)

    def _upsert_mentor(self, mentor: Mentor, stamp: str) -> tuple[Mentor, str]:
        """Insert or update; returns the stored mentor and 'created' | 'updated' | 'unchanged'."""
        try:
            old: Mentor | None = self.get_mentor_sync(mentor.id)
        except NotFound:
            old = None
        if old is not None and old.content_fields() == mentor.content_fields():
            return old, "unchanged"
        created, change = (old.created_at, "updated") if old else (stamp, "created")
        row = _mentor_values(mentor, created, stamp)
        self._upsert(mentors, row)
        return _mentor_from_row(row), change

    def save_mentor_tx(self, mentor: Mentor, changes: Changes) -> tuple[Mentor, str]:
        """Within write_sync: insert or update a mentor."""
        stored, change = self._upsert_mentor(mentor, now_iso())
        if change != "unchanged":
            changes.mentors = True
        return stored, change

    def delete_mentor_tx(self, mentor_id: str, changes: Changes) -> None:
        if self._x(sa.delete(mentors).where(mentors.c.id == mentor_id)).rowcount:
            changes.mentors = True

    def aid_versions_sync(self, aid_id: str) -> list[dict[str, Any]]:
        rows = self._x(
            sa.select(
                aid_versions.c.version,
                aid_versions.c.data,
                aid_versions.c.saved_at,
                aid_versions.c.saved_by,
            )
            .where(aid_versions.c.aid_id == aid_id)
            .order_by(aid_versions.c.version.desc())
        ).mappings()
        out = []
        for r in rows:
            data = json.loads(r["data"])
            out.append(
                {
                    "version": r["version"],
                    "saved_at": r["saved_at"],
                    "saved_by": r["saved_by"],
                    "status": data.get("status", ""),
                    "title": data.get("title", ""),
                }
            )
        return out

    def aid_version_sync(self, aid_id: str, version: int) -> dict[str, Any]:
        raw = self._x(
            sa.select(aid_versions.c.data).where(
                aid_versions.c.aid_id == aid_id, aid_versions.c.version == version
            )
        ).scalar_one_or_none()
        if raw is None:
            raise NotFound(f"Aid {aid_id!r} has no version {version}.")
        data: dict[str, Any] = json.loads(raw)
        return data

    def audit_add_tx(
        self,
        who: tuple[str, str, str],
        action: str,
        target_type: str,
        target_id: str,
        detail: dict[str, Any] | None = None,
    ) -> int:
        issuer, subject, username = who
        result = self._x(
            sa.insert(audit_log).values(
                at=now_iso(),
                issuer=issuer,
                subject=subject,
                username=username,
                action=action,
                target_type=target_type,
                target_id=target_id,
                detail=json.dumps(detail or {}),
            )
        )
        pk = result.inserted_primary_key
        return int(pk[0]) if pk else 0

    def audit_page_sync(
        self, filters: dict[str, str], before_id: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first. Filters: actor (username or subject), action, target_type, target_id,
        since / until (ISO timestamps, inclusive)."""
        t = audit_log.c
        where: list[sa.ColumnElement[bool]] = []
        if filters.get("actor"):
            where.append(sa.or_(t.username == filters["actor"], t.subject == filters["actor"]))
        for name in ("action", "target_type", "target_id"):
            if filters.get(name):
                where.append(audit_log.c[name] == filters[name])
        if filters.get("since"):
            where.append(t.at >= filters["since"])
        if filters.get("until"):
            where.append(t.at <= filters["until"])
        if before_id is not None:
            where.append(t.id < before_id)
        stmt = sa.select(audit_log).where(*where).order_by(t.id.desc()).limit(limit)
        return [
            {
                "id": r["id"],
                "at": r["at"],
                "who": {"issuer": r["issuer"], "subject": r["subject"], "username": r["username"]},
                "action": r["action"],
                "target_type": r["target_type"],
                "target_id": r["target_id"],
                "detail": json.loads(r["detail"]),
            }
            for r in self._x(stmt).mappings()
        ]

    def kv_put_sync(self, key_hash: str, kind: str, data: str, expires_at: float) -> None:
        self._upsert(
            admin_sessions,
            {"key_hash": key_hash, "kind": kind, "data": data, "expires_at": expires_at},
        )

    def kv_get_sync(self, key_hash: str, kind: str, now: float) -> str | None:
        t = admin_sessions.c
        data = self._x(
            sa.select(t.data).where(t.key_hash == key_hash, t.kind == kind, t.expires_at > now)
        ).scalar_one_or_none()
        return None if data is None else str(data)

    def kv_pop_sync(self, key_hash: str, kind: str, now: float) -> str | None:
        data = self.kv_get_sync(key_hash, kind, now)
        self._x(sa.delete(admin_sessions).where(admin_sessions.c.key_hash == key_hash))
        return data

    def kv_purge_sync(self, now: float) -> int:
        return int(
            self._x(sa.delete(admin_sessions).where(admin_sessions.c.expires_at <= now)).rowcount
        )


@dataclass(frozen=True)
class ChangeRow:
    """One row of the change log (`content_changes`): what the transaction that moved the content
    to `version` changed."""

    version: int
    upserts: list[str]
    deletes: list[str]
    catalog: bool
    mentors: bool


@dataclass
class Changes:
    """What one admin write changed: aids to re-index, aids to drop, apps/contexts/pins, and
    mentors (which live in the catalog, not the index, but still move the content version on)."""

    upserts: list[Aid] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    catalog: bool = False
    mentors: bool = False

    @property
    def any(self) -> bool:
        return bool(self.upserts or self.deletes or self.catalog or self.mentors)
