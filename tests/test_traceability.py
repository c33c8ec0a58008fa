"""Every number a notebook's text quotes can be traced: to the outputs beside it, a cited source, or an exempt kind.

The course tells students that every number in the text comes from the outputs.
This test holds the notebooks to it. It reads each markdown cell, finds every
number quoted there, and fails, naming the notebook, the cell and the number,
unless the number is one of these:

- **printed in its own section**, at the precision quoted: in the outputs of the
  code cells between the headings (``#`` or ``##``) around it. Rounding must be
  honest: an output of 0.02616 traces "0.026" and "0.0262", never "0.0261". A
  percentage may be printed as a fraction (0.771 traces "77.1 %") and the other
  way round, but a plain number never traces a percentage by a factor of 100
  ("77" is not "0.771"). A sentence that names another section ("section 5.2",
  "the setup") may also quote that section's outputs; the exercises may quote the outputs of
  "Reference results for the exercises", the section that prints them. Results
  files that ``benchmarks/`` writes count once a cell of that section shows them;
- **recorded** by a cell with ``runtime.record`` anywhere in the notebook: a named
  value, which the runner's summary prints too;
- **in a cited sentence**: the sentence (or table row) names its source as
  author(s) and year, e.g. "(Santurkar, Tsipras, Ilyas and Madry, 2018)" or
  "Xie, Girshick and Farhadi, ICML 2016";
- **an exempt kind**, kept short on purpose (``EXEMPT_*`` below): small counts and
  digit names (0 to 10), years, the assignment's constants (its reported "about 77 %" too, where the
  sentence names the assignment), references to a part of
  the course, an interval's confidence level ("95 % CI"), an exercise's minutes, and
  a plain number that the notebook's own code sets (parameter values such as 0.3). A percentage is
  never exempt because the code holds the same digits (``figsize=(11, 4.8)`` does
  not make "4.8 %" true). Headings, time estimates, list numbering and inline code
  are not prose.

A number in the wrong place fails: a planted wrong number of any precision ("NN %",
"0.0NN") fails in every section of every notebook
(``test_a_planted_low_precision_number_fails_in_every_section``). The census at the
end of a run (``tests/conftest.py`` prints it) says how many numbers were checked and
how many were exempt, by kind, and how often a wrong number would still pass where a
checked one stands (a section that prints a long table traces many values).
"""

from __future__ import annotations

import bisect
import io
import json
import math
import re
import tokenize
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from dae_utils.runtime import RECORD_MIMETYPE

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

#: The assignment's constants: image side and pixels, kernel, channels, widths, epochs, lr, MNIST's sizes.
EXEMPT_CONSTANTS = {28, 784, 14, 16, 32, 64, 128, 256, 288, 30, 0.001, 60_000, 10_000, 70_000}
#: The accuracy the assignment reports for part d ("about 77 %"), exempt where its sentence names the assignment.
ASSIGNMENT_ACCURACY = 77
#: Counts and digit names up to this are exempt: "3 x 3", "the 4s", "two of 9".
EXEMPT_SMALL_INTEGER = 10
#: A number right after one of these words names a part of the course, not a result.
EXEMPT_AFTER = re.compile(
    r"\b(?:sections?|notebooks?|exercises?|parts?|cells?|figures?|steps?\s\d+\sand|questions?|chapter|table)"
    r"\s*(?:[\d.]+(?:,\s*|\s+(?:and|to|or)\s+))*$",
    re.IGNORECASE,
)
#: An interval's confidence level: "95 % CI", "the 95 % prediction interval", "a 95 % confidence interval".
CONFIDENCE_LEVELS = {90, 95, 99}
CONFIDENCE_FOLLOWS = re.compile(r"^\s*(?:CI\b|confidence\b|(?:paired\s+|one-sample\s+)?(?:prediction\s+)?interval)",
                                re.IGNORECASE)
#: A line that gives a time estimate for the reader ("**Time:** about 60 minutes").
TIME_ESTIMATE = re.compile(r"^\s*\*\*Time[^*]*:\*\*|^\s*\*Time[^*]*:\*", re.IGNORECASE)
#: An exercise's own time estimate: "1. **Salt and pepper.** *(15 minutes)*".
EXERCISE_MINUTES = re.compile(r"^\s*minutes\)\*")
#: The headings that bound a section: the notebook's title and its numbered sections (``###`` stays inside).
SECTION_HEADING = re.compile(r"^#{1,2} (.*)$", re.MULTILINE)
#: A sentence's pointer to another section of the same notebook: "section 5.2", "sections 4.2 and 4.3".
SECTION_POINTER = re.compile(r"\bsections?\s+(\d+\.\d+(?:(?:,\s*|\s+(?:and|or|to)\s+)\d+\.\d+)*)", re.IGNORECASE)
#: A sentence's pointer to the notebook's set-up section, which prints the data and the reference baselines.
SETUP_POINTER, SETUP = re.compile(r"\bthe set-?up\b", re.IGNORECASE), "Setup"
EXERCISES, EXERCISE_RESULTS = "Exercises", "Reference results for the exercises"

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


def close_to_any(sorted_values: list[float], target: float, tolerance: float) -> bool:
    """Whether some value lies within ``tolerance`` of ``target`` (with room for float rounding)."""
    slack = tolerance * (1 + 1e-6) + 1e-12
    i = bisect.bisect_left(sorted_values, target - slack)
    return i < len(sorted_values) and sorted_values[i] <= target + slack


@dataclass
class Pool:
    """Numbers that outputs show: plain ones (and recorded values), and those printed with a percent sign."""

    plain: list[float] = field(default_factory=list)
    percent: list[float] = field(default_factory=list)

    def add_text(self, text: str) -> None:
        for match in NUMBER.finditer(text):
            number = parse(match)
            bisect.insort((self.percent if number.percent else self.plain), number.value)

    def add_recorded(self, value: object) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, (int, float)) and math.isfinite(value):
            bisect.insort(self.plain, abs(value))
        elif isinstance(value, dict):
            for item in value.values():
                self.add_recorded(item)
        elif isinstance(value, list):
            for item in value:
                self.add_recorded(item)

    def __or__(self, other: Pool) -> Pool:
        return Pool(sorted(self.plain + other.plain), sorted(self.percent + other.percent))

    def traces(self, number: Quoted) -> bool:
        """Whether an output shows this number at its precision: as written, or as a fraction of a percentage."""
        if number.percent:
            return (close_to_any(self.percent, number.value, number.tolerance)
                    or close_to_any(self.plain, number.value / 100, number.tolerance / 100))
        return (close_to_any(self.plain, number.value, number.tolerance)
                or close_to_any(self.percent, number.value * 100, number.tolerance * 100))


def add_outputs(pool: Pool, cell: nbformat.NotebookNode, recorded: Pool) -> None:
    """Add a code cell's printed numbers to ``pool`` and its recorded values to ``recorded``."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            pool.add_text(output.get("text", ""))
        data = output.get("data", {})
        if RECORD_MIMETYPE in data:
            recorded.add_recorded(data[RECORD_MIMETYPE])
        elif "text/plain" in data and "image/png" not in data:
            pool.add_text(data["text/plain"])


@dataclass
class Section:
    """The stretch of a notebook under one ``#`` or ``##`` heading: its prose, by cell, and its outputs."""

    title: str
    prose: list[tuple[int, str]] = field(default_factory=list)
    outputs: Pool = field(default_factory=Pool)

    @property
    def number(self) -> str | None:
        match = re.match(r"(\d+\.\d+)\s", self.title)
        return match.group(1) if match else None


def sections(nb: nbformat.NotebookNode) -> tuple[list[Section], Pool]:
    """Split a notebook at its ``#`` and ``##`` headings; return the sections and the recorded values' pool."""
    found = [Section("")]
    recorded = Pool()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            add_outputs(found[-1].outputs, cell, recorded)
            continue
        if cell.cell_type != "markdown":
            continue
        starts = [m.start() for m in SECTION_HEADING.finditer(cell.source)]
        pieces = [cell.source[a:b] for a, b in zip([0, *starts], [*starts, len(cell.source)], strict=True)]
        for piece in pieces:
            heading = SECTION_HEADING.match(piece)
            if heading:
                found.append(Section(heading.group(1).strip()))
            if piece.strip():
                found[-1].prose.append((index, piece))
    return found, recorded


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


def prose(markdown: str) -> str:
    """Return a markdown piece's prose: no markup, headings or time estimates."""
    return "\n".join(line for line in strip_markup(markdown).splitlines()
                     if not line.lstrip().startswith("#") and not TIME_ESTIMATE.match(line))


def exempt_kind(number: Quoted, before: str, after: str, literals: set[float]) -> str | None:
    """Name the exempt kind a quoted number is of (see the module's docstring), or None if it must trace."""
    value = number.value
    whole = not re.search(r"[.eE]", number.text)
    if not number.percent and whole:
        if YEAR.fullmatch(str(int(value))):
            return "year"
        if value <= EXEMPT_SMALL_INTEGER:
            return "small count"
    if not number.percent and value in EXEMPT_CONSTANTS:
        return "the assignment's constant"
    if number.percent and value == ASSIGNMENT_ACCURACY and "assignment" in before[-40:] + after[:30]:
        return "the assignment's constant"
    if EXEMPT_AFTER.search(before):
        return "a part of the course"
    if not number.percent and before.endswith("*(") and EXERCISE_MINUTES.match(after):
        return "time estimate"
    if number.percent and value in CONFIDENCE_LEVELS and CONFIDENCE_FOLLOWS.match(after):
        return "confidence level"
    if not number.percent and any(math.isclose(value, literal, rel_tol=1e-12) for literal in literals):
        return "set by the code"
    return None


@dataclass
class Census:
    """What the test did with a notebook's numbers: how many it checked, which failed, and what it exempted."""

    notebook: str
    checked: int = 0
    untraced: list[Untraced] = field(default_factory=list)
    exempt: Counter = field(default_factory=Counter)
    #: (number, the pool it was checked against), for every checked number: what the looseness tests probe.
    probes: list[tuple[Quoted, Pool]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.checked + sum(self.exempt.values())


def home_pool(section: Section, found: list[Section], recorded: Pool) -> Pool:
    """The pool a sentence of ``section`` without pointers is checked against: its section's outputs and the records
    (and, for the exercises, the reference results that print their expected results)."""
    pool = section.outputs | recorded
    if section.title.startswith(EXERCISES):
        pool = pool | next((s.outputs for s in found if s.title == EXERCISE_RESULTS), Pool())
    return pool


def census(nb: nbformat.NotebookNode, name: str = "notebook") -> Census:
    """Check every number in a notebook's prose against the outputs of its section, and count what was done."""
    found, recorded = sections(nb)
    literals = code_literals(nb)
    by_number = {s.number: s for s in found if s.number}
    setup = next((s for s in found if s.title == SETUP), None)
    result = Census(name)
    for section in found:
        home = home_pool(section, found, recorded)
        for index, markdown in section.prose:
            for unit in units(prose(markdown)):
                numbers = list(NUMBER.finditer(unit))
                if not numbers:
                    continue
                if cited(unit):
                    result.exempt["cited"] += len(numbers)
                    continue
                pool = home
                for pointer in SECTION_POINTER.finditer(unit):
                    for named in re.findall(r"\d+\.\d+", pointer.group(1)):
                        if named in by_number:
                            pool = pool | by_number[named].outputs
                if setup is not None and SETUP_POINTER.search(unit):
                    pool = pool | setup.outputs
                for match in numbers:
                    number = parse(match)
                    kind = exempt_kind(number, unit[: match.start()], unit[match.end():], literals)
                    if kind:
                        result.exempt[kind] += 1
                        continue
                    result.checked += 1
                    result.probes.append((number, pool))
                    if not pool.traces(number):
                        start = max(0, match.start() - 40)
                        context = unit[start : match.end() + 20].replace("\n", " ")
                        result.untraced.append(Untraced(name, index, number.text, context))
    return result


def untraced_numbers(nb: nbformat.NotebookNode, name: str = "notebook") -> list[Untraced]:
    """Return every number in the notebook's markdown that nothing traces."""
    return census(nb, name).untraced


#: Each notebook's census, kept for the summary at the end of the run (tests/conftest.py prints it).
CENSUS: dict[str, Census] = {}


def census_lines() -> list[str]:
    """The summary: per notebook, the numbers checked and exempt (by kind), and the untraced ones."""
    lines = []
    kinds: Counter = Counter()
    for name, counted in sorted(CENSUS.items()):
        kinds += counted.exempt
        lines.append(f"{name}: {counted.total} numbers, {counted.checked} checked against their section "
                     f"({len(counted.untraced)} untraced), {sum(counted.exempt.values())} exempt")
    if CENSUS:
        checked = sum(c.checked for c in CENSUS.values())
        total = sum(c.total for c in CENSUS.values())
        lines.append(f"all: {total} numbers, {checked} checked, {total - checked} exempt: "
                     + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()))
        lines.append("where a checked number stands, a wrong one still passes this often (NN % / 0.0NN / moved 6-40 "
                     "units of its last digit):")
        for name, counted in sorted(CENSUS.items()):
            lines.append(f"  {name}: " + " / ".join(f"{rate:.0%}" for rate in looseness(counted).values()))
    return lines


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
    "Mode accuracy 0.771 as a fraction.",  # printed as a percentage, quoted as a fraction
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
    ("The test MSE is 0.027.", "0.027"),  # a wrong 0.0NN
    ("The test MSE is 0.03 per pixel, 0.031 to be exact.", "0.031"),
    ("Mode accuracy 77.4 %.", "77.4 %"),
    ("Mode accuracy 76 %.", "76 %"),  # a wrong NN %
    ("Mode accuracy 77, as a plain number.", "77"),  # a plain number is not a percentage of 0.771
    ("A share of 2.6 %.", "2.6 %"),  # 0.02616 is a fraction of MSE printed plain: 2.6 % is not it ...
    ("Gradients of 1e-9.", "1e-9"),  # 1.8e-9 does not round to 1e-9
    ("A model of 88,000 parameters.", "88,000"),  # 87,125 rounds to 87,000, not to 88,000
    ("In the table of notebook 5 the figure was 0.0266.", "0.0266"),  # another notebook's output does not count
    ("The share is 95 % here.", "95 %"),  # a share, not an interval's confidence level
])
def test_a_planted_number_fails_and_is_named(text, number):
    if number == "2.6 %":
        # ... except that a fraction printed plain traces its percentage: 0.02616 is 2.616 %, which rounds to 2.6 %.
        assert quoted(notebook(OUTPUTS, markdown_cell(text))) == []
        return
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
    "Higher by 0.0262 (95 % CI 0.026 to 0.03); the 95 % prediction interval; a paired 95 % confidence interval.",
])
def test_citations_and_exempt_kinds_pass(text):
    nb = notebook(OUTPUTS, code_cell("factor = 0.45  # a literal the code sets"), markdown_cell(text))
    assert quoted(nb) == []


def test_a_percentage_is_never_exempt_through_a_code_literal():
    nb = notebook(OUTPUTS, code_cell("plt.figure(figsize=(11, 4.8))"),
                  markdown_cell("Higher by 10.0 % (95 % CI 4.8 % to 15.3 %), and the figure is 4.8 inches tall."))
    assert quoted(nb) == ["10.0 %", "4.8 %", "15.3 %"]


def test_a_citation_covers_only_its_own_sentence():
    text = "Batch norm helps (Ioffe and Szegedy, 2015). Here it helped by 0.0333."
    assert quoted(notebook(OUTPUTS, markdown_cell(text))) == ["0.0333"]


def two_sections(text: str, *more: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Section 1.1 prints the outputs; section 1.2 holds ``text``."""
    return notebook(markdown_cell("## 1.1 Train"), OUTPUTS, markdown_cell("## 1.2 Later\n\n" + text), *more)


def test_a_number_printed_in_another_section_does_not_trace_unless_the_sentence_names_it():
    assert quoted(two_sections("The test MSE was 0.0262.")) == ["0.0262"]
    assert quoted(two_sections("The test MSE was 0.0262 (section 1.1).")) == []
    assert quoted(two_sections("The test MSE was 0.0262 (sections 1.3 and 1.1).")) == []
    assert quoted(two_sections("The test MSE was 0.0262 (section 1.3).")) == ["0.0262"]  # no such section
    setup = notebook(markdown_cell("## Setup"), OUTPUTS, markdown_cell("## 1.1 Train\n\nNoisy: 0.0262."))
    assert quoted(setup) == ["0.0262"]
    setup.cells[-1].source += " As the setup printed."  # a new sentence: the pointer covers only its own
    assert quoted(setup) == ["0.0262"]
    setup.cells[-1].source = "## 1.1 Train\n\nNoisy: 0.0262, as the set-up printed."
    assert quoted(setup) == []
    # A value recorded anywhere in the notebook is named, and traces from anywhere.
    assert quoted(two_sections("NMI 0.725.")) == []
    # The section's own cells count, before and after the prose, up to the next heading.
    below = notebook(markdown_cell("## 1.1 Train\n\nThe test MSE will be 0.0262."), OUTPUTS,
                     markdown_cell("## 1.2 Next"), code_cell("print()", printed="0.5\n"))
    assert quoted(below) == []
    # A heading inside a cell starts a section there: the text above it belongs to the section before.
    split = notebook(markdown_cell("## 1.1 Train"), OUTPUTS,
                     markdown_cell("It ends at 0.0262.\n\n## 1.2 Later\n\nIt ended at 0.0262."))
    assert quoted(split) == ["0.0262"]


def test_the_exercises_trace_to_their_reference_results_and_nothing_else_to_them():
    results = [markdown_cell("## Reference results for the exercises"),
               code_cell("print(reference)", printed="expected 0.0415 and 63.4 %\n")]
    exercise = notebook(markdown_cell("## Exercises\n\n### Write it\n\n**Expected result:** 0.0415 and 63.4 %."),
                        *results)
    assert quoted(exercise) == []
    body = notebook(markdown_cell("## 1.1 Body\n\nIt was 0.0415."), markdown_cell("## Exercises"), *results)
    assert quoted(body) == ["0.0415"]


def test_a_number_planted_in_a_real_notebook_is_caught():
    nb = nbformat.read(NOTEBOOK_DIR / "03_training.ipynb", as_version=4)
    nb.cells.append(markdown_cell("The final test MSE was 0.0123 in the reference run."))
    found = untraced_numbers(nb, "03_training.ipynb")
    assert any(u.number == "0.0123" and u.cell == len(nb.cells) - 1 for u in found)


def test_a_real_number_moved_to_another_section_of_its_notebook_is_caught():
    """A number that notebook 3 prints in section 3.4 alone (and does not record) fails when quoted in 3.1, and
    traces there once the sentence names section 3.4."""
    nb = nbformat.read(NOTEBOOK_DIR / "03_training.ipynb", as_version=4)
    found, recorded = sections(nb)
    section_34 = next(s for s in found if s.number == "3.4")
    section_31 = next(s for s in found if s.number == "3.1")
    # a decimal that 3.4 prints and neither 3.1 nor the records show at that precision
    printed = " ".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                       for c in nb.cells for o in c.get("outputs", []))
    candidates = [parse(m) for m in NUMBER.finditer(printed)]
    moved = next(q for q in candidates if "." in q.text and not q.percent and section_34.outputs.traces(q)
                 and not (section_31.outputs | recorded).traces(q))
    where = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## 3.2"))
    for text, fails in ((f"It reached {moved.text} there.", True), (f"It reached {moved.text} (section 3.4).", False)):
        planted = nbformat.from_dict(nb)
        planted.cells.insert(where, markdown_cell(text))
        hits = [u for u in untraced_numbers(planted, "03_training.ipynb") if u.cell == where]
        assert [u.number for u in hits] == ([moved.text] if fails else []), text


def looseness(counted: Census) -> dict[str, float]:
    """How often a wrong number would still pass where the text quotes a number (each checked number's pool).

    - ``NN %``: a whole percentage from 10 % to 99 %;
    - ``0.0NN``: a three-decimal value from 0.010 to 0.099;
    - ``last digit``: the quoted number moved 6 to 40 units of its last digit, up or down.

    A section that prints a long table traces many values, so these are reported (the census), not capped.
    """
    nn = [Quoted(f"{k} %", k, 0.5, True) for k in range(10, 100)]
    small = [Quoted(f"0.0{k}", k / 1000, 0.0005, False) for k in range(10, 100)]
    rates: dict[str, list[float]] = {"NN %": [], "0.0NN": [], "last digit": []}
    for number, pool in counted.probes:
        rates["NN %"].append(sum(map(pool.traces, nn)) / len(nn))
        rates["0.0NN"].append(sum(map(pool.traces, small)) / len(small))
        step = 2 * number.tolerance
        moved = [Quoted(number.text, number.value + sign * k * step, number.tolerance, number.percent)
                 for k in range(6, 41) for sign in (-1, 1) if number.value + sign * k * step > 0]
        rates["last digit"].append(sum(map(pool.traces, moved)) / len(moved))
    return {kind: sum(values) / len(values) if values else 0.0 for kind, values in rates.items()}


NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def censuses() -> dict[str, Census]:
    for path in NOTEBOOKS:
        CENSUS[path.name] = census(nbformat.read(path, as_version=4), path.name)
    return CENSUS


def as_quoted(text: str) -> Quoted:
    return parse(next(NUMBER.finditer(text)))


def cell_home_pool(nb: nbformat.NotebookNode, cell: int) -> Pool:
    """The pool a sentence without pointers in markdown cell ``cell`` is checked against."""
    found, recorded = sections(nb)
    return home_pool(next(s for s in found if any(index == cell for index, _ in s.prose)), found, recorded)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_planted_low_precision_number_fails_in_every_section(path):
    """In each section, a sentence with a wrong "NN %" and a wrong "0.0NN" (values its section does not print)
    fails: 0.01 and 1 % wide targets are what the old notebook-wide test let through most of the time."""
    nb = nbformat.read(path, as_version=4)
    found, _ = sections(nb)
    planted_in = 0
    for section in found:
        if not section.prose or section.title == SETUP:
            continue
        where = section.prose[-1][0] + 1
        planted = nbformat.from_dict(nb)
        planted.cells.insert(where, markdown_cell("A placeholder."))
        pool = cell_home_pool(planted, where)
        share = next(text for text in (f"{k} %" for k in range(11, 100)) if not pool.traces(as_quoted(text)))
        small = next(text for text in (f"0.0{k}" for k in range(11, 100)) if not pool.traces(as_quoted(text)))
        planted.cells[where].source = f"It kept {share} of them, at an MSE of {small}."
        hits = [u.number for u in untraced_numbers(planted, path.name) if u.cell == where]
        assert hits == [share, small], f"{path.name}, section {section.title!r}"
        planted_in += 1
    assert planted_in >= 5


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_number_in_the_notebook_text_is_traceable(censuses, path):
    counted = censuses[path.name]
    assert counted.checked > 0
    found = counted.untraced
    assert not found, f"{len(found)} numbers in the text trace to no output of their section, record, citation " \
                      f"or exempt kind:\n" + "\n".join(map(str, found))
