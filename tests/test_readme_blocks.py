"""Every Python block of README.md and of the user guide (docs/index.md, docs/guide/*.md) runs, as a
reader would run it: the blocks of one file in order, in one namespace, in an empty folder.

Hermetic: the data come from the bundled digits (an unreachable data origin and an empty Keras
folder), retrained weights from an empty cache. A block that cannot run here (it needs a GPU, a
cluster, the network, or a data set that is not bundled) is marked by a comment on the line
before it, ``<!-- no-run: the reason -->``; such blocks are listed in NOT_RUN, so a new one is
a decision made in this file, never a silent skip.
"""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "docs" / "index.md",
         *sorted((ROOT / "docs" / "guide").glob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)[ ]*\n(?P<code>.*?)^```[ ]*$", re.MULTILINE | re.DOTALL)
NO_RUN = re.compile(r"<!--\s*no-run:\s*(?P<why>.*?)\s*-->")

# (page, first line of the block): the blocks that do not run here, and why is in the page
NOT_RUN = {
    ("docs/guide/lectures.md", "import cnn_helper"),
    ("docs/guide/scale_out.md", "import cnn_helper"),
}


def python_blocks(page: Path) -> list:
    """``[(line, code, why_not_run or None)]`` of the page's ```` ```python ```` blocks."""
    text = page.read_text()
    blocks = []
    for m in FENCE.finditer(text):
        if m["lang"] not in ("python", "py"):
            continue
        line_before = (text[:m.start()].rstrip().splitlines() or [""])[-1]
        before = NO_RUN.fullmatch(line_before.strip())
        blocks.append((text.count("\n", 0, m.start()) + 1, m["code"],
                       before["why"] if before else None))
    return blocks


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@pytest.fixture
def reader_machine(tmp_path, monkeypatch):
    """An empty working folder; the bundled digits; no retrained weights."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("CNN_HELPER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CNN_HELPER_DATA_ORIGIN", "http://127.0.0.1:9/")   # refused at once
    yield tmp_path
    plt.close("all")


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_python_block_runs(page, reader_machine):
    namespace = {"__name__": "__main__"}
    for line, code, why_not in python_blocks(page):
        if why_not is None:
            exec(compile(code, f"{_name(page)}, block at line {line}", "exec"), namespace)


def test_the_blocks_that_do_not_run_are_the_listed_ones():
    skipped = {(_name(page), code.strip().splitlines()[0]): why
               for page in PAGES for _, code, why in python_blocks(page) if why is not None}
    assert set(skipped) == NOT_RUN, (
        f"blocks marked no-run: {sorted(skipped.items())}; listed in NOT_RUN: {sorted(NOT_RUN)}")
    assert all(why for why in skipped.values())           # each says why


def test_the_block_finder_finds_marked_and_unmarked_blocks(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Text\n\n```python\nx = 1\n```\n\n<!-- no-run: needs a GPU -->\n"
                    "```python\ny = 2\n```\n\n```bash\nls\n```\n")
    assert python_blocks(page) == [(3, "x = 1\n", None), (8, "y = 2\n", "needs a GPU")]
    assert len(PAGES) >= 9 and all(python_blocks(p) for p in PAGES[:1])  # README has examples
