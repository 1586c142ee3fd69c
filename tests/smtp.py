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
to test a mail server that is down and comes back. `SmtpServer(tls_dir=tmp_path)` requires STARTTLS
with a self-signed certificate for 127.0.0.1 written there (`ca_file`, for the client to trust).
"""

from __future__ import annotations

import asyncio
import datetime
import email.policy
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
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
    tls: bool  # the client had issued STARTTLS

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
            Received(
                str(envelope.mail_from),
                list(envelope.rcpt_tos),
                parsed,
                bytes(raw),
                tls=session.ssl is not None,
            )
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


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, written to `folder`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Inflow test SMTP")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class _TrackedSMTP(SMTP):
    """aiosmtpd's SMTP protocol, remembering its transports so `SmtpServer.stop` closes them:
    after STARTTLS (and a failed TLS handshake) aiosmtpd can leave the socket's transport open,
    and tests fail on the ResourceWarning when it is collected."""

    def __init__(self, transports: set[asyncio.BaseTransport], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._transports = transports

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transports.add(transport)
        super().connection_made(transport)


class _Controller(Controller):
    def __init__(self, transports: set[asyncio.BaseTransport], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.transports = transports

    def factory(self) -> SMTP:
        return _TrackedSMTP(self.transports, self.handler, **self.SMTP_kwargs)

    async def close_transports(self) -> None:
        for transport in list(self.transports):
            if not transport.is_closing():
                transport.close()
        for _ in range(10):  # let the closes (connection_lost callbacks) run
            await asyncio.sleep(0)
        for transport in list(self.transports):
            if getattr(transport, "_sock", None) is not None:  # a socket's, still open
                transport.abort()  # type: ignore[attr-defined]
        await asyncio.sleep(0.01)
        self.transports.clear()


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
        tls_dir: Path | None = None,
    ) -> None:
        self.host = HOST
        self.port = port if port is not None else free_port()
        self.user, self.password = user, password
        self.refuse = {r.lower() for r in refuse}
        self.messages: list[Received] = []
        self.ca_file: Path | None = None
        self._tls: ssl.SSLContext | None = None
        if tls_dir is not None:
            self.ca_file, key_file = _self_signed(tls_dir)
            self._tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._tls.load_cert_chain(self.ca_file, key_file)
        self._lock = threading.Lock()
        self._controller: _Controller | None = None
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
            "smtp_starttls": self._tls is not None,
            "smtp_ca_file": self.ca_file,
        }

    def start(self) -> None:
        kwargs: dict[str, Any] = {}
        if self.user:
            kwargs = {
                "authenticator": _Authenticator(self.user, self.password),
                "auth_require_tls": False,
            }
        if self._tls is not None:
            kwargs |= {"tls_context": self._tls, "require_starttls": True}
        controller = _Controller(
            set(), _Handler(self), hostname=self.host, port=self.port, **kwargs
        )
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            controller = self._controller
            asyncio.run_coroutine_threadsafe(controller.close_transports(), controller.loop).result(
                timeout=10
            )
            controller.stop()
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
