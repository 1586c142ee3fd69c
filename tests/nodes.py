"""Inflow nodes as real processes, and a PostgreSQL of a test's own, for multi-process tests.

- `Node(name, port, data_dir, env)`: one `python -m server serve` (what `make run` and the
  `inflow serve` console script start) with its own data dir and the environment given on top
  of the test's (`node_env` builds a usual one: database URLs, base URL, a JWKS file so tests
  sign tokens with tests/tokens.py, no Keycloak needed). `start()`, `wait_ready(timeout)` (polls
  /readyz), `kill()` (SIGKILL: a crash, nothing flushed), `stop()` (SIGTERM, then wait), `url`,
  `log_text()` (its stdout and stderr together).
- The `nodes` fixture: a factory `nodes(name, env=..., port=...)` whose nodes are all killed at
  teardown, whatever the test did.
- `PgCluster(root, port)`: a throwaway PostgreSQL cluster (initdb into `root`, like
  server/db/pg.sh, as the `postgres` OS user when the tests run as root) that a test may stop
  and restart; never the shared 5433 cluster, which other test processes use. `start()`,
  `stop()`, `restart()`, `url(db)`, `create_database(name)`. The `pg_cluster` fixture makes
  one in a /tmp folder of its own and stops and removes it at teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.tokens import ISSUER

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(port: int, env: dict[str, str], out: IO[bytes]) -> subprocess.Popen[bytes]:
    """Start `python -m server serve` on 127.0.0.1:`port` from the repository root, with `env`
    (the whole environment) and its output into `out`."""
    return subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def node_env(
    *,
    jwks_file: Path,
    database_url: str = "",
    events_database_url: str = "",
    **extra: str,
) -> dict[str, str]:
    """The environment of a test node: its databases, tokens from tests/tokens.py (a JWKS file and
    the test issuer) and whatever else is given (`INFLOW_*` names)."""
    env = {
        "INFLOW_AUTH_JWKS_FILE": str(jwks_file),
        "INFLOW_AUTH_ISSUER": ISSUER,
        "INFLOW_SEARCH_THREADS": "1",
        "INFLOW_SERVE_DEMO": "0",
        "INFLOW_FETCH_ALLOW_PRIVATE": "1",
    }
    if database_url:
        env["INFLOW_DATABASE_URL"] = database_url
    if events_database_url:
        env["INFLOW_EVENTS_DATABASE_URL"] = events_database_url
    env.update(extra)
    return env


class Node:
    """A running `inflow serve` subprocess on 127.0.0.1:`port`."""

    def __init__(self, name: str, port: int, data_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = port
        self.data_dir = data_dir
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the process (returns at once; `wait_ready` waits for /readyz)."""
        if self.running:
            raise RuntimeError(f"node {self.name} already runs")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "INFLOW_DATA_DIR": str(self.data_dir),
            "INFLOW_BASE_URL": self.url,
            "INFLOW_PORT": str(self.port),
            "INFLOW_HOST": "127.0.0.1",
            "INFLOW_NODE_NAME": self.name,
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        self._out = self.log_path.open("ab")
        self.proc = serve(self.port, env, self._out)

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Poll /readyz until it answers 200; fail the test (with the log's tail) if the process
        exits or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                pytest.fail(f"node {self.name} exited:\n{self.log_text()[-4000:]}", pytrace=False)
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"node {self.name} not ready in {timeout:.0f} s:\n{self.log_text()[-4000:]}",
                    pytrace=False,
                )
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: the node dies as in a crash (no shutdown, nothing flushed)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(15)
        self._close()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM and wait for a clean exit (SIGKILL after `timeout` seconds)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._close()

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def log_text(self) -> str:
        """Everything the node wrote (stdout and stderr), across its starts."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


NodeFactory = Callable[..., Node]


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[NodeFactory]:
    """`nodes(name, env=..., port=None, start=True)`: a Node in tmp_path/<name>, started and ready
    unless start=False. Every node made is killed at teardown."""
    made: list[Node] = []

    def make(
        name: str, env: dict[str, str] | None = None, port: int | None = None, start: bool = True
    ) -> Node:
        node = Node(name, port or free_port(), tmp_path / name, env or {})
        made.append(node)
        if start:
            node.start()
            node.wait_ready()
        return node

    try:
        yield make
    finally:
        for node in made:
            node.kill()


# -- A PostgreSQL of the test's own -----------------------------------------------------------


def pg_bindir() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them out of PATH)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    if not found:
        pytest.fail("PostgreSQL's programs are missing: run `make postgres` once", pytrace=False)
    return found[-1].parent


class PgCluster:
    """A PostgreSQL cluster in `root` on 127.0.0.1:`port`, trust authentication on loopback
    (a test's own; passwords in URLs are ignored), superuser `postgres`."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.port = port or free_port()
        self.data = root / "data"
        self.run_dir = root / "run"
        self.log = root / "pg.log"
        self.bin = pg_bindir()
        self._as_root = os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if self._as_root else list(args)

    def _run(self, *args: str, timeout: float = 120) -> str:
        proc = subprocess.run(
            self._cmd(*args), capture_output=True, text=True, timeout=timeout, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(exist_ok=True)
        if self._as_root:
            # the `postgres` user must reach root: `pg_cluster` puts it in a folder of its own
            # under /tmp (pytest keeps its own tmp folders private to root, 0700, and resets them)
            for d in (self.root, self.run_dir):
                shutil.chown(d, "postgres")
            d = self.root
            while d != d.parent:
                d = d.parent
                with contextlib.suppress(OSError):
                    d.chmod(d.stat().st_mode | 0o001)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# a test's throwaway cluster (tests/nodes.py)\n"
                "listen_addresses = '127.0.0.1'\n"
                f"port = {self.port}\n"
                f"unix_socket_directories = '{self.run_dir}'\n"
                "max_connections = 100\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )

    def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self.init()
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                  "-t", "60", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: sessions are terminated, as in a PostgreSQL restart)."""
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def psql(self, sql: str, db: str = "postgres") -> str:
        return self._run(
            str(self.bin / "psql"), "-h", str(self.run_dir), "-p", str(self.port), "-U",
            "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-qtA", "-c", sql,
        )  # fmt: skip

    def create_database(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, db: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    """A started throwaway cluster in a new /tmp/inflow-pg-* folder, stopped (immediately) and
    removed at teardown."""
    root = Path(tempfile.mkdtemp(prefix="inflow-pg-"))
    cluster = PgCluster(root)
    try:
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError):
            cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
