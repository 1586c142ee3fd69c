"""Import, export and the audit log."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

from auth.identity import Identity
from server.admin.archive import Limits, extract, inspect_archive, zip_dir
from server.admin.common import (
    ServiceBase,
    require,
    saved_by,
    who,
)
from server.content import load_dir
from server.cursor import decode_cursor, encode_cursor
from server.errors import (
    BadRequest,
    Conflict,
    ValidationFailed,
)
from server.storage import Changes

log = logging.getLogger(__name__)


class TransferOps(ServiceBase):
    """Import and export of the content format; the audit log."""

    async def audit(
        self, filters: dict[str, str], cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        before = decode_cursor(cursor)
        if before is not None and not isinstance(before, int):
            raise BadRequest("The cursor is not one this server gave out.")
        rows = await self.storage.call(self.storage.audit_page_sync, filters, before, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (encode_cursor(rows[-1]["id"]) if more and rows else None)

    # -- import and export ---------------------------------------------------------------------
    def _limits(self) -> Limits:
        return Limits(
            max_bytes=self.settings.admin_max_archive_bytes,
            max_files=self.settings.admin_max_archive_files,
        )

    async def import_archive(
        self, identity: Identity, data: bytes, filename: str = ""
    ) -> dict[str, Any]:
        require(identity, "import", "Importing content")
        loop = asyncio.get_running_loop()
        limits = self._limits()
        plan = await loop.run_in_executor(None, inspect_archive, data, limits)
        if not plan.files:
            raise ValidationFailed(
                "The archive holds no content files (aids/*.md, apps/*.yaml, mentors/*.yaml).",
                ignored=plan.ignored[:50],
            )
        catalog = self.library.catalog

        def unpack_and_load(tmp: str) -> Any:
            root = Path(tmp) / "content"
            extract(data, plan, root, limits)
            owners = {c.id: c.app_id for c in catalog.contexts.values()}
            return load_dir(root, set(catalog.aids), set(catalog.apps), owners)

        with tempfile.TemporaryDirectory(prefix="inflow-import-") as tmp:
            content = await loop.run_in_executor(None, unpack_and_load, tmp)
        for app in content.apps:
            taken = [
                c.id
                for c in app.contexts
                if c.id in catalog.contexts and catalog.contexts[c.id].app_id != app.id
            ]
            if taken:
                raise Conflict(f"App {app.id!r}: context id(s) used by another app: {taken}.")
        report = await self.library.import_content(content, saved_by(identity))
        summary = {k: v for k, v in report.items() if isinstance(v, list)}

        def audit(changes: Changes) -> None:
            self.storage.audit_add_tx(
                who(identity),
                "content.import",
                "archive",
                filename[:200],
                {
                    "content_version": report["content_version"],
                    **{k: v[:200] for k, v in summary.items() if v},
                },
            )

        await self.library.write(audit)
        return {**report, "ignored": plan.ignored[:200]}

    async def export_archive(self, identity: Identity) -> bytes:
        require(identity, "export", "Exporting content")
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory(prefix="inflow-export-") as tmp:
            await self.library.export_dir(Path(tmp))
            data = await loop.run_in_executor(None, zip_dir, Path(tmp))

        def audit(changes: Changes) -> None:
            self.storage.audit_add_tx(who(identity), "content.export", "archive", "", {})

        await self.library.write(audit)
        return data
