"""The learning paths demo (content/demo/paths.yaml): `inflow import content/demo` (what `make run`
does) seeds "Sales onboarding" for new hires and "Expense basics" for finance, a new hire sees
theirs, importing again changes nothing (an admin's edits are kept), and a demo file naming an aid
the content lacks is refused naming the path and the step."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server import keys
from server.app import create_app
from server.cli import main
from server.demo import PATHS_DEMO_FILE, demo_paths, seed_demo_paths
from server.paths.models import LearningPath, PathAssignment
from server.settings import Settings
from tests.conftest import DEMO
from tests.tokens import TokenMaker


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INFLOW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def test_import_seeds_the_demo_paths_once(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert f"Learning paths demo ({DEMO / PATHS_DEMO_FILE}): paths 2, assignments 2, kept 0" in out
    assert main(["import", str(DEMO)]) == 0  # idempotent: `make run` imports on every start
    assert "paths 0, assignments 0, kept 4" in capsys.readouterr().out


async def test_the_demo_paths_show_every_kind_of_step_and_reach_their_groups(
    aiohttp_client: Any,
    make_settings: Callable[..., Settings],
    data_dir: Path,
    tokens: TokenMaker,
    admin: dict[str, str],
) -> None:
    assert await asyncio.to_thread(main, ["import", str(DEMO)]) == 0
    client = await aiohttp_client(create_app(make_settings(data_dir=data_dir)))
    listed = await (await client.get("/api/v1/admin/paths", headers=admin)).json()
    paths = {p["title"]: p for p in listed["paths"]}
    assert set(paths) == {"Sales onboarding", "Expense basics"}
    sales = paths["Sales onboarding"]
    assert {s["kind"] for s in sales["steps"]} == {"aid", "course", "practice", "mentor"}
    [course] = [s for s in sales["steps"] if s["kind"] == "course"]
    assert course["activity_id"].startswith("https://") and course["url"].startswith("https://")
    resp = await client.get(f"/api/v1/admin/paths/{sales['id']}/assignments", headers=admin)
    [assignment] = (await resp.json())["assignments"]
    assert assignment["group"] == "new-hires" and assignment["due_on"]

    # a new hire sees Sales onboarding (and not Expense basics); finance sees Expense basics
    newhire = tokens.auth(sub="nora", roles=("learner",), groups=("new-hires", "sales"))
    mine = await (await client.get("/api/v1/paths/mine", headers=newhire)).json()
    assert [p["path"]["title"] for p in _paths(mine)] == ["Sales onboarding"]
    finance = tokens.auth(sub="max", roles=("learner",), groups=("finance",))
    mine = await (await client.get("/api/v1/paths/mine", headers=finance)).json()
    assert [p["path"]["title"] for p in _paths(mine)] == ["Expense basics"]


def _paths(body: Any) -> list[dict[str, Any]]:
    return body["paths"] if isinstance(body, dict) else body


async def test_an_admins_change_survives_the_next_import(
    aiohttp_client: Any, make_settings: Callable[..., Settings], data_dir: Path
) -> None:
    """`make run` imports the demo on every start: it must not undo what an admin changed."""
    client = await aiohttp_client(create_app(make_settings(data_dir=data_dir)))
    app = client.server.app
    peer, catalog = app[keys.PEER], app[keys.LIBRARY].catalog
    assert await seed_demo_paths(peer, DEMO / PATHS_DEMO_FILE, catalog) == {
        "paths": 2,
        "assignments": 2,
        "kept": 0,
    }
    sales = await peer.get(LearningPath, "sales-onboarding")
    await peer.update(dataclasses.replace(sales, title="Sales onboarding (2027)", active=False))
    [finance] = await peer.list(PathAssignment, group="finance")
    await peer.delete(PathAssignment, finance.id)
    again = await seed_demo_paths(peer, DEMO / PATHS_DEMO_FILE, catalog)
    assert again == {"paths": 0, "assignments": 1, "kept": 3}  # the removed one comes back
    kept = await peer.get(LearningPath, "sales-onboarding")
    assert (kept.title, kept.active) == ("Sales onboarding (2027)", False)


async def test_a_demo_file_naming_a_missing_aid_is_refused(
    aiohttp_client: Any, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(make_settings()))
    catalog = client.server.app[keys.LIBRARY].catalog
    text = (DEMO / PATHS_DEMO_FILE).read_text(encoding="utf-8")
    broken = tmp_path / "paths.yaml"
    broken.write_text(text.replace("aid_id: crm-create-opportunity", "aid_id: crm-gone"))
    with pytest.raises(
        ValueError, match=r"path 1 \(sales-onboarding\): steps\[1\]\.aid_id: no aid"
    ):
        demo_paths(broken, catalog)
    paths, assignments = demo_paths(DEMO / PATHS_DEMO_FILE, catalog)
    assert len(paths) == 2 and all(a.due_on for a in assignments)
