"""Index snapshots: a new node starts from another node's index instead of rebuilding it.

Rebuilding the Whoosh index from the database takes minutes at 100k aids; copying a finished one
takes seconds. So on PostgreSQL (many nodes, docs/scale-out.md "A new node joins"):

- `publish_snapshot` (job `index-snapshot`, every `settings.snapshot_minutes`; `inflow snapshot`)
  copies this node's live generation (`IndexService.export_generation`, on the index's writer
  thread, so the copy is one committed state at one content version), tars it, and stores the
  archive in `index_snapshots` + `index_snapshot_chunks` (8 MB a row, each chunk its own short
  transaction on a connection of its own: the content store's write lock is never taken, so
  authors' writes do not wait for a snapshot). The row is `complete` only once every chunk and
  the archive's size and sha256 are in; the newest `KEEP` complete snapshots are kept.
- `join_from_snapshot` (at start-up, `Library.start`, when the index is missing or disagrees)
  takes the newest complete snapshot of this Inflow's index schema that the change log can bring
  up to date (its version + 1 is the log's first row or later; an empty log: the database's own
  version), streams its chunks into a file checking size and sha256, unpacks it refusing anything
  but plain files (no paths, no links), installs it (`IndexService.install_generation` verifies
  it again) and applies the changes made since (`Library.catch_up`). Anything wrong: False, and
  the caller rebuilds as before.

Every database and file step runs in a thread: the event loop never waits on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from aiohttp import web

from index.schema import SCHEMA_VERSION
from index.service import IndexUnavailable
from server import keys
from server.db.cluster_tables import content_changes, index_snapshot_chunks, index_snapshots
from server.db.engine import database_engine, sqlite_engine

if TYPE_CHECKING:
    from server.jobs import JobRun
    from server.library import Library
    from server.storage import Storage

log = logging.getLogger(__name__)

JOB = "index-snapshot"
CHUNK_BYTES = 8 * 1024 * 1024  # one row of index_snapshot_chunks
KEEP = 2  # complete snapshots kept per index schema (the newest), after each publish
# A publish that died half-way leaves a row with complete = 0; it is deleted after this long.
STALE_INCOMPLETE = dt.timedelta(hours=6)
# Snapshots of another index schema (an older Inflow's, during an upgrade) go after this long.
OTHER_SCHEMA = dt.timedelta(days=1)
# The first snapshot of a database that has none, this long after start-up.
FIRST_SNAPSHOT_SECONDS = 60.0
# A plain tar: bench/bench_join.py measured the index at 100k aids (381 MB) packing in 1.2 s and
# unpacking in 2.9 s; gzip level 1 saved only 20% (305 MB) for 24 s and 6.9 s. The reader takes
# either (tarfile's "r:*"), so changing this needs no migration.
COMPRESSLEVEL = 0
# An archive unpacks to at most this many times its own size (a gzip bomb is refused).
MAX_EXPANSION = 50
_MEMBER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")  # an index file's name: no path at all


class SnapshotRefused(Exception):
    """A snapshot that must not be installed (damaged, unsafe, of another schema...)."""


@dataclass(frozen=True)
class Snapshot:
    id: int
    content_version: int
    schema: int
    doc_count: int
    size: int
    sha256: str
    node: str
    created_at: str


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def is_postgres(storage: Storage) -> bool:
    """Snapshots are for many nodes on one PostgreSQL; on SQLite one node owns its index."""
    return bool(storage.url) and sa.make_url(storage.url).get_backend_name() == "postgresql"


@contextlib.contextmanager
def _engine(storage: Storage) -> Iterator[sa.Engine]:
    """An engine of our own on the content database: chunks never go through the content
    store's connection (or its write lock)."""
    engine = database_engine(storage.url) if storage.url else sqlite_engine(storage.path)
    try:
        yield engine
    finally:
        engine.dispose()


@contextlib.asynccontextmanager
async def _work_dir(library: Library) -> AsyncIterator[Path]:
    """A scratch folder beside the index (same file system: the export is hard links and the
    install a rename; /tmp may be memory), made and removed in a thread."""
    parent = library.index.index_dir.parent
    await asyncio.to_thread(parent.mkdir, parents=True, exist_ok=True)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=".snapshot-", dir=parent))
    try:
        yield work
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


# -- reading the table ------------------------------------------------------------------------


def _row(row: Any) -> Snapshot:
    m = row._mapping
    return Snapshot(
        int(m["id"]),
        int(m["content_version"]),
        int(m["schema"]),
        int(m["doc_count"]),
        int(m["size"]),
        str(m["sha256"]),
        str(m["node"]),
        str(m["created_at"]),
    )


def _newest(conn: sa.Connection, schema: int | None = None) -> Snapshot | None:
    t = index_snapshots
    q = sa.select(t).where(t.c.complete == 1)
    if schema is not None:
        q = q.where(t.c.schema == schema)
    row = conn.execute(q.order_by(t.c.content_version.desc(), t.c.id.desc()).limit(1)).first()
    return _row(row) if row is not None else None


def list_snapshots_sync(storage: Storage) -> list[Snapshot]:
    """Every complete snapshot, newest first (tests, `inflow snapshot`)."""
    t = index_snapshots
    with _engine(storage) as engine, engine.connect() as conn:
        rows = conn.execute(
            sa.select(t)
            .where(t.c.complete == 1)
            .order_by(t.c.content_version.desc(), t.c.id.desc())
        ).all()
    return [_row(r) for r in rows]


# -- publishing -------------------------------------------------------------------------------


def pack(source: Path, archive: Path, compresslevel: int = COMPRESSLEVEL) -> None:
    """A flat tar (file names only) of an exported generation, gzip at `compresslevel` (0: a
    plain tar; bench/bench_join.py compares them)."""
    mode = "w:gz" if compresslevel > 0 else "w"
    options = {"compresslevel": compresslevel} if compresslevel > 0 else {}
    with tarfile.open(archive, mode, **options) as tar:  # type: ignore[call-overload]
        for path in sorted(source.iterdir()):
            tar.add(path, arcname=path.name, recursive=False)


def _store(
    storage: Storage, archive: Path, content_version: int, doc_count: int, node: str
) -> Snapshot | None:
    """Write the archive as a new snapshot (chunks first, `complete` last) and prune. None when
    the newest complete snapshot already has this version (another node made it)."""
    t, chunks = index_snapshots, index_snapshot_chunks
    with _engine(storage) as engine:
        with engine.begin() as conn:
            newest = _newest(conn, SCHEMA_VERSION)
            if newest is not None and newest.content_version >= content_version:
                return None
            created = _now_iso()
            snapshot_id = conn.execute(
                sa.insert(t)
                .values(
                    content_version=content_version,
                    schema=SCHEMA_VERSION,
                    doc_count=doc_count,
                    node=node,
                    created_at=created,
                    complete=0,
                )
                .returning(t.c.id)
            ).scalar_one()
        try:
            digest = hashlib.sha256()
            size = 0
            with archive.open("rb") as f:
                for seq, data in enumerate(iter(lambda: f.read(CHUNK_BYTES), b"")):
                    digest.update(data)
                    size += len(data)
                    with engine.begin() as conn:  # one short transaction per chunk
                        conn.execute(
                            sa.insert(chunks).values(snapshot_id=snapshot_id, seq=seq, data=data)
                        )
            with engine.begin() as conn:
                conn.execute(
                    sa.update(t)
                    .where(t.c.id == snapshot_id)
                    .values(size=size, sha256=digest.hexdigest(), complete=1)
                )
                _prune(conn)
        except BaseException:
            with contextlib.suppress(Exception), engine.begin() as conn:
                _delete(conn, [snapshot_id])
            raise
    return Snapshot(
        snapshot_id,
        content_version,
        SCHEMA_VERSION,
        doc_count,
        size,
        digest.hexdigest(),
        node,
        created,
    )


def _delete(conn: sa.Connection, ids: list[int]) -> None:
    if ids:
        chunks = index_snapshot_chunks
        conn.execute(sa.delete(chunks).where(chunks.c.snapshot_id.in_(ids)))
        conn.execute(sa.delete(index_snapshots).where(index_snapshots.c.id.in_(ids)))


def _prune(conn: sa.Connection, keep: int = KEEP) -> None:
    """Keep the newest `keep` complete snapshots of each index schema (during a rolling upgrade
    nodes of both versions join), but none of another schema older than OTHER_SCHEMA (the
    upgrade is over), and incomplete ones younger than STALE_INCOMPLETE (being written)."""
    t = index_snapshots
    now = dt.datetime.now(dt.UTC)

    def iso(when: dt.datetime) -> str:
        return when.isoformat(timespec="seconds").replace("+00:00", "Z")

    rows = conn.execute(
        sa.select(t.c.id, t.c.schema, t.c.created_at)
        .where(t.c.complete == 1)
        .order_by(t.c.content_version.desc(), t.c.id.desc())
    ).all()
    seen: dict[int, int] = {}
    old: list[int] = []
    for snapshot_id, schema, created in rows:
        seen[schema] = seen.get(schema, 0) + 1
        if seen[schema] > keep or (schema != SCHEMA_VERSION and created < iso(now - OTHER_SCHEMA)):
            old.append(snapshot_id)
    stale = iso(now - STALE_INCOMPLETE)
    old += conn.execute(
        sa.select(t.c.id).where(t.c.complete == 0, t.c.created_at < stale)
    ).scalars()
    _delete(conn, old)


async def publish_snapshot(library: Library, node: str) -> Snapshot | None:
    """Store a snapshot of this node's live index (see the module docstring). None when there
    is nothing new to store (the newest snapshot has this version). IndexUnavailable when this
    node has no healthy index."""
    start = time.perf_counter()
    async with _work_dir(library) as work:
        state = await library.index.export_generation(work / "gen")
        await asyncio.to_thread(pack, work / "gen", work / "index.tar")
        snapshot = await asyncio.to_thread(
            _store,
            library.storage,
            work / "index.tar",
            state.content_version,
            state.doc_count,
            node,
        )
    if snapshot is None:
        log.info(
            "index snapshot: the newest one already has content version %s", state.content_version
        )
    else:
        log.info(
            "index snapshot %s stored: content version %s, %s aids, %.1f MB in %.1f s",
            snapshot.id,
            snapshot.content_version,
            snapshot.doc_count,
            snapshot.size / 1e6,
            time.perf_counter() - start,
        )
    return snapshot


# -- joining ----------------------------------------------------------------------------------


def _choose(storage: Storage, db_version: int) -> Snapshot | None:
    """The snapshot to start from; None when there is none of this schema; SnapshotRefused
    saying why the newest cannot be used."""
    with _engine(storage) as engine, engine.connect() as conn:
        snapshot = _newest(conn, SCHEMA_VERSION)
        first = conn.execute(sa.select(sa.func.min(content_changes.c.version))).scalar()
    if snapshot is None:
        return None
    if snapshot.content_version > db_version:
        raise SnapshotRefused(
            f"snapshot {snapshot.id} has content version {snapshot.content_version}, newer than "
            f"the database's {db_version} (a restored database?)"
        )
    if first is None:
        if snapshot.content_version != db_version:
            raise SnapshotRefused(
                f"snapshot {snapshot.id} is at content version {snapshot.content_version}, the "
                f"database at {db_version}, and the change log is empty"
            )
    elif snapshot.content_version + 1 < int(first):
        raise SnapshotRefused(
            f"snapshot {snapshot.id} is at content version {snapshot.content_version}, the "
            f"change log starts at {first}: the changes between are gone"
        )
    return snapshot


def _download(storage: Storage, snapshot: Snapshot, archive: Path) -> None:
    """Stream the chunks into `archive` (one chunk in memory at a time); check size and sha256."""
    chunks = index_snapshot_chunks
    digest = hashlib.sha256()
    size = 0
    with _engine(storage) as engine, engine.connect() as conn, archive.open("wb") as out:
        seqs = conn.execute(
            sa.select(chunks.c.seq)
            .where(chunks.c.snapshot_id == snapshot.id)
            .order_by(chunks.c.seq)
        ).scalars()
        for expected, seq in enumerate(list(seqs)):
            if seq != expected:
                raise SnapshotRefused(f"snapshot {snapshot.id}: chunk {expected} is missing")
            data = conn.execute(
                sa.select(chunks.c.data).where(
                    chunks.c.snapshot_id == snapshot.id, chunks.c.seq == seq
                )
            ).scalar_one()
            digest.update(data)
            size += len(data)
            out.write(data)
    if size != snapshot.size:
        raise SnapshotRefused(f"snapshot {snapshot.id}: {size} bytes, {snapshot.size} recorded")
    if digest.hexdigest() != snapshot.sha256:
        raise SnapshotRefused(f"snapshot {snapshot.id}: sha256 differs from the recorded one")


def unpack(archive: Path, target: Path) -> None:
    """Unpack a snapshot archive into `target`, refusing (SnapshotRefused) anything but plain
    files with plain names: no directories, paths (`../`, `/`), links or devices, and no more
    than MAX_EXPANSION times the archive's size. Files are created, never overwritten."""
    budget = archive.stat().st_size * MAX_EXPANSION
    target.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                if not member.isfile() or not _MEMBER.match(member.name):
                    raise SnapshotRefused(f"the archive holds {member.name!r}: not an index file")
                budget -= member.size
                if budget < 0:
                    raise SnapshotRefused("the archive unpacks to too much")
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                with source, (target / member.name).open("xb") as out:
                    shutil.copyfileobj(source, out, 1024 * 1024)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise SnapshotRefused(f"the archive is unreadable: {exc}") from exc


async def join_from_snapshot(library: Library) -> bool:
    """Install the newest usable snapshot and catch up from the change log (module docstring).
    False (and a log line saying why) when there is none or it is refused: rebuild instead."""
    start = time.perf_counter()
    db_version = await library.storage.content_version()
    try:
        snapshot = await asyncio.to_thread(_choose, library.storage, db_version)
        if snapshot is None:  # the first node, or a new index schema: nobody made one yet
            log.info("no complete index snapshot of index schema %s to start from", SCHEMA_VERSION)
            return False
        async with _work_dir(library) as work:
            await asyncio.to_thread(_download, library.storage, snapshot, work / "index.tar")
            await asyncio.to_thread(unpack, work / "index.tar", work / "gen")
            await library.index.install_generation(work / "gen")
    except (SnapshotRefused, IndexUnavailable) as exc:
        log.warning("index snapshot not used: %s", exc)
        return False
    except Exception:  # the database or the disk failing: a rebuild still works
        log.exception("index snapshot not used: joining from it failed")
        return False
    installed = time.perf_counter() - start
    applied = await library.catch_up()
    log.info(
        "index installed from snapshot %s (content version %s, %s aids, by %s) in %.1f s, "
        "then %s change(s) caught up in %.1f s",
        snapshot.id,
        snapshot.content_version,
        snapshot.doc_count,
        snapshot.node,
        installed,
        applied,
        time.perf_counter() - start - installed,
    )
    return True


def _log_covers_sync(storage: Storage, version: int, db_version: int) -> bool:
    """Does the change log hold every change after `version` (up to the database's)?"""
    with _engine(storage) as engine, engine.connect() as conn:
        first = conn.execute(sa.select(sa.func.min(content_changes.c.version))).scalar()
    if first is None:
        return version == db_version
    return version + 1 >= int(first)


async def join_if_behind(library: Library) -> str:
    """The start-up hook (`Library.start`, PostgreSQL only): when the index is missing or
    disagrees with the database, bring it up to date the cheap way. An index of this schema that
    the change log covers (a restarted node) catches up from the log; any other (none, damaged,
    too old, another schema) is replaced by the newest usable snapshot. Returns what was done
    ("caught up", "snapshot") or "" (in step already, not PostgreSQL, or no usable snapshot:
    the caller's reconcile rebuilds as before)."""
    storage, index = library.storage, library.index
    if not is_postgres(storage):
        return ""
    db_version = await storage.content_version()
    count = await storage.count_aids()
    if count == 0 or index.agrees_with(db_version, count):
        return ""  # in step, or nothing to index (a rebuild of nothing is instant)
    state = index.state
    usable = index.health == "ok" and state.content_version >= 0 and state.schema == SCHEMA_VERSION
    if (
        usable
        and state.content_version <= db_version
        and await asyncio.to_thread(_log_covers_sync, storage, state.content_version, db_version)
    ):
        applied = await library.catch_up()
        log.info("index caught up from the change log at start-up: %s change(s)", applied)
        return "caught up"
    return "snapshot" if await join_from_snapshot(library) else ""


# -- the job ----------------------------------------------------------------------------------


def _any_snapshot_sync(storage: Storage) -> bool:
    with _engine(storage) as engine, engine.connect() as conn:
        return _newest(conn) is not None


async def snapshots_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx (after jobs_ctx): on PostgreSQL, the `index-snapshot` job every
    `settings.snapshot_minutes` (0: never), the first run soon when there is no snapshot yet."""
    settings = app[keys.SETTINGS]
    library = app[keys.LIBRARY]
    jobs = app.get(keys.JOBS)
    if jobs is not None and settings.snapshot_minutes > 0 and is_postgres(library.storage):

        async def run(job: JobRun) -> None:
            job.progress(0, 1, "copying the index into the database")
            snapshot = await publish_snapshot(library, settings.node_name)
            done = f"snapshot {snapshot.id} stored" if snapshot else "nothing new to store"
            job.progress(1, 1, done)

        every = settings.snapshot_minutes * 60.0
        first = None
        if not await asyncio.to_thread(_any_snapshot_sync, library.storage):
            first = min(every, FIRST_SNAPSHOT_SECONDS)
        jobs.register(JOB, every, run, first_in=first, once=True)  # one node of all
    yield


__all__ = [
    "JOB",
    "Snapshot",
    "SnapshotRefused",
    "is_postgres",
    "join_from_snapshot",
    "join_if_behind",
    "list_snapshots_sync",
    "pack",
    "publish_snapshot",
    "snapshots_ctx",
    "unpack",
]
