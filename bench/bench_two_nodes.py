"""Two nodes behind nginx against one node: suggest throughput and latency (docs/proxy.md).

    .venv/bin/python bench/bench_two_nodes.py [--seconds 10] [--connections 8]

Needs `make postgres` (a database of its own on the 5433 cluster, dropped at the end), `make
nginx` and wrk (`make bench` installs it). Two `inflow serve` nodes share that database with the
demo content; nginx runs deploy/nginx/inflow.conf (TLS with a self-signed certificate, least_conn
over both nodes). wrk POSTs a Zipf mix of the demo apps' pages to /api/v1/suggest with a forged
learner token (rate limits off), uncached (each request a new title word: the index is searched)
and cached (the result cache answers), for:

- one node, direct (http): the baseline;
- one node behind nginx (https): what the proxy and TLS cost;
- two nodes behind nginx (https): the two-node figure.

On a 2-core machine wrk, nginx and the nodes share the cores: a second node helps while a node's
own CPU is the limit, and the figures say how much. Prints requests/s, p50 and p99.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.wrk_suggest import lua_script
from tests.nodes import Node, free_port
from tests.pg.conftest import PG_URL, Databases, _admin
from tests.proxy.nginx import Nginx, render_site, self_signed, start_two_nodes, stop_all
from tests.tokens import ISSUER, TokenMaker

ROOT = Path(__file__).resolve().parent.parent
# Pages of the demo apps (their URL rules and titles), as the extension would send them.
PAGES: list[dict[str, object]] = [
    {"url": "http://127.0.0.1/demo/crm/", "title": "Pipeline dashboard"},
    {"url": "http://127.0.0.1/demo/crm/opportunities/new", "title": "New Opportunity"},
    {"url": "http://127.0.0.1/demo/crm/opportunities/4711", "title": "Acme renewal"},
    {"url": "http://127.0.0.1/demo/crm/accounts/acme", "title": "Acme Corporation"},
    {"url": "http://127.0.0.1/demo/expenses/", "title": "My expense reports"},
    {"url": "http://127.0.0.1/demo/expenses/reports/new", "title": "New expense report"},
    {"url": "http://127.0.0.1/demo/hr/", "title": "Time off"},
    {"url": "http://127.0.0.1/demo/hr/leave/new", "title": "Request leave"},
]


def wrk(url: str, script: Path, seconds: int, connections: int) -> str:
    subprocess.run(
        ["wrk", "-t1", "-c4", "-d2s", "-s", str(script), url], capture_output=True, check=False
    )  # warm up: connections, TLS sessions, the result cache when cached
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    lines = out.splitlines()
    rps = next((ln.split()[1] for ln in lines if ln.startswith("Requests/sec")), "?")
    p50 = next((ln.split()[1] for ln in lines if ln.strip().startswith("50%")), "?")
    p99 = next((ln.split()[1] for ln in lines if ln.strip().startswith("99%")), "?")
    errors = next((ln.strip() for ln in lines if "Non-2xx" in ln or "Socket errors" in ln), "")
    return f"{rps:>9} req/s   p50 {p50:>8}   p99 {p99:>8}   {errors}".rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    print("\n== two nodes behind nginx (PostgreSQL, demo content, POST /api/v1/suggest) ==")
    if not shutil.which("wrk") or not Path("/usr/sbin/nginx").exists():
        print("(needs wrk and nginx: `make nginx`, apt-get install wrk; skipped)")
        return
    tokens = TokenMaker.create()
    token = tokens.token(roles=("learner",))
    work = Path(tempfile.mkdtemp(prefix="inflow-two-nodes-"))
    admin = _admin()
    dbs = Databases(admin, {})
    nodes: list[Node] = []
    nginx: Nginx | None = None
    try:
        env = {
            "INFLOW_DATABASE_URL": dbs.new(),
            "INFLOW_EVENTS_DATABASE_URL": dbs.new(),
            "INFLOW_CONTENT_DIR": str(ROOT / "content" / "demo"),
            "INFLOW_AUTH_JWKS_FILE": str(tokens.write_jwks(work / "jwks.json")),
            "INFLOW_AUTH_ISSUER": ISSUER,
            "INFLOW_SEARCH_THREADS": "2",
            "INFLOW_SERVE_DEMO": "0",
            "INFLOW_JOBS": "0",
            # thousands of requests a second from one token and address: limits off
            "INFLOW_RATE_LIMIT_SUBJECT_PER_SECOND": "0",
            "INFLOW_RATE_LIMIT_ADDRESS_PER_SECOND": "0",
            "INFLOW_RATE_LIMIT_TRUSTED_PROXIES": "127.0.0.1",
        }
        https_port = free_port()
        env["INFLOW_BASE_URL"] = f"https://127.0.0.1:{https_port}"
        start_two_nodes(nodes, work, env)
        cert, key = self_signed(work / "tls")

        def proxy(upstreams: list[Node]) -> Nginx:
            site = render_site(
                base_url=env["INFLOW_BASE_URL"],
                https_port=https_port,
                http_port=free_port(),
                certificate=cert,
                key=key,
                upstreams=[f"127.0.0.1:{n.port}" for n in upstreams],
            )
            return Nginx(work / f"nginx-{len(upstreams)}", site, https_port)

        scripts = {}
        for kind, unique in (("uncached", True), ("cached", False)):
            scripts[kind] = work / f"{kind}.lua"
            scripts[kind].write_text(lua_script(PAGES, token, unique=unique), encoding="utf-8")
        # Warm both nodes up alike (first searches, the index merge after the import).
        for node in nodes:
            wrk(node.url, scripts["uncached"], 5, args.connections)
        print(f"{args.connections} connections, {args.seconds} s each, {os.cpu_count()} cores")
        rows = [("one node, direct", None), ("one node, nginx", 1), ("two nodes, nginx", 2)]
        for label, behind in rows:
            if behind is not None:
                nginx = proxy(nodes[:behind])
                nginx.start()
                url = nginx.url
            else:
                url = nodes[0].url
            for kind, script in scripts.items():
                result = wrk(url, script, args.seconds, args.connections)
                print(f"{label:<18} {kind:<9} {result}", flush=True)
            if nginx is not None:
                nginx.stop()
                nginx = None
    finally:
        stop_all(nginx, nodes, dbs)
        admin.dispose()
        shutil.rmtree(work, ignore_errors=True)
    print(f"(database: a new one on {PG_URL.rsplit('@', 1)[-1]}, dropped)")


if __name__ == "__main__":
    main()
