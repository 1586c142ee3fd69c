"""A real SMTP server for tests: aiosmtpd's Controller on 127.0.0.1, collecting what it receives.

Tests that send e-mail (questions to mentors, flags to aid owners) read the messages from here, as a
mentor's mail server would get them: envelope sender and recipients as given in the SMTP dialogue,
and the message as parsed from the bytes on the wire. Never a mock of smtplib.

    async def test_x(smtp_server: SmtpServer, make_settings):
        settings = make_settings(**smtp_server.settings())
        ...
        [message] = await smtp_server.wait_for(1)
        assert message.rcpt_tos == ["maria@example.com"]

`SmtpServer` can start late (`SmtpServer(port, start=False)`, then `start()`) and stop at any time,
to test a mail server that is down and comes back.
"""

from __future__ import annotations

import asyncio
import email.policy
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None, "no text/plain part"
        return str(body.get_content())  # type: ignore[attr-defined]


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(  # aiosmtpd hook names
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.server.user and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if address.lower() in self.server.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = BytesParser(policy=email.policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        self.server._add(
            Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, bytes(raw))
        )
        return "250 Message accepted for delivery"


class _Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user.encode(), password.encode()

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        return AuthResult(success=ok, handled=False)  # a failure answers 535


class SmtpServer:
    """aiosmtpd on 127.0.0.1:`port` (a free port by default), keeping every message it accepts.

    `user`/`password`: require SMTP AUTH (LOGIN/PLAIN) with them (recipients are answered 530
    until the client logged in); AUTH is offered without TLS here because the test talks to
    127.0.0.1 (aiosmtpd's own `auth_required` warns about that, and warnings are errors).
    `refuse`: recipients answered 550.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        start: bool = True,
        user: str = "",
        password: str = "",
        refuse: tuple[str, ...] = (),
    ) -> None:
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.user, self.password = user, password
        self.refuse = {r.lower() for r in refuse}
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        if start:
            self.start()

    def settings(self) -> dict[str, Any]:
        """Settings fields pointing Inflow's sender at this server (for make_settings(**...))."""
        return {
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_user": self.user,
            "smtp_password": self.password,
            "smtp_from": "Inflow <inflow@example.org>",
            "smtp_backoff_initial_seconds": 0.05,
            "smtp_backoff_max_seconds": 0.2,
        }

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.user:
            kwargs = {
                "authenticator": _Authenticator(self.user, self.password),
                "auth_require_tls": False,
            }
        controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def _add(self, received: Received) -> None:
        with self._lock:
            self.messages.append(received)

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """The messages once at least `count` arrived; fails after `timeout` seconds without."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.received()
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} message(s), the SMTP server got {len(got)}")
            await asyncio.sleep(0.02)
