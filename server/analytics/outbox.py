"""The xAPI forwarder: sends the outbox to the Learning Record Store, in batches, until it is empty.

The outbox lives in the events database and is filled in the same transaction as the events, so
nothing is lost across restarts or while the LRS is down. A batch is deleted from the outbox only
after the LRS answered 2xx; a crash between the two resends the batch, which the LRS ignores
because the statement ids (the event UUIDs) and contents are the same. Failures back off
exponentially (with jitter) up to a ceiling. A batch the LRS refuses as invalid (400) is split to
find the statements at fault, which go to `outbox_dead` instead of blocking the rest.

Many nodes on one database (docs/scale-out.md "Work that runs once"): one node forwards at a time,
the one holding the cluster lock `xapi-forwarder` (server/cluster.py); when it dies or loses its
database connection, another node takes the lock within `INFLOW_CLUSTER_CHECK_SECONDS` and goes on
from the outbox, so no two nodes send the same batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass

import aiohttp

from server.analytics.store import EventStore, OutboxItem
from server.cluster import Cluster, Hold
from server.db.errors import DatabaseUnavailable
from server.settings import Settings

log = logging.getLogger("inflow.xapi")

# 409 (same id, other content) and 400/413/422 are refusals: the batch is split to find them.
RETRYABLE = {401, 403, 408, 425, 429}
LOCK = "xapi-forwarder"  # the cluster lock (server/cluster.py) of the node that sends


class LrsUnavailable(Exception):
    """The LRS could not take the batch now (network, 5xx, auth, rate limit): retry later."""


class LrsRefused(Exception):
    """The LRS refused the statements as invalid: retrying the same bytes cannot help."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


@dataclass
class ForwarderStats:
    sent: int = 0
    batches: int = 0
    failures: int = 0
    dead: int = 0
    last_error: str = ""


class LrsClient:
    """POST /statements with basic auth or an OAuth2 client-credentials token."""

    def __init__(self, settings: Settings, session: aiohttp.ClientSession) -> None:
        self.settings = settings
        self.session = session
        self.url = settings.lrs_endpoint.rstrip("/") + "/statements"
        self._token: str | None = None
        self._token_expiry = 0.0

    async def _auth_header(self, refresh: bool = False) -> dict[str, str]:
        s = self.settings
        if s.lrs_token_url:
            if refresh or self._token is None or time.monotonic() > self._token_expiry:
                await self._fetch_token()
            return {"Authorization": f"Bearer {self._token}"}
        if s.lrs_username:
            return {"Authorization": aiohttp.encode_basic_auth(s.lrs_username, s.lrs_password)}
        return {}

    async def _fetch_token(self) -> None:
        s = self.settings
        form = {"grant_type": "client_credentials"}
        if s.lrs_scope:
            form["scope"] = s.lrs_scope
        try:
            async with self.session.post(
                s.lrs_token_url,
                data=form,
                headers={
                    "Authorization": aiohttp.encode_basic_auth(s.lrs_client_id, s.lrs_client_secret)
                },
            ) as resp:
                if resp.status != 200:
                    raise LrsUnavailable(f"token endpoint answered {resp.status}")
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise LrsUnavailable(f"token endpoint: {exc!r}") from exc
        self._token = str(body["access_token"])
        lifetime = float(body.get("expires_in", 300))
        self._token_expiry = time.monotonic() + max(5.0, lifetime - 30.0)

    async def send(self, statements: list[str]) -> None:
        body = ("[" + ",".join(statements) + "]").encode("utf-8")
        for attempt in range(2):
            headers = {
                "Content-Type": "application/json",
                "X-Experience-API-Version": "1.0.3",
                **(await self._auth_header(refresh=attempt > 0)),
            }
            try:
                async with self.session.post(self.url, data=body, headers=headers) as resp:
                    text = (await resp.text())[:500]
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise LrsUnavailable(f"{type(exc).__name__}: {exc}") from exc
            if 200 <= status < 300:
                return
            if status == 401 and attempt == 0 and self.settings.lrs_token_url:
                continue  # the token may have been revoked: fetch a new one once
            if status in RETRYABLE or status >= 500:
                raise LrsUnavailable(f"LRS answered {status}: {text}")
            raise LrsRefused(status, text)


class Forwarder:
    """The background task: drain the outbox, back off while the LRS fails."""

    def __init__(self, settings: Settings, store: EventStore, client: LrsClient) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.wakeup = asyncio.Event()
        self.stats = ForwarderStats()
        self.backoff = 0.0

    def notify(self) -> None:
        self.wakeup.set()

    async def run(self, cluster: Cluster | None = None) -> None:
        """Forward until cancelled. With a cluster, on one node at a time (docs/scale-out.md):
        the node holding the lock `xapi-forwarder` drains the outbox; the others try to take
        it every `cluster.check_seconds`, so when the holder dies another one carries on."""
        if cluster is None:
            await self._work(None)
            return
        while True:
            await cluster.work_if_free(LOCK, self._work, log, "xAPI forwarder")
            await asyncio.sleep(cluster.check_seconds)

    async def _work(self, hold: Hold | None) -> None:
        """Drain, back off, wait; until this node loses the lock (checked between batches)."""
        while hold is None or hold:
            try:
                sent = await self.drain_once()
            except LrsUnavailable as exc:
                self.stats.failures += 1
                self.stats.last_error = str(exc)
                self.backoff = min(
                    self.settings.lrs_backoff_max_seconds,
                    max(self.settings.lrs_backoff_initial_seconds, self.backoff * 2),
                )
                delay = self.backoff * random.uniform(0.8, 1.2)
                log.warning("LRS unavailable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            except DatabaseUnavailable as exc:  # one line; the outbox is read again soon
                log.warning("xAPI forwarder paused: %s", exc)
                await asyncio.sleep(self.settings.lrs_poll_seconds)
                continue
            except Exception:
                log.exception("xAPI forwarder error")
                await asyncio.sleep(self.settings.lrs_backoff_max_seconds)
                continue
            self.backoff = 0.0
            if sent:
                continue
            self.wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), self.settings.lrs_poll_seconds)

    async def drain_once(self) -> int:
        """Send one batch from the outbox; the number of statements it took off the outbox."""
        items = await self.store.write(self.store.outbox_batch_sync, self.settings.lrs_batch_size)
        if not items:
            return 0
        try:
            await self._send(items)
        except LrsUnavailable:
            await self.store.write(self.store.outbox_failed_sync, [i.seq for i in items])
            raise
        return len(items)

    async def _send(self, items: list[OutboxItem]) -> None:
        try:
            await self.client.send([i.statement for i in items])
        except LrsRefused as exc:
            if len(items) == 1:
                log.error("LRS refused statement %s: %s", items[0].event_id, exc)
                await self.store.write(
                    self.store.outbox_dead_sync, items[0], exc.status, exc.reason
                )
                self.stats.dead += 1
                return
            mid = len(items) // 2  # find the bad statements; the good ones still go
            await self._send(items[:mid])
            await self._send(items[mid:])
            return
        await self.store.write(self.store.outbox_done_sync, [i.seq for i in items])
        self.stats.sent += len(items)
        self.stats.batches += 1
