"""The comparison of notebook outputs in notebooks/conftest.py: float noise in a printed number
(one unit in its last digit) passes, anything else fails. Checked on the rules themselves, on the
committed lecture notebooks (every decimal moved by one unit passes; a number moved further, an
integer moved, a word changed fails), and end to end through nbval on small notebooks.
"""
import copy
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# what nbval leaves out of its comparison by default (nbval.plugin.IPyNbFile.skip_compare)
NBVAL_SKIPS = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
               "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")


def _load_comparison():
    spec = importlib.util.spec_from_file_location("notebook_comparison",
                                                  ROOT / "notebooks" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


comparison = _load_comparison()


@pytest.mark.parametrize("reference, test", [
    ("optimized image 0.87", "optimized image 0.88"),
    ("mean logit 43.1", "mean logit 43.0"),
    ("similarity -0.05 and 0.61", "similarity -0.04 and 0.60"),
    ("a bound of 1.2e-07", "a bound of 1.3e-07"),
    ("P(8) = 0.9981234", "P(8) = 0.9981241"),            # more digits: relative 1e-5
    ("drop 12.5% at (10, 8)", "drop 12.4% at (10, 8)"),
    ("no number here", "no number here"),
])
def test_float_noise_in_the_last_digit_passes(reference, test):
    assert comparison.same_text(reference, test)


@pytest.mark.parametrize("reference, test", [
    ("optimized image 0.87", "optimized image 0.89"),     # two units
    ("largest difference: 3.7e-09", "largest difference: 2.8e-09"),   # noise printed as digits
    ("mean logit 43.1", "mean logit 43"),                  # a decimal became an integer
    ("17 digits", "18 digits"),                            # counts are exact
    ("at (11, 21)", "at (11, 22)"),                        # so are locations
    ("conv3 map 57", "conv3 map 58"),
    ("the map of conv2", "the map of conv3"),
    ("P(9) = 0.74", "P(7) = 0.74"),                        # a word, not a number
    ("P(9) = 0.74", "P(9) =  0.74"),                       # even a space
    ("0.74, 0.75", "0.74"),                                # a number missing
])
def test_anything_else_fails(reference, test):
    assert not comparison.same_text(reference, test)


def test_one_unit_is_read_from_the_printed_digits():
    unit = comparison.last_digit_unit
    assert [unit("0.87"), unit("43"), unit("3.7e-09"), unit("-1.250")] == pytest.approx(
        [0.01, 1, 1e-10, 0.001])


def _move_numbers(text: str, units: float) -> str:
    """``text`` with every decimal number moved by ``units`` units in its last printed digit."""
    def moved(match):
        number = match.group()
        if comparison.is_integer(number):
            return number
        mantissa, e, exponent = number.partition("e") if "e" in number else (number, "", "")
        decimals = len(mantissa.partition(".")[2])
        shifted = float(mantissa) + units * 10.0 ** -decimals
        sign = "-" if mantissa.startswith("-") and shifted == 0 else ""
        return f"{sign}{shifted:.{decimals}f}{e}{exponent}"
    return comparison.NUMBER.sub(moved, text)


def _cells_with_text_outputs(notebook: Path):
    nb = nbformat.read(notebook, as_version=4)
    for i, cell in enumerate(nb.cells):
        texts = comparison.flattened(cell.get("outputs", []), NBVAL_SKIPS)
        if any(isinstance(v, str) for values in texts.values() for v in values):
            yield i, cell


def _edited(outputs, edit):
    """A deep copy of ``outputs`` with ``edit`` applied to every stream and text/plain output."""
    outputs = copy.deepcopy(outputs)
    for output in outputs:
        if output.get("output_type") == "stream":
            output["text"] = edit(output["text"])
        elif "text/plain" in output.get("data", {}):
            output["data"]["text/plain"] = edit(output["data"]["text/plain"])
    return outputs


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_tolerate_one_unit_and_nothing_more(notebook):
    cells = list(_cells_with_text_outputs(notebook))
    agree = comparison.outputs_agree
    for i, cell in cells:
        outputs = cell["outputs"]
        assert agree(outputs, outputs, NBVAL_SKIPS), f"{notebook.name} cell {i}"
        assert agree(_edited(outputs, lambda t: _move_numbers(t, 1)), outputs, NBVAL_SKIPS), \
            f"{notebook.name} cell {i}: one unit in the last digit must pass"
        text = "\n".join(v for values in comparison.flattened(outputs, NBVAL_SKIPS).values()
                         for v in values if isinstance(v, str))
        if any(not comparison.is_integer(n) for n in comparison.NUMBER.findall(text)):
            assert not agree(_edited(outputs, lambda t: _move_numbers(t, 3)), outputs,
                             NBVAL_SKIPS), f"{notebook.name} cell {i}: three units must fail"
        if re.search(r"[A-Za-z]{3}", text):
            changed = _edited(outputs, lambda t: re.sub(r"[A-Za-z]{3}", "zzz", t, count=1))
            assert not agree(changed, outputs, NBVAL_SKIPS), f"{notebook.name} cell {i}: a word"


# --- end to end: nbval with notebooks/conftest.py on small notebooks ---

def _notebook(code: str, printed: str):
    cell = nbformat.v4.new_code_cell(code, execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=printed)])
    return nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})


def test_nbval_passes_float_noise_and_fails_real_changes(tmp_path):
    """The committed outputs differ from what the code prints (0.875): by one unit (passes), by
    three units, in a word, in an integer (fail)."""
    (tmp_path / "conftest.py").write_text((ROOT / "notebooks" / "conftest.py").read_text())
    code = "print(f'P(8) = {7 / 8:.2f} at ({3 * 5}, 19)')"    # prints P(8) = 0.88 at (15, 19)
    committed = {"noise": "P(8) = 0.87 at (15, 19)\n", "moved": "P(8) = 0.85 at (15, 19)\n",
                 "word": "P(9) = 0.88 at (15, 19)\n", "location": "P(8) = 0.88 at (15, 18)\n"}
    for name, printed in committed.items():
        nbformat.write(_notebook(code, printed), tmp_path / f"{name}.ipynb")
    run = subprocess.run([sys.executable, "-m", "pytest", "--nbval", "-p", "no:cacheprovider",
                          "-p", "no:xdist", "-rA", "-q", "-o", "addopts=", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    outcome = {name: re.search(rf"(PASSED|FAILED) {name}\.ipynb", run.stdout).group(1)
               for name in committed}
    assert outcome == {"noise": "PASSED", "moved": "FAILED", "word": "FAILED",
                       "location": "FAILED"}, run.stdout[-3000:]
