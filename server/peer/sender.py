"""The e-mail sender: a background task delivering the outbox (server/peer/mail.py) by SMTP.

It runs only when `INFLOW_SMTP_HOST` is set (`mail_ctx`, a cleanup context opened after the peer
store and closed before it). It reads queued notifications, oldest first, and sends a batch in
one SMTP conversation with the standard library's smtplib in a thread of its own, never on the
event loop: STARTTLS first when `INFLOW_SMTP_STARTTLS` (the server's certificate verified against
the system's CAs or `INFLOW_SMTP_CA_FILE`), then AUTH when `INFLOW_SMTP_USER` is set.

Each row ends `sent` (with `sent_at`), or stays `queued` with `attempts` and `last_error` after a
failure that may pass (server down, timeout, a 4xx answer, AUTH refused), tried again after a
backoff that doubles from `INFLOW_SMTP_BACKOFF_INITIAL_SECONDS` up to
`INFLOW_SMTP_BACKOFF_MAX_SECONDS` (with jitter); it becomes `failed` after
`INFLOW_SMTP_MAX_ATTEMPTS` tries, or at once when the server refuses the recipient or the
message for good (a 5xx answer to RCPT or DATA). The backoff times live in memory: after a
restart every queued row is tried once more at once.

`notify` wakes the task as soon as its transaction committed; otherwise it reads the outbox every
`INFLOW_SMTP_POLL_SECONDS` (rows another process queued). On shutdown the batch being sent is
finished (each SMTP conversation is bounded by `INFLOW_SMTP_TIMEOUT_SECONDS`) and recorded, so a
message is not sent twice by a restart.

Many nodes on one database (docs/scale-out.md "Work that runs once"): every node with a mail host
runs the task, but only the one holding the cluster lock `mail-sender` (server/cluster.py) reads
and sends the outbox; the others try to take it every `INFLOW_CLUSTER_CHECK_SECONDS` (and when
woken), so when the sender dies another node carries on, and no two nodes send the same message.
The backoff times stay with the node that set them: a new sender tries every queued row at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import smtplib
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Literal

import sqlalchemy as sa
from aiohttp import web

from server import keys
from server.cluster import Cluster, Hold
from server.db.errors import DatabaseUnavailable
from server.peer.mail import build_message, envelope_from
from server.peer.models import Notification
from server.peer.store import PeerStore, PeerTx, table_of
from server.settings import Settings
from server.storage import now_iso

log = logging.getLogger("inflow.mail")

BATCH = 50  # notifications per SMTP conversation
LOCK = "mail-sender"  # the cluster lock of the node that sends
ERROR_MAX = 2000  # Notification.last_error's limit


@dataclass(frozen=True)
class Outcome:
    """What became of one message in an SMTP conversation."""

    status: Literal["sent", "retry", "failed"]
    error: str = ""


@dataclass
class SenderStats:
    sent: int = 0
    failed: int = 0
    retries: int = 0
    last_error: str = ""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _answer(code: int, text: Any) -> Outcome:
    """A refusal by the server: for good when 5xx, else worth another try."""
    error = f"{code} {_text(text)}".strip()[:ERROR_MAX]
    return Outcome("failed" if 500 <= code < 600 else "retry", error)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"[:ERROR_MAX]
    return f"{type(exc).__name__}: {exc}"[:ERROR_MAX]


def deliver(
    settings: Settings, batch: Sequence[tuple[Notification, EmailMessage]]
) -> dict[str, Outcome]:
    """Send `batch` in one SMTP conversation (blocking: run it in a worker thread).

    Returns an outcome per notification id. A failure of the conversation itself (connection,
    TLS, AUTH, a dropped line) leaves every message not yet sent to be retried."""
    outcomes: dict[str, Outcome] = {}
    sender = envelope_from(settings)
    try:
        with smtplib.SMTP(
            settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds
        ) as smtp:
            if settings.smtp_starttls:
                cafile = str(settings.smtp_ca_file) if settings.smtp_ca_file else None
                smtp.starttls(context=ssl.create_default_context(cafile=cafile))
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password)
            for notification, message in batch:
                try:
                    smtp.send_message(message, sender, [notification.to_addr])
                except smtplib.SMTPRecipientsRefused as exc:
                    code, text = next(iter(exc.recipients.values()))
                    outcomes[notification.id] = _answer(code, text)
                except smtplib.SMTPDataError as exc:
                    outcomes[notification.id] = _answer(exc.smtp_code, exc.smtp_error)
                except smtplib.SMTPSenderRefused as exc:  # our From: the next try may pass
                    outcomes[notification.id] = Outcome("retry", _describe(exc))
                except (smtplib.SMTPNotSupportedError, ValueError, UnicodeError) as exc:
                    outcomes[notification.id] = Outcome("failed", _describe(exc))
                else:
                    outcomes[notification.id] = Outcome("sent")
    except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError and timeouts are OSErrors
        error = _describe(exc)
        for notification, _ in batch:
            outcomes.setdefault(notification.id, Outcome("retry", error))
    return outcomes


class MailSender:
    """The background task (see the module docstring). `wake()` after queueing."""

    def __init__(
        self, settings: Settings, store: PeerStore, cluster: Cluster | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.cluster = cluster
        self.stats = SenderStats()
        self._wakeup = asyncio.Event()
        self._retry_at: dict[str, float] = {}  # notification id -> monotonic time of its next try
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp")
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inflow-mail-sender")

    async def stop(self) -> None:
        """Finish the batch being sent (bounded by the SMTP timeout), then stop."""
        self._stopping = True
        self._wakeup.set()
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(
                    asyncio.shield(task), self.settings.smtp_timeout_seconds + 5.0
                )
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await asyncio.to_thread(self._executor.shutdown, True)

    async def _run(self) -> None:
        cluster = self.cluster
        if cluster is None:
            await self._send_while(None)
            return
        while not self._stopping:
            await cluster.work_if_free(LOCK, self._send_while, log, "e-mail")
            if self._stopping:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), cluster.check_seconds)

    async def _send_while(self, hold: Hold | None) -> None:
        """Send and wait, until stopped or this node loses the lock (checked between batches)."""
        while not self._stopping and (hold is None or hold):
            self._wakeup.clear()  # before reading: a wake() from now on is not lost
            try:
                more = await self.send_due()
            except DatabaseUnavailable as exc:  # one line; the outbox is read again later
                log.warning("e-mail sender paused: %s; trying again in %.0f s", exc, self._poll)
                more = False
            except Exception:
                log.exception("e-mail sender error; trying again in %.0f s", self._poll)
                more = False
            if more or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._next_delay())

    @property
    def _poll(self) -> float:
        return max(0.01, self.settings.smtp_poll_seconds)

    def _next_delay(self) -> float:
        if not self._retry_at:
            return self._poll
        soonest = min(self._retry_at.values()) - time.monotonic()
        return min(self._poll, max(0.01, soonest))

    def _backoff(self, attempts: int) -> float:
        s = self.settings
        delay = s.smtp_backoff_initial_seconds * float(2 ** min(max(attempts - 1, 0), 30))
        return min(s.smtp_backoff_max_seconds, delay) * random.uniform(0.8, 1.2)

    async def send_due(self) -> bool:
        """Send one batch of the notifications due now; True when more may be due at once."""
        now = time.monotonic()
        self._retry_at = {i: t for i, t in self._retry_at.items() if t > now}
        deferred = list(self._retry_at)
        table = table_of(Notification)
        where = [table.c.id.not_in(deferred)] if deferred else []
        rows = await self.store.read(
            lambda tx: tx.list(
                Notification, status="queued", where=where, order_by="created_at", limit=BATCH
            )
        )
        if not rows:
            return False
        batch = [(n, build_message(n, self.settings)) for n in rows]
        loop = asyncio.get_running_loop()
        outcomes = await loop.run_in_executor(self._executor, deliver, self.settings, batch)
        updates = [self._settle(n, outcomes[n.id]) for n in rows]

        def record(tx: PeerTx) -> None:
            for notification_id, values in updates:
                tx.execute(
                    sa.update(table)
                    .where(table.c.id == notification_id, table.c.status == "queued")
                    .values(**values)
                )

        await self.store.transaction(record)
        return len(rows) == BATCH and any(o.status == "sent" for o in outcomes.values())

    def _settle(self, n: Notification, outcome: Outcome) -> tuple[str, dict[str, Any]]:
        """The row's new values after an attempt (and its next try, when there is one)."""
        attempts = n.attempts + 1
        if outcome.status == "sent":
            self.stats.sent += 1
            return n.id, {"status": "sent", "attempts": attempts, "sent_at": now_iso()}
        self.stats.last_error = outcome.error
        values: dict[str, Any] = {"attempts": attempts, "last_error": outcome.error}
        if outcome.status == "failed" or attempts >= self.settings.smtp_max_attempts:
            self.stats.failed += 1
            log.error("e-mail %s to %s failed for good: %s", n.id, n.to_addr, outcome.error)
            return n.id, {**values, "status": "failed"}
        self.stats.retries += 1
        delay = self._backoff(attempts)
        self._retry_at[n.id] = time.monotonic() + delay
        log.warning("e-mail %s not sent (%s); next try in %.1f s", n.id, outcome.error, delay)
        return n.id, values


async def mail_ctx(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: the sender task when a mail host is set (after peer_ctx: it uses the store)."""
    settings = app[keys.SETTINGS]
    if not settings.smtp_host:
        log.info("e-mail off (INFLOW_SMTP_HOST is empty): notifications stay in the outbox")
        yield
        return
    sender = MailSender(settings, app[keys.PEER], app.get(keys.CLUSTER))
    app[keys.MAIL_SENDER] = sender
    sender.start()
    try:
        yield
    finally:
        await sender.stop()


__all__ = ["MailSender", "Outcome", "deliver", "mail_ctx"]
