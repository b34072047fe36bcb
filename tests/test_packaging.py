"""``pip install`` prints no setuptools deprecation warnings.

pip builds the project through setuptools' PEP 517 backend; a deprecated setting
in ``pyproject.toml`` (a license table instead of an SPDX string, say) shows as a
``SetuptoolsDeprecationWarning`` on every install. The test runs the backend's
three hooks pip uses (metadata, wheel, editable wheel) in a scratch copy of the
project with this venv's setuptools (the ``test`` extra pins a recent one), as
``pip install --no-build-isolation`` would: offline, in about a second.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BUILD = """
import sys
from setuptools import build_meta

out = sys.argv[1]
build_meta.prepare_metadata_for_build_wheel(out)
build_meta.build_wheel(out)
build_meta.build_editable(out)
"""


def scratch_copy(target: Path) -> Path:
    """What the backend reads: the project file, the readme and the package."""
    source = target / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "commissaire_tasks",
        source / "commissaire_tasks",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return source


def test_building_the_project_prints_no_setuptools_deprecation_warning(tmp_path: Path) -> None:
    source = scratch_copy(tmp_path)
    (tmp_path / "out").mkdir()
    built = subprocess.run(
        [sys.executable, "-W", "always", "-c", BUILD, str(tmp_path / "out")],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir() if p.is_file()) == [
        ".whl",
        ".whl",
    ]
    assert "SetuptoolsDeprecationWarning" not in output, output
    assert "deprecated" not in output.lower(), output
