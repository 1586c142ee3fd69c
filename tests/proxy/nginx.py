"""Debian's nginx in front of Inflow nodes, as the current user, for tests and benches.

- `self_signed(folder)`: a certificate and key for 127.0.0.1 and localhost made by openssl.
- `render_site(...)`: deploy/nginx/inflow.conf (the site docs/proxy.md documents) with its
  placeholders filled in; any placeholder left over is an error, so the file run here is the
  documented one.
- `Nginx(prefix, site)`: an nginx master of its own (`nginx -p PREFIX -c nginx.conf -g 'daemon
  off;'`): pid, logs and temp folders in `prefix`, never the system's nginx or its ports.
  `start()` waits until the https port answers; `stop()`; `access_log()`, `error_log()`.

`make nginx` (deploy/nginx/setup.sh) installs nginx and openssl.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

from tests.nodes import Node, free_port
from tests.pg.conftest import Databases

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "deploy" / "nginx" / "inflow.conf"
NGINX = Path("/usr/sbin/nginx")
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def require_nginx() -> None:
    if not NGINX.exists():
        raise RuntimeError("nginx is not installed: run `make nginx`")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for CN 127.0.0.1 with SANs 127.0.0.1 and localhost, valid 2 days."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def render_site(
    *,
    base_url: str,
    https_port: int,
    http_port: int,
    certificate: Path,
    key: Path,
    upstreams: list[str],
    server_name: str = "127.0.0.1 localhost",
) -> str:
    """deploy/nginx/inflow.conf for nodes at `upstreams` ("127.0.0.1:PORT" each)."""
    values = {
        "base_url": base_url,
        "server_name": server_name,
        "https_listen": f"127.0.0.1:{https_port}",
        "http_listen": f"127.0.0.1:{http_port}",
        "certificate": str(certificate),
        "certificate_key": str(key),
        "upstreams": "\n    ".join(f"server {u} max_fails=1 fail_timeout=10s;" for u in upstreams),
    }
    text = SITE.read_text(encoding="utf-8")
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    left = set(PLACEHOLDER.findall(body)) - set(values)
    if left:
        raise ValueError(f"{SITE} has placeholders nobody fills: {sorted(left)}")
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], body)


def wrapper(prefix: Path, site: Path) -> str:
    """The nginx.conf around the site: what Debian's /etc/nginx/nginx.conf gives a site (mime
    types, sendfile), with pid, logs and temp files in `prefix`."""
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers may read the prefix
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / 'tmp' / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    access_log {prefix / "access.log"};
{temp}
    include {site};
}}
"""


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Nginx:
    """One nginx master serving `site` (rendered text) from `prefix`."""

    def __init__(self, prefix: Path, site: str, https_port: int) -> None:
        require_nginx()
        self.prefix = prefix
        self.https_port = https_port
        (prefix / "tmp").mkdir(parents=True, exist_ok=True)
        self.site_path = prefix / "inflow.conf"
        self.site_path.write_text(site, encoding="utf-8")
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(wrapper(prefix, self.site_path), encoding="utf-8")
        self.proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def _cmd(self, *extra: str) -> list[str]:
        # -e: nginx's start-up messages go to the prefix too, never to /var/log/nginx.
        prefix, conf, log = str(self.prefix), str(self.conf), str(self.prefix / "error.log")
        return [str(NGINX), "-p", prefix, "-c", conf, "-e", log, *extra]

    def check(self) -> None:
        """`nginx -t`: the configuration is valid (raises with nginx's words otherwise)."""
        done = subprocess.run(
            self._cmd("-t"), capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"nginx -t refused the configuration:\n{done.stderr}")

    def start(self, timeout: float = 20.0) -> None:
        self.check()
        self._out = (self.prefix / "nginx.out").open("ab")
        self.proc = subprocess.Popen(
            self._cmd("-g", "daemon off;"), stdout=self._out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while not port_answers(self.https_port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not start:\n{self.error_log()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGQUIT (graceful), SIGKILL after 10 s; the master takes its workers along."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGQUIT)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if self._out is not None:
            self._out.close()
            self._out = None

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access_log(self) -> list[str]:
        path = self.prefix / "access.log"
        return path.read_text(errors="replace").splitlines() if path.exists() else []


def start_two_nodes(nodes: list[Node], root: Path, env: dict[str, str]) -> None:
    """Start nodes "one" and "two" under `root` with `env`, one at a time (the first migrates
    and imports the content), each ready before the next. Each joins `nodes` as it starts, so
    the caller's `stop_all` stops those that started when a later one fails."""
    for name in ("one", "two"):
        node = Node(name, free_port(), root / name, env)
        nodes.append(node)
        node.start()
        node.wait_ready()


def stop_all(nginx: Nginx | None, nodes: list[Node], dbs: Databases) -> None:
    """The end of a site of nodes behind nginx: nginx, then the nodes, then their databases."""
    if nginx is not None:
        nginx.stop()
    for node in nodes:
        node.stop()
    dbs.drop_all()
