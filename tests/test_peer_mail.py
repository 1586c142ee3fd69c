"""E-mail notifications (server/peer/mail.py, server/peer/sender.py) against a real SMTP server.

Every test runs the real server (create_app: the outbox in the real SQLite database, the sender
task in its cleanup context) and reads what a real aiosmtpd server received (tests/smtp.py).
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server import keys
from server.app import create_app
from server.models import EMAIL_RE
from server.peer.mail import clean_address, notify
from server.peer.models import Notification
from server.settings import Settings
from tests.smtp import SmtpServer, free_port
from tests.test_admin_console import sign_in
from tests.tokens import TokenMaker

BODY = "Ana asked a question about Expenses:\n\nWhere do I attach the receipt?\n"


async def start(aiohttp_client: Any, settings: Settings) -> web.Application:
    client: TestClient = await aiohttp_client(create_app(settings))
    app: web.Application = client.server.app
    return app


async def outbox(app: web.Application) -> list[Notification]:
    return await app[keys.PEER].list(Notification, order_by="created_at")


async def eventually(
    app: web.Application, check: Callable[[list[Notification]], bool], timeout: float = 20.0
) -> list[Notification]:
    """The outbox once `check` holds for it (fails after `timeout` seconds without)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await outbox(app)
        if check(rows):
            return rows
        assert time.monotonic() < deadline, f"outbox never got there: {rows}"
        await asyncio.sleep(0.02)


async def test_a_notification_arrives_with_its_subject_body_and_recipient(
    aiohttp_client: Any, make_settings: Callable[..., Settings], smtp_server: SmtpServer
) -> None:
    settings = make_settings(**smtp_server.settings(), base_url="https://inflow.example.org/")
    app = await start(aiohttp_client, settings)

    queued = await notify(
        app,
        ["maria@example.com", "Owner@Example.org"],
        "Question about Expenses: receipts",
        BODY,
        "question.asked",
        "q123",
    )

    assert [n.to_addr for n in queued] == ["maria@example.com", "Owner@Example.org"]
    got = await smtp_server.wait_for(2)
    by_rcpt = {tuple(m.rcpt_tos): m for m in got}
    assert set(by_rcpt) == {("maria@example.com",), ("Owner@Example.org",)}
    mail = by_rcpt[("maria@example.com",)]
    assert mail.mail_from == "inflow@example.org"
    assert mail.message["From"] == "Inflow <inflow@example.org>"
    assert mail.message["To"] == "maria@example.com"  # one recipient per message: no one else's
    assert mail.subject == "Question about Expenses: receipts"
    assert mail.message["Date"]
    assert mail.message["Message-ID"].endswith("@example.org>")
    assert mail.message["Auto-Submitted"] == "auto-generated"
    text = mail.text.replace("\r\n", "\n")
    assert text.startswith(BODY)
    assert "https://inflow.example.org/admin" in text  # back to the console
    rows = await eventually(app, lambda rows: all(r.status == "sent" for r in rows))
    assert all(r.attempts == 1 and r.sent_at and not r.last_error for r in rows)
    assert {r.kind for r in rows} == {"question.asked"} and {r.ref for r in rows} == {"q123"}


async def test_smtp_down_stays_queued_and_is_delivered_when_the_server_comes_up(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    """The mail server restarting must not lose a mentor's e-mail: it waits in the outbox."""
    down = SmtpServer(free_port(), start=False)
    settings = make_settings(**down.settings(), smtp_max_attempts=1000)
    app = await start(aiohttp_client, settings)

    await notify(app, ["maria@example.com"], "A question", BODY, "question.asked", "q1")

    [row] = await eventually(app, lambda rows: rows[0].attempts >= 2)
    assert row.status == "queued"
    assert "Connection" in row.last_error or "refused" in row.last_error.lower()
    down.start()
    try:
        [mail] = await down.wait_for(1)
        assert mail.rcpt_tos == ["maria@example.com"]
        [row] = await eventually(app, lambda rows: rows[0].status == "sent")
        assert row.sent_at
    finally:
        down.stop()


async def test_header_injection_is_refused(
    aiohttp_client: Any, make_settings: Callable[..., Settings], smtp_server: SmtpServer
) -> None:
    """A line break in an address or subject would add headers of the writer's choosing (a Bcc
    to someone else): such an address is left out, and the subject is made one line."""
    app = await start(aiohttp_client, make_settings(**smtp_server.settings()))

    queued = await notify(
        app,
        ["maria@example.com\r\nBcc: eve@evil.example", "eve@evil.example\n", "bob@example.com"],
        "Hello\r\nBcc: eve@evil.example\r\n\r\nInjected body",
        BODY,
        "question.asked",
        "q\r\nX-Evil: 1",
    )

    assert [n.to_addr for n in queued] == ["bob@example.com"]
    [mail] = await smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["bob@example.com"]
    assert mail.message["Bcc"] is None and mail.message["X-Evil"] is None
    assert mail.subject == "Hello Bcc: eve@evil.example Injected body"
    assert b"\nBcc:" not in mail.raw
    await eventually(app, lambda rows: rows[0].status == "sent")
    assert len(smtp_server.received()) == 1


def test_an_address_with_a_trailing_newline_is_not_an_address() -> None:
    """EMAIL_RE ends with `$`, which also matches before a final newline: `re.match` takes
    "eve@evil.example\\n" for an address. The outbox must refuse it (a header line break)."""
    assert EMAIL_RE.match("eve@evil.example\n")  # why clean_address uses fullmatch
    assert clean_address("eve@evil.example\n") is None
    assert clean_address("@maria.lopez") is None  # a chat handle is not mailed
    assert clean_address(" maria@example.com ") == "maria@example.com"


async def test_email_off_queues_and_a_later_server_with_a_mail_host_sends(
    aiohttp_client: Any, make_settings: Callable[..., Settings], smtp_server: SmtpServer
) -> None:
    """INFLOW_SMTP_HOST empty: notifications are kept, not sent, and not lost."""
    off = make_settings(**{**smtp_server.settings(), "smtp_host": ""})
    first = TestClient(TestServer(create_app(off)))
    await first.start_server()
    try:
        app = first.server.app
        await notify(app, ["maria@example.com"], "A question", BODY, "question.asked", "q1")

        assert keys.MAIL_SENDER not in app  # no sender task at all
        [row] = await outbox(app)
        assert (row.status, row.attempts) == ("queued", 0)
        assert smtp_server.received() == []
    finally:
        await first.close()

    on = await start(aiohttp_client, make_settings(**smtp_server.settings()))
    [mail] = await smtp_server.wait_for(1)
    assert mail.rcpt_tos == ["maria@example.com"]
    await eventually(on, lambda rows: rows[0].status == "sent")


async def test_a_refused_recipient_fails_at_once_and_the_others_are_sent(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    server = SmtpServer(refuse=("gone@example.com",))
    try:
        app = await start(aiohttp_client, make_settings(**server.settings()))
        await notify(
            app, ["gone@example.com", "maria@example.com"], "Hi", BODY, "question.asked", "q1"
        )
        rows = await eventually(app, lambda rows: all(r.status != "queued" for r in rows))
        by_addr = {r.to_addr: r for r in rows}
        assert by_addr["gone@example.com"].status == "failed"
        assert by_addr["gone@example.com"].attempts == 1  # 550: no point trying again
        assert by_addr["gone@example.com"].last_error.startswith("550")
        assert by_addr["maria@example.com"].status == "sent"
        assert [m.rcpt_tos for m in server.received()] == [["maria@example.com"]]
    finally:
        server.stop()


async def test_the_sender_gives_up_after_the_last_attempt(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    down = SmtpServer(free_port(), start=False)
    app = await start(aiohttp_client, make_settings(**down.settings(), smtp_max_attempts=3))

    await notify(app, ["maria@example.com"], "A question", BODY, "question.asked", "q1")

    [row] = await eventually(app, lambda rows: rows[0].status == "failed")
    assert row.attempts == 3 and row.last_error and not row.sent_at


async def test_smtp_auth_with_the_configured_user(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    server = SmtpServer(user="inflow", password="s3cret")
    try:
        app = await start(aiohttp_client, make_settings(**server.settings()))
        await notify(app, ["maria@example.com"], "A question", BODY, "question.asked", "q1")
        [mail] = await server.wait_for(1)
        assert mail.rcpt_tos == ["maria@example.com"]
    finally:
        server.stop()


async def test_a_wrong_smtp_password_keeps_the_mail_queued_with_the_error(
    aiohttp_client: Any, make_settings: Callable[..., Settings]
) -> None:
    server = SmtpServer(user="inflow", password="s3cret")
    try:
        settings = make_settings(
            **{**server.settings(), "smtp_password": "wrong"}, smtp_max_attempts=1000
        )
        app = await start(aiohttp_client, settings)
        await notify(app, ["maria@example.com"], "A question", BODY, "question.asked", "q1")
        [row] = await eventually(app, lambda rows: rows[0].attempts >= 1)
        assert row.status == "queued" and row.last_error.startswith("535")
        assert "wrong" not in row.last_error
        assert server.received() == []
    finally:
        server.stop()


async def test_one_mail_per_address_whatever_its_case_and_none_for_chat_handles(
    aiohttp_client: Any, make_settings: Callable[..., Settings], smtp_server: SmtpServer
) -> None:
    app = await start(aiohttp_client, make_settings(**smtp_server.settings()))
    queued = await notify(
        app,
        ["maria@example.com", "MARIA@example.com", "@maria.lopez", "Finance team"],
        "Hi",
        BODY,
        "tip.pending",
        "t1",
    )
    assert [n.to_addr for n in queued] == ["maria@example.com"]
    assert await notify(app, ["@maria.lopez"], "Hi", BODY, "tip.pending", "t2") == []
    await smtp_server.wait_for(1)
    await eventually(app, lambda rows: [r.status for r in rows] == ["sent"])


async def test_starttls_then_auth_with_the_configured_ca(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    server = SmtpServer(user="inflow", password="s3cret", tls_dir=tmp_path / "tls")
    try:
        app = await start(aiohttp_client, make_settings(**server.settings()))
        await notify(app, ["maria@example.com"], "A question", BODY, "question.asked", "q1")
        [mail] = await server.wait_for(1)
        assert mail.rcpt_tos == ["maria@example.com"]
        assert mail.tls  # the message came over the encrypted channel
    finally:
        server.stop()


async def test_starttls_refuses_a_certificate_it_cannot_verify(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    """STARTTLS that accepted any certificate would hand the SMTP password to whoever sits
    between Inflow and the mail server: an unknown certificate stops the conversation."""
    server = SmtpServer(user="inflow", password="s3cret", tls_dir=tmp_path / "tls")
    try:
        settings = make_settings(
            **{**server.settings(), "smtp_ca_file": None}, smtp_max_attempts=1000
        )
        app = await start(aiohttp_client, settings)
        await notify(app, ["maria@example.com"], "A question", BODY, "question.asked", "q1")
        [row] = await eventually(app, lambda rows: rows[0].attempts >= 1)
        assert row.status == "queued" and "CERTIFICATE_VERIFY_FAILED" in row.last_error
        assert server.received() == []
    finally:
        server.stop()


async def test_more_than_one_batch_is_all_delivered(
    aiohttp_client: Any, make_settings: Callable[..., Settings], smtp_server: SmtpServer
) -> None:
    """The sender takes the outbox 50 rows at a time: the rows after the first batch must not
    wait for the next poll (a minute) to go."""
    app = await start(aiohttp_client, make_settings(**smtp_server.settings()))
    to = [f"mentor{i}@example.com" for i in range(60)]

    await notify(app, to, "A question", BODY, "question.asked", "q1")

    got = await smtp_server.wait_for(60)
    assert sorted(r for m in got for r in m.rcpt_tos) == sorted(to)
    await eventually(app, lambda rows: all(r.status == "sent" for r in rows))


async def test_names_and_text_beyond_ascii_arrive_intact(
    aiohttp_client: Any, make_settings: Callable[..., Settings], smtp_server: SmtpServer
) -> None:
    app = await start(aiohttp_client, make_settings(**smtp_server.settings()))
    body = "María López preguntó: ¿dónde adjunto el recibo? 領収書\n\nSecond paragraph.\n"

    await notify(app, ["ana@example.com"], "Pregunta de María: ¿recibo?", body, "q", "q1")

    [mail] = await smtp_server.wait_for(1)
    assert mail.subject == "Pregunta de María: ¿recibo?"
    assert mail.text.replace("\r\n", "\n").startswith(body)


async def test_admins_see_failed_mail_in_the_console_outbox_and_retry_it(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tokens: TokenMaker
) -> None:
    """A mentor's e-mail that failed (the mail server was down for every attempt) was only in
    the database: nobody saw it, and nothing but SQL could send it again. Admins see failed and
    queued mail in the console (to, subject, kind, attempts, last error, when); Retry queues it
    again and wakes the sender at once (the outbox is read only hourly here), audited."""
    down = SmtpServer(free_port(), start=False)
    settings = make_settings(**down.settings(), smtp_max_attempts=1, smtp_poll_seconds=3600.0)
    client: TestClient = await aiohttp_client(create_app(settings))
    app = client.server.app
    await notify(app, ["maria@example.com"], "A question on Expenses", BODY, "question.asked", "q1")
    [row] = await eventually(app, lambda rows: rows[0].status == "failed")

    await sign_in(client, tokens.token(sub="ana", roles=("learner", "author")))
    resp = await client.get("/admin/outbox")
    assert resp.status == 403
    assert 'href="/admin/outbox"' not in await (await client.get("/admin/aids")).text()
    client.session.cookie_jar.clear()
    admin_token = tokens.token(sub="root", roles=("learner", "admin"))
    csrf = await sign_in(client, admin_token)
    resp = await client.get("/admin/outbox")
    assert resp.status == 200
    page = await resp.text()
    assert 'href="/admin/outbox" aria-current="page">Outbox</a>' in page
    failed = page.split("<h2>Failed", 1)[1].split("<h2>Queued", 1)[0]
    for shown in ("maria@example.com", "A question on Expenses", "question.asked", "<td>1</td>"):
        assert shown in failed, shown
    assert html.escape(row.last_error, quote=False) in failed and "<time datetime=" in failed
    assert f'action="/admin/outbox/{row.id}/retry"' in failed

    down.start()
    try:
        resp = await client.post(f"/admin/outbox/{row.id}/retry", data={"csrf_token": csrf})
        assert resp.status == 200 and "Queued again" in await resp.text()
        [mail] = await down.wait_for(1)
        assert mail.rcpt_tos == ["maria@example.com"]
        [row] = await eventually(app, lambda rows: rows[0].status == "sent")
        resp = await client.post(f"/admin/outbox/{row.id}/retry", data={"csrf_token": csrf})
        assert resp.status == 409  # sent: nothing to retry
    finally:
        down.stop()
    resp = await client.get(
        "/api/v1/admin/audit?action=notification.retry",
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    [entry] = (await resp.json())["entries"]
    assert entry["target_id"] == row.id and entry["who"]["subject"] == "root"
    audit = await (await client.get("/admin/audit")).text()
    assert "queued the e-mail" in audit and "again after it failed" in audit
