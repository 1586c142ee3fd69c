"""The e-mail outbox in the console (admins: `outbox.read`, `outbox.retry`, the roles of
`audit.read`): the queued and failed notifications (server/peer/mail.py) with their attempts and
last error, and "Retry" on a failed one, which queues it again with its attempts reset, wakes the
sender (server/peer/sender.py) and is audited as `notification.retry` in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from aiohttp import web

from auth.identity import Identity
from server import keys
from server.admin.common import who
from server.console.common import need, posted, render
from server.errors import Conflict, NotFound
from server.peer.models import Notification
from server.peer.store import PeerTx, table_of

routes = web.RouteTableDef()
PATH = "/admin/outbox"
SHOWN = 500  # rows per status on the page, oldest first
NOTICES = {"retried": "Queued again: the sender tries it now (recorded in the audit log)."}


async def pending(config: Mapping[Any, Any]) -> dict[str, list[Notification]]:
    """The failed and the queued notifications, oldest first (sent ones are done)."""
    store = config[keys.PEER]

    def read(tx: PeerTx) -> dict[str, list[Notification]]:
        return {
            status: tx.list(Notification, status=status, order_by="created_at", limit=SHOWN)
            for status in ("failed", "queued")
        }

    found: dict[str, list[Notification]] = await store.read(read)
    return found


async def retry(config: Mapping[Any, Any], identity: Identity, notification_id: str) -> None:
    """Queue a failed notification again (attempts from 0), audited; wake the sender."""
    store = config[keys.PEER]
    storage = config[keys.LIBRARY].storage
    table = table_of(Notification)

    def op(tx: PeerTx) -> None:
        found = tx.find(Notification, notification_id)
        if found is None:
            raise NotFound(f"No e-mail with id {notification_id!r} in the outbox.")
        done = tx.execute(
            sa.update(table)
            .where(table.c.id == notification_id, table.c.status == "failed")
            .values(status="queued", attempts=0)
        )
        if not done.rowcount:
            raise Conflict(f"This e-mail is {found.status}, not failed: nothing to retry.")
        storage.audit_add_tx(
            who(identity),
            "notification.retry",
            "notification",
            notification_id,
            {"to": found.to_addr, "kind": found.kind, "last_error": found.last_error[:200]},
        )

    await store.transaction(op)
    sender = config.get(keys.MAIL_SENDER)
    if sender is not None:
        sender.wake()


@routes.get(PATH)
async def outbox_page(request: web.Request) -> web.Response:
    need(request, "outbox.read")
    found = await pending(request.config_dict)
    return render(
        request,
        "outbox.html",
        {
            "failed": found["failed"],
            "queued": found["queued"],
            "mail_on": bool(request.config_dict[keys.SETTINGS].smtp_host),
            "done": NOTICES.get(request.query.get("done", "")),
        },
    )


@routes.post(PATH + "/{id}/retry")
async def outbox_retry(request: web.Request) -> web.StreamResponse:
    session, notification_id, _ = await posted(request, "outbox.retry")
    await retry(request.config_dict, session.identity(), notification_id)
    raise web.HTTPSeeOther(f"{PATH}?{urlencode({'done': 'retried'})}")
