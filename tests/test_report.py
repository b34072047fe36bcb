"""The reliability report: after a run of the whole suite every row must be there."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests import report


def written(tmp_path: Path, full_run: bool, rows: list[str]) -> str:
    path = tmp_path / "report.json"
    figures = {row: {"sent": 1, "completed": 1, "lost": 0, "duplicated": 0} for row in rows}
    path.write_text(json.dumps({"rows": figures, "full_run": full_run}))
    return str(path)


def test_a_whole_suite_run_missing_a_row_fails_require_all_naming_the_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = written(tmp_path, True, [row for row in report.ROWS if row != "drain"])
    assert report.main(["--require-all", path]) == 1
    out, err = capsys.readouterr()
    assert "| 10,000 queued calls drained | not run |" in out
    assert err == "the whole suite ran but wrote no row for: drain\n"
    assert report.main([path]) == 0  # without --require-all the table is only printed


def test_a_partial_run_or_a_complete_report_passes_require_all(tmp_path: Path) -> None:
    assert report.main(["--require-all", written(tmp_path, False, ["pool_kill"])]) == 0
    assert report.main(["--require-all", written(tmp_path, True, list(report.ROWS))]) == 0


def session(args_source: Any, **narrowed: Any) -> Any:
    option = {"keyword": "", "markexpr": "", "deselect": [], "ignore": None, **narrowed}
    return SimpleNamespace(args_source=args_source, option=SimpleNamespace(**option))


def test_only_a_session_no_path_or_option_narrowed_runs_the_whole_suite() -> None:
    sources = pytest.Config.ArgsSource
    assert report.runs_whole_suite(session(sources.TESTPATHS))
    assert not report.runs_whole_suite(session(sources.ARGS))  # paths given
    for option in ({"keyword": "bad"}, {"markexpr": "reliability"}, {"deselect": ["x"]}):
        assert not report.runs_whole_suite(session(sources.TESTPATHS, **option))
