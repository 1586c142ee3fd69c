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
