"""Grading a class with nbgrader: the course folder the runner lays out, and a real generate + autograde."""

import ast
import subprocess
from pathlib import Path

import nbformat
import pytest

from dae_utils import course, editions, grading

ASSIGNMENT = "01_noise_and_data"


def nbgrader(course_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run an nbgrader command as book/instructors.md says (``grading.run_nbgrader``); it must succeed."""
    done = grading.run_nbgrader(course_dir, *args, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def submission(release: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """The released notebook with the student's answers written into its solution cells, by grade id."""
    nb = nbformat.from_dict(release)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


RIGHT = {
    "nb01-add-noise-by-hand": "def add_noise_by_hand(images, noise_factor, generator=None):\n"
                              "    return (images + noise_factor * torch.randn(images.shape, generator=generator))"
                              ".clamp(0, 1)\n",
    "nb01-add-noise": "def my_add_noise_map(images, noise_std, generator=None):\n"
                      "    noise = torch.randn(images.shape, generator=generator)\n"
                      "    return torch.clamp(images + noise_std * noise, 0.0, 1.0)\n",
    "nb01-black-pixel": "def black_pixel_mse(s):\n    return 0.5 * s * s\n",
    "nb01-open-2": "Half of a black pixel's noise is clamped away, so its squared error is s^2 / 2.",
}
#: Wrong answers that also try to pass by rebinding the checks from the unlocked cells.
TAMPERED = {
    "nb01-add-noise-by-hand": "import dae_utils.exercises\n"
                              "dae_utils.exercises.check_add_noise = print\n"
                              "def add_noise_by_hand(images, noise_factor, generator=None):\n"
                              "    return images + noise_factor * torch.randn(images.shape, generator=generator)\n",
    "nb01-add-noise": "import dae_utils.exercises\n"
                      "dae_utils.exercises.check_add_noise_map = print\n"
                      "def my_add_noise_map(images, noise_std, generator=None):\n"
                      "    return images + noise_std * torch.randn(images.shape, generator=generator)\n",
    "nb01-black-pixel": "dae_utils.exercises.check_black_pixel_mse = lambda formula: None\n"
                        "def black_pixel_mse(s):\n    return s**2\n",
    "nb01-open-2": "The clamp does not matter.",
}


def test_the_course_folder_holds_one_assignment_per_notebook_and_a_documented_config(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    monkeypatch.setenv("DAE_DATA_SOURCE", "sample")
    monkeypatch.delenv("DAE_DATA_DIR", raising=False)
    course_dir = tmp_path / "grading"
    assert course.main(["nbgrader", "--course-dir", str(course_dir), "--checkpoints", str(shared)]) == 0
    names = sorted(p.relative_to(course_dir).as_posix() for p in course_dir.rglob("*.ipynb"))
    assert names == [f"source/{p.stem}/{p.name}" for p in course.find_notebooks()]
    config = (course_dir / "nbgrader_config.py").read_text()
    assert f"c.Execute.timeout = {editions.GRADING_CELL_TIMEOUT_S}" in config
    assert f"os.environ.setdefault('DAE_SHARED_CHECKPOINTS', {str(shared.resolve())!r})" in config
    assert "os.environ.setdefault('DAE_DATA_SOURCE', 'sample')" in config and "# DAE_DATA_DIR is not set" in config
    compile(config, "nbgrader_config.py", "exec")
    # Each open question with a model answer gets an answer cell graded by hand; the model answers stay visible.
    answers = {}
    for path in course_dir.rglob("*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("grade"):
                assert cell.metadata["nbgrader"]["solution"] and cell.metadata["nbgrader"]["points"] == 1
                answers[cell.metadata["nbgrader"]["grade_id"]] = cell.source
    assert sorted(answers) == ["nb01-open-2", "nb01-open-4", "nb02-open-2", "nb02-open-5", "nb02-open-6",
                               "nb03-open-2", "nb03-open-5", "nb04-open-4", "nb04-open-5", "nb05-open-2",
                               "nb05-open-3", "nb05-open-4", "nb06-open-2", "nb06-open-3", "nb07-open-5"]
    assert all("### BEGIN SOLUTION\n\n### END SOLUTION" in text for text in answers.values())
    # A used folder and a missing checkpoint folder are refused before anything is written.
    assert course.main(["nbgrader", "--course-dir", str(course_dir)]) == 1
    assert course.main(["nbgrader", "--course-dir", str(tmp_path / "new"), "--checkpoints",
                        str(tmp_path / "none")]) == 1
    assert not (tmp_path / "new").exists()


@pytest.mark.slow
def test_nbgrader_autogrades_a_right_and_a_tampered_wrong_submission(tmp_path):
    """generate_assignment, then autograde two submissions of notebook 1 with the course's config."""
    course_dir = tmp_path / "grading"
    assert course.main(["nbgrader", "--course-dir", str(course_dir), "--notebooks", "01",
                        "--hide-model-answers"]) == 0
    source = "\n".join(c.source for c in nbformat.read(course_dir / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
                                                        as_version=4).cells)
    model_answer = "E = P(eps > 0) E[s^2 eps^2 | eps > 0]"  # notebook 1's, for its open question
    assert model_answer in source and "<summary>Model answer" not in source
    # A heavy cell that no exercise needs, tagged as notebook 6's are: autograde must not run it.
    source_path = course_dir / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    source_nb = nbformat.read(source_path, as_version=4)
    heavy = nbformat.v4.new_code_cell("raise RuntimeError('a skip-while-grading cell ran')")
    heavy.metadata["tags"] = [grading.SKIP_TAG]
    source_nb.cells.insert(5, heavy)
    nbformat.write(source_nb, source_path)
    nbgrader(course_dir, "generate_assignment", ASSIGNMENT, "--force")
    release = nbformat.read(course_dir / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    released = "\n".join(cell.source for cell in release.cells)
    assert "BEGIN SOLUTION" not in released
    stubs = [c.source for c in release.cells
             if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]
    assert len(stubs) == 3
    assert all("raise NotImplementedError()" in s and "return" not in s.split('"""')[-1] for s in stubs), stubs
    assert model_answer not in released and "YOUR ANSWER HERE" in released
    for student, answers in (("right", RIGHT), ("tampered", TAMPERED)):
        folder = course_dir / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(submission(release, answers), folder / f"{ASSIGNMENT}.ipynb")
    nbgrader(course_dir, "autograde", ASSIGNMENT)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id="dae-course") as gradebook:
        submissions = {student: gradebook.find_submission(ASSIGNMENT, student) for student in ("right", "tampered")}
        scores = {student: s.code_score for student, s in submissions.items()}
        waiting = {student: s.needs_manual_grade for student, s in submissions.items()}
        assignment = gradebook.find_assignment(ASSIGNMENT)
        points = (assignment.max_code_score, assignment.max_written_score)
    assert points == (3, 2)  # three checked exercises' points, two open questions graded by hand
    assert scores == {"right": 3, "tampered": 0}
    assert waiting == {"right": True, "tampered": True}  # the open question waits for a grader
    graded = nbformat.read(course_dir / "autograded" / "right" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    assert graded.cells[5].source == grading.SKIPPED_SOURCE
    assert not [o for c in graded.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_skip_while_grading_empties_tagged_code_cells_but_never_an_exercise():
    cells = [nbformat.v4.new_code_cell("heavy()"), nbformat.v4.new_code_cell("light()"),
             nbformat.v4.new_code_cell("check()"), nbformat.v4.new_markdown_cell("text")]
    for cell in (cells[0], cells[2], cells[3]):
        cell.metadata["tags"] = [grading.SKIP_TAG]
    cells[0].outputs = [nbformat.v4.new_output("stream", text="old output")]
    cells[2].metadata["nbgrader"] = {"grade": True, "grade_id": "x", "locked": True, "points": 1}
    nb, _ = grading.SkipWhileGrading().preprocess(nbformat.v4.new_notebook(cells=cells), {})
    assert [c.source for c in nb.cells] == [grading.SKIPPED_SOURCE, "light()", "check()", "text"]
    assert nb.cells[0].outputs == []


@pytest.mark.parametrize("prefix, heavy_sections", [
    ("02_", {"## 2.5 Why gamma and beta?", "## 2.8 Going further: why does batch norm help? A measurement"}),
    ("03_", {"## 3.7 Going further: other noise levels"}),
    ("05_", {"## 5.5 Going further: is this good? Baselines"}),
    ("06_", {"## 6.3 A better clustering of the same codes, then of wider ones",
             "### The moonshot: can the course's encoder family reach 95 %?"}),
])
def test_heavy_sections_and_only_they_are_skipped_while_grading(prefix, heavy_sections):
    nb = nbformat.read(next(p for p in course.find_notebooks() if p.name.startswith(prefix)), as_version=4)
    tagged = [i for i, c in enumerate(nb.cells) if grading.SKIP_TAG in c.metadata.get("tags", [])]
    assert tagged and all(nb.cells[i].cell_type == "code" and "nbgrader" not in nb.cells[i].metadata for i in tagged)
    sections = [next(c.source.splitlines()[0] for c in reversed(nb.cells[: i + 1])
                     if c.cell_type == "markdown" and c.source.startswith("#")) for i in tagged]
    assert set(sections) == heavy_sections
    # The notebook tells its readers which cells grading skips.
    assert any("skip-while-grading" in c.source for c in nb.cells if c.cell_type == "markdown")
    # No cell that still runs reads a name that only the skipped cells define.
    def names(source: str, context: type) -> set[str]:
        tree = ast.parse(source)
        found = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, context)}
        if context is ast.Store:
            found |= {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            found |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}  # a function's own parameters
        return found

    code = [(i, c.source) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    only_skipped = set().union(*(names(src, ast.Store) for i, src in code if i in tagged)) - set().union(
        *(names(src, ast.Store) for i, src in code if i not in tagged))
    still_read = set().union(*(names(src, ast.Load) for i, src in code if i not in tagged))
    assert only_skipped and not only_skipped & still_read, only_skipped & still_read


def test_make_checkpoints_trains_the_models_of_notebooks_3_6_and_7_into_the_folder_given():
    printed = subprocess.run(["make", "-n", "checkpoints", "DIR=/srv/dae ckpt"], cwd=course.NOTEBOOK_DIR.parent,
                             capture_output=True, text=True, check=True).stdout
    assert ('.venv/bin/python -m dae_utils.course run --notebooks 03 06 07 -p checkpoint_dir "/srv/dae ckpt"'
            in printed)
