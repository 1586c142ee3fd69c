"""The `inflow` command line: import, check, reindex, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.cli import main
from tests.sample_content import write_sample


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INFLOW_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_import_check_reindex_export(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content = write_sample(env / "content")
    assert main(["import", str(content)]) == 0
    assert "aids created 9" in capsys.readouterr().out
    assert main(["check"]) == 0
    assert json.loads(capsys.readouterr().out)["index"]["aids"] == 9
    assert main(["reindex"]) == 0
    assert "Rebuilt the index: 9 aids" in capsys.readouterr().out
    assert main(["export", str(env / "out")]) == 0
    assert (env / "out" / "aids" / "read-your-payslip.md").read_text().startswith("---\nid: ")


def test_import_with_errors_exits_2_and_lists_them(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = write_sample(env / "content")
    (content / "aids" / "book-a-trip.md").write_text("no front matter")
    assert main(["import", str(content)]) == 2
    err = capsys.readouterr().err
    assert "Nothing imported" in err
    assert "aids/book-a-trip.md:1: missing YAML front matter" in err


def test_check_fails_when_index_lags(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content = write_sample(env / "content")
    assert main(["import", str(content)]) == 0
    import shutil

    shutil.rmtree(env / "data" / "index")
    capsys.readouterr()
    assert main(["check"]) == 1
    assert "disagrees" in capsys.readouterr().err


def test_a_second_process_cannot_write_the_same_index(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Incident guarded: `inflow reindex` while the server ran swapped in a new generation and
    deleted the one the server's writer kept writing to, losing the server's later edits."""
    import subprocess
    import sys

    content = write_sample(env / "content")
    assert main(["import", str(content)]) == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import asyncio, sys, time\n"
            "from pathlib import Path\nfrom index.service import IndexService\n"
            "ix = IndexService(Path(sys.argv[1]))\nix.open_sync()\nprint('held', flush=True)\n"
            "time.sleep(30)\n",
            str(env / "data" / "index"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert main(["reindex"]) == 3
        assert f"in use by pid {holder.pid}" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert main(["reindex"]) == 0  # free again once the other process is gone


@pytest.mark.parametrize("how", ["deleted", "truncated", "zeroed"])
def test_check_fails_on_a_corrupt_index_and_names_the_file(
    env: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    """Incident: with a deleted, truncated or zeroed segment file `inflow check` exited 0
    (it compared the versions the index recorded, never its files)."""
    content = write_sample(env / "content")
    assert main(["import", str(content)]) == 0
    index_dir = env / "data" / "index"
    segment = next((index_dir / (index_dir / "CURRENT").read_text().strip()).glob("*.seg"))
    if how == "deleted":
        segment.unlink()
    elif how == "truncated":
        segment.write_bytes(segment.read_bytes()[:100])
    else:
        segment.write_bytes(bytes(segment.stat().st_size))
    capsys.readouterr()
    assert main(["check"]) == 1
    out = capsys.readouterr()
    assert json.loads(out.out)["index"]["health"] == "corrupt"
    assert "index corrupt" in out.err and segment.name in out.err
    assert main(["reindex"]) == 0  # the way out the message names
    assert main(["check"]) == 0
