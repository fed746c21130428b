"""README's two commands for a fresh machine, as make would run them (``make -n``, nothing is
executed): the tour installs the package with the CPU-only TensorFlow alone, the tests install its
test tools too (issue 29: `make tour` installed Ray, JupyterLab and Playwright to run the tour)."""
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
    assert 'pip install --quiet -c tests/constraints.txt -e ".[cpu]"' in tour
    assert "test]" not in tour and "cnn_helper tour --data-source bundled" in tour
    assert ('pip install --quiet -c tests/constraints.txt -e ".[cpu,test]"'
            in _planned("test", tmp_path / "venv"))


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_each_install_brings_tensorflow_through_the_cpu_extra(tmp_path):
    """setup.cfg lists no TensorFlow (pip would install it over a GPU build, issue 29): every
    `pip install` of the package that make runs names the `cpu` extra, which brings one."""
    for target in ("tour", "test"):
        installs = [line for line in _planned(target, tmp_path / "venv").splitlines()
                    if "pip install" in line and " -e " in line]
        assert installs and all("[cpu" in line for line in installs), (target, installs)
