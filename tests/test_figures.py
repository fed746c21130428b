"""The lecture diagrams and ``python -m cnn_helper figures`` (the static images notebooks embed;
that every image a notebook embeds is one of them is checked in tests/test_notebook_check.py)."""
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from cnn_helper import diagrams
from cnn_helper.__main__ import main  # internal contract: the `cnn-helper` command itself


def _orange_pixels(path):
    img = mpimg.imread(path)[..., :3]
    target = np.array([0xF2, 0x8E, 0x2B]) / 255
    return int(np.sum(np.all(np.abs(img - target) < 0.03, axis=-1)))


def test_figures_command_writes_every_diagram(tmp_path, capsys):
    assert main(["figures", "--out", str(tmp_path / "images")]) == 0
    written = sorted(p.stem for p in (tmp_path / "images").glob("*.png"))
    assert written == sorted(diagrams.FIGURES)
    assert "wrote" in capsys.readouterr().out
    for name in diagrams.FIGURES:
        img = mpimg.imread(tmp_path / "images" / f"{name}.png")
        assert img.shape[0] > 100 and img.shape[1] > 100, name
        assert img[..., :3].std() > 0.05, f"{name} is blank"


def test_selected_feature_is_highlighted_only_when_asked(tmp_path):
    paths = {p.stem: p for p in diagrams.write_all(tmp_path)}
    assert _orange_pixels(paths["dense_layer"]) == 0
    assert _orange_pixels(paths["conv_layer"]) == 0
    for name in ("dense_layer_select", "conv_layer_select", "conv_layer_pool", "probe",
                 "saliency_pass"):
        assert _orange_pixels(paths[name]) > 50, name


def test_diagrams_are_deterministic(tmp_path):
    a = diagrams.write_all(tmp_path / "a", names=["probe"])[0].read_bytes()
    b = diagrams.write_all(tmp_path / "b", names=["probe"])[0].read_bytes()
    assert a == b


def test_diagram_functions_return_fig_and_close_it():
    plt.close("all")
    for draw in diagrams.FIGURES.values():
        fig, ax = draw()
        assert ax.figure is fig
    assert plt.get_fignums() == []


def test_unknown_figure_name_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown figure.*nope.*dense_layer"):
        diagrams.write_all(tmp_path, names=["nope"])

