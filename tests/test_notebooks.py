"""Every lecture notebook has a Markdown twin, ``notebooks/text/<name>.md``, kept in sync by
jupytext (``notebooks/jupytext.toml``), so that a git diff shows what changed in the prose and the
code. The twin holds the cells without their outputs; these tests fail when a notebook and its
twin hold different cells, and name the notebook, the cell (0-based) and the command that fixes it.
"""
import difflib
import json
from pathlib import Path

import nbformat
import pytest
from jupytext import read as read_text_notebook
from jupytext.cli import jupytext as jupytext_command
from jupytext.config import load_jupytext_config
from jupytext.paired_paths import paired_paths

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def text_twin(notebook: Path):
    """The path of the text file paired with ``notebook`` by the jupytext configuration that
    applies to its folder, or None when none is configured."""
    config = load_jupytext_config(str(notebook))
    formats = config.default_formats(str(notebook)) if config is not None else None
    if not formats:
        return None
    for path, fmt in paired_paths(str(notebook), "ipynb", formats):
        if fmt["extension"] != ".ipynb":
            return Path(path)
    return None


def cells_of(notebook: Path) -> list:
    """``(cell_type, source)`` of each cell of an .ipynb file, in order."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [(c["cell_type"], "".join(c["source"])) for c in cells]


def text_cells_of(text_file: Path) -> list:
    """``(cell_type, source)`` of each cell jupytext reads from a paired text file."""
    return [(c.cell_type, c.source) for c in read_text_notebook(str(text_file)).cells]


def _describe(kind: str, index: int, cell) -> str:
    cell_type, source = cell
    first = source.splitlines()[0] if source else ""
    return f"{kind} cell {index} ({cell_type}: {first[:60]!r})"


def drift(notebook_cells: list, text_cells: list) -> list:
    """One line per difference between the cells of a notebook and those of its text twin; each
    names the notebook's 0-based cell index (and shows a diff of a changed source)."""
    problems = []
    matcher = difflib.SequenceMatcher(a=notebook_cells, b=text_cells, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            continue
        for offset in range(max(a1 - a0, b1 - b0)):
            i, j = a0 + offset, b0 + offset
            if i < a1 and j < b1:
                a, b = notebook_cells[i], text_cells[j]
                diff = difflib.unified_diff(b[1].splitlines(), a[1].splitlines(), "text file",
                                            "notebook", lineterm="", n=0)
                kinds = "" if a[0] == b[0] else f" (notebook: {a[0]}, text file: {b[0]})"
                problems.append(f"notebook cell {i} differs from text-file cell {j}{kinds}:\n"
                                + "\n".join(list(diff)[2:12]))
            elif i < a1:
                problems.append(_describe("notebook", i, notebook_cells[i])
                                + " is missing from the text file")
            else:
                problems.append(_describe("text-file", j, text_cells[j])
                                + f" is not in the notebook (it would be notebook cell {a1})")
    return problems


def fix_commands(notebook: Path, text_file: Path) -> str:
    nb, txt = notebook.relative_to(ROOT), text_file.relative_to(ROOT)
    return (f"If you edited the notebook: `make sync-notebooks` (or `jupytext --to text//md {nb}`"
            ").\nIf you edited the text file: "
            f"`jupytext --update --output {nb} {txt}` (keeps the outputs; then re-run the "
            "notebook).")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_a_text_twin(notebook):
    twin = text_twin(notebook)
    assert twin is not None, (f"{notebook.name}: no jupytext pairing applies to it; "
                              "notebooks/jupytext.toml should say formats = \"ipynb,text//md\"")
    assert twin.is_file(), (f"{notebook.name} has no paired text file {twin.relative_to(ROOT)}; "
                            f"make it with `jupytext --to text//md {notebook.relative_to(ROOT)}`")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_and_text_twin_hold_the_same_cells(notebook):
    twin = text_twin(notebook)
    if twin is None or not twin.is_file():
        pytest.fail(f"{notebook.name} has no paired text file (see test_notebook_has_a_text_twin)")
    problems = drift(cells_of(notebook), text_cells_of(twin))
    assert not problems, (f"{notebook.name} and {twin.relative_to(ROOT)} have drifted apart:\n"
                          + "\n".join(problems) + "\n" + fix_commands(notebook, twin))


def test_every_text_file_has_its_notebook():
    twins = {text_twin(nb) for nb in NOTEBOOKS}
    orphans = [p.name for p in sorted((ROOT / "notebooks" / "text").glob("*.md"))
               if p not in twins]
    assert not orphans, f"text files without a notebook (renamed or deleted?): {orphans}"


# --- the drift check itself, on a small notebook in a temporary folder ---

@pytest.fixture
def paired_notebook(tmp_path):
    """A three-cell notebook in ``tmp_path/notebooks`` with the project's jupytext configuration
    and its text twin, written by ``jupytext --sync``."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "jupytext.toml").write_text((ROOT / "notebooks" / "jupytext.toml").read_text())
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\n\nSome prose."),
        nbformat.v4.new_code_cell("x = 1\nx", execution_count=1, outputs=[
            nbformat.v4.new_output("execute_result", {"text/plain": "1"}, execution_count=1)]),
        nbformat.v4.new_markdown_cell("More prose about $\\y_{(l),k}$.")])
    path = folder / "lesson.ipynb"
    nbformat.write(nb, path)
    assert jupytext_command(["--sync", "--quiet", str(path)]) == 0
    return path


def test_the_twin_is_where_the_configuration_says_and_holds_the_cells(paired_notebook):
    twin = text_twin(paired_notebook)
    assert twin == paired_notebook.parent / "text" / "lesson.md"
    assert drift(cells_of(paired_notebook), text_cells_of(twin)) == []
    assert "x = 1" in twin.read_text() and "execute_result" not in twin.read_text()


def test_an_edited_cell_is_reported_with_its_index_and_the_fix_works(paired_notebook):
    nb = nbformat.read(paired_notebook, as_version=4)
    nb.cells[2].source = "Edited prose."
    nbformat.write(nb, paired_notebook)
    twin = text_twin(paired_notebook)
    problems = drift(cells_of(paired_notebook), text_cells_of(twin))
    assert len(problems) == 1 and problems[0].startswith("notebook cell 2 differs")
    assert "+Edited prose." in problems[0] and "-More prose" in problems[0]
    assert jupytext_command(["--to", "text//md", "--quiet", str(paired_notebook)]) == 0
    assert drift(cells_of(paired_notebook), text_cells_of(twin)) == []


def test_added_removed_and_retyped_cells_are_reported(paired_notebook):
    cells = cells_of(paired_notebook)
    text = text_cells_of(text_twin(paired_notebook))
    assert drift(cells + [("code", "y = 2")], text) == [
        "notebook cell 3 (code: 'y = 2') is missing from the text file"]
    assert drift(cells, text[:1] + text[2:]) == [
        "notebook cell 1 (code: 'x = 1') is missing from the text file"]
    assert drift(cells[:2], text) == [
        "text-file cell 2 (markdown: 'More prose about $\\\\y_{(l),k}$.') is not in the notebook"
        " (it would be notebook cell 2)"]
    retyped = drift([("raw", cells[0][1])] + cells[1:], text)
    assert len(retyped) == 1 and "(notebook: raw, text file: markdown)" in retyped[0]


def test_a_notebook_without_configuration_has_no_twin(tmp_path, monkeypatch):
    for variable in ("XDG_CONFIG_HOME", "XDG_CONFIG_DIRS"):    # no user-wide jupytext config
        monkeypatch.setenv(variable, str(tmp_path))
    path = tmp_path / "alone.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), path)
    assert text_twin(path) is None
