"""SQLite storage: the source of truth for aids, apps, contexts, mentors and feedback.

One connection, used only from one dedicated thread (a single-worker executor), so SQLite is never
touched on the event loop and writes are naturally serialized. Every write transaction bumps
`content_version`, which the index records so start-up can tell whether the two agree.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from server.errors import AidNotFound, NotFound
from server.models import Aid, App, Context, Mentor, RuleSpec

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS aids (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    body TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    apps TEXT NOT NULL DEFAULT '[]',
    audience TEXT NOT NULL DEFAULT '[]',
    owner TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL,
    verified_at TEXT,
    review_interval_days INTEGER NOT NULL DEFAULT 180,
    source TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS aid_versions (
    aid_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    saved_by TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (aid_id, version)
);
CREATE TABLE IF NOT EXISTS apps (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    rules TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS contexts (
    id TEXT PRIMARY KEY,
    app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    rule_pattern TEXT NOT NULL,
    rule_priority INTEGER NOT NULL DEFAULT 0,
    title_pattern TEXT NOT NULL DEFAULT '',
    selector TEXT NOT NULL DEFAULT '',
    position INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS context_aids (
    context_id TEXT NOT NULL REFERENCES contexts(id) ON DELETE CASCADE,
    aid_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (context_id, aid_id)
);
CREATE TABLE IF NOT EXISTS audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    issuer TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    username TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL,
    target_type TEXT NOT NULL DEFAULT '',
    target_id TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_log_target ON audit_log(target_type, target_id);
CREATE TABLE IF NOT EXISTS admin_sessions (
    key_hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mentors (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    contact TEXT NOT NULL,
    can_help_with TEXT NOT NULL DEFAULT '',
    apps TEXT NOT NULL DEFAULT '[]',
    topics TEXT NOT NULL DEFAULT '[]',
    username TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    vetted INTEGER NOT NULL DEFAULT 0,
    vetted_by TEXT NOT NULL DEFAULT '',
    vetted_at TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    audience TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    aid_id TEXT NOT NULL,
    helpful INTEGER NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    user_key TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL
);
"""

AID_COLUMNS = (
    "id, title, summary, body, type, tags, apps, audience, owner, status, verified_at, "
    "review_interval_days, source, version, created_at, updated_at"
)


MENTOR_COLUMNS = (
    "id, name, contact, can_help_with, apps, topics, username, subject, vetted, vetted_by, "
    "vetted_at, active, audience, created_at, updated_at"
)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _aid_from_row(row: sqlite3.Row) -> Aid:
    return Aid(
        id=row["id"],
        title=row["title"],
        summary=row["summary"],
        body=row["body"],
        type=row["type"],
        tags=tuple(json.loads(row["tags"])),
        apps=tuple(json.loads(row["apps"])),
        audience=tuple(json.loads(row["audience"])),
        owner=row["owner"],
        status=row["status"],
        verified_at=row["verified_at"],
        review_interval_days=row["review_interval_days"],
        source=row["source"],
        version=row["version"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _mentor_from_row(row: sqlite3.Row) -> Mentor:
    return Mentor(
        id=row["id"],
        name=row["name"],
        contact=row["contact"],
        can_help_with=row["can_help_with"],
        apps=tuple(json.loads(row["apps"])),
        topics=tuple(json.loads(row["topics"])),
        username=row["username"],
        subject=row["subject"],
        vetted=bool(row["vetted"]),
        vetted_by=row["vetted_by"],
        vetted_at=row["vetted_at"],
        active=bool(row["active"]),
        audience=tuple(json.loads(row["audience"])),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class Storage:
    """Async facade over one SQLite connection living in one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None

    # -- lifecycle -------------------------------------------------------------------------
    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._run(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    @property
    def conn(self) -> sqlite3.Connection:
        assert self._conn is not None, "storage is not open"
        return self._conn

    # -- sync helpers (run in the storage thread, or directly by the CLI) -------------------
    def open_sync(self) -> None:
        self._open()

    def _bump_version(self) -> int:
        cur = self.conn.execute("SELECT value FROM meta WHERE key='content_version'")
        row = cur.fetchone()
        version = int(row[0]) + 1 if row else 1
        self.conn.execute(
            "INSERT INTO meta(key, value) VALUES('content_version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (str(version),),
        )
        return version

    def content_version_sync(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key='content_version'").fetchone()
        return int(row[0]) if row else 0

    def all_aids_sync(self) -> list[Aid]:
        rows = self.conn.execute(f"SELECT {AID_COLUMNS} FROM aids ORDER BY id").fetchall()
        return [_aid_from_row(r) for r in rows]

    def all_aid_metas_sync(self) -> list[Aid]:
        """Every aid without its body (the catalog's needs)."""
        cols = AID_COLUMNS.replace("body, ", "'' AS body, ")
        rows = self.conn.execute(f"SELECT {cols} FROM aids ORDER BY id").fetchall()
        return [_aid_from_row(r) for r in rows]

    def count_aids_sync(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM aids").fetchone()[0])

    def get_aid_sync(self, aid_id: str) -> Aid:
        row = self.conn.execute(f"SELECT {AID_COLUMNS} FROM aids WHERE id=?", (aid_id,)).fetchone()
        if row is None:
            raise AidNotFound(f"No aid with id {aid_id!r}.")
        return _aid_from_row(row)

    def all_apps_sync(self) -> list[App]:
        apps = self.conn.execute("SELECT * FROM apps ORDER BY id").fetchall()
        ctx_rows = self.conn.execute(
            "SELECT * FROM contexts ORDER BY app_id, position, id"
        ).fetchall()
        pins: dict[str, list[str]] = {}
        for row in self.conn.execute(
            "SELECT context_id, aid_id FROM context_aids ORDER BY context_id, position"
        ):
            pins.setdefault(row["context_id"], []).append(row["aid_id"])
        contexts: dict[str, list[Context]] = {}
        for c in ctx_rows:
            contexts.setdefault(c["app_id"], []).append(
                Context(
                    id=c["id"],
                    app_id=c["app_id"],
                    name=c["name"],
                    rule=RuleSpec(c["rule_pattern"], c["rule_priority"]),
                    title_pattern=c["title_pattern"],
                    selector=c["selector"],
                    aids=tuple(pins.get(c["id"], ())),
                )
            )
        return [
            App(
                id=a["id"],
                name=a["name"],
                description=a["description"],
                rules=tuple(
                    RuleSpec(r["pattern"], r.get("priority", 0)) for r in json.loads(a["rules"])
                ),
                contexts=tuple(contexts.get(a["id"], ())),
            )
            for a in apps
        ]

    def _upsert_aid(self, aid: Aid, saved_by: str, stamp: str) -> tuple[Aid, str]:
        """Insert or update; returns the stored aid and 'created' | 'updated' | 'unchanged'."""
        row = self.conn.execute(f"SELECT {AID_COLUMNS} FROM aids WHERE id=?", (aid.id,)).fetchone()
        if row is not None:
            old = _aid_from_row(row)
            if old.content_fields() == aid.content_fields():
                return old, "unchanged"
            version, created, change = old.version + 1, old.created_at, "updated"
        else:
            version, created, change = 1, stamp, "created"
        self.conn.execute(
            f"INSERT OR REPLACE INTO aids ({AID_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                aid.id,
                aid.title,
                aid.summary,
                aid.body,
                aid.type,
                json.dumps(list(aid.tags)),
                json.dumps(list(aid.apps)),
                json.dumps(list(aid.audience)),
                aid.owner,
                aid.status,
                aid.verified_at,
                aid.review_interval_days,
                aid.source,
                version,
                created,
                stamp,
            ),
        )
        self.conn.execute(
            "INSERT OR REPLACE INTO aid_versions(aid_id, version, data, saved_at, saved_by) "
            "VALUES (?,?,?,?,?)",
            (aid.id, version, json.dumps(aid.content_fields()), stamp, saved_by),
        )
        stored = self.get_aid_sync(aid.id)
        return stored, change

    def _replace_app(self, app: App) -> str:
        row = self.conn.execute("SELECT id FROM apps WHERE id=?", (app.id,)).fetchone()
        before = self._app_snapshot(app.id) if row else None
        self.conn.execute(
            "INSERT OR REPLACE INTO apps(id, name, description, rules) VALUES (?,?,?,?)",
            (
                app.id,
                app.name,
                app.description,
                json.dumps([{"pattern": r.pattern, "priority": r.priority} for r in app.rules]),
            ),
        )
        # INSERT OR REPLACE deletes the old row, cascading to contexts: re-insert them all.
        self.conn.execute("DELETE FROM contexts WHERE app_id=?", (app.id,))
        for pos, ctx in enumerate(app.contexts):
            self.conn.execute(
                "INSERT INTO contexts(id, app_id, name, rule_pattern, rule_priority, title_pattern,"
                " selector, position) VALUES (?,?,?,?,?,?,?,?)",
                (
                    ctx.id,
                    app.id,
                    ctx.name,
                    ctx.rule.pattern,
                    ctx.rule.priority,
                    ctx.title_pattern,
                    ctx.selector,
                    pos,
                ),
            )
            for i, aid_id in enumerate(ctx.aids):
                self.conn.execute(
                    "INSERT INTO context_aids(context_id, aid_id, position) VALUES (?,?,?)",
                    (ctx.id, aid_id, i),
                )
        if before is None:
            return "created"
        return "unchanged" if before == self._app_snapshot(app.id) else "updated"

    def _app_snapshot(self, app_id: str) -> str:
        rows = [tuple(r) for r in self.conn.execute("SELECT * FROM apps WHERE id=?", (app_id,))]
        rows += [
            tuple(r)
            for r in self.conn.execute(
                "SELECT * FROM contexts WHERE app_id=? ORDER BY id", (app_id,)
            )
        ]
        rows += [
            tuple(r)
            for r in self.conn.execute(
                "SELECT ca.* FROM context_aids ca JOIN contexts c ON c.id=ca.context_id "
                "WHERE c.app_id=? ORDER BY ca.context_id, ca.position",
                (app_id,),
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
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for aid in aids:
                stored, change = self._upsert_aid(aid, saved_by, stamp)
                report[f"aids_{change}"].append(aid.id)
                if change != "unchanged":
                    changed_aids.append(stored)
            for app in apps:
                change = self._replace_app(app)
                report[f"apps_{change}"].append(app.id)
            for mentor in mentors:
                _, change = self._upsert_mentor(mentor, stamp)
                report[f"mentors_{change}"].append(mentor.id)
            changed = bool(changed_aids) or any(
                report[f"{kind}_{change}"]
                for kind in ("apps", "mentors")
                for change in ("created", "updated")
            )
            version = self._bump_version() if changed else self.content_version_sync()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return {"content_version": version, "changed_aids": changed_aids, **report}

    def add_feedback_sync(
        self, aid_id: str, helpful: bool, comment: str, url: str, user_key: str
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO feedback(aid_id, helpful, comment, url, user_key, created_at) "
            "VALUES (?,?,?,?,?,?)",
            (aid_id, int(helpful), comment, url, user_key, now_iso()),
        )
        return int(cur.lastrowid or 0)

    def feedback_counts_sync(self, aid_id: str) -> tuple[int, int]:
        row = self.conn.execute(
            "SELECT COALESCE(SUM(helpful),0), COUNT(*) FROM feedback WHERE aid_id=?", (aid_id,)
        ).fetchone()
        return int(row[0]), int(row[1]) - int(row[0])

    def ping_sync(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM aids").fetchone()[0])

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
        self, aid_id: str, helpful: bool, comment: str, url: str, user_key: str
    ) -> int:
        return await self._run(self.add_feedback_sync, aid_id, helpful, comment, url, user_key)

    async def feedback_counts(self, aid_id: str) -> tuple[int, int]:
        return await self._run(self.feedback_counts_sync, aid_id)

    async def ping(self) -> int:
        return await self._run(self.ping_sync)

    # -- admin API and console (server/admin, server/console) ---------------------------------
    # Writes run `fn(changes)` inside ONE transaction in the storage thread; `fn` records what it
    # changed so the Library can update the index and the catalog afterwards.

    def write_sync(self, fn: Callable[[Changes], T]) -> tuple[T, Changes, int]:
        changes = Changes()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(changes)
            version = self._bump_version() if changes.any else self.content_version_sync()
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return result, changes, version

    async def write(self, fn: Callable[[Changes], T]) -> tuple[T, Changes, int]:
        return await self._run(self.write_sync, fn)

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
        self.conn.execute("DELETE FROM aids WHERE id=?", (aid_id,))
        self.conn.execute("DELETE FROM aid_versions WHERE aid_id=?", (aid_id,))
        cur = self.conn.execute("DELETE FROM context_aids WHERE aid_id=?", (aid_id,))
        changes.deletes.append(aid_id)
        changes.catalog = changes.catalog or cur.rowcount > 0

    def save_app_tx(self, app: App, changes: Changes) -> str:
        change = self._replace_app(app)
        if change != "unchanged":
            changes.catalog = True
        return change

    def delete_app_tx(self, app_id: str, changes: Changes) -> None:
        self.conn.execute("DELETE FROM apps WHERE id=?", (app_id,))  # contexts and pins cascade
        changes.catalog = True

    # -- mentors -------------------------------------------------------------------------------
    def all_mentors_sync(self) -> list[Mentor]:
        rows = self.conn.execute(f"SELECT {MENTOR_COLUMNS} FROM mentors ORDER BY id").fetchall()
        return [_mentor_from_row(r) for r in rows]

    def get_mentor_sync(self, mentor_id: str) -> Mentor:
        row = self.conn.execute(
            f"SELECT {MENTOR_COLUMNS} FROM mentors WHERE id=?", (mentor_id,)
        ).fetchone()
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
        self.conn.execute(
            f"INSERT OR REPLACE INTO mentors ({MENTOR_COLUMNS}) VALUES ({','.join('?' * 15)})",
            (
                mentor.id,
                mentor.name,
                mentor.contact,
                mentor.can_help_with,
                json.dumps(list(mentor.apps)),
                json.dumps(list(mentor.topics)),
                mentor.username,
                mentor.subject,
                int(mentor.vetted),
                mentor.vetted_by,
                mentor.vetted_at,
                int(mentor.active),
                json.dumps(list(mentor.audience)),
                created,
                stamp,
            ),
        )
        return self.get_mentor_sync(mentor.id), change

    def save_mentor_tx(self, mentor: Mentor, changes: Changes) -> tuple[Mentor, str]:
        """Within write_sync: insert or update a mentor."""
        stored, change = self._upsert_mentor(mentor, now_iso())
        if change != "unchanged":
            changes.mentors = True
        return stored, change

    def delete_mentor_tx(self, mentor_id: str, changes: Changes) -> None:
        if self.conn.execute("DELETE FROM mentors WHERE id=?", (mentor_id,)).rowcount:
            changes.mentors = True

    def aid_versions_sync(self, aid_id: str) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT version, data, saved_at, saved_by FROM aid_versions WHERE aid_id=? "
            "ORDER BY version DESC",
            (aid_id,),
        ).fetchall()
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
        row = self.conn.execute(
            "SELECT data FROM aid_versions WHERE aid_id=? AND version=?", (aid_id, version)
        ).fetchone()
        if row is None:
            raise NotFound(f"Aid {aid_id!r} has no version {version}.")
        data: dict[str, Any] = json.loads(row["data"])
        return data

    def audit_add_tx(
        self,
        who: tuple[str, str, str],
        action: str,
        target_type: str,
        target_id: str,
        detail: dict[str, Any] | None = None,
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO audit_log(at, issuer, subject, username, action, target_type, target_id,"
            " detail) VALUES (?,?,?,?,?,?,?,?)",
            (now_iso(), *who, action, target_type, target_id, json.dumps(detail or {})),
        )
        return int(cur.lastrowid or 0)

    def audit_page_sync(
        self, filters: dict[str, str], before_id: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """Newest first. Filters: actor (username or subject), action, target_type, target_id,
        since / until (ISO timestamps, inclusive)."""
        where: list[str] = []
        args: list[Any] = []
        if filters.get("actor"):
            where.append("(username=? OR subject=?)")
            args += [filters["actor"], filters["actor"]]
        for name in ("action", "target_type", "target_id"):
            if filters.get(name):
                where.append(f"{name}=?")
                args.append(filters[name])
        if filters.get("since"):
            where.append("at>=?")
            args.append(filters["since"])
        if filters.get("until"):
            where.append("at<=?")
            args.append(filters["until"])
        if before_id is not None:
            where.append("id<?")
            args.append(before_id)
        sql = "SELECT * FROM audit_log"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        rows = self.conn.execute(sql, (*args, limit)).fetchall()
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
            for r in rows
        ]

    def kv_put_sync(self, key_hash: str, kind: str, data: str, expires_at: float) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO admin_sessions(key_hash, kind, data, expires_at) "
            "VALUES (?,?,?,?)",
            (key_hash, kind, data, expires_at),
        )

    def kv_get_sync(self, key_hash: str, kind: str, now: float) -> str | None:
        row = self.conn.execute(
            "SELECT data FROM admin_sessions WHERE key_hash=? AND kind=? AND expires_at>?",
            (key_hash, kind, now),
        ).fetchone()
        return None if row is None else str(row["data"])

    def kv_pop_sync(self, key_hash: str, kind: str, now: float) -> str | None:
        data = self.kv_get_sync(key_hash, kind, now)
        self.conn.execute("DELETE FROM admin_sessions WHERE key_hash=?", (key_hash,))
        return data

    def kv_purge_sync(self, now: float) -> int:
        return self.conn.execute("DELETE FROM admin_sessions WHERE expires_at<=?", (now,)).rowcount


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
