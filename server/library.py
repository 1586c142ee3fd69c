"""The content library: keeps the database, the index and the in-memory catalog in step.

Every write goes database first (the source of truth), then the index through its single writer,
then a fresh catalog snapshot. A crash between the steps is healed at the next start-up, which
rebuilds the index when its recorded content version differs from the database's.

A corrupt index (a damaged file found at open or by a failing search) is rebuilt from the
database in the background (`_heal`); meanwhile searches answer 503 and /readyz says why.
`agreement()` is the one comparison of database and index that /readyz and `inflow check` share.

Many nodes on one PostgreSQL (docs/scale-out.md): every content transaction writes a change-log row
(server/storage.py `_bump_version`); `catch_up()` applies the rows after the index's version (the
aids re-read from the database) to this node's index and catalog, and rebuilds when the log has a
gap (pruned rows). server/follow.py calls it on a NOTIFY or a poll. A write on this node catches up
first when another node's changes came in between, so the index never skips a version.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from index.service import IndexService, IndexUnavailable
from server.catalog import Catalog
from server.content import ContentSet, load_dir, write_dir
from server.models import Aid
from server.snapshots import join_if_behind
from server.storage import CHANGES_PAGE, ChangeRow, Changes, Storage

T = TypeVar("T")

log = logging.getLogger(__name__)


class Library:
    def __init__(self, storage: Storage, index: IndexService) -> None:
        self.storage = storage
        self.index = index
        self.catalog = Catalog.build(0, [], [])
        self._lock = asyncio.Lock()  # one content change at a time keeps versions ordered
        self._heal_task: asyncio.Task[None] | None = None
        self.rebuilds = 0  # full rebuilds since start-up (catch-up is incremental: tests count)
        index.on_corrupt = self._schedule_heal

    async def stop(self) -> None:
        """Cancel a background rebuild still running (call before closing index and storage)."""
        self.index.on_corrupt = None
        task, self._heal_task = self._heal_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _schedule_heal(self) -> None:
        if self._heal_task is None or self._heal_task.done():
            self._heal_task = asyncio.create_task(self._heal(), name="index-heal")

    async def _heal(self) -> None:
        """Rebuild a corrupt index from the database (after any content change in flight)."""
        async with self._lock:
            if self.index.health == "ok":
                return  # a write path's own rebuild got there first
            self.index.health = "rebuilding"
            try:
                count = await self.rebuild()
            except Exception as exc:
                log.exception("rebuilding the corrupt index failed")
                self.index.health = "corrupt"
                self.index.problem = f"{self.index.problem}; the rebuild failed: {exc}"
                return
            log.info("search index rebuilt from the database: %s aids", count)

    async def start(self, content_dir: Path | None = None) -> None:
        """Import seed content into an empty database, reconcile the index, load the catalog.
        On PostgreSQL an index that is missing or disagrees first catches up from the change log
        or installs another node's snapshot (server/snapshots.py): a rebuild is the last resort.
        """
        if content_dir is not None and await self.storage.content_version() == 0:
            await self.import_dir(content_dir)
            return
        started = asyncio.get_running_loop().time()
        how = await join_if_behind(self)
        if await self.reconcile():
            how = "rebuilt from the database"
        if how:
            took = asyncio.get_running_loop().time() - started
            log.info("index ready at start-up in %.1f s: %s", took, how)

    async def reconcile(self, progress: Callable[[int, int], None] | None = None) -> bool:
        """Rebuild the index if it disagrees with the database. Returns True if it rebuilt."""
        version = await self.storage.content_version()
        count = await self.storage.count_aids()
        if self.index.agrees_with(version, count):
            await self._refresh_catalog(version=version)
            return False
        log.info(
            "index disagrees with the database (index %s, database v%s/%s aids): rebuilding",
            self.index.state,
            version,
            count,
        )
        await self.rebuild(progress)
        return True

    async def rebuild(self, progress: Callable[[int, int], None] | None = None) -> int:
        # The version first: another node's write landing between the two reads is then applied
        # again by catch_up (harmless), never recorded as indexed while missing from the index.
        version = await self.storage.content_version()
        aids = await self.storage.all_aids()
        await self.index.rebuild(aids, version, progress)
        self.rebuilds += 1
        count = len(aids)
        del aids  # bodies are not kept: the catalog holds metadata only
        await self._refresh_catalog(version=version)
        return count

    async def _refresh_catalog(self, version: int | None = None) -> None:
        # Metadata only: loading every body would cost tens of MB the allocator never returns.
        aids = await self.storage.all_aid_metas()
        version = version if version is not None else await self.storage.content_version()
        apps = await self.storage.all_apps()
        mentors = await self.storage.all_mentors()
        loop = asyncio.get_running_loop()
        self.catalog = await loop.run_in_executor(None, Catalog.build, version, apps, aids, mentors)

    async def _refresh_mentors(self, version: int) -> None:
        """Mentors changed, nothing else: keep the compiled rules, swap in the mentors."""
        self.catalog = self.catalog.with_mentors(version, await self.storage.all_mentors())

    async def load(self, content_dir: Path) -> ContentSet:
        known_aids = set(self.catalog.aids)
        known_apps = set(self.catalog.apps)  # mentors may name these apps too
        owners = {c.id: c.app_id for c in self.catalog.contexts.values()}  # no other app's ids
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None, load_dir, content_dir, known_aids, known_apps, owners
        )

    async def import_dir(self, content_dir: Path, saved_by: str = "import") -> dict[str, Any]:
        content = await self.load(content_dir)
        return await self.import_content(content, saved_by)

    async def import_content(self, content: ContentSet, saved_by: str = "import") -> dict[str, Any]:
        async with self._lock:
            report = await self.storage.import_content(
                content.apps, content.aids, saved_by, content.mentors
            )
            changed: list[Aid] = report.pop("changed_aids")
            if self.index.state.content_version < 0:
                await self.reconcile()
            elif self.index.state.content_version != report["content_version"] - 1:
                # Nothing changed, or another node's changes came before ours: the change log
                # has them all, in order (applying only ours would skip theirs for good).
                await self._catch_up_locked()
            else:
                try:
                    await self.index.apply(changed, content_version=report["content_version"])
                except IndexUnavailable:
                    # The database has committed; never leave the index behind it.
                    log.exception("incremental index update failed; rebuilding the index")
                    await self.rebuild()
                    return report
                apps_changed = bool(report["apps_created"] or report["apps_updated"])
                mentors_changed = bool(report["mentors_created"] or report["mentors_updated"])
                if apps_changed:
                    await self._refresh_catalog()
                else:  # aids only: keep the compiled rules, swap in the changed aids' metadata
                    self.catalog = self.catalog.with_aids(report["content_version"], changed)
                    if mentors_changed:
                        await self._refresh_mentors(report["content_version"])
            return report

    async def export_dir(self, target: Path) -> int:
        aids = await self.storage.all_aids()
        apps = await self.storage.all_apps()
        mentors = await self.storage.all_mentors()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, write_dir, target, apps, aids, mentors)

    async def agreement(self, wait: float | None = None) -> dict[str, Any]:
        """Do the database and the index agree? One answer for /readyz and `inflow check`:
        {ok, detail, database: {content_version, aids}, index: {content_version, aids, schema,
        health}}. With `wait`, a content change in flight (database committed, index not yet)
        is waited for that long; if it is still running, the answer says so and counts as ok."""
        index = self.index
        if wait is not None:
            first = await self.agreement()
            if first["ok"] or index.health != "ok" or not self._lock.locked():
                return first
            try:  # a change in flight: the database is ahead until its index update lands
                await asyncio.wait_for(self._lock.acquire(), wait)
            except TimeoutError:
                return {**first, "ok": True, "detail": "a content change is being applied"}
            try:
                return await self.agreement()
            finally:
                self._lock.release()
        version = await self.storage.content_version()
        count = await self.storage.count_aids()
        state = index.state
        result: dict[str, Any] = {
            "database": {"content_version": version, "aids": count},
            "index": {
                "content_version": state.content_version,
                "aids": state.doc_count,
                "schema": state.schema,
                "health": index.health,
            },
        }
        if index.health != "ok":
            what = "rebuilding" if index.health == "rebuilding" else "corrupt"
            return {**result, "ok": False, "detail": f"index {what}: {index.problem}"}
        if state.content_version < 0:
            detail = f"index not built: it disagrees with the database ({count} aids)"
            return {**result, "ok": False, "detail": detail}
        if not index.agrees_with(version, count):
            return {
                **result,
                "ok": False,
                "detail": f"index disagrees with the database: index has content version "
                f"{state.content_version} ({state.doc_count} aids), the database "
                f"{version} ({count} aids)",
            }
        detail = (
            f"index ok: generation {index.generation}, {index.segments} segment(s), "
            f"{state.doc_count} aids, content version {state.content_version}"
        )
        return {**result, "ok": True, "detail": detail}

    async def check(self) -> dict[str, Any]:
        """Do the database and the index agree? (the `inflow check` command)"""
        return await self.agreement()

    async def write(self, fn: Callable[[Changes], T]) -> T:
        """The admin write path: `fn(changes)` runs in one database transaction (storage thread),
        then the index gets the changed aids through its single writer and the catalog is
        rebuilt, so a publish, unpublish or remap reaches suggest as soon as this returns.

        Mentor changes touch no aid, but they still go through the index's writer (an empty
        commit) so the index records the new content version: the database and the index agree
        at the next start, and suggest's cache, keyed on the catalog version, moves on."""
        async with self._lock:
            result, changes, version = await self.storage.write(fn)
            if not changes.any:
                return result
            if self.index.state.content_version < 0:
                await self.reconcile()
                return result
            if self.index.state.content_version != version - 1:
                await self._catch_up_locked()  # another node's changes came first: all, in order
                return result
            try:
                await self.index.apply(changes.upserts, changes.deletes, content_version=version)
            except IndexUnavailable:
                log.exception("incremental index update failed; rebuilding the index")
                await self.rebuild()
                return result
            if changes.catalog or changes.deletes:
                await self._refresh_catalog()
            else:  # aids (and mentors) only: keep the compiled rules
                self.catalog = self.catalog.with_aids(version, changes.upserts)
                if changes.mentors:
                    await self._refresh_mentors(version)
            return result

    # -- following other nodes' changes (the change log) -----------------------------------------
    async def catch_up(self) -> int:
        """Apply the change log's rows after the index's content version: the changed aids are
        re-read from the database and written to the index in one commit per page of rows, the
        catalog refreshed (its version moves, so suggest's result cache moves on). A gap in the
        log (rows pruned) or no index yet: a full rebuild. Returns how many rows were applied
        (0 when in step, as after this node's own writes)."""
        async with self._lock:
            return await self._catch_up_locked()

    async def _catch_up_locked(self) -> int:
        applied = 0
        while True:
            if self.index.health != "ok":
                return applied  # the heal task rebuilds it from the database
            indexed = self.index.state.content_version
            if indexed < 0:
                await self.rebuild()
                return applied
            # The database's version first: every row up to it is committed (same transaction),
            # so no row after the index's version then means they were pruned.
            latest = await self.storage.content_version()
            if latest <= indexed:
                return applied
            rows = await self.storage.changes_after(indexed, CHANGES_PAGE)
            if not _contiguous(indexed, rows):
                log.info(
                    "change log has a gap after content version %s (database at %s): rebuilding",
                    indexed,
                    latest,
                )
                await self.rebuild()
                return applied
            try:
                await self._apply_rows(rows)
            except IndexUnavailable:
                log.exception("catching up the index failed; rebuilding the index")
                await self.rebuild()
                return applied
            applied += len(rows)

    async def _apply_rows(self, rows: list[ChangeRow]) -> None:
        """One index commit for these rows: every aid they name is re-read (its current state);
        the ones gone from the database are deleted."""
        version = rows[-1].version
        touched = list(dict.fromkeys(i for r in rows for i in (*r.upserts, *r.deletes)))
        aids = await self.storage.aids_by_ids(touched) if touched else []
        present = {a.id for a in aids}
        deletes = [i for i in touched if i not in present]
        await self.index.apply(aids, deletes, content_version=version)
        if deletes or any(r.catalog for r in rows):
            await self._refresh_catalog(version=version)
        else:  # aids (and mentors) only: keep the compiled rules
            self.catalog = self.catalog.with_aids(version, aids)
            if any(r.mentors for r in rows):
                await self._refresh_mentors(version)


def _contiguous(indexed: int, rows: list[ChangeRow]) -> bool:
    """Do the rows follow the index's version one by one (no pruned or missing row)?"""
    return bool(rows) and all(r.version == indexed + i for i, r in enumerate(rows, 1))
