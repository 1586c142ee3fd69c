"""E-mail notifications: an outbox in the content database, delivered by SMTP in the background.

Peer learning tells people about work waiting for them: a question to a page's mentors and the
app's owners, a tip to moderate to the app's owners, a flagged aid to its owner. Features call

    await notify(app, ["maria@example.com"], "Question about Expenses", text, "question.asked", id)

which puts one `Notification` row per recipient in the outbox (server/peer/models.py), all in one
transaction, and wakes the sender (server/peer/sender.py). The rows are queued whatever the
settings: with `INFLOW_SMTP_HOST` empty (e-mail off) they wait in the outbox, and a server started
later with a mail host sends them.

What goes into a row is checked here, once, so nothing a learner wrote can change the message's
headers (header injection): an address must be one e-mail address (server/models.py `EMAIL_RE`,
matched whole: a trailing newline is refused, not ignored); anything else (a chat handle, a team
name, an address with CR/LF and a second header behind it) is left out and logged. A subject is
made one line (line breaks and other control characters become spaces) and cut to its limit. The
body is plain text; the console's address (`Settings.base_url`) ends it.

`build_message` turns a row into the e-mail sent: From `INFLOW_SMTP_FROM`, To the one recipient,
a Message-ID made from the row's id (a resend after a crash carries the same id, so mail clients
show it once), Date, `Auto-Submitted: auto-generated` (RFC 3834: no out-of-office replies).
"""

from __future__ import annotations

import dataclasses
import email.policy
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import TYPE_CHECKING, Any

from aiohttp import web

from server import keys
from server.models import EMAIL_RE
from server.peer.models import Notification, new_id
from server.storage import now_iso

if TYPE_CHECKING:
    from server.peer.store import PeerTx
    from server.settings import Settings

log = logging.getLogger("inflow.mail")

# Limits of the Notification declaration (server/peer/models.py).
SUBJECT_MAX = 300
BODY_MAX = 20_000
ADDRESS_MAX = 320
KIND_MAX = 40
REF_MAX = 200

# Every control character (C0, DEL, C1) and the Unicode line and paragraph separators: none may
# reach a header, where a CR or LF would start a header of the writer's choosing.
_HEADER_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# In a body: control characters but tab and newline (CR is folded into newlines first).
_BODY_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# In a Message-ID's left part: what is not a letter, digit, dot, dash or underscore.
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def clean_address(value: str) -> str | None:
    """The e-mail address `value` is, lower-cased domain kept as written, or None when it is not
    exactly one address (a chat handle, a name, anything with a line break or a second header)."""
    if not isinstance(value, str):
        return None
    address = value.strip(" \t")  # never strip CR/LF: an address carrying them is refused
    if len(address) > ADDRESS_MAX or not EMAIL_RE.fullmatch(address):
        return None
    return address


def one_line(value: str, limit: int) -> str:
    """Header text: control characters and line breaks as single spaces, cut to `limit`."""
    text = " ".join(_HEADER_BREAKS.sub(" ", value).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def body_with_footer(body_text: str, base_url: str) -> str:
    """The stored body: `\\n` line ends, no control characters, the console's address at the end."""
    text = body_text.replace("\r\n", "\n").replace("\r", "\n")
    text = _BODY_CONTROLS.sub("", text).rstrip()
    footer = f"\n\n-- \nInflow: {base_url.rstrip('/')}/admin\n"
    room = BODY_MAX - len(footer)
    if len(text) > room:
        text = text[: room - 1].rstrip() + "…"
    return text + footer


def recipients(to: list[str]) -> tuple[list[str], list[str]]:
    """(the addresses to mail, once each whatever their case; what was refused)."""
    kept: list[str] = []
    refused: list[str] = []
    seen: set[str] = set()
    for value in to:
        address = clean_address(value)
        if address is None:
            refused.append(value)
        elif address.lower() not in seen:
            seen.add(address.lower())
            kept.append(address)
    return kept, refused


async def notify(
    app: web.Application | Mapping[Any, Any],
    to: list[str],
    subject: str,
    body_text: str,
    kind: str,
    ref: str,
) -> list[Notification]:
    """Queue one e-mail per valid address of `to` in the outbox (one transaction) and wake the
    sender. Returns the queued notifications (none when no address was valid). Addresses that are
    not one e-mail address are left out (see the module docstring) and logged, never raised: a
    learner's question is not refused because a mentor's contact is a chat handle."""
    addresses, refused = recipients(list(to))
    for value in refused:
        log.warning("e-mail %s %s: not an e-mail address, left out: %r", kind, ref, value[:80])
    if not addresses:
        return []
    settings = app[keys.SETTINGS]
    stamp = now_iso()
    template = Notification(
        id="",
        to_addr="",
        subject=one_line(subject, SUBJECT_MAX),
        body_text=body_with_footer(body_text, settings.base_url),
        kind=one_line(kind, KIND_MAX),
        ref=one_line(ref, REF_MAX),
        status="queued",
        created_at=stamp,
    )
    rows = [dataclasses.replace(template, id=new_id(), to_addr=a) for a in addresses]

    def queue(tx: PeerTx) -> list[Notification]:
        return [tx.add(row) for row in rows]

    queued = await app[keys.PEER].transaction(queue)
    sender = app.get(keys.MAIL_SENDER)
    if sender is not None:
        sender.wake()
    return queued


def envelope_from(settings: Settings) -> str:
    """The bare address of `INFLOW_SMTP_FROM` ("Inflow <inflow@example.org>" or an address)."""
    return parseaddr(settings.smtp_from)[1] or settings.smtp_from


def build_message(n: Notification, settings: Settings) -> EmailMessage:
    """The e-mail for one outbox row: plain text, UTF-8, headers made only from checked values."""
    name, address = parseaddr(settings.smtp_from)
    domain = address.rpartition("@")[2] or "localhost"
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = formataddr((name, address)) if name else address
    message["To"] = n.to_addr
    message["Subject"] = one_line(n.subject, SUBJECT_MAX)
    message["Date"] = format_datetime(datetime.now(UTC))
    tag = _ID_UNSAFE.sub("-", n.kind).strip(".-") or "inflow"
    message["Message-ID"] = f"<{_ID_UNSAFE.sub('-', n.id)}.{tag}@{domain}>"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(n.body_text)
    return message


__all__ = [
    "build_message",
    "clean_address",
    "envelope_from",
    "notify",
    "one_line",
    "recipients",
]
