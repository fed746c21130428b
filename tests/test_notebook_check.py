"""What nbval cannot see. nbval re-runs each lecture notebook and compares the outputs; it never
reads the prose, and it accepts whatever the committed outputs are. Seven checks, each a test per
notebook of ``notebooks/`` whose failure names the notebook, the 0-based cell and the text:

- ``repeated_prose``      two markdown cells that share a long run of text (a copied commentary):
                          a word 12-gram, or a sentence of 60 characters or more
- ``leftovers``           leftovers in prose: an identifier outside backticks (``fill_value``,
                          ``_INNER``), TODO/FIXME/XXX/TBD, a stray short token (a letter, or two
                          or three capitals) alone on a line, glued to a sentence (``pattern.G``)
                          or after the last sentence of a paragraph, a ``$`` or a backtick that
                          opens nothing, a brace outside maths (a ``{count}`` placeholder)
- ``scaffolding``         an output line that is a bare ``True``/``False``/``None``: a test left
                          in the notebook
- ``execution_order``     code cells not executed, or not executed top to bottom in one run
- ``foreign_images``      an image that ``python -m cnn_helper figures`` does not write, code that
                          reads an image file, an image output not drawn by matplotlib
- ``claims``              a decimal number, a percentage or a location (a tuple of integers) in
                          prose or maths that no code cell above prints (a decimal may also be
                          a setting written in the code above): print it, then say it
- ``exercises``           a notebook without a "# Exercises" section (except NO_EXERCISES), an
                          exercise whose solution code or output is shown when the notebook
                          opens, or that has no hidden written answer ("**Answer.** ...")

Maths (``$...$``, ``$$...$$``, ``\\begin{...}``), code spans and blocks, HTML tags, link targets
and URLs are not prose: they are masked before the prose rules run (``claims`` reads the maths
too). The checks themselves are
tested on small synthetic notebooks at the end of this file. No TensorFlow is imported.
"""
import json
import re
from itertools import combinations
from pathlib import Path

import nbformat
import pytest

from cnn_helper import diagrams

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
NGRAM = 12                 # words shared by two markdown cells that count as a repeat
SENTENCE = 60              # characters of an identical sentence that count as a repeat
MASK = "\u220e"            # what masked maths, code, tags and URLs become (not a letter)


def source(cell) -> str:
    text = cell["source"]
    return text if isinstance(text, str) else "".join(text)


def cells_of_type(nb, cell_type):
    return [(i, cell) for i, cell in enumerate(nb["cells"]) if cell["cell_type"] == cell_type]


# --- masking: what of a markdown cell is prose ---

FENCED_CODE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n.*?^ {0,3}\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)((?:[^\n]|\n(?![ \t]*\n))+?)(?<!`)\1(?!`)")
DISPLAY_MATH = re.compile(r"\$\$.+?\$\$|\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.S)
INLINE_MATH = re.compile(r"\$(?:[^$\n]|\n(?![ \t]*\n))+?\$")
ESCAPED_DOLLAR = re.compile(r"\\\$")
HTML_TAG = re.compile(r"<[^<>]*>")
LINK_TARGET = re.compile(r"\]\([^()\s]*\)")
URL = re.compile(r"https?://[^\s)>\]]+")


def _blank(pattern, text):
    """``text`` with each match of ``pattern`` replaced by MASK, its line breaks kept."""
    return pattern.sub(lambda m: MASK + "\n" * m.group().count("\n"), text)


def mask(markdown: str) -> str:
    """The prose of a markdown cell, line for line: code blocks and spans, escaped dollars, maths,
    HTML tags, link targets and URLs each replaced by MASK."""
    text = markdown
    for pattern in (FENCED_CODE, CODE_SPAN, ESCAPED_DOLLAR, DISPLAY_MATH, INLINE_MATH, HTML_TAG,
                    LINK_TARGET, URL):
        text = _blank(pattern, text)
    return text


# --- a. repeated prose ---

def _words(text):
    return [w.strip(".,;:!?()*_\"'") for w in text.split() if w.strip(MASK)]


def _sentences(text):
    flat = " ".join(text.split())
    return {s for s in re.split(r"(?<=[.!?])\s+", flat) if len(s) >= SENTENCE}


def comparable_prose(markdown: str) -> str:
    """The text of a markdown cell that two cells must not share: its lines without headings, HTML
    (images, tables), code blocks, display maths, and lines that are inline maths only."""
    text = markdown
    for pattern in (FENCED_CODE, DISPLAY_MATH, HTML_TAG):
        text = _blank(pattern, text)
    lines = text.splitlines()
    kept = [line for line in lines if not line.lstrip().startswith("#")
            and re.search(r"[A-Za-z]", INLINE_MATH.sub("", line))]
    return "\n".join(kept)


def shared_run(a: list, b: list, n: int = NGRAM) -> list:
    """The longest run of at least ``n`` consecutive words common to the word lists ``a`` and
    ``b`` ([] if none). ``shared_run("x a b c y".split(), "a b c".split(), 3) == ["a", "b", "c"]``
    """
    first = {}
    for p in range(len(a) - n + 1):
        first.setdefault(tuple(a[p:p + n]), p)
    best = []
    for q in range(len(b) - n + 1):
        p = first.get(tuple(b[q:q + n]))
        if p is not None:
            k = n
            while p + k < len(a) and q + k < len(b) and a[p + k] == b[q + k]:
                k += 1
            best = max(best, a[p:p + k], key=len)
    return best


def repeated_prose(nb) -> list:
    """(cell, message) for each markdown cell that repeats an earlier one."""
    prose = [(i, comparable_prose(source(c))) for i, c in cells_of_type(nb, "markdown")]
    findings, reported = [], set()
    for (i, a), (j, b) in combinations(prose, 2):
        if j in reported:                       # one finding per cell: the first cell it repeats
            continue
        run = shared_run(_words(a), _words(b))
        sentences = sorted(_sentences(a) & _sentences(b))
        if run or sentences:
            text = " ".join(run) if len(" ".join(run)) >= len("".join(sentences[:1])) \
                else sentences[0]
            findings.append((j, f"repeats markdown cell {i}: {text[:160]!r}"))
            reported.add(j)
    return findings


# --- b. leftovers in prose ---

LEFTOVERS = {
    "an identifier outside backticks":
        re.compile(r"(?<![\w\\])_*[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+(?!\w)"
                   r"|(?<![\w\\])_[A-Z][A-Z0-9]*(?!\w)"),
    "a to-do marker": re.compile(r"\b(?:TODO|FIXME|XXX|TBD)\b"),
    "a '$' that opens or closes no maths": re.compile(r"\$+"),
    "a backtick that opens or closes no code": re.compile(r"`+"),
    "a brace outside maths and code (a format placeholder?)": re.compile(r"\{[^{}\n]*\}?|\}"),
}
STRAY_LINE = re.compile(r"^\s*((?:[A-Za-z]|[A-Z]{2,3}))\s*$")
# after a digit only with a space: "0.53. G" is a stray G, "Figure 2.A" is not
STRAY_AFTER_LAST_SENTENCE = re.compile(r"(?:[^\d\s][.!?:;)]\s*|[.!?:;)]\s+)"
                                       r"((?:[A-Za-z]|[A-Z]{2,3}))\s*$")
GLUED_TO_SENTENCE = re.compile(r"(?<=[a-z)][.!?])([A-Z]{1,3})(?!\w)")      # "pattern.G more"


def _stray_tokens(lines):
    """(line number, token) of a short token (a letter, or 2-3 capitals) alone on a line, glued
    to the end of a sentence, or after the last sentence of a paragraph (on the line before a
    blank line or the end of the cell)."""
    found = []
    for n, line in enumerate(lines):
        paragraph_end = n + 1 == len(lines) or not lines[n + 1].strip()
        match = (STRAY_LINE.match(line) or GLUED_TO_SENTENCE.search(line)
                 or (STRAY_AFTER_LAST_SENTENCE.search(line) if paragraph_end else None))
        if match:
            found.append((n, match.group(1)))
    return found


def leftovers(nb) -> list:
    """(cell, message) for each leftover identifier or stray token in a markdown cell."""
    findings = []
    for i, cell in cells_of_type(nb, "markdown"):
        original = source(cell).splitlines()
        masked = mask(source(cell)).splitlines()
        hits = [(n, what, m.group()) for what, pattern in LEFTOVERS.items()
                for n, line in enumerate(masked) for m in pattern.finditer(line)]
        hits += [(n, "a stray token", token) for n, token in _stray_tokens(masked)]
        findings += [(i, f"{what} {token!r} in line {n}: {original[n].strip()[:100]!r}")
                     for n, what, token in sorted(hits)]
    return findings


# --- c. test scaffolding in outputs ---

BARE = {"True", "False", "None", "np.True_", "np.False_"}


def _output_texts(output):
    if output["output_type"] == "stream":
        return source({"source": output.get("text", "")}).splitlines()
    plain = output.get("data", {}).get("text/plain")
    return [source({"source": plain}).strip()] if plain is not None else []


def scaffolding(nb) -> list:
    """(cell, message) for each output line that is a bare True/False/None."""
    findings = []
    for i, cell in cells_of_type(nb, "code"):
        for output in cell.get("outputs", []):
            for line in _output_texts(output):
                if line.strip() in BARE:
                    findings.append((i, f"output {line.strip()!r} looks like a test left in the "
                                        "notebook: assert it in tests/, print what was measured"))
    return findings


# --- d. execution order ---

def execution_order(nb) -> list:
    """(cell, message) for each non-empty code cell whose execution count is not the next one of a
    single top-to-bottom run (1, 2, 3, ...), or whose result carries another count."""
    findings, expected = [], 1
    rerun = "run the notebook top to bottom in a fresh kernel (Restart Kernel and Run All)"
    for i, cell in cells_of_type(nb, "code"):
        if not source(cell).strip():
            continue
        count = cell.get("execution_count")
        if count is None:
            findings.append((i, f"not executed (execution_count None): {rerun}"))
        elif count != expected:
            findings.append((i, f"execution_count {count}, expected {expected}: {rerun}"))
        results = [o.get("execution_count") for o in cell.get("outputs", [])
                   if o["output_type"] == "execute_result"]
        if any(r != count for r in results):
            findings.append((i, f"a result has execution_count {results}, the cell {count}"))
        expected = (count if count is not None else expected) + 1
    return findings


# --- e. images not made by the package ---

MARKDOWN_IMAGE = re.compile(r"<img\b[^>]*?\bsrc\s*=\s*[\"']([^\"']*)[\"']"     # <img src="...">
                            r"|!\[[^\]]*\]\(\s*<?([^)\s>]*)", re.I)               # ![alt](...)
PACKAGE_IMAGE = re.compile(r"\.\./images/([\w-]+)\.png")
READS_AN_IMAGE = re.compile(r"\bImage\s*\(|\bSVG\s*\(|\bimread\s*\(|\bImage\.open\b"
                            r"|\bopen\s*\([^)\n]*\.(?:png|jpe?g|gif|svg|bmp)\b", re.I)


def _embedded_image_problem(src: str):
    match = PACKAGE_IMAGE.fullmatch(src)
    if match is None:
        return (f"embeds {src!r}: only ../images/<name>.png written by "
                "`python -m cnn_helper figures`")
    if match.group(1) not in diagrams.FIGURES:
        return (f"embeds {src!r}, which `python -m cnn_helper figures` does not write "
                f"(it writes {sorted(diagrams.FIGURES)})")
    if not (ROOT / "images" / f"{match.group(1)}.png").is_file():
        return f"embeds {src!r}, which is missing: run `python -m cnn_helper figures`"
    return None


def _image_output_problems(cell):
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        plain = source({"source": data.get("text/plain", "")})
        if any(k.startswith("image/") for k in data) and not plain.startswith("<Figure size"):
            yield f"an image output not drawn by matplotlib ({plain[:60]!r})"
        if re.search(r"<img\b", source({"source": data.get("text/html", "")}), re.I):
            yield "an HTML output with an <img>"


def foreign_images(nb) -> list:
    """(cell, message) for each image that is not a package diagram or a matplotlib figure."""
    findings = []
    for i, cell in enumerate(nb["cells"]):
        text = source(cell)
        if cell["cell_type"] == "markdown":
            for match in MARKDOWN_IMAGE.finditer(text):
                problem = _embedded_image_problem(match.group(1) or match.group(2))
                findings += [(i, problem)] if problem else []
        elif cell["cell_type"] == "code":
            findings += [(i, f"reads or shows an image file ({m.group()!r}): draw it with the "
                             "package instead") for m in READS_AN_IMAGE.finditer(text)]
            findings += [(i, problem) for problem in _image_output_problems(cell)]
    return findings


# --- f. claims: numbers and locations in prose that no cell above prints ---

DECIMAL = re.compile(r"(?<![\w.])-?(?:\d+\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)(?![\w.]*\d)")
PERCENTAGE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?=\s*\\?%)")
LOCATION = re.compile(r"\(\s*-?\d+\s*(?:,\s*-?\d+\s*)+\)")


def claimed_text(markdown: str) -> str:
    """The prose and maths of a markdown cell: code, HTML tags, link targets and URLs masked
    (a number in maths, ``$-96.5\\%$``, is a claim too)."""
    text = markdown
    for pattern in (FENCED_CODE, CODE_SPAN, HTML_TAG, LINK_TARGET, URL):
        text = _blank(pattern, text)
    return text


def printed_text(cell) -> str:
    """What a code cell printed or returned as text (streams and text/plain)."""
    texts = [source({"source": o.get("text", "")}) + "\n"
             + source({"source": o.get("data", {}).get("text/plain", "")})
             for o in cell.get("outputs", [])]
    return "\n".join(texts)


def _without_sign(number: str) -> str:
    return number.lstrip("-")


def _is_printed(number: str, text: str, percent: bool) -> bool:
    after = r"\s*%" if percent else r"(?![\w.]*\d)"
    if re.search(rf"(?<![\w.])-?{re.escape(_without_sign(number))}{after}", text):
        return True
    if "e" in number.lower() and not percent:           # 1e-6 said, 1e-06 printed
        return any(float(_without_sign(n)) == float(_without_sign(number))
                   for n in DECIMAL.findall(text) if "e" in n.lower())
    return False


def _claims(text: str):
    """(kind, claim) of each decimal number, percentage and integer tuple in ``text``."""
    for m in PERCENTAGE.finditer(text):
        yield "percentage", m.group()
    for m in DECIMAL.finditer(text):
        if not re.match(r"\s*\\?%", text[m.end():]):
            yield "decimal number", m.group()
    for m in LOCATION.finditer(text):
        yield "location", m.group()


def claims(nb) -> list:
    """(cell, message) for each decimal number, percentage or location (a tuple of integers) in a
    markdown cell that no code cell above it prints (a decimal may also be a setting written in
    the code above)."""
    findings, printed, code = [], "", ""
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            printed += "\n" + printed_text(cell)
            code += "\n" + source(cell)
            continue
        if cell["cell_type"] != "markdown":
            continue
        for kind, claim in _claims(claimed_text(source(cell))):
            if kind == "location":
                found = re.sub(r"\s+", "", claim) in re.sub(r"\s+", "", printed)
            else:
                found = (_is_printed(claim, printed, kind == "percentage")
                         or (kind == "decimal number" and _is_printed(claim, code, False)))
            if not found:
                findings.append((i, f"the {kind} {claim!r} is not printed by a code cell above: "
                                    "print it, then say it"))
    return findings


# --- g. exercises: solutions hidden until asked for, and a written answer ---

QUESTION = re.compile(r"^\s*\*\*\d+\.")
ANSWER = "**Answer.**"


def _tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


def _hidden(cell, what: str) -> bool:
    return bool(cell.get("metadata", {}).get("jupyter", {}).get(what, False))


def _solution_problems(cell) -> list:
    problems = []
    if cell["cell_type"] == "code":
        for what in ("source_hidden", "outputs_hidden"):
            if not _hidden(cell, what):
                problems.append(f"a solution cell whose {what.split('_')[0]} is shown: set its "
                                f'metadata "jupyter": {{"{what}": true}}')
    elif not _hidden(cell, "source_hidden") or not source(cell).lstrip().startswith(ANSWER):
        problems.append(f"a written answer must start with {ANSWER!r} and be hidden "
                        '("jupyter": {"source_hidden": true})')
    return problems


def _exercise_groups(nb):
    """[(question cell, [(index, cell) up to the next question])] under the # Exercises heading."""
    groups, inside = [], False
    for i, cell in enumerate(nb["cells"]):
        text = source(cell)
        if cell["cell_type"] == "markdown" and re.match(r"^#+\s", text):
            inside = bool(re.match(r"^#+\s+Exercises\b", text))
        if inside and cell["cell_type"] == "markdown" and QUESTION.match(text):
            groups.append((i, []))
        elif inside and groups:
            groups[-1][1].append((i, cell))
    return groups


def exercises(nb) -> list:
    """(cell, message) for each exercise under "# Exercises" whose solution is not hidden (code
    and outputs), or that has no hidden written answer, and for a notebook without exercises.
    A code cell of an exercise is tagged "solution" (hidden) or "starter" (shown: the code the
    student starts from)."""
    groups = _exercise_groups(nb)
    if not groups:
        return [(0, 'no exercises: add a "# Exercises" section with questions "**1. ...**"')]
    findings = []
    for question, cells in groups:
        solutions = [(i, c) for i, c in cells if "solution" in _tags(c)]
        findings += [(i, f"exercise in cell {question}: {problem}") for i, c in solutions
                     for problem in _solution_problems(c)]
        findings += [(i, f"exercise in cell {question}: a code cell tagged neither \"solution\" "
                         '(hidden) nor "starter" (given to the student)') for i, c in cells
                     if c["cell_type"] == "code" and not {"solution", "starter"} & set(_tags(c))]
        if not any(c["cell_type"] == "markdown" for _, c in solutions):
            findings.append((question, f"no written answer: add a hidden markdown cell tagged "
                                       f'"solution" starting with {ANSWER!r}'))
    return sorted(findings)


# --- the checks on the lecture notebooks ---

CHECKS = [repeated_prose, leftovers, scaffolding, execution_order, foreign_images, claims,
          exercises]
# notebooks without exercises, and why
NO_EXERCISES = {"Explorers": "it opens the explorers for the class to use live"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
def test_notebook(check, notebook):
    if check is exercises and notebook.stem in NO_EXERCISES:
        pytest.skip(f"{notebook.stem} has no exercises: {NO_EXERCISES[notebook.stem]}")
    findings = check(json.loads(notebook.read_text(encoding="utf-8")))
    assert not findings, f"{check.__name__}:\n" + "\n".join(
        f"{notebook.name} cell {i}: {message}" for i, message in findings)


# --- the checks themselves, on small synthetic notebooks ---

def notebook(*cells):
    """A notebook of ``cells``: a str is a markdown cell, a nbformat cell is taken as it is."""
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(c) if isinstance(c, str) else c for c in cells])


def code(text, count, *outputs):
    return nbformat.v4.new_code_cell(text, execution_count=count, outputs=list(outputs))


def stream(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def result(plain, count, **data):
    return nbformat.v4.new_output("execute_result", {"text/plain": plain, **data},
                                  execution_count=count)


COMMENTARY = ("For about four locations out of five, the probability of 8 changes by less than "
              "1%: the CNN is so sure of this 8 that most squares leave it at 1.000.")


def test_a_copied_commentary_is_reported_on_the_later_cell_with_the_shared_text():
    nb = notebook(COMMENTARY, code("x = 1", 1), "Other words.", "Not what we expected!\n\n"
                  + COMMENTARY.replace(" the CNN", "\nthe CNN") + "\n\nMore text.")
    [(cell, message)] = repeated_prose(nb)
    assert cell == 3 and message.startswith("repeats markdown cell 0: 'For about four locations")


def test_a_long_identical_sentence_of_few_words_is_a_repeat():
    sentence = "Guided backpropagation visualises discriminative characteristics everywhere."
    assert len(sentence) >= SENTENCE and len(sentence.split()) < NGRAM
    assert repeated_prose(notebook(f"First. {sentence}", f"{sentence} Second.")) == [
        (1, f"repeats markdown cell 0: {sentence!r}")]


def test_headings_html_display_maths_and_short_overlaps_are_not_repeats():
    heading = "## Occlusion Experiment 2: how does an ImageNet classifier work on our digits"
    image = '<center><strong>Interpreting feature $k$ of layer $\\ll$</strong></center>\n' \
            '<img src="../images/probe.png" width="640" alt="a b c d e f g h i j k l m n o p">'
    formula = "$$\n\\max^\\ip_{\\llp,k} = \\max_\\idx \\y^\\ip_{\\llp,\\idx,k} + a + b + c + d\n$$"
    inline = "$\\y_{\\llp,k} |_{\\y_{(0)} = \\x\\ip} + a + b + c + d + e + f + g + h + i + j$"
    eleven = "one two three four five six seven eight nine ten eleven"
    nb = notebook(f"{heading}\n\n{image}\n\n{formula}\n{inline}\n\nA {eleven} here.",
                  f"{heading}\n\n{image}\n\n{formula}\n{inline}\n\nThe {eleven} there.")
    assert repeated_prose(nb) == []


def test_shared_run_is_the_longest_common_run_of_words():
    a, b = "x a b c d y".split(), "a b c q a b c d z".split()
    assert shared_run(a, b, 3) == ["a", "b", "c", "d"]
    assert shared_run(a, b, 5) == []


@pytest.mark.parametrize("text, found", [
    ('erasing the ink under the square (`fill="zero"`):_INNER', "outside backticks '_INNER'"),
    ("the default fill_value paints ink", "outside backticks 'fill_value'"),
    ("the IMAGE_CMAP colours", "outside backticks 'IMAGE_CMAP'"),
    ("TODO: say why", "a to-do marker 'TODO'"),
    ("see the grid (XXX check)", "a to-do marker 'XXX'"),
    ("a larger and more meaningful pattern.G\n\n## Next", "a stray token 'G' in line 0"),
    ("the last sentence. G", "a stray token 'G'"),
    ("a paragraph that ends\nG\n\nand another", "a stray token 'G' in line 1"),
    ("the value $\\y_{(l),k} of the map", "opens or closes no maths '$'"),   # and braces
    ("closed $a$ and open $$b", "opens or closes no maths '$$'"),
    ("the function `saliency.gradient of the model", "opens or closes no code '`'"),
    ("the {count} maximally activating examples", "(a format placeholder?) '{count}'"),
    ("the value {x:.3f} of the map", "(a format placeholder?) '{x:.3f}'"),
])
def test_leftovers_are_found_with_cell_line_and_text(text, found):
    findings = leftovers(notebook("Clean prose.", text))
    assert {cell for cell, _ in findings} == {1}
    assert found in findings[0][1], findings


def test_maths_code_html_and_links_are_not_leftovers():
    nb = notebook(
        "$\\y_{(l),k}$ and $\\max_\\idx \\y^\\ip_{\\llp,\\idx,k}$ with $k=0$, $\\{0, 1\\}$\n"
        "$$\n\\mathcal{R}_{\\llp,\\idx} = \\{ \\idx' \\,|\\, \\y_{\\llp,\\idx,k} \\}\n$$\n"
        "\\begin{array}{ll} a_b & \\{c\\} \\end{array}",
        "`fill_value`, `_INNER`, `IMAGE_CMAP`, ``a `tick` inside``, `{count}` and a price of \\$5",
        '<img src="../images/conv_layer_pool.png" width="560">\n'
        "<table><tr><td>$\\y_{\\llp}$</td></tr></table>",
        "[the paper](https://arxiv.org/abs/1311.2901) and https://example.com/a_b_c?x={y}",
        "```python\nx_train = {}\nprint(f'{x_train}')  # TODO in code, not prose\n```",
        "A list:\n- $k$\n- $\\ll$\n- a stroke, e.g. a loop, i.e. the 8; the U.S. and Fig. 2.A",
        "A kernel sees a\n$3 \\times 3$\nregion, and so on: $-96.5\\%$ in the grid (row 17).")
    assert leftovers(nb) == []


def test_bare_true_false_none_outputs_are_scaffolding():
    nb = notebook("Text.",
                  code("print(oe.state['error'])", 1, stream("None\n")),
                  code("check()", 2, result("True", 2)),
                  code("np.all(a > 0)", 3, result("np.False_", 3)),
                  code("print('n =', 3)\nprint(ok)", 4, stream("n = 3\n  True  \n")))
    assert [(cell, message.split(" looks")[0]) for cell, message in scaffolding(nb)] == [
        (1, "output 'None'"), (2, "output 'True'"), (3, "output 'np.False_'"),
        (4, "output 'True'")]


def test_outputs_that_say_what_they_measured_are_not_scaffolding():
    nb = notebook(code("print(shape)", 1, stream("(9,)\n"), result("(9,)", 1)),
                  code("print(...)", 2, stream("None of the 9 examples is a 7\nTrue positives: 12\n"
                                               "gradient non-zero exactly there: True\n")))
    assert scaffolding(nb) == []


def test_cells_not_executed_top_to_bottom_in_one_run_are_reported():
    nb = notebook(code("a = 1", 1), "Text.", code("b = 2", None), code("c = 3", 3),
                  code("d = 4", 7), code("e = 5", 8), code("f", 9, result("6", 4)))
    assert [(cell, message.split(":")[0]) for cell, message in execution_order(nb)] == [
        (2, "not executed (execution_count None)"), (4, "execution_count 7, expected 4"),
        (6, "a result has execution_count [4], the cell 9")]


def test_one_run_top_to_bottom_passes_and_empty_cells_are_skipped():
    nb = notebook(code("a = 1", 1), "Text.", code("", None), code("a", 2, result("1", 2)),
                  code("print(a)", 3, stream("1\n")))
    assert execution_order(nb) == []


def test_images_not_made_by_the_package_are_reported():
    photo = nbformat.v4.new_output("display_data", {"image/png": "iVBORw0KGgo=",
                                                    "text/plain": "<IPython.core.display.Image"
                                                                  " object>"})
    html = nbformat.v4.new_output("display_data", {"text/html": "<img src='data:...'>",
                                                   "text/plain": "<IPython.core.display.HTML>"})
    nb = notebook('<img src="../images/hound.png" width="300">',
                  "![the video](https://example.com/frame.png) and ![a](attachment:a.png)",
                  '<img src="images/probe.png">',
                  code("from IPython.display import Image\nImage('../images/probe.png')", 1,
                       photo),
                  code("x = plt.imread('digit.png')\nwith open('a.PNG', 'rb') as f: pass", 2, html))
    expected = [(0, "embeds '../images/hound.png', which `python -m cnn_helper figures` does"
                    " not write"),
                (1, "embeds 'https://example.com/frame.png': only ../images/<name>.png"),
                (1, "embeds 'attachment:a.png': only"), (2, "embeds 'images/probe.png': only"),
                (3, "reads or shows an image file ('Image('"),
                (3, "an image output not drawn by matplotlib ('<IPython.core.display.Image"),
                (4, "reads or shows an image file ('imread('"),
                (4, "reads or shows an image file (\"open('a.PNG\""),
                (4, "an HTML output with an <img>")]
    found = foreign_images(nb)
    assert len(found) == len(expected), found
    for (cell, message), (expected_cell, start) in zip(found, expected):
        assert cell == expected_cell and message.startswith(start), (cell, message)


def test_package_diagrams_and_matplotlib_figures_are_not_foreign():
    figure = nbformat.v4.new_output("display_data", {"image/png": "iVBORw0KGgo=",
                                                     "text/plain": "<Figure size 640x480 with 1 "
                                                                   "Axes>"})
    name = sorted(diagrams.FIGURES)[0]
    nb = notebook(f'<img src="../images/{name}.png" width="640">\n\n'
                  f'![{name}](../images/{name}.png)',
                  code("fig, _ = plot.images(x)\nfig.savefig('out.png')\nfig", 1, figure))
    assert foreign_images(nb) == []


def test_numbers_and_locations_said_but_not_printed_above_are_claims_to_check():
    nb = notebook(code("print(f'P(9) = {p:.2f} at {loc}, drop {d:.1%}')", 1,
                       stream("P(9) = 0.74 at (11, 8), drop -96.5%\nbound below 1e-06\n")),
                  "P(9) is 0.74 at (11, 8), a drop of $-96.5\\%$, an error below 1e-6.",
                  "P(9) is 0.77 at (10, 8), a drop of 96%: read off the colour bar.",
                  code("x = 1", 2),
                  "Before its cell: 0.5 and (3, 3).",
                  code("sigma = 0.5\nprint(shape)", 3, stream("(3, 3)\n")))
    assert [(cell, message.split(" is not")[0]) for cell, message in claims(nb)] == [
        (2, "the percentage '96'"), (2, "the decimal number '0.77'"),
        (2, "the location '(10, 8)'"), (4, "the decimal number '0.5'"),
        (4, "the location '(3, 3)'")]


def test_settings_in_code_integers_code_spans_and_links_are_not_claims():
    nb = notebook(code("occlusion(x, patch=4, sigma=0.15)", 1),
                  "With $\\sigma = 0.15$, a $4 \\times 4$ patch over 17 digits of conv3 map 57; "
                  "`(2, 2)` and `0.3` are code; [a paper](https://arxiv.org/abs/1311.2901).")
    assert claims(nb) == []


def _solution(cell, *hidden):
    cell.metadata.update(tags=["solution"], jupyter={what: True for what in hidden})
    return cell


def test_exercises_hide_their_solutions_and_write_an_answer():
    starter = code("ring = make_ring()", 1)
    starter.metadata["tags"] = ["starter"]
    nb = notebook("# Lesson", "# Exercises\n\nTry each one first.",
                  "**1. Rings.** Which map responds?", starter,
                  _solution(code("print(best)", 2, stream("map 3\n")),
                            "source_hidden", "outputs_hidden"),
                  _solution(nbformat.v4.new_markdown_cell("**Answer.** Map 3 responds."),
                            "source_hidden"),
                  "**2. Squares.** Where is the largest drop?",
                  _solution(code("print(drop)", 3, stream("-12%\n")), "source_hidden"),
                  code("print(drop)", 4),
                  _solution(nbformat.v4.new_markdown_cell("The drop is 12%.")))
    assert [(cell, message.split(": ", 1)[1][:40]) for cell, message in exercises(nb)] == [
        (7, "a solution cell whose outputs is shown: "),
        (8, 'a code cell tagged neither "solution" (h'),
        (9, "a written answer must start with '**Answ")]
    assert exercises(notebook("# Lesson", code("x = 1", 1))) == [
        (0, 'no exercises: add a "# Exercises" section with questions "**1. ...**"')]
