"""Every verdict the text states is one a cell prints, and no verdict is stated in the old rule's words.

A verdict is written in the course's words (``evidence.VERDICT``): "lower by 0.0061
(95 % CI 0.0027 to 0.0095" or "not established: the data allow a difference from
-0.0142 to +0.0020". Each one in a notebook's prose must agree, in direction and in
both ends of its interval (at the precision written), with one that a code cell of the
same notebook printed with ``evidence.compare``; each one in the README and in the course
site's pages (``book/*.md``), with one that some notebook printed. Words that read "not
established" as "equal" are refused.

Families: every verdict a results cell prints (a cell that calls ``dae_utils.tables``) is
judged within its family by Holm's rule (``evidence.Family``), and a paragraph that states an
established verdict which falls within its family says so ("family" or "Holm").
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from dae_utils import evidence

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
#: Words of the range rule, or words that call an undecided comparison a tie. Only section 5.2 names the rule,
#: to show why it fails; elsewhere these words may not appear.
FORBIDDEN = re.compile(r"course's rule|\ba tie\b|no difference|equally well|real difference|than the spread",
                       re.IGNORECASE)


printed_text = evidence.printed_text


def unmatched(prose: str, printed: list[evidence.StatedVerdict]) -> list[evidence.StatedVerdict]:
    """Return the verdicts stated in ``prose`` that no printed verdict agrees with."""
    return [v for v in evidence.stated_verdicts(prose) if not any(v.matches(p) for p in printed)]


def unqualified(prose: str, printed: list[evidence.StatedVerdict]) -> list[evidence.StatedVerdict]:
    """Return the established verdicts in ``prose`` that fall within their printed family, stated in a paragraph
    that does not say so (names neither the family nor Holm)."""
    found = []
    for paragraph in re.split(r"\n\s*\n", prose):
        if re.search(r"famil|Holm", paragraph):
            continue
        found += [v for v in evidence.stated_verdicts(paragraph) if v.direction != "not established"
                  and any(v.matches(p) and p.holds is False for p in printed)]
    return found


def prose_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """Return, for one notebook, each stated verdict without a printed twin, each one that falls within its family
    without saying so, and each forbidden phrase."""
    printed = evidence.stated_verdicts(printed_text(notebook))
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        problems += [f"cell {index}: '{v.direction}, {v.low} to {v.high}' is printed by no cell"
                     for v in unmatched(cell.source, printed)]
        problems += [f"cell {index}: '{v.direction}, {v.low} to {v.high}' falls within its family by Holm's rule; "
                     "the paragraph must say so" for v in unqualified(cell.source, printed)]
        problems += [f"cell {index}: '{m.group(0)}'" for m in FORBIDDEN.finditer(cell.source)]
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_every_verdict_of_a_results_cell_is_judged_within_its_family(path):
    notebook = nbformat.read(path, as_version=4)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code" or "tables." not in cell.source:
            continue
        single = nbformat.v4.new_notebook(cells=[cell])
        for verdict in evidence.stated_verdicts(printed_text(single)):
            assert verdict.family is not None, f"cell {index} prints {verdict} outside a family (evidence.Family)"
            if verdict.direction == "not established":
                assert verdict.holds is False


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem[:2])
def test_each_verdict_in_the_prose_is_printed_beside_it(path):
    assert prose_problems(nbformat.read(path, as_version=4)) == []


def test_the_course_states_verdicts_in_the_notebooks_that_compare():
    counts = {p.stem[:2]: len(evidence.stated_in_notebook(p)) for p in NOTEBOOKS}
    for number in ("02", "03", "05", "06", "07"):
        assert counts[number] >= 2, f"notebook {number} states {counts[number]} verdicts in the course's words"


def test_a_verdict_that_falls_within_its_family_is_said_to():
    notebook = nbformat.read(NOTEBOOKS[1], as_version=4)  # notebook 2: gamma and beta after 3 epochs falls
    fallen = [v for v in evidence.stated_verdicts(printed_text(notebook)) if v.holds is False
              and v.direction != "not established"]
    assert fallen, "notebook 2 prints a verdict that falls within its family (section 2.5, 3 epochs)"
    verdict = fallen[0]
    claim = f"It is {verdict.direction} by 0.0082 (95 % CI {verdict.low} to {verdict.high})."
    notebook.cells.append(nbformat.v4.new_markdown_cell(claim))
    assert len(prose_problems(notebook)) == 1
    notebook.cells[-1].source = claim + " It does not hold within its family of two (Holm's rule)."
    assert prose_problems(notebook) == []


def test_a_planted_verdict_or_tie_is_found():
    notebook = nbformat.read(NOTEBOOKS[1], as_version=4)
    assert prose_problems(notebook) == []
    notebook.cells.append(nbformat.v4.new_markdown_cell(
        "Batch norm is lower by 0.0061 (95 % CI 0.0030 to 0.0095), and the rest is a tie."))
    problems = prose_problems(notebook)
    assert len(problems) == 2 and "0.0030" in problems[0] and "a tie" in problems[1]


def test_rounding_is_honest():
    printed = evidence.stated_verdicts("lower by 0.0061 (95 % CI 0.00274 to 0.00949; ...)")
    assert unmatched("lower by 0.006 (95 % CI 0.003 to 0.009", printed) == []
    assert unmatched("lower by 0.0061 (95 % CI 0.0027 to 0.0095", printed) == []
    assert len(unmatched("lower by 0.0061 (95 % CI 0.0028 to 0.0095", printed)) == 1
    assert len(unmatched("higher by 0.0061 (95 % CI 0.0027 to 0.0095", printed)) == 1
    percent = evidence.stated_verdicts("not established: the data allow a difference from -16.4% to +5.2% (95 % CI")
    assert unmatched("not established: the data allow a difference from -16.4 % to +5.2 %", percent) == []


PAGES = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_the_readme_and_the_site_state_only_printed_verdicts_and_no_ties(page):
    text = page.read_text()
    printed = [v for path in NOTEBOOKS for v in evidence.stated_verdicts(printed_text(nbformat.read(path, 4)))]
    assert unmatched(text, printed) == []
    assert [m.group(0) for m in FORBIDDEN.finditer(text)] == []


def test_notebook_5_counts_the_comparisons_there_are():
    notebook = nbformat.read(ROOT / "notebooks" / "05_clustering.ipynb", as_version=4)
    every = evidence.distinct([v for path in NOTEBOOKS for v in evidence.printed_in_notebook(path)])
    established = [v for v in every if v.direction != "not established"]
    judged = [v for v in established if v.family is not None]
    text = printed_text(notebook)
    match = re.search(r"in all: (\d+) distinct comparisons, (\d+) established", text)
    assert match, "notebook 5 prints the number of comparisons the course prints"
    assert (int(match.group(1)), int(match.group(2))) == (len(every), len(established)), \
        "re-run notebook 5's count cell after changing a printed verdict in any notebook"
    held = re.search(r"judged within their families: (\d+) of the established, of which (\d+) hold", text)
    assert held and (int(held.group(1)), int(held.group(2))) == (len(judged), sum(v.holds for v in judged))
    assert len(every) > 90 and len(judged) >= len(established) - 2
