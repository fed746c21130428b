"""The API reference builds from the docstrings (pdoc) without a single warning: a docstring pdoc
cannot render or a module it cannot import fails this test. ``make docs`` writes it to docs/api."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _builder():
    spec = importlib.util.spec_from_file_location("build_api", ROOT / "docs" / "build_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_reference_builds_without_warnings(tmp_path):
    builder = _builder()
    modules = builder.public_modules()
    assert {"cnn_helper.saliency", "cnn_helper.drawing", "cnn_helper.widgets.drawing",
            "cnn_helper.plot.panels", "cnn_helper.cli_explain"} <= set(modules)
    assert not any("._" in m for m in modules)                 # private modules stay out
    assert builder.build(tmp_path) == []
    pages = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.html")}
    assert {"index.html", "cnn_helper.html", "cnn_helper/saliency.html",
            "cnn_helper/widgets/drawing.html"} <= pages
    saliency_page = (tmp_path / "cnn_helper" / "saliency.html").read_text()
    assert "grad_cam" in saliency_page and "Selvaraju" in saliency_page   # its docstrings
