"""README's two commands for a fresh machine, as make would run them (``make -n``, nothing is
executed): the tour installs the package alone, the tests install its test tools (issue 29:
`make tour` installed Ray, JupyterLab and Playwright to run the tour)."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _planned(target: str, venv: Path) -> str:
    return subprocess.run(["make", "-n", "-B", target, f"VENV={venv}"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_tour_installs_the_package_without_its_test_tools(tmp_path):
    tour = _planned("tour", tmp_path / "venv")
    assert "pip install --quiet -e ." in tour and "[test]" not in tour
    assert "cnn_helper tour --data bundled" in tour
    assert 'pip install --quiet -e ".[test]"' in _planned("test", tmp_path / "venv")
