"""Backups, restores and the copy from SQLite to PostgreSQL (`inflow backup`, `inflow restore`,
`inflow copy-to-postgres`; docs/deployment.md).

A backup is one folder, `inflow-<UTC time>`, holding each store's copy (the content, the analytics
events), the analytics key file when it lives in the data folder, and `manifest.json` (time, node,
each store's revision and the content_version, the sha256 of every file). It is written under a
hidden `.partial` name and renamed when complete, so a folder with the final name is always whole.

- SQLite: sqlite3's online backup API copies the database in one step, inside one read
  transaction: a consistent copy while the server keeps reading and writing (WAL: readers never
  block writers).
- PostgreSQL: `pg_dump -Fc` of each database, run on a snapshot exported from a REPEATABLE READ
  transaction in which the manifest's revision and content_version are read, so they describe
  exactly what the dump holds.

Errors an operator can fix (a missing pg_dump, an unreachable or non-empty database, a damaged
backup, a server still running) are `OperationFailed` with a one-line message; the command line
prints it and exits with status 2.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa

from server.analytics.pseudonym import Pseudonymizer, load_key
from server.db import migrate
from server.db.engine import database_engine, sqlite_engine
from server.settings import Settings

MANIFEST = "manifest.json"
FORMAT = "inflow-backup/1"
KEY_FILE = "analytics.key"
# the lock every IndexService takes on its index folder (index/service.py `_take_lock`): held, it
# says a server (or `inflow reindex`) uses this data folder
INDEX_LOCK = ".inflow.lock"
# derived folders a restore empties, so they are rebuilt from the restored databases at start-up
DERIVED = ("index", "questions-index")
BATCH = 1000  # rows per INSERT batch in copy-to-postgres
SQLITE_TIMEOUT = 30.0  # seconds a backup waits for a lock (a checkpoint) on a busy database

Out = Callable[[str], None]


class OperationFailed(Exception):
    """A backup, restore or copy that cannot go on; the message is one line for the operator."""


@dataclass(frozen=True)
class Store:
    """One of the two databases: an SQLite file in the data folder, or a PostgreSQL URL."""

    name: str  # "content" or "events"
    path: Path  # the SQLite file (used when url is "")
    url: str

    @property
    def kind(self) -> str:
        return "postgresql" if self.url else "sqlite"

    @property
    def where(self) -> str:
        return _hide(self.url) if self.url else str(self.path)


def stores(settings: Settings) -> list[Store]:
    return [
        Store("content", settings.db_path, settings.database_url),
        Store("events", settings.events_db_path, settings.events_database_url),
    ]


def _hide(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an unreadable URL)"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


# -- is a server using it? ------------------------------------------------------------------------


@contextmanager
def data_dir_free(settings: Settings, *, force: bool, command: str) -> Iterator[None]:
    """Hold the data folder's index lock for the whole operation (a server starting meanwhile
    waits for nothing: it fails on the lock, saying so). A server (or `inflow reindex`) holding
    it refuses the operation, unless `force`."""
    index_dir = settings.index_dir
    index_dir.mkdir(parents=True, exist_ok=True)
    handle: TextIO = (index_dir / INDEX_LOCK).open("a+", encoding="utf-8")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if not force:
                raise OperationFailed(
                    f"a server ({holder}) uses the data folder {settings.data_dir}: stop it first "
                    f"(or give --force to {command} anyway)"
                ) from None
        yield
    finally:
        handle.close()  # releases the lock


def _pg_sessions(conn: sa.Connection) -> int:
    """Other client sessions on this PostgreSQL database (other nodes, psql...)."""
    return int(
        conn.exec_driver_sql(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        ).scalar_one()
    )


@contextmanager
def _connect(url: str, what: str) -> Iterator[sa.Connection]:
    """A connection to a PostgreSQL database, or an OperationFailed naming it (no traceback)."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise OperationFailed(f"{what}: {url!r} is not a database URL") from None
    if parsed.get_backend_name() != "postgresql":
        raise OperationFailed(
            f"{what}: {_hide(url)} is not a PostgreSQL URL (postgresql+psycopg://user:password@"
            "host:5432/database)"
        )
    engine = sa.create_engine(parsed, poolclass=sa.NullPool)
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            reason = _first_line(str(exc.orig)) if exc.orig else "no answer"
            raise OperationFailed(f"{what}: cannot connect to {_hide(url)}: {reason}") from None
        with conn:
            yield conn
    finally:
        engine.dispose()


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """pg_dump's / pg_restore's --dbname (a libpq URI without the password) and environment (the
    password in PGPASSWORD: never on a command line other users may read)."""
    u = sa.make_url(url)
    conninfo = sa.URL.create(
        "postgresql", username=u.username, host=u.host, port=u.port, database=u.database
    ).render_as_string(hide_password=False)
    query = "&".join(
        f"{k}={v}" for k, vs in u.query.items() for v in ((vs,) if isinstance(vs, str) else vs)
    )
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return conninfo + (f"?{query}" if query else ""), env


def _program(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise OperationFailed(
            f"{name} not found: install Debian's postgresql-client (apt-get install "
            "postgresql-client), the same major version as the server or newer"
        )
    return path


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise OperationFailed(f"{what} failed: {_first_line(done.stderr)}")


# -- backup ---------------------------------------------------------------------------------------


def _backup_sqlite(store: Store, work: Path) -> dict[str, Any]:
    if not store.path.is_file():
        raise OperationFailed(f"no {store.name} database at {store.path}: nothing to back up")
    target = work / store.path.name
    src = sqlite3.connect(store.path, timeout=SQLITE_TIMEOUT)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # pages=-1: all pages in one step, one read transaction
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
            problem = dst.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise OperationFailed(f"the copy of {store.path} is damaged: {problem}")
            info = _sqlite_state(dst, store.name)
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise OperationFailed(f"backup of {store.path} failed: {exc}") from None
    finally:
        src.close()
    return {"kind": "sqlite", "file": target.name, **info}


def _sqlite_state(conn: sqlite3.Connection, name: str) -> dict[str, Any]:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        row = None
    info: dict[str, Any] = {"revision": row[0] if row else None}
    if name == "content":
        cv = conn.execute("SELECT value FROM meta WHERE key = 'content_version'").fetchone()
        info["content_version"] = int(cv[0]) if cv else 0
    return info


def _backup_pg(store: Store, work: Path) -> dict[str, Any]:
    pg_dump = _program("pg_dump")
    target = work / f"{store.name}.dump"
    with _connect(store.url, f"{store.name} database") as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            info: dict[str, Any] = {
                "revision": conn.exec_driver_sql(
                    "SELECT version_num FROM alembic_version"
                ).scalar_one_or_none()
            }
            if store.name == "content":
                cv = conn.exec_driver_sql(
                    "SELECT value FROM meta WHERE key = 'content_version'"
                ).scalar_one_or_none()
                info["content_version"] = int(cv) if cv is not None else 0
            conninfo, env = _libpq(store.url)
            # the dump sees exactly what this transaction sees (it stays open meanwhile)
            _run(
                [pg_dump, "-Fc", f"--snapshot={snapshot}", "-f", str(target), "-d", conninfo],
                env,
                f"pg_dump of {store.where}",
            )
    return {"kind": "postgresql", "file": target.name, **info}


def backup(settings: Settings, dest: Path, *, keep: int = 0, out: Out = print) -> Path:
    """Write a new backup folder into `dest` and return it; with `keep`, then remove all but the
    newest `keep` backups there."""
    dest.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    name = f"inflow-{now:%Y%m%dT%H%M%SZ}"
    final, n = dest / name, 1
    while final.exists():
        n += 1
        final = dest / f"{name}-{n}"
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=dest))  # 0700
    try:
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "created_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "node": settings.node_name,
            "stores": {},
            "files": {},
        }
        for store in stores(settings):
            if store.kind == "sqlite" and store.name == "events" and not store.path.exists():
                out(f"  events: no database at {store.path} yet, not in the backup")
                continue
            info = _backup_pg(store, work) if store.url else _backup_sqlite(store, work)
            manifest["stores"][store.name] = info
            out(f"  {store.name}: {store.where} -> {info['file']} (revision {info['revision']})")
        key = settings.data_dir / KEY_FILE
        if not settings.analytics_secret and key.is_file():
            shutil.copyfile(key, work / KEY_FILE)
            os.chmod(work / KEY_FILE, 0o600)
            out(f"  analytics key: {key}")
        for path in sorted(work.iterdir()):
            _fsync(path)
            manifest["files"][path.name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _fsync(work / MANIFEST)
        work.rename(final)
        _fsync(dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    version = manifest["stores"].get("content", {}).get("content_version")
    out(f"Backup written: {final} (content version {version})")
    if keep > 0:
        for old in sorted(complete_backups(dest))[:-keep]:
            shutil.rmtree(old)
            out(f"  removed the older backup {old}")
    return final


def complete_backups(dest: Path) -> list[Path]:
    """The complete backups in `dest` (oldest first by name: the names carry the UTC time)."""
    return sorted(p for p in dest.glob("inflow-*") if p.is_dir() and (p / MANIFEST).is_file())


# -- restore --------------------------------------------------------------------------------------


def read_manifest(src: Path) -> dict[str, Any]:
    """The backup's manifest, after checking every file's sha256 against it."""
    try:
        manifest = json.loads((src / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OperationFailed(f"{src} is not an Inflow backup (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise OperationFailed(f"{src / MANIFEST} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise OperationFailed(f"{src / MANIFEST}: not a backup this Inflow reads ({FORMAT})")
    for name, want in manifest["files"].items():
        path = src / name
        if not path.is_file():
            raise OperationFailed(f"{path} is missing: the backup is incomplete; nothing restored")
        if _sha256(path) != want["sha256"]:
            raise OperationFailed(
                f"{path} does not match its sha256 in the manifest: the backup is damaged; "
                "nothing restored"
            )
    return manifest


def _replace_file(path_in_backup: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".restoring")
    shutil.copyfile(path_in_backup, tmp)
    _fsync(tmp)
    for suffix in ("-wal", "-shm"):  # the old database's log must never be applied to this one
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    os.replace(tmp, target)
    _fsync(target.parent)


def _restore_pg(store: Store, dump: Path, revision: str | None, force: bool) -> None:
    pg_restore = _program("pg_restore")
    with _connect(store.url, f"{store.name} database") as conn:
        others = _pg_sessions(conn)
        if others and not force:
            raise OperationFailed(
                f"{others} other session(s) use {store.where}: stop every Inflow node first "
                "(or give --force to restore anyway)"
            )
        names = set(sa.inspect(conn).get_table_names())
        now = migrate.current(conn.engine, store.name) if "alembic_version" in names else None
    if names and now != revision:
        raise OperationFailed(
            f"{store.where} is at revision {now}, the backup at {revision}: restore into an "
            "empty database (dropdb and createdb it first)"
        )
    conninfo, env = _libpq(store.url)
    _run(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-acl",
            "--single-transaction",
            "--exit-on-error",
            "-d",
            conninfo,
            str(dump),
        ],
        env,
        f"pg_restore into {store.where}",
    )


def restore(settings: Settings, src: Path, *, force: bool = False, out: Out = print) -> None:
    """Put the backup in `src` in place of the configured databases (SQLite files or PostgreSQL
    URLs), restore the analytics key, migrate to head and empty the derived folders (the index
    is rebuilt at the next start)."""
    manifest = read_manifest(src)
    targets = {s.name: s for s in stores(settings)}
    for name, info in manifest["stores"].items():
        if info["kind"] != targets[name].kind:
            setting = "INFLOW_DATABASE_URL" if name == "content" else "INFLOW_EVENTS_DATABASE_URL"
            raise OperationFailed(
                f"the backup holds the {name} database on {info['kind']}, but {setting} puts it "
                f"on {targets[name].kind}: restore with the settings of the backed-up server "
                "(an SQLite backup onto PostgreSQL: restore it, then `inflow copy-to-postgres`)"
            )
    with data_dir_free(settings, force=force, command="restore"):
        for name, info in manifest["stores"].items():
            store = targets[name]
            if store.url:
                _restore_pg(store, src / info["file"], info["revision"], force)
            else:
                _replace_file(src / info["file"], store.path)
            out(f"  {name}: {info['file']} -> {store.where} (revision {info['revision']})")
        if KEY_FILE in manifest["files"]:
            if settings.analytics_secret:
                out("  analytics key: INFLOW_ANALYTICS_SECRET is set, the backup's key file unused")
            else:
                _replace_file(src / KEY_FILE, settings.data_dir / KEY_FILE)
                os.chmod(settings.data_dir / KEY_FILE, 0o600)
                out(f"  analytics key -> {settings.data_dir / KEY_FILE}")
        for folder in DERIVED:
            _empty(settings.data_dir / folder)
        for name in manifest["stores"]:
            _upgrade(settings, targets[name], out)
    version = manifest["stores"].get("content", {}).get("content_version")
    out(
        f"Restored {src} (made {manifest['created_at']}, content version {version}); the search "
        "index is rebuilt when the server starts"
    )


def _empty(folder: Path) -> None:
    """Remove a derived folder's contents (the index lock file stays: this process holds it)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name == INDEX_LOCK:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _pseudonymizer(settings: Settings) -> Pseudonymizer:
    return Pseudonymizer(load_key(settings.analytics_secret, settings.data_dir))


def _upgrade(settings: Settings, store: Store, out: Out) -> None:
    engine = database_engine(store.url) if store.url else sqlite_engine(store.path)
    try:
        pseudonymize = _pseudonymizer(settings) if store.name == "content" else None
        applied = migrate.upgrade(engine, store.name, pseudonymize=pseudonymize)
    except migrate.MigrationError as exc:
        raise OperationFailed(f"{store.name}: {exc}") from None
    finally:
        engine.dispose()
    if applied:
        out(f"  {store.name}: migrated {' '.join(applied)}")


# -- copy from SQLite to PostgreSQL ---------------------------------------------------------------


def copy_to_postgres(
    settings: Settings,
    database_url: str,
    events_database_url: str = "",
    *,
    force: bool = False,
    out: Out = print,
) -> dict[str, dict[str, int]]:
    """Copy the data folder's SQLite content database (and the events one, with
    `events_database_url`) into empty PostgreSQL databases; returns each store's rows per table."""
    if settings.database_url:
        raise OperationFailed(
            "INFLOW_DATABASE_URL is set: the content is on PostgreSQL already (copy-to-postgres "
            "reads the SQLite files of INFLOW_DATA_DIR; unset it)"
        )
    if events_database_url and settings.events_database_url:
        raise OperationFailed(
            "INFLOW_EVENTS_DATABASE_URL is set: the events are on PostgreSQL already (unset it)"
        )
    if events_database_url and _same_database(database_url, events_database_url):
        raise OperationFailed(
            "the content and the events need two different databases (--database-url and "
            "--events-database-url name the same one)"
        )
    jobs = [("content", settings.db_path, database_url)]
    if events_database_url:
        jobs.append(("events", settings.events_db_path, events_database_url))
    copied: dict[str, dict[str, int]] = {}
    with data_dir_free(settings, force=force, command="copy"):
        for name, path, url in jobs:
            copied[name] = _copy_store(settings, name, path, url, out)
    total = sum(sum(counts.values()) for counts in copied.values())
    out(
        f"Copied {total} rows. Now set INFLOW_DATABASE_URL"
        + (" and INFLOW_EVENTS_DATABASE_URL" if events_database_url else "")
        + " on every node, and give them this node's analytics key (INFLOW_ANALYTICS_SECRET or "
        f"{settings.data_dir / KEY_FILE})"
    )
    return copied


def _same_database(a: str, b: str) -> bool:
    try:
        ua, ub = sa.make_url(a), sa.make_url(b)
    except sa.exc.ArgumentError:
        return False
    return (ua.host, ua.port, ua.database) == (ub.host, ub.port, ub.database)


def _copy_store(settings: Settings, name: str, path: Path, url: str, out: Out) -> dict[str, int]:
    if not path.is_file():
        raise OperationFailed(f"no SQLite {name} database at {path}: nothing to copy")
    source = sqlite_engine(path)
    try:
        revision = migrate.current(source, name)
        if revision is None:
            raise OperationFailed(f"{path} has no schema revision: start Inflow on it once first")
        with _connect(url, f"--{'events-' if name == 'events' else ''}database-url") as conn:
            names = set(sa.inspect(conn).get_table_names())
            if names:
                _check_empty(conn, name, names, revision, url)
        target = database_engine(url)
        try:
            out(f"{name}: {path} -> {_hide(url)} (revision {revision})")
            if not names:
                _upgrade_to(settings, target, name, revision)
            counts = _copy_rows(source, target, out)
            _upgrade(settings, Store(name, path, url), out)
        finally:
            target.dispose()
    finally:
        source.dispose()
    return counts


def _check_empty(conn: sa.Connection, name: str, names: set[str], revision: str, url: str) -> None:
    """A target with tables must be an empty Inflow database at the source's revision (what a
    `inflow migrate` or an interrupted copy leaves); anything else is refused."""
    if "alembic_version" not in names:
        raise OperationFailed(
            f"{_hide(url)} is not empty ({len(names)} tables): give a new database"
        )
    now = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one_or_none()
    md = sa.MetaData()
    md.reflect(conn)
    full = [
        t.name
        for t in md.sorted_tables
        if t.name != "alembic_version"
        and conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first() is not None
    ]
    if full:
        raise OperationFailed(
            f"{_hide(url)} is not empty ({', '.join(full[:5])}{'...' if len(full) > 5 else ''} "
            "hold rows): copy-to-postgres only writes into a new database"
        )
    if now != revision:
        raise OperationFailed(
            f"{_hide(url)} is at revision {now}, the SQLite {name} database at {revision}: give a "
            "new database"
        )


def _upgrade_to(settings: Settings, engine: sa.Engine, name: str, revision: str) -> None:
    pseudonymize = _pseudonymizer(settings) if name == "content" else None
    try:
        migrate.upgrade(engine, name, pseudonymize=pseudonymize, to=revision)
    except migrate.MigrationError as exc:
        raise OperationFailed(f"{name}: {exc}") from None


def _copy_rows(source: sa.Engine, target: sa.Engine, out: Out) -> dict[str, int]:
    """Every row of every table (parents before children), in batches, in one transaction; the
    id sequences moved past the copied ids; row counts checked before the commit."""
    src, dst = sa.MetaData(), sa.MetaData()
    src.reflect(source)
    dst.reflect(target)
    counts: dict[str, int] = {}
    with source.connect() as read, target.begin() as write:  # read: one snapshot of SQLite
        for table in dst.sorted_tables:
            if table.name == "alembic_version":
                continue
            origin = src.tables[table.name]
            columns = [origin.c[c.name] for c in table.columns]
            query = sa.select(*columns).order_by(*origin.primary_key.columns)
            want = read.execute(sa.select(sa.func.count()).select_from(origin)).scalar_one()
            done = 0
            result = read.execution_options(yield_per=BATCH).execute(query)
            for part in result.mappings().partitions():
                write.execute(sa.insert(table), [dict(r) for r in part])
                done += len(part)
                if want > 10 * BATCH and done % (10 * BATCH) == 0:
                    out(f"  {table.name}: {done}/{want} rows")
            got = write.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            if got != want or done != want:
                raise OperationFailed(
                    f"{table.name}: {want} rows in SQLite but {got} copied; nothing committed"
                )
            pk = list(table.primary_key.columns)
            if done and len(pk) == 1 and isinstance(pk[0].type, sa.Integer):
                write.execute(
                    sa.text("SELECT setval(pg_get_serial_sequence(:t, :c), :v)"),
                    {
                        "t": table.name,
                        "c": pk[0].name,
                        "v": write.execute(sa.select(sa.func.max(pk[0]))).scalar_one(),
                    },
                )
            counts[table.name] = done
            out(f"  {table.name}: {done} rows")
    return counts
