"""Editions of the course: the student edition (solutions out), the core path, and the nbgrader course.

    python -m dae_utils.course student --output-dir DIR [--core]
    python -m dae_utils.course nbgrader --course-dir DIR --checkpoints CKPT [--core]

The instructor's notebooks hold the solutions between nbgrader's markers. The
student edition replaces them (``make_student_edition``); the core path keeps the
assignment's own sections and exercises only (``core_path``); the nbgrader course
lays out one assignment per notebook with a config whose grading kernels share
read-only checkpoints (``make_nbgrader_course``). Running nbgrader on it is
``dae_utils.grading``'s job.
"""

from __future__ import annotations

import os
import re
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import nbformat

from .checkpoint import write_text_atomically
from .data import DATA_DIR_ENV, DATA_SOURCE_ENV
from .errors import CourseError

#: What a solution region in the instructor's notebooks starts with (nbgrader's marker).
SOLUTION_MARKER = "### BEGIN SOLUTION"
#: The checks that grade the assignment's own parts, by grade id, with the part each grades. Part (b), explaining
#: batch norm, is notebook 2's open question, graded by hand. The other checks grade variants and go further.
ASSIGNMENT_CHECKS = {
    "nb01-add-noise-by-hand-check": "a: add_noise",
    "nb02-model-check": "a: the encoder and decoder",
    "nb03-train-epoch-check": "a: the train function",
    "nb03-test-epoch-check": "a: the test function",
    "nb04-random-grid-check": "e: nine random codes decoded into a 3 x 3 grid",
    "nb05-mode-mapping-check": "d: k-means clusters mapped to digits by their most common label",
}
#: The least share of the automatic points that the assignment's own parts carry.
ASSIGNMENT_SHARE = 0.7


def exercise_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Return the indices of a notebook's exercise cells: nbgrader solution or grade cells."""
    return [i for i, cell in enumerate(nb.cells)
            if cell.metadata.get("nbgrader", {}).get("solution") or cell.metadata.get("nbgrader", {}).get("grade")]


def require_new_or_empty(folder: Path, option: str) -> None:
    """Refuse a folder that holds anything (or is a file): a command that writes one never overwrites."""
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise CourseError(f"{folder} is not an empty folder; choose a new {option}.")


#: The core path ends where the assignment does; notebooks past it are going further as a whole.
CORE_NOTEBOOKS = ("01", "02", "03", "04", "05")
GOING_FURTHER = "going further"
#: An exercise list's items ("1. **Title** ..."), each running to the next item or to the first line that is neither
#: blank nor indented.
EXERCISE_ITEM = re.compile(r"^\d+\. \*\*(?P<title>.+?)\*\*.*?(?=^\d+\. \*\*|^(?! |$)|\Z)", re.M | re.S)


def core_path(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """Return ``nb`` with its core path only: no section and no exercise marked going further.

    A section is going further when its heading says so, up to the next heading of its level or
    above (the time test counts the same way); an exercise is when its title starts with "Going
    further". Those come after the core in every notebook, so what stays runs as it did.
    """
    kept, skipped_level = [], None
    for cell in nb.cells:
        headings = re.findall(r"^(#+) (.*)$", cell.source, re.M) if cell.cell_type == "markdown" else []
        for position, (hashes, title) in enumerate(headings):
            if skipped_level is not None and len(hashes) <= skipped_level:
                skipped_level = None
            if skipped_level is None and GOING_FURTHER in title.lower():
                if position > 0 or not cell.source.startswith("#"):
                    raise CourseError(f"{name}: the going-further heading {title!r} does not start its cell; "
                                      "split the cell there so that the core edition can leave it out.")
                skipped_level = len(hashes)
        if skipped_level is not None:
            continue
        if cell.cell_type == "markdown":
            cell.source = EXERCISE_ITEM.sub(
                lambda item: "\n" if item["title"].lower().startswith(GOING_FURTHER) else item.group(0), cell.source)
            cell.source = re.sub(r"\n{3,}", "\n\n", cell.source).rstrip("\n")
        kept.append(cell)
    nb.cells = kept
    return nb


def core_notebooks(notebooks: list[Path]) -> list[Path]:
    """Return the notebooks of the core path among ``notebooks`` (notebooks 1 to 5), or refuse if none is."""
    core = [path for path in notebooks if path.name[:2] in CORE_NOTEBOOKS]
    if not core:
        raise CourseError("None of these notebooks is on the core path (notebooks 01 to 05); leave out --core "
                          "or name one of them.")
    return core


def edition_notebooks(notebooks: list[Path], core: bool) -> Iterator[tuple[Path, nbformat.NotebookNode]]:
    """Read each notebook of an edition: all of ``notebooks``, or with ``core`` their core path only."""
    for path in core_notebooks(notebooks) if core else notebooks:
        nb = nbformat.read(path, as_version=4)
        yield path, core_path(nb, path.name) if core else nb


def make_student_edition(notebooks: list[Path], output_dir: Path, core: bool = False) -> list[Path]:
    """Write the student edition of ``notebooks`` into ``output_dir``, which must be new or empty.

    nbgrader's ``ClearSolutions`` replaces every region between ``### BEGIN SOLUTION``
    and ``### END SOLUTION`` by ``raise NotImplementedError()`` (the comment above
    each region says what to write), and the outputs of the exercise cells are
    cleared, so neither code nor printed results give an answer away. Everything
    else, committed outputs included, stays as it is. With ``core`` it holds the core
    path only: notebooks 1 to 5, without what is marked going further (``core_path``).
    """
    from nbgrader.preprocessors import ClearSolutions

    require_new_or_empty(output_dir, "--output-dir for the student edition")
    editions = []
    for path, nb in edition_notebooks(notebooks, core):  # everything is prepared before anything is written
        nb, _ = ClearSolutions(enforce_metadata=False).preprocess(nb, {})
        for index in exercise_cells(nb):
            nb.cells[index].outputs = []
            nb.cells[index].execution_count = None
        leftover = [i for i, cell in enumerate(nb.cells) if "END SOLUTION" in cell.source]
        if leftover:
            raise CourseError(f"{path.name}: cells {leftover} still hold a solution marker; check their pairing.")
        text = nbformat.writes(nb)
        editions.append((output_dir / path.name, text if text.endswith("\n") else text + "\n"))
    created = not output_dir.exists()
    written: list[Path] = []
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        for target, text in editions:
            write_text_atomically(target, text)
            written.append(target)
    except OSError as error:
        for target in written:  # leave the folder as it was, so the same command can simply run again
            target.unlink(missing_ok=True)
        if created:
            shutil.rmtree(output_dir, ignore_errors=True)
        raise CourseError(
            f"Cannot write the student edition into {output_dir}: {error.strerror or error}. Nothing was left "
            "behind; choose a folder you can write to, on a disk with space, and run the command again."
        ) from None
    return written


#: Seconds each cell may run under nbgrader's autograde. nbgrader's default, 30 s, interrupts training cells
#: (single cells took up to 382 s on a loaded 2-core machine without shared checkpoints).
GRADING_CELL_TIMEOUT_S = 600

NBGRADER_CONFIG = """\
# An nbgrader course for the denoising-autoencoder course, written by
#     python -m dae_utils.course nbgrader --course-dir {course_dir}
# See the course site's page For instructors (book/instructors.md), "Grading a class with nbgrader".
# Run nbgrader's commands in this folder.
import os

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "dae-course"
# Seconds each cell may run. nbgrader's default, 30 s, interrupts the training cells, and every later
# cell then fails with a NameError.
c.Execute.timeout = {timeout}
# Code cells tagged skip-while-grading (notebook 6's clustering comparison and moonshot) are emptied before a
# submission runs: no exercise depends on them, and they take most of a submission's grading time.
from dae_utils.grading import SkipWhileGrading  # noqa: E402
from nbgrader.converters import Autograde  # noqa: E402

c.Autograde.autograde_preprocessors = [SkipWhileGrading, *Autograde.class_traits()["autograde_preprocessors"].default()]
# What every grading kernel inherits (it starts from this process's environment):
{environment}
"""


#: An open question's model answer in the notebooks' markdown, and the exercise it belongs to.
MODEL_ANSWER = re.compile(r"[ \t]*<details><summary>Model answer</summary>[ \t]*\n(.*?)\n[ \t]*</details>", re.S)
EXERCISE_TITLE = re.compile(r"^(\d+)\. \*\*(.+?)\*\*", re.M)


def add_answer_cells(nb: nbformat.NotebookNode, notebook_id: str, hide_model_answers: bool) -> int:
    """Give each open question with a model answer a markdown answer cell that graders score by hand (1 point).

    The answer cell goes right after the exercises' cell. With ``hide_model_answers``
    the model answer moves from the question into the answer cell's solution region,
    which ``generate_assignment`` replaces with "YOUR ANSWER HERE": graders see it,
    students do not. Returns the number of answer cells added.
    """
    added = 0
    for index in reversed(range(len(nb.cells))):
        cell = nb.cells[index]
        if cell.cell_type != "markdown" or not MODEL_ANSWER.search(cell.source):
            continue
        answer_cells = []
        for match in MODEL_ANSWER.finditer(cell.source):
            titles = EXERCISE_TITLE.findall(cell.source[: match.start()])
            number, title = titles[-1] if titles else (str(len(answer_cells) + 1), "an open question")
            model = textwrap.dedent(match.group(1)).strip() if hide_model_answers else ""
            answer = nbformat.v4.new_markdown_cell(
                f"**Your answer to exercise {number}, {title.rstrip('.')}** (graded by hand)\n\n"
                f"### BEGIN SOLUTION\n{model}\n### END SOLUTION")
            answer.metadata["nbgrader"] = {"grade": True, "solution": True, "locked": False, "task": False,
                                           "points": 1, "grade_id": f"nb{notebook_id[:2]}-open-{number}",
                                           "schema_version": 3}
            answer_cells.append(answer)
        if hide_model_answers:
            hidden = "   *(Write your answer in its cell below the exercises; your instructor has the model answer.)*"
            cell.source = MODEL_ANSWER.sub(hidden, cell.source)
        nb.cells[index + 1 : index + 1] = answer_cells
        added += len(answer_cells)
    return added


def make_nbgrader_course(notebooks: list[Path], course_dir: Path, checkpoints: Path | None,
                         timeout: int = GRADING_CELL_TIMEOUT_S, hide_model_answers: bool = False,
                         core: bool = False) -> list[Path]:
    """Lay out an nbgrader course in ``course_dir`` (new or empty): one assignment per notebook, and its config.

    ``source/<notebook>/<notebook>.ipynb`` holds the instructor's notebook, which
    ``nbgrader generate_assignment`` turns into the release, with an answer cell
    graded by hand after each open question (``add_answer_cells``).
    ``nbgrader_config.py`` sets the cell timeout and the environment the grading
    kernels inherit: the shared checkpoint folder (read only, so no submission
    trains again) and the data source the checkpoints were trained on, as they are
    set where this runs. With ``core`` the course holds the core path only (``core_path``).
    """
    from .checkpoint import SHARED_CHECKPOINTS_ENV

    require_new_or_empty(course_dir, "--course-dir")
    if checkpoints is not None and not checkpoints.is_dir():
        raise CourseError(f"--checkpoints {checkpoints} is not a folder. Fill one first: "
                          f"make checkpoints DIR={checkpoints}")
    settings = {SHARED_CHECKPOINTS_ENV: str(checkpoints.resolve()) if checkpoints is not None else None}
    for variable in (DATA_SOURCE_ENV, DATA_DIR_ENV):
        settings[variable] = os.environ.get(variable) or None
    lines = [f"os.environ.setdefault({name!r}, {value!r})" if value else f"# {name} is not set"
             for name, value in settings.items()]
    written = []
    for path, nb in edition_notebooks(notebooks, core):
        add_answer_cells(nb, path.stem, hide_model_answers)
        target = course_dir / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        written.append(target)
    config = course_dir / "nbgrader_config.py"
    config.write_text(NBGRADER_CONFIG.format(course_dir=course_dir, timeout=timeout, environment="\n".join(lines)))
    return [config, *written]
