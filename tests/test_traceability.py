"""Every number a notebook's text quotes can be traced: to its own outputs, a source it cites, or an exempt kind.

The course tells students that every number in the text comes from the outputs.
This test holds the notebooks to it. It reads each markdown cell, finds every
number quoted there, and fails, naming the notebook, the cell and the number,
unless the number is one of these:

- **in the notebook's own outputs**, at the precision quoted: printed text, or a
  value recorded with ``runtime.record``. Rounding must be honest: an output of
  0.02616 traces "0.026" and "0.0262", never "0.0261". A percentage may be
  printed as a fraction (0.771 traces "77.1 %") and the other way round. Results
  files that ``benchmarks/`` writes count once a cell of the notebook shows them;
- **in a cited sentence**: the sentence (or table row) names its source as
  author(s) and year, e.g. "(Santurkar, Tsipras, Ilyas and Madry, 2018)" or
  "Xie, Girshick and Farhadi, ICML 2016";
- **an exempt kind**, kept short on purpose (``EXEMPT_*`` below): small counts and
  digit names (0 to 10), years, the assignment's constants, section and
  notebook numbers, headings, time estimates, list numbering, inline code, and
  any literal that the notebook's own code sets (parameter values such as 0.3).
"""

from __future__ import annotations

import bisect
import io
import json
import math
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from dae_utils.runtime import RECORD_MIMETYPE

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

#: The assignment's constants: image side and pixels, kernel, channels, widths, epochs, lr, MNIST's sizes.
EXEMPT_CONSTANTS = {28, 784, 14, 16, 32, 64, 128, 256, 288, 30, 0.001, 60_000, 10_000, 70_000}
#: Counts and digit names up to this are exempt: "3 x 3", "the 4s", "two of 9".
EXEMPT_SMALL_INTEGER = 10
#: A number right after one of these words names a part of the course, not a result.
EXEMPT_AFTER = re.compile(
    r"\b(?:sections?|notebooks?|exercises?|parts?|cells?|figures?|steps?\s\d+\sand|questions?|chapter|table)"
    r"\s*(?:[\d.]+(?:,\s*|\s+(?:and|to|or)\s+))*$",
    re.IGNORECASE,
)
#: A line that gives a time estimate for the reader ("**Time:** about 60 minutes").
TIME_ESTIMATE = re.compile(r"^\s*\*\*Time[^*]*:\*\*|^\s*\*Time[^*]*:\*", re.IGNORECASE)

NUMBER = re.compile(
    r"(?<![\w.])(?P<minus>[-\u2212])?(?P<body>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)"
    r"(?:[eE](?P<exp>[-+\u2212]?\d{1,3}))?(?P<pct>\s?%)?(?![\w])"
)
YEAR = re.compile(r"\b(?:19|20)\d\d\b")
AUTHORS = re.compile(
    r"[A-Z][a-z]+(?:-[A-Z][a-z]+)?(?:\s+et\s+al\.|(?:,\s+[A-Z][a-z]+(?:-[A-Z][a-z]+)?)*,?\s+and\s+[A-Z][a-z]+)"
)
SENTENCE_END = re.compile(r"(?<!\bal\.)(?<!e\.g\.)(?<!i\.e\.)(?<!\bcf\.)(?<=[.!?])\s+(?=[A-Z*(_])")


@dataclass(frozen=True)
class Quoted:
    """A number as written in the text: its value, its resolution (half a unit of its last digit) and kind."""

    text: str
    value: float
    tolerance: float
    percent: bool


@dataclass(frozen=True)
class Untraced:
    notebook: str
    cell: int
    number: str
    context: str

    def __str__(self) -> str:
        return f"{self.notebook} cell {self.cell}: {self.number!r} in \"...{self.context}...\""


def parse(match: re.Match) -> Quoted:
    """Turn a NUMBER match into its value and the half-unit of its last significant digit.

    A whole number's trailing zeros are not significant: "about 640,000" is 640,000
    to the nearest 10,000, so it traces any output from 635,000 to 645,000.
    """
    body = match["body"].replace(",", "")
    decimals = len(body.split(".")[1]) if "." in body else 0
    if not decimals and len(body) > 1:
        decimals = -(len(body) - len(body.rstrip("0")))
    exponent = int(match["exp"].replace("\u2212", "-")) if match["exp"] else 0
    value = float(body) * 10.0**exponent
    return Quoted(match.group(0).strip(), abs(value), 0.5 * 10.0 ** (exponent - decimals), bool(match["pct"]))


def output_values(nb: nbformat.NotebookNode) -> list[float]:
    """Return every number in the notebook's outputs, as printed and as percent/fraction, sorted."""
    texts: list[str] = []
    values: list[float] = []

    def walk(value: object) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, (int, float)) and math.isfinite(value):
            values.extend((abs(value), abs(value) * 100))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                texts.append(output.get("text", ""))
            data = output.get("data", {})
            if "text/plain" in data and "image/png" not in data:
                texts.append(data["text/plain"])
            if RECORD_MIMETYPE in data:
                walk(data[RECORD_MIMETYPE])
    for text in texts:
        for match in NUMBER.finditer(text):
            number = parse(match)
            values.append(number.value)
            values.append(number.value / 100 if number.percent else number.value * 100)
    return sorted(values)


def code_literals(nb: nbformat.NotebookNode) -> set[float]:
    """Return the numeric literals in the notebook's code cells: values the code itself sets."""
    literals: set[float] = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            for token in tokenize.generate_tokens(io.StringIO(cell.source).readline):
                if token.type == tokenize.NUMBER:
                    try:
                        literals.add(abs(float(token.string.replace("_", ""))))
                    except ValueError:
                        pass
        except (tokenize.TokenError, IndentationError):
            continue
    return literals


def close_to_any(sorted_values: list[float], target: float, tolerance: float) -> bool:
    """Whether some value lies within ``tolerance`` of ``target`` (with room for float rounding)."""
    slack = tolerance * (1 + 1e-6) + 1e-12
    i = bisect.bisect_left(sorted_values, target - slack)
    return i < len(sorted_values) and sorted_values[i] <= target + slack


def units(markdown: str) -> list[str]:
    """Split a markdown cell into the units a citation covers: table rows, else sentences."""
    pieces: list[str] = []
    for block in re.split(r"\n\s*\n", markdown):
        lines = block.splitlines()
        table = [line for line in lines if line.lstrip().startswith("|")]
        rest = " ".join(line for line in lines if not line.lstrip().startswith("|"))
        pieces.extend(table)
        pieces.extend(SENTENCE_END.split(rest))
    return pieces


def cited(unit: str) -> bool:
    """Whether a sentence or table row names its source: author(s) and a year."""
    return bool(YEAR.search(unit) and AUTHORS.search(unit))


def strip_markup(text: str) -> str:
    """Drop what is not prose: inline code, links' targets, HTML tags, list numbers."""
    text = re.sub(r"`[^`]*`", " ", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"^(\s*)\d+\.\s", r"\1", text, flags=re.MULTILINE)


def exempt(number: Quoted, prefix: str, literals: set[float]) -> bool:
    """Whether a quoted number is of an exempt kind (see the module's docstring)."""
    value = number.value
    whole = not re.search(r"[.eE]", number.text)
    if not number.percent and whole:
        if value <= EXEMPT_SMALL_INTEGER or YEAR.fullmatch(str(int(value))):
            return True
    if not number.percent and value in EXEMPT_CONSTANTS:
        return True
    if EXEMPT_AFTER.search(prefix):
        return True
    return any(math.isclose(value, literal, rel_tol=1e-12) for literal in literals)


def untraced_numbers(nb: nbformat.NotebookNode, name: str = "notebook") -> list[Untraced]:
    """Return every number in the notebook's markdown that nothing traces."""
    outputs = output_values(nb)
    literals = code_literals(nb)
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        # Headings carry section numbers; time estimates are the author's guess, not a result.
        text = "\n".join(line for line in strip_markup(cell.source).splitlines()
                         if not line.lstrip().startswith("#") and not TIME_ESTIMATE.match(line))
        for unit in units(text):
            if cited(unit):
                continue
            for match in NUMBER.finditer(unit):
                number = parse(match)
                if exempt(number, unit[: match.start()], literals):
                    continue
                if close_to_any(outputs, number.value, number.tolerance):
                    continue
                start = max(0, match.start() - 40)
                context = unit[start : match.end() + 20].replace("\n", " ")
                found.append(Untraced(name, index, number.text, context))
    return found


def markdown_cell(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text)


def code_cell(source: str, printed: str = "", recorded: dict | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if printed:
        cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=printed))
    if recorded is not None:
        cell.outputs.append(nbformat.v4.new_output(
            "display_data", data={RECORD_MIMETYPE: recorded, "text/plain": json.dumps(recorded)}))
    return cell


def notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def quoted(nb: nbformat.NotebookNode) -> list[str]:
    return [u.number for u in untraced_numbers(nb)]


OUTPUTS = code_cell("print(loss)", printed="test MSE 0.02616, accuracy 77.1%, 87,125 parameters, gap 1.8e-09\n",
                    recorded={"nmi": 0.72461})


@pytest.mark.parametrize("text", [
    "The test MSE is 0.0262.",  # rounded from 0.02616
    "The test MSE is 0.026.",  # rounded further
    "About 0.03 per pixel.",
    "Mode accuracy 77.1 % here.",  # printed as a percentage
    "Mode accuracy 77 %.",
    "NMI 0.725 and 72.5 % as a share.",  # recorded as a fraction, quoted both ways
    "A model of 87,125 parameters.",
    "A model of about 87,000 parameters.",  # trailing zeros are not significant
    "Gradients of 1.8e-9.",
    "A drop to -0.0262 (signs are not compared).",
])
def test_numbers_in_the_outputs_trace(text):
    assert quoted(notebook(OUTPUTS, markdown_cell(text))) == []


def test_a_commit_that_reads_like_a_power_of_ten_is_not_a_number():
    # A provenance line names commit 5e91608: no exponent has five digits, so it is a word, not 5 x 10^91608.
    assert [m.group(0) for m in NUMBER.finditer("commit 5e91608, and 1.8e-9 and 2e10")] == ["1.8e-9", "2e10"]
    printed = code_cell("print(describe(results))", printed="Reference: made by commit 5e91608, 2026-12-04.\n")
    assert untraced_numbers(notebook(OUTPUTS, printed, markdown_cell("The test MSE is 0.0262.")), "c.ipynb") == []


@pytest.mark.parametrize("text, number", [
    ("The test MSE is 0.0271.", "0.0271"),  # planted: in no output
    ("The test MSE is 0.0261.", "0.0261"),  # dishonest rounding of 0.02616
    ("Mode accuracy 77.4 %.", "77.4 %"),
    ("Gradients of 1e-9.", "1e-9"),  # 1.8e-9 does not round to 1e-9
    ("A model of 88,000 parameters.", "88,000"),  # 87,125 rounds to 87,000, not to 88,000
    ("In the table of notebook 5 the figure was 0.0266.", "0.0266"),  # another notebook's output does not count
])
def test_a_planted_number_fails_and_is_named(text, number):
    found = untraced_numbers(notebook(OUTPUTS, markdown_cell(text)), "planted.ipynb")
    assert [u.number for u in found] == [number]
    assert found[0].notebook == "planted.ipynb" and found[0].cell == 1
    assert number in str(found[0])


@pytest.mark.parametrize("text", [
    "Batch norm helps (Ioffe and Szegedy, 2015), by 0.0333 in their runs.",
    "| DEC | 84.3 % | Xie, Girshick and Farhadi, ICML 2016, table 2 |",
    "Santurkar et al. (2018) report 12.5 % faster training.",
    "Section 5.2 and notebook 3.4 say so.",
    "## 3.7 A heading with 3.7 in it",
    "**Time:** about 75 minutes.",
    "Set `noise_factor = 0.65` and rerun.",
    "The 4s and the 9s, 3 x 3 kernels, 28 x 28 images, 30 epochs at lr 0.001, 60,000 images.",
    "With the parameter at 0.45 as the code sets it.",
    "k-means with 10 clusters, as published in 2020.",
    "1. First item of a list\n2. Second item",
])
def test_citations_and_exempt_kinds_pass(text):
    nb = notebook(OUTPUTS, code_cell("factor = 0.45  # a literal the code sets"), markdown_cell(text))
    assert quoted(nb) == []


def test_a_citation_covers_only_its_own_sentence():
    text = "Batch norm helps (Ioffe and Szegedy, 2015). Here it helped by 0.0333."
    assert quoted(notebook(OUTPUTS, markdown_cell(text))) == ["0.0333"]


def test_a_number_planted_in_a_real_notebook_is_caught():
    nb = nbformat.read(NOTEBOOK_DIR / "03_training.ipynb", as_version=4)
    nb.cells.append(markdown_cell("The final test MSE was 0.0123 in the reference run."))
    found = untraced_numbers(nb, "03_training.ipynb")
    assert any(u.number == "0.0123" and u.cell == len(nb.cells) - 1 for u in found)


@pytest.mark.parametrize("path", sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_every_number_in_the_notebook_text_is_traceable(path):
    found = untraced_numbers(nbformat.read(path, as_version=4), path.name)
    assert not found, f"{len(found)} numbers in the text trace to no output, citation or exempt kind:\n" + "\n".join(
        map(str, found))
