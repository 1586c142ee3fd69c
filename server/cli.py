"""The `inflow` command: serve, import, reindex, check, export, migrate, snapshot, backup, restore,
copy-to-postgres."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from index.service import IndexService, IndexUnavailable
from server.analytics.pseudonym import Pseudonymizer, load_key
from server.backup import OperationFailed, backup, copy_to_postgres, restore
from server.db.engine import database_engine, sqlite_engine
from server.db.migrate import (
    DATABASES,
    MIGRATIONS,
    MigrationError,
    current,
    new_revision,
    upgrade,
)
from server.demo import (
    PATHS_DEMO_FILE,
    PEER_DEMO_FILE,
    SOURCES_DEMO_FILE,
    seed_demo_paths,
    seed_demo_sources,
    seed_peer_demo,
)
from server.errors import ContentError
from server.library import Library
from server.logs import setup_logging
from server.peer.store import PeerStore
from server.settings import Settings, load_settings
from server.snapshots import is_postgres, publish_snapshot
from server.storage import Storage


@asynccontextmanager
async def open_library(settings: Settings, reconcile: bool = True) -> AsyncIterator[Library]:
    storage = Storage(
        settings.db_path,
        analytics_secret=settings.analytics_secret,
        key_dir=settings.data_dir,
        url=settings.database_url,
    )
    await storage.open()
    index = IndexService(
        settings.index_dir, search_threads=1, writer_timeout=settings.writer_timeout_seconds
    )
    try:
        await index.open()
        library = Library(storage, index)
        if reconcile:
            await library.reconcile(_progress)
        yield library
    finally:
        await index.close()
        await storage.close()


def _progress(done: int, total: int) -> None:
    print(f"\r  indexing {done}/{total} aids", end="" if done < total else "\n", file=sys.stderr)


async def _import(settings: Settings, directory: Path) -> int:
    async with open_library(settings) as library:
        try:
            report = await library.import_dir(directory)
        except ContentError as exc:
            # Every problem of every file at once (field, rule and reference errors together),
            # grouped by file (in the order found), by line within a file.
            files = len({f for f, _, _ in exc.errors})
            print(
                f"Nothing imported: {len(exc.errors)} problem(s) found in {files} file(s).",
                file=sys.stderr,
            )
            order = {f: i for i, (f, _, _) in reversed(list(enumerate(exc.errors)))}
            for f, line, msg in sorted(exc.errors, key=lambda e: (order[e[0]], e[1])):
                print(f"  {directory / f}:{line}: {msg}", file=sys.stderr)
            return 2
        summary = {k: len(v) for k, v in report.items() if isinstance(v, list)}
        print(
            f"Imported {directory} (content version {report['content_version']}): "
            + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary.items() if v)
        )
        peer_demo = directory / PEER_DEMO_FILE  # the demo's tips, questions, pairings...
        if peer_demo.is_file():
            seeded = await seed_peer_demo(PeerStore(library.storage), peer_demo, library.catalog)
            print(
                f"Peer learning demo ({peer_demo}): "
                + ", ".join(f"{k} {v}" for k, v in seeded.items())
            )
        sources_demo = directory / SOURCES_DEMO_FILE  # the demo's feed, intranet and git sources
        if sources_demo.is_file():
            try:
                added = await seed_demo_sources(
                    PeerStore(library.storage), sources_demo, settings.base_url, library.catalog
                )
            except ValueError as exc:
                print(f"Sources not added: {exc}", file=sys.stderr)
                return 2
            print(
                f"Demo sources ({sources_demo}): "
                + ", ".join(f"{k} {v}" for k, v in added.items())
                + " (they sync when the server starts)"
            )
        paths_demo = directory / PATHS_DEMO_FILE  # the demo's learning paths and assignments
        if paths_demo.is_file():
            try:
                paths = await seed_demo_paths(
                    PeerStore(library.storage), paths_demo, library.catalog
                )
            except ValueError as exc:
                print(f"Learning paths not added: {exc}", file=sys.stderr)
                return 2
            print(
                f"Learning paths demo ({paths_demo}): "
                + ", ".join(f"{k} {v}" for k, v in paths.items())
            )
        return 0


async def _reindex(settings: Settings) -> int:
    async with open_library(settings, reconcile=False) as library:
        start = time.perf_counter()
        count = await library.rebuild(_progress)
        elapsed = time.perf_counter() - start
        print(
            f"Rebuilt the index: {count} aids in {elapsed:.1f} s "
            f"({count / elapsed if elapsed else 0:.0f} aids/s)"
        )
    return 0


async def _check(settings: Settings) -> int:
    async with open_library(settings, reconcile=False) as library:
        result = await library.check()
    print(json.dumps(result, indent=2))
    if not result["ok"]:
        # e.g. "index corrupt: gen-1/MAIN_x.seg is missing", "index disagrees with the database"
        print(f"{result['detail']}: run `inflow reindex`.", file=sys.stderr)
        return 1
    return 0


def _migrate(settings: Settings) -> int:
    """Upgrade the databases to the newest schema revisions (start-up does it too)."""
    targets = [("content", settings.db_path, settings.database_url)]
    if (MIGRATIONS / "events" / "env.py").exists():
        targets.append(("events", settings.events_db_path, settings.events_database_url))
    for database, path, url in targets:
        engine = database_engine(url) if url else sqlite_engine(path)
        where = engine.url.render_as_string(hide_password=True) if url else str(path)
        try:
            before = current(engine, database)
            if database == "content":
                pseudonym = Pseudonymizer(load_key(settings.analytics_secret, settings.data_dir))
                applied = upgrade(engine, database, pseudonymize=pseudonym)
            else:
                applied = upgrade(engine, database)
            now = current(engine, database)
        except MigrationError as exc:
            print(f"inflow migrate: {exc}", file=sys.stderr)
            return 4
        finally:
            engine.dispose()
        if applied:
            done = " ".join(applied)
            print(f"{database} ({where}): {before or 'no revision'} -> {now}: applied {done}")
        else:
            print(f"{database} ({where}): at {now}, nothing to apply")
    return 0


async def _snapshot(settings: Settings) -> int:
    """Store a snapshot of the index now (the index-snapshot job's work; docs/scale-out.md)."""
    async with open_library(settings, reconcile=False) as library:
        if not is_postgres(library.storage):
            print(
                "inflow snapshot: snapshots are for nodes sharing a PostgreSQL database "
                "(INFLOW_DATABASE_URL); on SQLite the index is rebuilt from the database file",
                file=sys.stderr,
            )
            return 2
        await library.start()  # up to date first: from the change log, a snapshot or a rebuild
        snapshot = await publish_snapshot(library, settings.node_name)
    if snapshot is None:
        print("The newest snapshot already holds this content version: nothing stored")
    else:
        print(
            f"Stored index snapshot {snapshot.id}: content version {snapshot.content_version}, "
            f"{snapshot.doc_count} aids, {snapshot.size / 1e6:.1f} MB"
        )
    return 0


async def _export(settings: Settings, directory: Path) -> int:
    async with open_library(settings) as library:
        count = await library.export_dir(directory)
    print(f"Exported {count} files to {directory}")
    return 0


def _operate(settings: Settings, args: argparse.Namespace) -> int:
    """backup, restore, copy-to-postgres (server/backup.py): an error is one line, status 2."""
    try:
        if args.command == "backup":
            backup(settings, args.dest, keep=args.keep)
        elif args.command == "restore":
            restore(settings, args.source, force=args.force)
        else:
            copy_to_postgres(
                settings, args.database_url, args.events_database_url, force=args.force
            )
    except OperationFailed as exc:
        print(f"inflow {args.command}: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inflow", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML settings file (else INFLOW_* env)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    imp = sub.add_parser("import", help="import a content directory (all or nothing)")
    imp.add_argument("directory", type=Path)
    sub.add_parser("reindex", help="rebuild the search index from the database")
    sub.add_parser("check", help="check that the index and the database agree")
    mig = sub.add_parser("migrate", help="upgrade the databases to the newest schema")
    mig.add_argument(
        "--new",
        metavar="MESSAGE",
        help="(developers) write the next revision from the table declarations instead",
    )
    mig.add_argument("--database", choices=DATABASES, default="content")
    sub.add_parser("snapshot", help="store a snapshot of the index for new nodes (PostgreSQL)")
    exp = sub.add_parser("export", help="write all content to a directory")
    exp.add_argument("directory", type=Path)
    bak = sub.add_parser("backup", help="back up the databases (online) into a new folder in DEST")
    bak.add_argument("dest", type=Path, metavar="DEST_DIR")
    bak.add_argument("--keep", type=int, default=0, help="then keep only the newest N backups")
    res = sub.add_parser("restore", help="restore a backup folder (stop the server first)")
    res.add_argument("source", type=Path, metavar="SRC_DIR")
    res.add_argument("--force", action="store_true", help="even while a server uses the data")
    cop = sub.add_parser("copy-to-postgres", help="copy the SQLite databases to empty PostgreSQL")
    cop.add_argument("--database-url", required=True, metavar="URL")
    cop.add_argument("--events-database-url", default="", metavar="URL")
    cop.add_argument("--force", action="store_true", help="even while a server uses the data")
    args = parser.parse_args(argv)
    settings = load_settings(toml_path=args.config)
    # text or JSON lines (INFLOW_LOG_FORMAT), each with the request id (server/logs.py)
    setup_logging(settings.log_format, logging.INFO)
    if args.command == "serve":
        if args.host or args.port:
            settings = settings.with_(
                host=args.host or settings.host, port=args.port or settings.port
            )
        from server.app import create_app

        print(
            f"Inflow on http://{settings.host}:{settings.port}/  (demo apps: "
            f"http://{settings.host}:{settings.port}/demo/)",
            flush=True,
        )
        web.run_app(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            print=None,
            access_log=None,  # server/logs.py writes one line per request, with its id
            shutdown_timeout=10.0,
        )
        return 0
    if args.command == "migrate":
        if args.new:
            with tempfile.TemporaryDirectory() as work:
                path = new_revision(args.database, args.new, workdir=Path(work))
            print(f"wrote {path}: review it, then run the tests")
            return 0
        return _migrate(settings)
    if args.command in ("backup", "restore", "copy-to-postgres"):
        return _operate(settings, args)
    try:
        if args.command == "import":
            return asyncio.run(_import(settings, args.directory))
        if args.command == "reindex":
            return asyncio.run(_reindex(settings))
        if args.command == "check":
            return asyncio.run(_check(settings))
        if args.command == "snapshot":
            return asyncio.run(_snapshot(settings))
        return asyncio.run(_export(settings, args.directory))
    except (IndexUnavailable, MigrationError) as exc:
        print(f"inflow {args.command}: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    raise SystemExit(main())
