"""Time nbgrader's autograde of one student's core path (notebooks 1-5, the core edition) with shared checkpoints.

    python benchmarks/grade_core.py --checkpoints checkpoints --data-dir ../shared/data/mnist
    python benchmarks/grade_core.py --checkpoints checkpoints --source sample

Lays out the core edition as an nbgrader course (`python -m dae_utils.course nbgrader --core`) in a temporary
folder, releases each notebook, submits it with every solution cell filled from the instructor's edition, and
times `nbgrader autograde` per notebook. Prints the time of each notebook, the total and the scores; it asserts
nothing. The checkpoints must match the data (`make checkpoints` with the same data settings fills them).
Numbers depend on the machine: say which one when you quote them.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import nbformat

from dae_utils import course, editions, grading


def nbgrader(course_dir: Path, *args: str) -> None:
    """Run an nbgrader command in the course folder (``grading.run_nbgrader``); stop with its output if it fails."""
    done = grading.run_nbgrader(course_dir, *args)
    if done.returncode != 0:
        raise SystemExit(f"nbgrader {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def solutions_of(source: Path) -> dict[str, str]:
    """The instructor's notebook's solution code cells, by grade id."""
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nbformat.read(source, as_version=4).cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}


def filled(release: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """A copy of the released notebook with ``answers`` written into its code cells, by grade id."""
    nb = nbformat.from_dict(release)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers and cell.cell_type == "code":
            cell.source = answers[grade_id]
    return nb


def right_submission(source: Path, release: Path) -> nbformat.NotebookNode:
    """The released notebook with every solution cell filled from the instructor's notebook, by grade id."""
    return filled(nbformat.read(release, as_version=4), solutions_of(source))


def data_arguments(parser: argparse.ArgumentParser) -> None:
    """The options both grading benchmarks take: the shared checkpoints, and the data they were trained on."""
    parser.add_argument("--checkpoints", type=Path, required=True, help="the shared checkpoint folder")
    parser.add_argument("--data-dir", help="folder holding MNIST/raw/ (sets DAE_DATA_DIR)")
    parser.add_argument("--source", choices=("sample",), help="grade on the offline sample instead")


def use_data(args: argparse.Namespace) -> None:
    """Set the data the grading kernels read, as ``data_arguments`` asked."""
    if args.data_dir:
        os.environ["DAE_DATA_DIR"] = str(Path(args.data_dir).resolve())
    if args.source:
        os.environ["DAE_DATA_SOURCE"] = args.source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data_arguments(parser)
    args = parser.parse_args()
    use_data(args)
    from nbgrader.api import Gradebook

    with tempfile.TemporaryDirectory() as folder:
        course_dir = Path(folder) / "grading"
        editions.make_nbgrader_course(course.find_notebooks(selection=list(editions.CORE_NOTEBOOKS)), course_dir,
                                    args.checkpoints, core=True)
        times, scores = {}, {}
        for source in sorted((course_dir / "source").glob("*/*.ipynb")):
            name = source.stem
            nbgrader(course_dir, "generate_assignment", name, "--force")
            submitted = course_dir / "submitted" / "right" / name / source.name
            submitted.parent.mkdir(parents=True)
            nbformat.write(right_submission(source, course_dir / "release" / name / source.name), submitted)
            start = time.perf_counter()
            nbgrader(course_dir, "autograde", name)
            times[name] = time.perf_counter() - start
            with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id="dae-course") as gradebook:
                result = gradebook.find_submission(name, "right")
                scores[name] = (result.code_score, gradebook.find_assignment(name).max_code_score)
            print(f"{name:<26} {times[name]:6.1f} s   automatic points {scores[name][0]:g} of {scores[name][1]:g}",
                  flush=True)
    print(f"core path, one student: {sum(times.values()):.1f} s in all; automatic points "
          f"{sum(s[0] for s in scores.values()):g} of {sum(s[1] for s in scores.values()):g}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; data: "
          f"{os.environ.get('DAE_DATA_DIR') or os.environ.get('DAE_DATA_SOURCE') or 'auto'}")


if __name__ == "__main__":
    main()
