from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.app import create_app
from server.settings import AuthSettings, Settings
from tests.smtp import SmtpServer
from tests.tokens import ISSUER, TokenMaker
from tests.upstream import upstream  # noqa: F401  (the `upstream` fixture: a real HTTP server)

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "content" / "demo"

pytest_plugins = ["tests.keycloak"]


@pytest.fixture(scope="session")
def tokens() -> TokenMaker:
    return TokenMaker.create()


@pytest.fixture
def make_settings(tmp_path: Path, tokens: TokenMaker) -> Callable[..., Settings]:
    jwks = tokens.write_jwks(tmp_path / "jwks.json")

    def make(**changes: Any) -> Settings:
        auth = AuthSettings(jwks_file=jwks, issuer=ISSUER)
        base = Settings(data_dir=tmp_path / "data", content_dir=DEMO, auth=auth, search_threads=2)
        return base.with_(**changes)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free 127.0.0.1 port, collecting what it receives.

    `make_settings(**smtp_server.settings())` points Inflow's e-mail sender at it (tests/smtp.py).
    """
    server = SmtpServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def learner(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="learner-1", roles=("learner",), groups=("sales",))


@pytest.fixture
def manager(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="manager-1", roles=("learner",), groups=("finance", "managers"))


@pytest.fixture
def admin(tokens: TokenMaker) -> dict[str, str]:
    return tokens.auth(sub="admin-1", roles=("learner", "author", "admin"))


# -- CI guards (make test, .ci/run) ----------------------------------------------------------------
# Under CI=true a skipped test fails the run: a browser or Keycloak test that skips because its
# Chromium or Keycloak is missing would otherwise let CI pass without testing the extension or SSO.
# Every test also has a timeout (pyproject: `timeout`); browser tests get a longer one here.

BROWSER_TIMEOUT_SECONDS = 300


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


_SKIPPED: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        browser = item.get_closest_marker("browser") is not None
        if browser and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(BROWSER_TIMEOUT_SECONDS))
        # `make test` runs pytest-xdist with --dist loadgroup: tests sharing the real Keycloak
        # (its users, sessions, realm settings) or a Chromium run on one worker, one at a time;
        # tests using the ralph LRS share one worker so it starts once.
        fixtures = getattr(item, "fixturenames", ())
        if browser or item.get_closest_marker("keycloak") or "keycloak" in fixtures:
            item.add_marker(pytest.mark.xdist_group("keycloak"))
        elif "ralph" in fixtures:
            item.add_marker(pytest.mark.xdist_group("ralph"))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Called in the main process for every test, also for reports coming from xdist workers.
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        _SKIPPED.append(f"{report.nodeid}: {reason}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if _in_ci() and _SKIPPED:
        terminalreporter.section("CI=true: skipped tests fail the run", sep="=", red=True)
        for line in _SKIPPED:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _in_ci() and _SKIPPED and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
