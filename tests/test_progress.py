"""Progress bars only where someone watches (issue 29): on a terminal or in Jupyter, never drawn
into a log file or a pipe."""
import io
import subprocess
import sys

import numpy as np
import pytest

from cnn_helper import (
    _quiet,  # internal contract: the one rule for progress bars
    max_activation,
    models,
)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(scope="module")
def model_and_x():
    x = np.random.default_rng(0).random((40, 28, 28, 1)).astype("float32")
    return models.load("cnn"), x


@pytest.mark.parametrize("stream, shown", [(io.StringIO, False), (_Terminal, True)])
def test_a_scan_draws_its_bar_only_on_a_terminal(model_and_x, monkeypatch, stream, shown):
    model, x = model_and_x
    err = stream()
    monkeypatch.setattr(sys, "stderr", err)
    max_activation.scan(model, x, "conv1", count=2)
    assert ("scan conv1" in err.getvalue()) is shown
    err = stream()
    monkeypatch.setattr(sys, "stderr", err)
    max_activation.scan(model, x, "conv1", count=2, progress=False)
    assert err.getvalue() == ""


def test_the_rule_itself(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not _quiet.watched()
    monkeypatch.setattr(sys, "stderr", _Terminal())
    assert _quiet.watched()
    monkeypatch.setattr(sys, "stderr", None)           # pythonw, some services
    assert not _quiet.watched()


def test_a_script_whose_stderr_goes_to_a_file_gets_no_bar(tmp_path):
    script = ("import numpy as np\n"
              "from cnn_helper import feature_visualization, max_activation, models\n"
              "m = models.load('cnn')\n"
              "x = np.random.default_rng(0).random((20, 28, 28, 1)).astype('float32')\n"
              "max_activation.scan(m, x, 'conv1', count=2)\n"
              "feature_visualization.visualize(m, 'conv1', steps=2)\n"
              "print('done')\n")
    log = tmp_path / "log.txt"
    with open(log, "w") as err:
        run = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=err,
                             text=True, timeout=300)
    assert run.returncode == 0 and "done" in run.stdout
    text = log.read_text()
    assert "scan conv1" not in text and "visualize" not in text and "\r" not in text, text
