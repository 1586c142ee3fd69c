"""The sync engine: read a source through its connector, then write what changed.

One run (docs/sources.md, "Sync"):

1. The connector of the source's kind (server/sources/connectors/) lists what the source has
   now, fetching through the safe fetcher with the source's policy. It writes nothing. If it
   raises (`SyncError`, a refused or failed fetch, anything), the run fails and **nothing**
   changes: no aid, no item; only the run's row and the source's last status say why.
2. Only once the whole listing is read, it is compared with the source's items (`SourceItem`,
   one per external id) in the storage thread, and every change is written: new aids,
   rewritten aids, archived aids, their versions and audit entries (`saved_by`
   "source:<id>"), the items, then the run's counts and the source's last status. Each
   transaction (`Library.write`: then the index and the catalog take the changed aids the same
   way as every admin write) takes `WRITE_BATCH` entries of the listing, then the items gone
   from it, the last one the run and the source's status.

Batches: one transaction for 2,000 new aids held the storage thread ~5-10 s, and every other
write (a feedback vote, an author's save) waited for it; between batches they get in. A batch
that fails (a database error; the server stopping) rolls back alone: the batches before it stay
written (each change whole: aid, version, audit entry and item together), the run is `failed`
saying how many entries were written and with their counts, nothing is archived (the last
step), the source's validators are not kept, so the next run reads it all again, finds what
was written unchanged and writes the rest. What the connector could not read never gets this
far: that run changes nothing.

Rules:
- A new item becomes an aid `<source id>-<slug of its title>` (at most 64 characters; a short
  hash of its external id is added when that id is taken), `origin` = the source, `source` = the
  item's URL, `verified_at` = today, mapping fields (apps, tags, audience, owner) from the source
  (and a git file's front matter) only when it is made; `published` when the source publishes
  automatically, else `review`. Its id stays the same for as long as the item exists.
- An item whose content hash changed gets its content fields rewritten (mapping fields stay as
  people set them in Inflow) and its status by the publish mode: a `review` source puts a
  changed published aid back into review. An aid someone archived in Inflow stays archived.
- An item missing from a complete listing is `removed`: its aid is archived (`on_remove:
  archive`) or left as it is (`keep`). An item that comes back is active again and its aid
  returns to its publish mode's status (counted as added).
- An item the connector could not read (`Failed`) keeps its old aid; the reason is in the run.
- A listing cut short (`complete=False`: a page cap, a feed cut off in transit) archives nothing.
- A source that answered 304 as a whole changes nothing: every item counts as unchanged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from server.admin.common import slugify
from server.errors import AidNotFound
from server.models import AID_TYPES, MAX_LIST, Aid, FieldErrors, validate
from server.peer.store import PeerTx, table_of
from server.sources.connectors.base import (
    Failed,
    Item,
    Listing,
    SyncContext,
    SyncError,
    Unchanged,
)
from server.sources.models import (
    ITEM_ERROR_MAX,
    MAX_RUN_FAILURES,
    RUN_ERROR_MAX,
    SUMMARY_MAX,
    Source,
    SourceItem,
    SyncRun,
)
from server.storage import now_iso

if TYPE_CHECKING:
    from server.fetch import FetchPolicy, SafeFetcher
    from server.library import Library
    from server.storage import Changes, Storage

log = logging.getLogger(__name__)

ID_MAX = 64
WRITE_BATCH = 50  # entries written per transaction (module docstring, "Batches")
TAG_MAX = 200  # an aid's tag (server/models.py)
Progress = Callable[[int, int, str], None]


def source_actor(source_id: str) -> tuple[str, str, str]:
    """Who the audit log names for a sync's changes."""
    return ("", f"source:{source_id}", f"source:{source_id}")


def summary_text(run: SyncRun) -> str:
    """'2 added, 1 changed, 5 unchanged, 0 removed, 1 failed' (or why the run failed)."""
    if run.status == "failed":
        return f"failed: {run.error}"[:SUMMARY_MAX]
    return (
        f"{run.added} added, {run.changed} changed, {run.unchanged} unchanged, "
        f"{run.removed} removed, {run.failed} failed"
    )


def content_hash(item: Item) -> str:
    """sha256 of what an aid is made of (any change of it rewrites the aid)."""
    data = {
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "body": item.body,
        "type": item.type,
        "tags": list(item.tags),
        "fields": dict(item.fields),
        "transcript": item.transcript,
    }
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def set_source_status(tx: PeerTx, source_id: str, **values: str) -> None:
    """The sync's read-only fields of a source (last_sync_at, last_status, last_summary,
    validators), written without moving its `updated_at` (that says when people changed it)."""
    table = table_of(Source)
    tx.execute(sa.update(table).where(table.c.id == source_id).values(**values))


def load_validators(source: Source) -> dict[str, str]:
    try:
        data = json.loads(source.validators or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str) and v}


@dataclass
class Counts:
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)

    def fail(self, external_id: str, reason: str) -> None:
        self.failed += 1
        if len(self.failures) < MAX_RUN_FAILURES:
            self.failures.append({"item": external_id, "reason": reason[:ITEM_ERROR_MAX]})

    def copy(self) -> Counts:
        return dataclasses.replace(self, failures=list(self.failures))

    def on(self, run: SyncRun) -> SyncRun:
        """`run` with these counts."""
        return dataclasses.replace(
            run,
            added=self.added,
            changed=self.changed,
            unchanged=self.unchanged,
            removed=self.removed,
            failed=self.failed,
            failures=json.dumps(self.failures),
        )


class SyncEngine:
    """Runs syncs of sources (the service decides when, and keeps one run per source)."""

    def __init__(
        self,
        library: Library,
        fetcher: SafeFetcher,
        policy_for: Callable[[Source], FetchPolicy],
        connectors: Mapping[str, Any] | None = None,
    ) -> None:
        self.library = library
        self.fetcher = fetcher
        self.policy_for = policy_for
        if connectors is None:
            from server.sources.connectors import CONNECTORS

            connectors = CONNECTORS
        self.connectors = connectors

    async def run(self, source: Source, run: SyncRun, progress: Progress | None = None) -> SyncRun:
        """One run of `source` recorded in `run` (a row already stored with status running).
        Returns the finished run, as stored."""
        storage = self.library.storage
        previous = {
            i.external_id: i
            for i in await storage.call(
                lambda: PeerTx(storage.conn).list(SourceItem, source_id=source.id)
            )
        }
        connector = self.connectors.get(source.kind)
        try:
            if connector is None:
                raise SyncError(f"no connector reads sources of kind {source.kind!r}")
            work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f"inflow-{source.id}-"))
            try:
                ctx = SyncContext(
                    fetcher=self.fetcher,
                    policy=self.policy_for(source),
                    source=source,
                    previous=previous,
                    validators=load_validators(source),
                    work_dir=work,
                    on_progress=progress,
                )
                listing = await connector.list(ctx)
            finally:  # a git clone can be big: removed off the loop
                await asyncio.to_thread(shutil.rmtree, work, True)
        except SyncError as exc:
            return await self.fail(source.id, run, exc.reason)
        except Exception as exc:  # a connector's bug must not leave the run "running"
            log.exception("sync of source %s failed", source.id)
            return await self.fail(source.id, run, f"{type(exc).__name__}: {exc}")
        return await self._write(source, run, listing, progress)

    async def _write(
        self, source: Source, run: SyncRun, listing: Listing, progress: Progress | None
    ) -> SyncRun:
        """Write what the listing says in transactions of `WRITE_BATCH` entries (the storage
        thread is free for other writes between them); the last one also writes the run and
        the source's status. A batch that fails rolls back alone: the run is failed with the
        counts of the batches written before it (see the module's docstring)."""
        storage = self.library.storage
        plan: _Plan | None = None
        committed, written = Counts(), 0  # what the batches written so far did
        total = len(listing.entries)

        def batch(changes: Changes) -> SyncRun | None:
            nonlocal plan
            tx = PeerTx(storage.conn)
            current = tx.get(Source, source.id)  # gone: this batch rolls back
            if plan is None:
                items = {i.external_id: i for i in tx.list(SourceItem, source_id=source.id)}
                if listing.not_modified:
                    unchanged = sum(1 for i in items.values() if i.state == "active")
                    return self._finish(tx, current, run, listing, Counts(unchanged=unchanged))
                writer = _Writer(storage, tx, current, items, now_iso(), changes, Counts())
                plan = _Plan(writer, _operations(listing, items))
            else:
                plan.writer.begin(tx, changes)
            end = min(len(plan.ops), plan.done + WRITE_BATCH)
            for op in plan.ops[plan.done : end]:
                plan.writer.apply(op)
            plan.done = end
            if end >= len(plan.ops):
                return self._finish(tx, current, run, listing, plan.writer.counts)
            return None

        while True:
            if progress is not None:
                done = plan.done if plan is not None else 0
                total = len(plan.ops) if plan is not None else total
                progress(done, total, f"writing the changes: {done} of {total}")
            try:
                finished = await self.library.write(batch)
            except Exception as exc:
                log.exception("writing the sync of source %s failed", source.id)
                return await self.fail(
                    source.id,
                    run,
                    f"could not write the changes ({written} of {total} written): {exc}",
                    committed,
                )
            if finished is not None:
                return finished
            assert plan is not None
            committed, written = plan.writer.counts.copy(), plan.done

    async def fail(
        self, source_id: str, run: SyncRun, reason: str, counts: Counts | None = None
    ) -> SyncRun:
        """A failed run: only its row and the source's last status change (`counts`: what the
        batches written before a failed one did)."""
        done = dataclasses.replace(
            run, status="failed", finished_at=now_iso(), error=reason[:RUN_ERROR_MAX]
        )
        if counts is not None:
            done = counts.on(done)

        def op(changes: Changes) -> SyncRun:
            tx = PeerTx(self.library.storage.conn)
            stored = tx.update(done)
            set_source_status(
                tx,
                source_id,
                last_sync_at=done.finished_at,
                last_status="failed",
                last_summary=summary_text(done),
            )
            return stored

        return await self.library.write(op)

    # -- in the storage thread ------------------------------------------------------------------
    def _finish(
        self, tx: PeerTx, current: Source, run: SyncRun, listing: Listing, counts: Counts
    ) -> SyncRun:
        """The run's counts and the source's status (in the run's last transaction)."""
        status = "partial" if counts.failed else "ok"
        done = counts.on(dataclasses.replace(run, status=status, finished_at=now_iso()))
        tx.update(done)
        # a source read afresh keeps what it answered now (no ETag now: none kept); a 304 keeps
        # the stored ones unless the connector says otherwise
        validators = listing.validators
        if listing.not_modified and not validators:
            validators = load_validators(current)
        set_source_status(
            tx,
            current.id,
            last_sync_at=done.finished_at,
            last_status=status,
            last_summary=summary_text(done),
            validators=json.dumps(validators, sort_keys=True),
        )
        return done


Operation = Item | Unchanged | Failed | SourceItem  # a SourceItem: gone from the listing


def _operations(listing: Listing, items: Mapping[str, SourceItem]) -> list[Operation]:
    """What a run writes, in order: each listed entry once (the first of a repeated id), then,
    when the listing is complete, the items it no longer has."""
    seen: set[str] = set()
    ops: list[Operation] = []
    for entry in listing.entries:
        if entry.external_id not in seen:
            seen.add(entry.external_id)
            ops.append(entry)
    if listing.complete:
        ops.extend(
            item
            for external_id, item in items.items()
            if external_id not in seen and item.state != "removed"
        )
    return ops


@dataclass
class _Plan:
    """A run's writes across its transactions."""

    writer: _Writer
    ops: list[Operation]
    done: int = 0


class _Writer:
    """The changes of one run, written as they are decided (inside the transaction of the
    batch at hand: `begin` gives it the next one)."""

    def __init__(
        self,
        storage: Storage,
        tx: PeerTx,
        source: Source,
        items: dict[str, SourceItem],
        stamp: str,
        changes: Changes,
        counts: Counts,
    ) -> None:
        self.storage = storage
        self.tx = tx
        self.source = source
        self.items = items
        self.stamp = stamp
        self.changes = changes
        self.counts = counts
        self.today = dt.date.today().isoformat()
        self.saved_by = f"source:{source.id}"
        self.actor = source_actor(source.id)
        self.taken: set[str] = set()  # aid ids given out in this run
        self._apps: set[str] | None = None

    def begin(self, tx: PeerTx, changes: Changes) -> None:
        """The next batch's transaction."""
        self.tx, self.changes = tx, changes

    def apply(self, op: Operation) -> None:
        if isinstance(op, Item):
            self.item(op)
        elif isinstance(op, Unchanged):
            self.unchanged(op)
        elif isinstance(op, Failed):
            self.failed(op)
        else:
            self.removed(op)

    def _find(self, aid_id: str) -> Aid | None:
        try:
            aid: Aid = self.storage.get_aid_sync(aid_id)
        except AidNotFound:
            return None
        return aid

    @property
    def publish_status(self) -> str:
        return "published" if self.source.publish == "auto" else "review"

    # -- entries ----------------------------------------------------------------------------
    def item(self, entry: Item) -> None:
        digest = content_hash(entry)
        prev = self.items.get(entry.external_id)
        aid = self._find(prev.aid_id) if prev is not None and prev.aid_id else None
        if prev is None or aid is None:
            self._create(entry, digest, prev)
            return
        back = prev.state == "removed"
        if digest == prev.content_hash and aid.origin == self.source.id:
            if back:
                self._restore(aid, prev, entry)
            else:
                self.counts.unchanged += 1
                self._save_item(prev, entry, state="active", error="")
            return
        self._rewrite(aid, entry, digest, prev, back)

    def unchanged(self, entry: Unchanged) -> None:
        prev = self.items.get(entry.external_id)
        aid = self._find(prev.aid_id) if prev is not None and prev.aid_id else None
        if prev is None or aid is None:
            self.counts.fail(entry.external_id, "not modified, but Inflow never read it: next run")
            return
        if prev.state == "removed":
            self._restore(aid, prev, None)
            return
        self.counts.unchanged += 1
        self._save_item(prev, None, state="active", error="")

    def failed(self, entry: Failed) -> None:
        self.counts.fail(entry.external_id, entry.reason)
        prev = self.items.get(entry.external_id)
        reason = entry.reason[:ITEM_ERROR_MAX]
        if prev is None:
            self.tx.add(
                SourceItem(
                    source_id=self.source.id,
                    external_id=entry.external_id,
                    url=entry.external_id if entry.external_id.startswith("http") else "",
                    fetched_at=self.stamp,
                    state="failed",
                    error=reason,
                )
            )
        else:  # its aid stays as it was; a removed item stays removed
            state = "removed" if prev.state == "removed" else "failed"
            self.tx.update(
                dataclasses.replace(prev, fetched_at=self.stamp, state=state, error=reason)
            )

    def removed(self, prev: SourceItem) -> None:
        if not prev.aid_id:  # it only ever failed (a 404 link of a crawl): nothing was removed
            self.tx.delete(SourceItem, prev.id)
            return
        self.counts.removed += 1
        self.tx.update(dataclasses.replace(prev, state="removed", changed_at=self.stamp, error=""))
        if self.source.on_remove != "archive" or not prev.aid_id:
            return
        aid = self._find(prev.aid_id)
        if aid is None or aid.status == "archived":
            return
        stored, _ = self.storage.save_aid_tx(
            dataclasses.replace(aid, status="archived"), self.saved_by, self.changes
        )
        self._audit("aid.archive", stored, {"from": aid.status, "reason": "gone from the source"})

    # -- aids -------------------------------------------------------------------------------
    def _create(self, entry: Item, digest: str, prev: SourceItem | None) -> None:
        try:
            aid = validate(Aid, self._new_aid_data(entry))
        except FieldErrors as exc:
            self._item_failed(entry, prev, f"not a valid aid: {exc}")
            return
        aid = dataclasses.replace(aid, origin=self.source.id)
        stored, _ = self.storage.save_aid_tx(aid, self.saved_by, self.changes)
        self._audit("aid.create", stored, {"version": stored.version, "status": stored.status})
        self.counts.added += 1
        if prev is None:
            self.tx.add(
                SourceItem(
                    source_id=self.source.id,
                    external_id=entry.external_id,
                    url=entry.url,
                    aid_id=stored.id,
                    etag=entry.etag,
                    last_modified=entry.last_modified,
                    content_hash=digest,
                    fetched_at=self.stamp,
                    changed_at=self.stamp,
                )
            )
        else:
            self._save_item(prev, entry, state="active", error="", aid_id=stored.id, digest=digest)

    def _rewrite(self, aid: Aid, entry: Item, digest: str, prev: SourceItem, back: bool) -> None:
        data = aid.content_fields()
        data.update(self._content(entry, aid))
        if back or aid.status != "archived":  # an aid archived in Inflow stays archived
            data["status"] = self.publish_status
        try:
            new = validate(Aid, data)
        except FieldErrors as exc:
            self._item_failed(entry, prev, f"not a valid aid: {exc}")
            return
        new = dataclasses.replace(new, origin=self.source.id)
        if not back and _same_content(new, aid):
            # what changed upstream is not on the aid (a feed entry's categories, a git file's
            # mapping, both only read when the aid is made): unchanged, no version, same status
            self.counts.unchanged += 1
            self._save_item(prev, entry, state="active", error="", digest=digest)
            return
        new = dataclasses.replace(new, verified_at=self.today)
        stored, change = self.storage.save_aid_tx(new, self.saved_by, self.changes)
        if change != "unchanged":
            fields = sorted(
                k for k, v in new.content_fields().items() if aid.content_fields().get(k) != v
            )
            self._audit(
                "aid.update",
                stored,
                {"version": stored.version, "fields": fields, "status": stored.status},
            )
        if back:
            self.counts.added += 1
        else:
            self.counts.changed += 1
        self._save_item(prev, entry, state="active", error="", digest=digest)

    def _restore(self, aid: Aid, prev: SourceItem, entry: Item | None) -> None:
        """An item that was removed is there again: its aid comes back."""
        self.counts.added += 1
        self._save_item(prev, entry, state="active", error="")
        if aid.status == "archived" and self.source.on_remove == "archive":
            stored, _ = self.storage.save_aid_tx(
                dataclasses.replace(aid, status=self.publish_status), self.saved_by, self.changes
            )
            self._audit("aid.restore", stored, {"from": aid.status, "to": stored.status})

    def _item_failed(self, entry: Item, prev: SourceItem | None, reason: str) -> None:
        self.failed(Failed(entry.external_id, reason))

    def _save_item(
        self,
        prev: SourceItem,
        entry: Item | None,
        *,
        state: str,
        error: str,
        aid_id: str | None = None,
        digest: str | None = None,
    ) -> None:
        new = dataclasses.replace(prev, fetched_at=self.stamp, state=state, error=error)
        if entry is not None:
            new = dataclasses.replace(
                new, url=entry.url, etag=entry.etag, last_modified=entry.last_modified
            )
        if aid_id is not None:
            new = dataclasses.replace(new, aid_id=aid_id)
        if digest is not None and digest != prev.content_hash:
            new = dataclasses.replace(new, content_hash=digest, changed_at=self.stamp)
        if state != prev.state:
            new = dataclasses.replace(new, changed_at=self.stamp)
        if new != prev:
            self.tx.update(new)

    def _audit(self, action: str, aid: Aid, detail: dict[str, Any]) -> None:
        self.storage.audit_add_tx(
            self.actor, action, "aid", aid.id, {"source": self.source.id, **detail}
        )

    # -- data -------------------------------------------------------------------------------
    def _content(self, entry: Item, old: Aid | None) -> dict[str, Any]:
        """The fields an aid takes from its item (every sync)."""
        fields = entry.fields
        kind = entry.type or str(fields.get("type") or "") or (old.type if old else "")
        if kind not in AID_TYPES:
            kind = self.source.aid_type
        out: dict[str, Any] = {
            "title": entry.title,
            "summary": entry.summary or str(fields.get("summary") or ""),
            "body": entry.body,
            "type": kind,
            "source": entry.url if entry.url.startswith(("http://", "https://")) else "",
            "transcript": entry.transcript if kind == "video" else "",
        }
        return out

    def _new_aid_data(self, entry: Item) -> dict[str, Any]:
        fields = entry.fields
        data = self._content(entry, None)
        known = self.known_apps()
        apps = [a for a in _merge(self.source.apps, _strs(fields.get("apps"))) if a in known]
        tags = [
            t[:TAG_MAX] for t in _merge(self.source.tags, entry.tags, _strs(fields.get("tags")))
        ]
        data.update(
            id=self._new_id(entry),
            apps=apps[:MAX_LIST],  # apps the catalog does not have (any more) are left out
            tags=list(dict.fromkeys(tags))[:MAX_LIST],  # a feed's many categories: the first
            audience=_merge(self.source.audience, _strs(fields.get("audience"))),
            owner=str(fields.get("owner") or "") or self.source.owner,
            status=self.publish_status,
            verified_at=self.today,
        )
        interval = fields.get("review_interval_days")
        if isinstance(interval, int) and not isinstance(interval, bool):
            data["review_interval_days"] = interval
        return data

    def known_apps(self) -> set[str]:
        """The catalog's app ids (a git file's front matter may name only those)."""
        if self._apps is None:
            self._apps = {a.id for a in self.storage.all_apps_sync()}
        return self._apps

    def _new_id(self, entry: Item) -> str:
        wanted = str(entry.fields.get("id") or "")
        base = slugify(wanted) if wanted else slugify(entry.title)
        prefix = f"{self.source.id}-"
        candidate = (base if base.startswith(prefix) else prefix + base)[:ID_MAX].strip("-")
        if not self._taken(candidate):
            self.taken.add(candidate)
            return candidate
        suffix = hashlib.sha256(entry.external_id.encode()).hexdigest()
        for n in (6, 10, 16):
            tail = f"-{suffix[:n]}"
            candidate2 = candidate[: ID_MAX - len(tail)].rstrip("-") + tail
            if not self._taken(candidate2):
                self.taken.add(candidate2)
                return candidate2
        raise SyncError(f"no free aid id for {entry.external_id!r}")

    def _taken(self, aid_id: str) -> bool:
        return aid_id in self.taken or self._find(aid_id) is not None


def _same_content(new: Aid, old: Aid) -> bool:
    """The aid's content is as it was (the status and verification date a rewrite would set
    aside)."""
    skip = ("status", "verified_at")
    before, after = old.content_fields(), new.content_fields()
    return all(before.get(k) == v for k, v in after.items() if k not in skip)


def _strs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value if isinstance(v, str | int) and str(v).strip()]
    return []


def _merge(*groups: Any) -> list[str]:
    out: dict[str, None] = {}
    for group in groups:
        for value in group:
            text = str(value).strip()
            if text:
                out[text] = None
    return list(out)


__all__ = ["SyncEngine", "content_hash", "load_validators", "source_actor", "summary_text"]
