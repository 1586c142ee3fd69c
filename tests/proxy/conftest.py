"""The proxy test's site: Debian's nginx (deploy/nginx/inflow.conf, a self-signed certificate)
on https://127.0.0.1:8443 in front of two `inflow serve` nodes sharing one PostgreSQL database
(the 5433 cluster of `make postgres`), with the real Keycloak. One site per module.

Port 8443 is fixed because Keycloak accepts exact redirect URIs only: auth/realm-inflow.json
lists https://127.0.0.1:8443/{admin,learn}/callback (INFLOW_TEST_PROXY_PORT moves it; the realm
must then list that port). The nodes trust 127.0.0.1 (the address nginx connects from) as a
proxy: the client is the address nginx names in X-Forwarded-For.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import EXT_ID
from tests.keycloak import REALM_FILE, admin
from tests.nodes import Node, free_port
from tests.pg.conftest import Databases, _admin
from tests.proxy.nginx import (
    Nginx,
    port_answers,
    render_site,
    self_signed,
    start_two_nodes,
    stop_all,
)

ROOT = Path(__file__).resolve().parents[2]
PROXY_PORT = int(os.environ.get("INFLOW_TEST_PROXY_PORT", "8443"))
BASE_URL = f"https://127.0.0.1:{PROXY_PORT}"
CALLBACKS = [f"{BASE_URL}/admin/callback", f"{BASE_URL}/learn/callback"]
# Rate limit by client address, per node: a burst the browsers' flows stay under, and next to
# no refill, so the test that exhausts it needs no clock.
ADDRESS_BURST = 60


@dataclass
class Site:
    nginx: Nginx
    nodes: list[Node]
    certificate: Path  # the self-signed certificate clients verify nginx with
    http_port: int  # plain http: redirected to https

    @property
    def url(self) -> str:
        return self.nginx.url


def _allow_callbacks() -> None:
    """The running Keycloak may have imported an older realm file (auth/keycloak.sh re-imports
    only on `make keycloak`): add the proxy's callbacks to `inflow-admin` as the file has them."""
    realm = json.loads(REALM_FILE.read_text(encoding="utf-8"))
    (client,) = [c for c in realm["clients"] if c["clientId"] == "inflow-admin"]
    assert set(CALLBACKS) <= set(client["redirectUris"]), "auth/realm-inflow.json lacks them"
    kc = admin()
    uuid = kc.get_client_id("inflow-admin")
    client = kc.get_client(uuid)
    uris = list(client.get("redirectUris") or [])
    missing = [u for u in CALLBACKS if u not in uris]
    if missing:
        kc.update_client(uuid, {"redirectUris": uris + missing})


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    keycloak: Any,
) -> Iterator[Site]:
    # One site at a time on the fixed port, across processes: pytest-xdist may run this folder's
    # tests on both workers, and a second nginx then found 8443 taken while the first one
    # answered for it (CI: the learner, admin and forwarded tests reached another site's nodes).
    # The other worker waits here until this module's site is torn down.
    with (Path(tempfile.gettempdir()) / f"inflow-proxy-{PROXY_PORT}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _site(tmp_path_factory)


def _site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if port_answers(PROXY_PORT):
        pytest.fail(f"port {PROXY_PORT} is taken: free it or set INFLOW_TEST_PROXY_PORT")
    _allow_callbacks()
    tmp = tmp_path_factory.mktemp("proxy")
    # Empty databases on the 5433 cluster, migrated by the first node as a new install would be
    # (not tests/pg's templates: their fixture belongs to that folder's tests).
    engine = _admin()
    dbs = Databases(engine, {})
    nginx: Nginx | None = None
    nodes: list[Node] = []
    try:
        env = {
            "INFLOW_DATABASE_URL": dbs.new(),
            "INFLOW_EVENTS_DATABASE_URL": dbs.new(),
            "INFLOW_CONTENT_DIR": str(ROOT / "content" / "demo"),
            "INFLOW_BASE_URL": BASE_URL,
            "INFLOW_CORS_ORIGINS": f"chrome-extension://{EXT_ID}",
            "INFLOW_RATE_LIMIT_TRUSTED_PROXIES": "127.0.0.1",
            "INFLOW_RATE_LIMIT_ADDRESS_BURST": str(ADDRESS_BURST),
            "INFLOW_RATE_LIMIT_ADDRESS_PER_SECOND": "0.001",
            "INFLOW_SEARCH_THREADS": "1",
            "INFLOW_FETCH_ALLOW_PRIVATE": "1",
        }
        start_two_nodes(nodes, tmp, env)
        cert, key = self_signed(tmp / "tls")
        http_port = free_port()
        text = render_site(
            base_url=BASE_URL,
            https_port=PROXY_PORT,
            http_port=http_port,
            certificate=cert,
            key=key,
            upstreams=[f"127.0.0.1:{n.port}" for n in nodes],
        )
        nginx = Nginx(tmp / "nginx", text, PROXY_PORT)
        nginx.start()
        yield Site(nginx, nodes, cert, http_port)
    finally:
        stop_all(nginx, nodes, dbs)
        engine.dispose()
