"""Work that runs once across nodes (server/cluster.py, server/jobs.py; docs/scale-out.md): two
in-process Inflow apps on one PostgreSQL, each with its own data folder, node name and cluster
connection.

- a once-job both nodes are due to run runs once, and the other node shows where it runs;
- the node holding a job "dies" (its cluster connection's backend is terminated: PostgreSQL drops
  its session locks as it does when a node's process dies): the other node runs the job, and the
  first one stops its run and later holds locks again;
- the xAPI forwarder on both nodes sends each outbox statement once (counted on the way to a real
  ralph LRS);
- the mail sender on both nodes sends each notification once to a real SMTP server (aiosmtpd).

The waits poll for the outcome with a generous deadline; nothing is timed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from server import keys
from server.app import create_app
from server.cluster import Cluster
from server.jobs import JobRun, Jobs
from server.peer.mail import notify
from server.peer.models import Notification
from server.settings import Settings
from tests.pg.conftest import Databases
from tests.smtp import SmtpServer
from tests.test_analytics_xapi import Ralph, _ev, lrs_settings, ralph  # noqa: F401 - fixture
from tests.tokens import TokenMaker

DEADLINE = 30.0  # seconds before a wait for an outcome calls it a failure
CHECK = 0.2  # cluster_check_seconds of the test nodes: a lost connection is noticed soon
Nodes = tuple[TestClient, TestClient]
MakeNodes = Callable[..., Awaitable[Nodes]]


async def until(check: Callable[[], Awaitable[bool] | bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
def make_nodes(
    make_settings: Callable[..., Settings], aiohttp_client: Any, tmp_path: Path
) -> MakeNodes:
    """Two nodes (node-1 imports the demo content, node-2 finds it) with these settings. The
    databases first: they are dropped after the apps have closed."""

    async def make(**changes: Any) -> Nodes:
        base: dict[str, Any] = {"cluster_check_seconds": CHECK, "link_check_hours": 0}
        base.update(changes)
        one = await aiohttp_client(
            create_app(make_settings(data_dir=tmp_path / "node-1", node_name="node-1", **base))
        )
        two = await aiohttp_client(
            create_app(
                make_settings(
                    data_dir=tmp_path / "node-2", node_name="node-2", content_dir=None, **base
                )
            )
        )
        return one, two

    return make


def jobs_of(client: TestClient) -> Jobs:
    return client.app[keys.JOBS]


def cluster_of(client: TestClient) -> Cluster:
    return client.app[keys.CLUSTER]


async def job_row(client: TestClient, name: str) -> dict[str, Any] | None:
    table = jobs_of(client).table
    assert table is not None
    return await table.get(name)


async def test_a_once_job_due_on_both_nodes_runs_once(make_nodes: MakeNodes) -> None:
    """Both nodes register the hourly check and both schedulers find it due now: one check
    runs, not two; the other node's console shows it running there, then where it ran."""
    one, two = await make_nodes()
    started: list[str] = []
    gate = asyncio.Event()

    def check(node: str) -> Callable[[JobRun], Awaitable[None]]:
        async def run(job: JobRun) -> None:
            started.append(node)
            job.progress(1, 3, "checking")
            await gate.wait()

        return run

    jobs_of(one).register("hourly-check", 3600, check("node-1"), first_in=0)
    jobs_of(two).register("hourly-check", 3600, check("node-2"), first_in=0)
    await until(lambda: len(started) == 1, "one node starts the check")
    runner, other = (one, two) if started == ["node-1"] else (two, one)
    # the other node decided too: skipped, its next turn an hour after the runner's start
    await until(lambda: not jobs_of(other).running("hourly-check"), "the other node skips it")
    await until(
        lambda: jobs_of(other).state("hourly-check")["running"], "the other node sees the run"
    )
    state = jobs_of(other).state("hourly-check")
    assert state["node"] == started[0] and state["elsewhere"] is True
    assert state["progress"]["message"] == f"running on {started[0]}"
    assert jobs_of(runner).state("hourly-check")["progress"]["message"] == "checking"
    gate.set()
    await jobs_of(runner).wait("hourly-check")
    row = await job_row(other, "hourly-check")
    assert row is not None
    assert (row["node"], row["status"], row["runs"]) == (started[0], "ok", 1)
    assert started == [started[0]]  # still one: nobody ran it a second time
    for client in (one, two):
        nxt = jobs_of(client).state("hourly-check")["next_at"]
        assert nxt is not None and nxt > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def test_when_the_node_holding_a_job_dies_the_other_runs_it(
    make_nodes: MakeNodes, pg: Databases
) -> None:
    """Node one runs a sync and its database session ends (as when its process is killed):
    "Sync now" on node two was refused while node one held it, and works once the lock went
    with the session. Node one stops its run (another node may run it now), reconnects, and can
    run jobs again later."""
    one, two = await make_nodes(jobs=False)
    reached, gate = asyncio.Event(), asyncio.Event()
    ran: list[str] = []

    async def on_one(job: JobRun) -> None:
        ran.append("node-1")
        reached.set()
        await gate.wait()

    async def on_two(job: JobRun) -> None:
        ran.append("node-2")

    jobs_of(one).register("source:intranet", 3600, on_one)
    jobs_of(two).register("source:intranet", 3600, on_two)
    assert await jobs_of(one).run_now("source:intranet") is True
    await asyncio.wait_for(reached.wait(), DEADLINE)
    assert await jobs_of(two).run_now("source:intranet") is False
    assert cluster_of(one).holders() == ["job:source:intranet"]

    url = one.app[keys.SETTINGS].database_url
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            ended = conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'inflow-cluster:node-1' "
                "AND datname = current_database()"  # not another test's node-1
            ).all()
        assert ended == [(True,)]
    finally:
        engine.dispose()

    async def two_runs() -> bool:
        return await jobs_of(two).run_now("source:intranet")

    await until(two_runs, "node two runs the job once node one's session ended")
    await jobs_of(two).wait("source:intranet")
    assert ran == ["node-1", "node-2"]
    # node one noticed: its run was stopped, and says why
    await until(lambda: not jobs_of(one).running("source:intranet"), "node one stops its run")
    assert jobs_of(one).counts()["source:intranet"] == (1, 1, False)  # one run, stopped
    row = await job_row(one, "source:intranet")
    assert row is not None and (row["node"], row["status"]) == ("node-2", "ok")
    # ...and it is back in the cluster: it can hold the job again
    gate.set()
    assert cluster_of(one).reconnects >= 1

    async def one_runs() -> bool:
        return await jobs_of(one).run_now("source:intranet")

    await until(one_runs, "node one runs the job again after reconnecting")
    await jobs_of(one).wait("source:intranet")
    assert ran == ["node-1", "node-2", "node-1"]


@pytest.fixture
async def counting_lrs(ralph: Ralph) -> AsyncIterator[tuple[str, Counter[str]]]:  # noqa: F811
    """A pass-through in front of ralph counting each statement id POSTed (ralph itself keeps
    a statement id once, so it could not tell a double send)."""
    sent: Counter[str] = Counter()
    session = aiohttp.ClientSession()

    async def statements(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.method == "POST":
            for statement in json.loads(body):
                sent[statement["id"]] += 1
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in {"authorization", "content-type", "x-experience-api-version"}
        }
        async with session.request(
            request.method, f"{ralph.url}/statements", data=body, headers=headers
        ) as resp:
            return web.Response(
                status=resp.status,
                body=await resp.read(),
                content_type=resp.content_type,
            )

    app = web.Application()
    app.router.add_route("*", "/xAPI/statements", statements)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/xAPI")), sent
    finally:
        await server.close()
        await session.close()


async def test_the_xapi_forwarder_on_two_nodes_sends_each_statement_once(
    make_nodes: MakeNodes,
    make_settings: Callable[..., Settings],
    pg: Databases,
    counting_lrs: tuple[str, Counter[str]],
    ralph: Ralph,  # noqa: F811
    tokens: TokenMaker,
) -> None:
    """Learners send events to both nodes; both nodes run a forwarder on the shared outbox. Each
    statement reaches the LRS once: the forwarders never send the same batch twice."""
    endpoint, sent = counting_lrs
    lrs = lrs_settings(make_settings, endpoint, lrs_batch_size=5)
    one, two = await make_nodes(
        events_database_url=pg.new("events"),
        **{k: getattr(lrs, k) for k in ("lrs_endpoint", "lrs_username", "lrs_password")},
        lrs_poll_seconds=0.05,
        lrs_batch_size=5,
    )
    ids: list[str] = []
    for round_ in range(6):
        for client in (one, two):
            headers = tokens.auth(sub=f"learner-{round_}", roles=("learner",))
            batch = [_ev("aid_opened", app="hr", aid="hr-pto-policy") for _ in range(7)]
            ids.extend(e["id"] for e in batch)
            resp = await client.post("/api/v1/events", json={"events": batch}, headers=headers)
            assert resp.status == 200, await resp.text()
    store = one.app[keys.ANALYTICS].store

    async def drained() -> bool:
        pending, dead = await store.write(store.outbox_size_sync)
        assert dead == 0
        return pending == 0 and set(sent) >= set(ids)

    await until(drained, "the outbox is sent")
    assert {i: n for i, n in sent.items() if n != 1} == {}  # none twice
    assert set(sent) == set(ids)
    stored = await asyncio.to_thread(ralph.statements)
    assert set(ids) <= set(stored)
    holders = [c.app[keys.SETTINGS].node_name for c in (one, two) if cluster_of(c).holders()]
    assert len(holders) == 1  # one forwarder sends; the other stands by


async def test_the_mail_sender_on_two_nodes_sends_each_notification_once(
    make_nodes: MakeNodes, smtp_server: SmtpServer
) -> None:
    """Both nodes have a mail host and a sender on the shared outbox; questions queued on both
    nodes arrive once each."""
    one, two = await make_nodes(**smtp_server.settings(), smtp_poll_seconds=0.1)
    to: list[str] = []
    for i in range(8):
        for n, client in enumerate((one, two)):
            address = f"mentor{i}-{n}@example.com"
            to.append(address)
            await notify(client.app, [address], f"Question {i}", "Where?", "question.asked", "q")
    await smtp_server.wait_for(len(to))

    async def all_sent() -> bool:
        rows = await one.app[keys.PEER].list(Notification)
        return len(rows) == len(to) and all(r.status == "sent" and r.attempts == 1 for r in rows)

    # a second sender would have sent its copies before the rows were marked sent
    await until(all_sent, "every notification marked sent after one attempt")
    received = Counter(r for m in smtp_server.received() for r in m.rcpt_tos)
    assert {a: n for a, n in received.items() if n != 1} == {}
    assert sorted(received) == sorted(to)
