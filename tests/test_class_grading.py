"""Grading a class: parallel, resumable autograding whose scores equal nbgrader's own, one at a time."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from needed import missing
from test_grading import ASSIGNMENT, RIGHT, TAMPERED, nbgrader, submission

from dae_utils import course, grading

# ---------------------------------------------------------------------------------------------------------------
# The merge, by hand: a gradebook made with nbgrader's own API, no notebook run.


def gradebook_with_an_assignment(path: Path) -> None:
    with grading.open_gradebook(path) as gb:
        gb.add_assignment("a1")
        gb.add_notebook("nb", "a1")
        gb.add_grade_cell("check", "nb", "a1", max_score=2, cell_type="code")
        gb.add_grade_cell("essay", "nb", "a1", max_score=1, cell_type="markdown")
        gb.add_solution_cell("answer", "nb", "a1")
        gb.add_solution_cell("essay", "nb", "a1")


def contents(path: Path) -> dict:
    """Every submission's grades and comments, by student: what a merge must keep."""
    found = {}
    with grading.open_gradebook(path) as gb:
        for student in gb.students:
            for sub in student.submissions:
                nb = sub.notebooks[0]
                found[(student.id, sub.name)] = (
                    str(sub.timestamp), nb.flagged,
                    sorted((g.name, g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade)
                           for g in nb.grades),
                    sorted((c.name, c.auto_comment, c.manual_comment) for c in nb.comments))
    return found


def test_a_merge_copies_every_grade_and_comment_and_replaces_an_older_submission(tmp_path):
    base = tmp_path / "base.db"
    gradebook_with_an_assignment(base)
    course_db = tmp_path / "course.db"
    shutil.copy(base, course_db)
    workspaces = {}
    for student, (check, essay) in {"ada": (2.0, None), "bo": (0.0, 0.5)}.items():
        workspace = tmp_path / f"{student}.db"
        shutil.copy(base, workspace)
        with grading.open_gradebook(workspace) as gb:
            gb.add_student(student, first_name=student.title(), email=f"{student}@example.org")
            sub = gb.add_submission("a1", student, timestamp="2026-12-01 10:00:00")
            nb = sub.notebooks[0]
            nb.flagged = student == "bo"
            for grade in nb.grades:
                grade.auto_score = check if grade.name == "check" else None
                grade.manual_score = essay if grade.name == "essay" else None
                grade.needs_manual_grade = grade.name == "essay" and essay is None
            for comment in nb.comments:
                comment.auto_comment = f"{student}: {comment.name}"
            gb.db.commit()
        workspaces[student] = workspace
        grading.merge_submission(workspace, course_db, grading.Job(student, "a1"))
    expected = {**contents(workspaces["ada"]), **contents(workspaces["bo"])}
    assert contents(course_db) == expected  # nothing lost, nothing mixed between students
    assert len(expected) == 2 and expected[("ada", "a1")][2][0] == ("check", 2.0, None, None, False)
    with grading.open_gradebook(course_db) as gb:
        assert gb.find_student("ada").email == "ada@example.org"
    # Merged again (a regrade), the submission is replaced, not doubled.
    grading.merge_submission(workspaces["ada"], course_db, grading.Job("ada", "a1"))
    assert contents(course_db) == expected
    # A failure enters 0 automatic points and the reason as the comment; the essay still waits for a grader.
    grading.record_failure(course_db, grading.Job("cy", "a1"), "it ran past the time limit of 5 s")
    cy = contents(course_db)[("cy", "a1")]
    assert cy[2] == [("check", 0.0, None, None, False), ("essay", None, None, None, True)]
    assert cy[3][0][1] == "Not graded automatically: it ran past the time limit of 5 s."


def test_a_consistent_snapshot_of_a_gradebook_in_use(tmp_path):
    db = tmp_path / "gradebook.db"
    gradebook_with_an_assignment(db)
    grading.snapshot_gradebook(db, tmp_path / "copy" / "base.db")
    assert grading._assignments_in(tmp_path / "copy" / "base.db") == {"a1"}


# ---------------------------------------------------------------------------------------------------------------
# The watchdog: limits that stop a submission and everything it started.

def still_running(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(marker in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.mark.parametrize("code, limits, reason", [
    ("import time; time.sleep(600)", (1.0, 4.0, 50), "time limit of 1 s"),
    ("import time; b = bytearray(3 * 2**30); time.sleep(600)", (60.0, 1.0, 50), "more than the limit of 1 GiB"),
    ("import os, time\nfor _ in range(12):\n    if os.fork() == 0:\n        time.sleep(600)\ntime.sleep(600)",
     (60.0, 8.0, 8), "processes at once, more than the limit of 8"),
])
def test_the_watchdog_stops_a_submission_and_all_it_started(code, limits, reason):
    marker = f"# watched {time.time_ns()}"
    process = subprocess.Popen([sys.executable, "-c", f"{code}\n{marker}"], start_new_session=True)
    import threading

    start = time.monotonic()
    found = grading._watch(process, *limits, threading.Event())
    assert reason in found
    assert time.monotonic() - start < 30
    time.sleep(0.5)
    assert not still_running(marker)  # forked children too


def test_find_jobs_and_the_digest_of_a_submission(tmp_path):
    for student in ("ada", "bo"):
        folder = tmp_path / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_text(student)
    assert grading.find_jobs(tmp_path, [ASSIGNMENT]) == [grading.Job("ada", ASSIGNMENT), grading.Job("bo", ASSIGNMENT)]
    assert grading.find_jobs(tmp_path, [ASSIGNMENT], ["bo"]) == [grading.Job("bo", ASSIGNMENT)]
    with pytest.raises(grading.CourseError, match="No submission of 01_noise_and_data from cy"):
        grading.find_jobs(tmp_path, [ASSIGNMENT], ["cy"])
    folder = tmp_path / "submitted" / "ada" / ASSIGNMENT
    before = grading.submission_digest(folder)
    (folder / f"{ASSIGNMENT}.ipynb").write_text("ada, resubmitted")
    assert grading.submission_digest(folder) != before


def test_grade_refuses_a_folder_that_is_not_a_course(tmp_path, capsys):
    assert course.main(["grade", "--course-dir", str(tmp_path), "--assignment", ASSIGNMENT]) == 1
    assert "is not an nbgrader course with a gradebook" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# A class of six submissions of notebook 1, graded for real: in parallel, on Dask, and by nbgrader alone.

HOSTILE = {**RIGHT, "nb01-add-noise-by-hand": (
    "import os, pathlib\n"
    "for target in [os.environ['TARGET_FILE'], os.environ['COURSE_GRADEBOOK']]:\n"
    "    try:\n"
    "        pathlib.Path(target).unlink()\n"
    "    except OSError as error:\n"
    "        print('refused:', error)\n"
    + RIGHT["nb01-add-noise-by-hand"])}
STUCK = {**RIGHT, "nb01-add-noise-by-hand": "import time\ntime.sleep(3600)\n"}
GREEDY = {**RIGHT, "nb01-add-noise-by-hand": "hoard = bytearray(8 * 2**30)\n"}
FORKER = {**RIGHT, "nb01-add-noise-by-hand": "import os, time\nfor _ in range(80):\n    if os.fork() == 0:\n"
                                             "        time.sleep(3600)\n" + RIGHT["nb01-add-noise-by-hand"]}
CLASS = {"right": RIGHT, "wrong": TAMPERED, "hostile": HOSTILE, "stuck": STUCK, "greedy": GREEDY, "forker": FORKER}


@pytest.fixture(scope="module")
def class_course(tmp_path_factory):
    """An nbgrader course of notebook 1 with six submissions and a shared checkpoint folder, made once."""
    import torch

    from dae_utils import checkpoint, data, judge

    root = tmp_path_factory.mktemp("class")
    # The digit reader notebook 1 loads, shared by every submission as a class's checkpoints are. No check of
    # notebook 1 depends on how well it reads, so a short training stands in for the full one, under its name.
    sample = data.load_mnist("sample")
    reader = judge.train_classifier(sample, torch.device("cpu"), steps=20, progress=False)
    target = checkpoint.save_model(judge.classifier_path(root / "shared", sample.key), reader, judge._FORMAT,
                                   data_key=sample.key, steps=judge.CLASSIFIER_STEPS, seed=0)
    shared = target.parent
    course_dir = root / "grading"
    assert course.main(["nbgrader", "--course-dir", str(course_dir), "--notebooks", "01",
                        "--checkpoints", str(shared)]) == 0
    nbgrader(course_dir, "generate_assignment", ASSIGNMENT, "--force")
    release = nbformat.read(course_dir / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    for student, answers in CLASS.items():
        folder = course_dir / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(submission(release, answers), folder / f"{ASSIGNMENT}.ipynb")
    return course_dir, target


def copy_course(course_dir: Path, to: Path, students: list[str]) -> Path:
    shutil.copytree(course_dir, to, ignore=shutil.ignore_patterns("submitted"))
    for student in students:
        shutil.copytree(course_dir / "submitted" / student, to / "submitted" / student)
    return to


@pytest.mark.slow
def test_a_class_graded_in_parallel_scores_as_nbgrader_alone_and_fails_what_it_must(class_course, tmp_path,
                                                                                   monkeypatch, capsys):
    course_dir, target = class_course
    if grading.sandbox_command() is None:
        missing("bubblewrap (bwrap), the read-only sandbox of a submission", "apt-get install bubblewrap")
    parallel = copy_course(course_dir, tmp_path / "parallel", list(CLASS))
    monkeypatch.setenv("TARGET_FILE", str(target))
    monkeypatch.setenv("COURSE_GRADEBOOK", str(parallel / grading.GRADEBOOK))
    report = grading.grade_class(parallel, [ASSIGNMENT], workers=2, time_limit=90, memory_limit_gib=2.0,
                                 progress=False)
    status = {r.student: (r.status, r.reason) for r in report.results}
    assert {s: st for s, (st, _) in status.items()} == {"right": "graded", "wrong": "graded", "hostile": "graded",
                                                       "stuck": "failed", "greedy": "failed", "forker": "failed"}
    assert "time limit of 90 s" in status["stuck"][1]
    assert "GiB" in status["greedy"][1]
    assert "processes at once" in status["forker"][1] or "GiB" in status["forker"][1]
    assert target.exists()  # the hostile submission could not delete the shared checkpoint
    scores = code_scores(parallel)
    assert scores == {"right": 3, "wrong": 0, "hostile": 3, "stuck": 0, "greedy": 0, "forker": 0}
    # The stuck student's feedback says why: the notebook that formgrade and generate_feedback read.
    stuck = nbformat.read(parallel / "autograded" / "stuck" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    assert stuck.cells[0].source.startswith("**Not graded automatically:** it ran past the time limit")
    log = (parallel / grading.GRADING_DIR / "log.csv").read_text().splitlines()
    assert log[0].split(",")[:5] == ["finished", "student", "assignment", "status", "seconds"] and len(log) == 7
    assert "cell " in next(line for line in log if ",right," in line)  # its slowest cells, by run time
    # nbgrader alone, one at a time, in a copy of the course: the same scores and the same grades.
    serial = copy_course(course_dir, tmp_path / "serial", ["right", "wrong"])
    nbgrader(serial, "autograde", ASSIGNMENT)
    assert code_scores(serial) == {"right": 3, "wrong": 0}
    assert grade_rows(serial) == {k: v for k, v in grade_rows(parallel).items() if k[0] in ("right", "wrong")}
    # Run again, as an instructor does (the command line): nothing left to grade. A resubmission is graded
    # again, and only it.
    capsys.readouterr()
    assert course.main(["grade", "--course-dir", str(parallel), "--assignment", ASSIGNMENT, "--workers", "2"]) == 0
    assert "graded 0, failed 0, skipped 6 (graded before, unchanged)" in capsys.readouterr().out
    fixed = nbformat.read(parallel / "submitted" / "right" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    nbformat.write(fixed, parallel / "submitted" / "wrong" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    regraded = grading.grade_class(parallel, [ASSIGNMENT], workers=2, progress=False)
    assert [r.student for r in regraded.results] == ["wrong"] and code_scores(parallel)["wrong"] == 3
    assert not list((parallel / grading.GRADING_DIR / "work").rglob("*.ipynb"))  # workspaces cleared


@pytest.mark.slow
def test_a_dask_cluster_grades_to_the_same_gradebook(class_course, tmp_path):
    from distributed import Client, LocalCluster

    course_dir, _ = class_course
    local = copy_course(course_dir, tmp_path / "local", ["right", "wrong"])
    on_dask = copy_course(course_dir, tmp_path / "dask", ["right", "wrong"])
    grading.grade_class(local, [ASSIGNMENT], workers=2, progress=False)
    environment = dict(os.environ)  # a LocalCluster leaves OMP_NUM_THREADS=1 and the like in this process's
    try:  # environment, where they would reach every later test's kernels and interpreters
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            report = grading.grade_class(on_dask, [ASSIGNMENT], client=client, progress=False)
    finally:
        os.environ.clear()
        os.environ.update(environment)
    assert sorted(r.student for r in report.results) == ["right", "wrong"]
    assert grade_rows(on_dask) == grade_rows(local) and code_scores(on_dask) == {"right": 3, "wrong": 0}


def code_scores(course_dir: Path) -> dict[str, float]:
    with grading.open_gradebook(course_dir / grading.GRADEBOOK) as gb:
        return {s.student.id: s.code_score for s in gb.assignment_submissions(ASSIGNMENT)}


def grade_rows(course_dir: Path) -> dict[tuple[str, str], tuple]:
    with grading.open_gradebook(course_dir / grading.GRADEBOOK) as gb:
        return {(s.student.id, g.name): (g.auto_score, g.manual_score, g.needs_manual_grade)
                for s in gb.assignment_submissions(ASSIGNMENT) for g in s.notebooks[0].grades}
