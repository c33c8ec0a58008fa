"""Grading with nbgrader: what autograde skips, and a whole class graded in parallel, resumably and safely.

    python -m dae_utils.course grade --course-dir DIR --assignment 01_noise_and_data [--workers N]
    python -m dae_utils.course grade --course-dir DIR --assignment ... --scheduler tcp://host:8786

**What autograde skips.** ``python -m dae_utils.course nbgrader`` writes an ``nbgrader_config.py`` that puts
``SkipWhileGrading`` first among nbgrader's autograde preprocessors. It empties the
code cells tagged ``skip-while-grading`` (notebook 3's sweep over noise levels, which
denoises and judges 80,000 images; notebook 6's clustering comparison and its moonshot,
which train, embed and cluster 60,000 images) before the notebook runs,
so a submission is graded in minutes. No grade cell depends on them: each check
makes its own inputs. The notebooks say which sections are skipped.

**A class in parallel** (``grade_class``). nbgrader autogrades one submission at a
time into one SQLite gradebook (jupyter/nbgrader#174). Here each submission (a
student's notebook: the course has one assignment per notebook) is autograded by
nbgrader itself in a workspace of its own, with a copy of the course's gradebook,
by N workers at once: threads of this process, or the workers of a Dask cluster on
a shared file system. One writer, this process, then merges each result into the
course's gradebook (``merge_submission``) and moves the
autograded notebook into ``autograded/``; only then does the ledger
(``grading/ledger.json``) count it, so an interrupted run resumes where it stopped
and a half-written result never counts. Each submission runs under ``bwrap``
(bubblewrap), when installed, with the whole file system read-only but its
workspace, and in a process namespace of its own; a time limit and a memory limit
kill it (and every process it started), and it is scored 0 with the reason in the
log (``grading/log.csv``) and in the student's feedback. Progress is a tqdm bar.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor
from tqdm.auto import tqdm

from .checkpoint import write_text_atomically
from .errors import CourseError

#: The cell tag that marks a code cell as not needed for grading.
SKIP_TAG = "skip-while-grading"
#: What a skipped cell holds instead, in the autograded copy.
SKIPPED_SOURCE = f"# Not run while autograding: no exercise depends on this cell (tagged {SKIP_TAG})."


class SkipWhileGrading(NbGraderPreprocessor):
    """Empty every code cell tagged ``skip-while-grading`` (its source becomes a comment, its outputs go)."""

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any], index: int
                        ) -> tuple[NotebookNode, dict[str, Any]]:
        if cell.cell_type == "code" and SKIP_TAG in cell.metadata.get("tags", []):
            if cell.metadata.get("nbgrader", {}).get("grade") or cell.metadata.get("nbgrader", {}).get("solution"):
                return cell, resources  # an exercise or its check always runs, tag or not
            cell.source = SKIPPED_SOURCE
            cell.outputs = []
            cell.execution_count = None
        return cell, resources


def run_nbgrader(course_dir: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader *args`` in ``course_dir`` with this environment's ``bin/`` on the PATH.

    That is how book/instructors.md runs it: nbgrader runs ``alembic`` (its database migrations) by name, so
    without that it fails. Returns the finished process with its output; the caller decides what a non-zero
    exit means.
    """
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PATH": path})


#: Seconds one submission (one notebook) may take to autograde before it is stopped and scored 0.
NOTEBOOK_TIME_LIMIT_S = 1800
#: Memory one submission may hold (every process it started, resident), in GiB, before it is stopped.
MEMORY_LIMIT_GIB = 6.0
#: Processes one submission may run at once (its kernel and whatever it starts), before it is stopped.
PROCESS_LIMIT = 64
#: The course's gradebook, as nbgrader names it in the course folder.
GRADEBOOK = "gradebook.db"
#: Where grading keeps its workspaces, ledger and log, inside the course folder.
GRADING_DIR = "grading"
#: The course id of the nbgrader course ``python -m dae_utils.course nbgrader`` lays out.
COURSE_ID = "dae-course"


@dataclass(frozen=True)
class Job:
    """One submission to autograde: a student's notebook (the course has one assignment per notebook)."""

    student: str
    assignment: str

    @property
    def label(self) -> str:
        return f"{self.student}/{self.assignment}"


@dataclass
class JobResult:
    """What autograding one submission gave: ``graded`` or ``failed`` (with the reason), and where and how long."""

    student: str
    assignment: str
    status: str
    seconds: float
    reason: str = ""
    workspace: str = ""
    digest: str = ""
    #: The slowest cells of the autograded notebook: (the cell's first line, seconds), slowest first.
    slowest_cells: list[tuple[str, float]] = field(default_factory=list)


def submission_digest(folder: Path) -> str:
    """A fingerprint of a submission folder's files (names and contents): a resubmission changes it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def find_jobs(course_dir: Path, assignments: Iterable[str], students: Iterable[str] | None = None) -> list[Job]:
    """Every submitted notebook of ``assignments`` (``submitted/<student>/<assignment>/``), of ``students`` if given."""
    chosen = set(students) if students else None
    jobs = []
    for assignment in assignments:
        for folder in sorted((course_dir / "submitted").glob(f"*/{assignment}")):
            if folder.is_dir() and (chosen is None or folder.parent.name in chosen):
                jobs.append(Job(folder.parent.name, assignment))
    if chosen:
        found = {job.student for job in jobs}
        if chosen - found:
            raise CourseError(f"No submission of {', '.join(assignments)} from {', '.join(sorted(chosen - found))} "
                              f"in {course_dir / 'submitted'}: collect it first (nbgrader collect or zip_collect).")
    return jobs


@functools.cache
def sandbox_command() -> list[str] | None:
    """The ``bwrap`` prefix that runs a command with the file system read-only but its workspace, or None.

    None where bubblewrap is missing or cannot make namespaces here; grading then runs
    submissions without that isolation (and says so). Probed once per process, not once per submission.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                            "true"], capture_output=True)
    return [bwrap] if probe.returncode == 0 else None


def _tree(process: Any) -> list[Any]:
    try:
        return [process, *process.children(recursive=True)]
    except Exception:  # it has just exited
        return []


def _kill(process: subprocess.Popen) -> None:
    """Kill ``process`` and every process it started (its session, and its descendants)."""
    import psutil

    try:
        tree = _tree(psutil.Process(process.pid))
    except psutil.NoSuchProcess:
        tree = []
    try:
        os.killpg(process.pid, 9)
    except (ProcessLookupError, PermissionError):
        pass
    for member in tree:
        try:
            member.kill()
        except psutil.Error:
            pass
    process.wait()


def _watch(process: subprocess.Popen, time_limit: float, memory_limit_gib: float, process_limit: int,
           stop: threading.Event) -> str:
    """Wait for ``process``; kill it (and all it started) past a limit or on ``stop``. Returns why, or ""."""
    import psutil

    start = time.monotonic()
    try:
        root = psutil.Process(process.pid)
    except psutil.NoSuchProcess:  # it has finished already
        process.wait()
        return ""
    while process.poll() is None:
        reason = ""
        tree = _tree(root)
        resident = 0
        for member in tree:
            try:
                resident += member.memory_info().rss
            except psutil.Error:
                pass
        if time.monotonic() - start > time_limit:
            reason = f"it ran past the time limit of {time_limit:g} s (an endless loop, or a cell that waits)"
        elif len(tree) > process_limit:
            reason = f"it ran {len(tree)} processes at once, more than the limit of {process_limit}"
        elif resident > memory_limit_gib * 2**30:  # resident memory of each process, summed (shared pages too)
            reason = f"it held {resident / 2**30:.1f} GiB, more than the limit of {memory_limit_gib:g} GiB"
        elif stop.is_set():
            reason = "grading was interrupted"
        if reason:
            _kill(process)
            return reason
        time.sleep(0.2)
    return ""


def _cell_seconds(notebook: Path) -> list[tuple[str, float]]:
    """The autograded notebook's code cells by their run time (from nbclient's timing metadata), slowest first."""
    nb = nbformat.read(notebook, as_version=4)
    timed = []
    for index, cell in enumerate(nb.cells):
        times = cell.get("metadata", {}).get("execution", {})
        if cell.cell_type == "code" and "iopub.execute_input" in times and "shell.execute_reply" in times:
            start, end = (datetime.fromisoformat(times[key].replace("Z", "+00:00"))
                          for key in ("iopub.execute_input", "shell.execute_reply"))
            first = next((line for line in cell.source.splitlines() if line.strip()), "")[:60]
            timed.append((f"cell {index}: {first}", round((end - start).total_seconds(), 2)))
    return sorted(timed, key=lambda item: -item[1])


def grade_one(course_dir: str, job: Job, time_limit: float = NOTEBOOK_TIME_LIMIT_S,
              memory_limit_gib: float = MEMORY_LIMIT_GIB, threads: int | None = None,
              process_limit: int = PROCESS_LIMIT, stop: threading.Event | None = None) -> JobResult:
    """Autograde one submission with nbgrader in a workspace of its own; never raises for the submission's sake.

    The workspace (``grading/work/<assignment>/<student>/``) gets the course's config,
    the assignment's source, the submission and a copy of the gradebook as
    ``grade_class`` left it at the start (``grading/base.db``). This runs in a thread
    of the grading process or on a Dask worker; the caller merges the result. The
    kernel trains with ``threads`` CPU threads (default: the course's rule of two, or
    fewer on a smaller machine).
    """
    course = Path(course_dir)
    started = time.perf_counter()
    work = course / GRADING_DIR / "work" / job.assignment / job.student
    submitted = course / "submitted" / job.student / job.assignment
    digest = submission_digest(submitted)

    def result(status: str, reason: str = "", slowest: list[tuple[str, float]] | None = None) -> JobResult:
        return JobResult(job.student, job.assignment, status, round(time.perf_counter() - started, 2), reason,
                         str(work), digest, slowest or [])

    try:
        return _autograde(course, job, work, submitted, time_limit, memory_limit_gib, threads, process_limit, stop,
                          result)
    except Exception as error:  # a submission that cannot even be set up (unreadable files, say) fails alone
        return result("failed", f"it could not be set up for grading: {type(error).__name__}: {error}")


def _autograde(course: Path, job: Job, work: Path, submitted: Path, time_limit: float, memory_limit_gib: float,
               threads: int | None, process_limit: int, stop: threading.Event | None,
               result: Callable[..., JobResult]) -> JobResult:
    """``grade_one``'s work: lay out the workspace, run nbgrader in the sandbox under the watchdog."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "submitted" / job.student).mkdir(parents=True)
    shutil.copytree(submitted, work / "submitted" / job.student / job.assignment)
    shutil.copytree(course / "source" / job.assignment, work / "source" / job.assignment)
    shutil.copy2(course / "nbgrader_config.py", work / "nbgrader_config.py")
    shutil.copy2(course / GRADING_DIR / "base.db", work / GRADEBOOK)
    home = work / ".home"
    home.mkdir()
    from .threads import NUM_THREADS_ENV, usable_cpus

    threads = threads or max(1, min(2, usable_cpus()))
    env = {**os.environ, "HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "IPYTHONDIR": str(home / "ipython"), "MPLCONFIGDIR": str(home / "matplotlib"),
           "DAE_CACHE_DIR": str(home / "cache"), "TMPDIR": str(home), NUM_THREADS_ENV: str(threads),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [sys.executable, "-m", "nbgrader", "autograde", job.assignment, "--student", job.student,
               f"--CourseDirectory.root={work}", "--force"]
    sandbox = sandbox_command()
    if sandbox is not None:  # everything read-only but the workspace; its own process namespace
        command = [*sandbox, "--ro-bind", "/", "/", "--bind", str(work), str(work), "--dev", "/dev",
                   "--proc", "/proc", "--unshare-pid", "--die-with-parent", *command]
    log = work / "autograde.log"
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=work, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
        reason = _watch(process, time_limit, memory_limit_gib, process_limit, stop or threading.Event())
    if reason:
        return result("failed", reason)
    graded = work / "autograded" / job.student / job.assignment / f"{job.assignment}.ipynb"
    if process.returncode != 0 or not graded.exists():
        tail = " ".join(log.read_text(errors="replace").split()[-40:])
        return result("failed", f"nbgrader autograde stopped (exit {process.returncode}): ...{tail[-300:]}")
    return result("graded", slowest=_cell_seconds(graded)[:3])


def snapshot_gradebook(source: Path, target: Path) -> None:
    """Copy the SQLite database ``source`` to ``target`` consistently (SQLite's backup), even while it is in use."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    with sqlite3.connect(source) as reader, sqlite3.connect(temporary) as writer:
        reader.backup(writer)
    os.replace(temporary, target)


def with_environment_on_path() -> None:
    """Put this environment's ``bin/`` on the PATH: nbgrader's Gradebook runs ``alembic`` by name."""
    here = str(Path(sys.executable).parent)
    if here not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{here}{os.pathsep}{os.environ.get('PATH', '')}"


def open_gradebook(path: Path) -> Any:
    """nbgrader's ``Gradebook`` of the SQLite file ``path`` (a context manager)."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import SAWarning

    # nbgrader's add_submission builds its objects before adding them to the session, which SQLAlchemy warns
    # about on every call; the submission is complete all the same (tests/test_class_grading.py checks it).
    warnings.filterwarnings("ignore", category=SAWarning, module="nbgrader")
    with_environment_on_path()
    return Gradebook(f"sqlite:///{path}", course_id=COURSE_ID)


def merge_submission(workspace_db: Path, course_db: Path, job: Job) -> None:
    """Copy one student's submission of one assignment, with every grade and comment, into the course's gradebook.

    The workspace's gradebook is a copy of the course's, so the assignment, its
    notebooks and cells are the same; an older submission of the same student and
    assignment is replaced. nbgrader's API commits the removal and the new submission's
    empty grades itself; the scores follow in one commit. A crash in between leaves the
    submission without scores and without its ledger entry, so the next run grades it
    again and replaces it.
    """
    with open_gradebook(workspace_db) as source, open_gradebook(course_db) as target:
        found = source.find_submission(job.assignment, job.student)
        student = source.find_student(job.student)
        target.update_or_create_student(job.student, first_name=student.first_name, last_name=student.last_name,
                                        email=student.email, lms_user_id=student.lms_user_id)
        try:
            target.remove_submission(job.assignment, job.student)
        except Exception:  # not graded before
            target.db.rollback()
        copy = target.add_submission(job.assignment, job.student, timestamp=found.timestamp,
                                     extension=found.extension)
        mine = {nb.name: nb for nb in found.notebooks}
        for notebook in copy.notebooks:
            theirs = mine[notebook.name]
            notebook.flagged = theirs.flagged
            notebook.late_submission_penalty = theirs.late_submission_penalty
            grades = {grade.name: grade for grade in theirs.grades}
            for grade in notebook.grades:
                grade.auto_score = grades[grade.name].auto_score
                grade.manual_score = grades[grade.name].manual_score
                grade.extra_credit = grades[grade.name].extra_credit
                grade.needs_manual_grade = grades[grade.name].needs_manual_grade
            comments = {comment.name: comment for comment in theirs.comments}
            for comment in notebook.comments:
                comment.auto_comment = comments[comment.name].auto_comment
                comment.manual_comment = comments[comment.name].manual_comment
        target.db.commit()


def record_failure(course_db: Path, job: Job, reason: str) -> None:
    """Enter a submission that could not be graded: every automatic grade 0, and the reason as its comment."""
    with open_gradebook(course_db) as target:
        target.update_or_create_student(job.student)
        try:
            target.remove_submission(job.assignment, job.student)
        except Exception:
            target.db.rollback()
        copy = target.add_submission(job.assignment, job.student)
        for notebook in copy.notebooks:
            for grade in notebook.grades:
                if grade.cell.cell_type == "code":
                    grade.auto_score = 0.0
                    grade.needs_manual_grade = False
            for comment in notebook.comments:
                comment.auto_comment = f"Not graded automatically: {reason}."
        target.db.commit()


def _install(source: Path, target: Path) -> None:
    """Put the folder ``source`` at ``target``, replacing what is there, by a copy and a rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    shutil.copytree(source, temporary)
    if target.exists():
        shutil.rmtree(target)
    os.replace(temporary, target)


def failed_notebook(submitted: Path, reason: str) -> NotebookNode:
    """The submitted notebook with a first cell that says why it was not graded: what its feedback shows."""
    nb = nbformat.read(submitted, as_version=4)
    note = nbformat.v4.new_markdown_cell(f"**Not graded automatically:** {reason}. Your automatic points are 0 "
                                         "for this notebook; your instructor has been told.")
    nb.cells.insert(0, note)
    return nb


LOG_FIELDS = ["finished", "student", "assignment", "status", "seconds", "slowest_cells", "reason"]


def _log(course_dir: Path, result: JobResult) -> None:
    path = course_dir / GRADING_DIR / "log.csv"
    new = not path.exists()
    with path.open("a", newline="") as file:
        writer = csv.DictWriter(file, LOG_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow({"finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         "student": result.student, "assignment": result.assignment, "status": result.status,
                         "seconds": result.seconds, "reason": result.reason,
                         "slowest_cells": "; ".join(f"{name} ({s:g} s)" for name, s in result.slowest_cells)})


def read_ledger(course_dir: Path) -> dict[str, dict[str, Any]]:
    """The submissions graded so far: ``{"student/assignment": {"digest": ..., "status": ...}}``."""
    path = course_dir / GRADING_DIR / "ledger.json"
    return json.loads(path.read_text()) if path.exists() else {}


def commit(course_dir: Path, result: JobResult) -> None:
    """Enter one finished job into the course: gradebook, ``autograded/``, log and ledger, in that order."""
    job = Job(result.student, result.assignment)
    course_db = course_dir / GRADEBOOK
    graded = course_dir / "autograded" / job.student / job.assignment
    if result.status == "graded":
        merge_submission(Path(result.workspace) / GRADEBOOK, course_db, job)
        _install(Path(result.workspace) / "autograded" / job.student / job.assignment, graded)
    else:
        record_failure(course_db, job, result.reason)
        staged = Path(result.workspace) / "failed"
        staged.mkdir(parents=True, exist_ok=True)
        for submitted in (course_dir / "submitted" / job.student / job.assignment).glob("*.ipynb"):
            nbformat.write(failed_notebook(submitted, result.reason), staged / submitted.name)
        _install(staged, graded)
    _log(course_dir, result)
    ledger = read_ledger(course_dir)
    ledger[job.label] = {"digest": result.digest, "status": result.status, "reason": result.reason}
    write_text_atomically(course_dir / GRADING_DIR / "ledger.json", json.dumps(ledger, indent=1) + "\n")
    shutil.rmtree(result.workspace, ignore_errors=True)


@dataclass
class ClassReport:
    """What ``grade_class`` did: the jobs it ran, those it skipped as already graded, and the time."""

    results: list[JobResult]
    skipped: list[Job]
    seconds: float

    @property
    def failed(self) -> list[JobResult]:
        return [r for r in self.results if r.status != "graded"]


def default_workers() -> int:
    """Kernels at once that the CPUs allow under the course's thread rule: one per two usable CPUs, at least one."""
    from .threads import usable_cpus

    return max(1, usable_cpus() // 2)


def grade_class(course_dir: Path, assignments: list[str], students: list[str] | None = None,
                workers: int | None = None, time_limit: float | None = None,
                memory_limit_gib: float | None = None, regrade: bool = False, scheduler: str | None = None,
                progress: bool = True, client: Any = None) -> ClassReport:
    """Autograde every submission of ``assignments`` in ``course_dir`` (or of ``students``), ``workers`` at a time.

    Submissions already in the ledger with the same files are skipped unless
    ``regrade``. With ``scheduler`` (a Dask scheduler's address) or a Dask ``client``,
    the Dask cluster's workers grade them; they must see ``course_dir`` at the same path.
    """
    from .threads import usable_cpus

    course_dir = Path(course_dir).resolve()
    if not (course_dir / "nbgrader_config.py").is_file() or not (course_dir / GRADEBOOK).is_file():
        raise CourseError(f"{course_dir} is not an nbgrader course with a gradebook: lay one out with "
                          "`python -m dae_utils.course nbgrader --course-dir DIR`, then run `nbgrader "
                          "generate_assignment NAME` there for each assignment you grade.")
    known = _assignments_in(course_dir / GRADEBOOK)
    if set(assignments) - known:
        raise CourseError(f"{', '.join(sorted(set(assignments) - known))} not in {course_dir / GRADEBOOK}: run "
                          "`nbgrader generate_assignment NAME` in the course folder first.")
    jobs = find_jobs(course_dir, assignments, students)
    ledger = {} if regrade else read_ledger(course_dir)
    todo = [job for job in jobs if ledger.get(job.label, {}).get("digest")
            != submission_digest(course_dir / "submitted" / job.student / job.assignment)]
    skipped = [job for job in jobs if job not in todo]
    workers = workers or default_workers()
    threads = max(1, usable_cpus() // workers)
    (course_dir / GRADING_DIR).mkdir(exist_ok=True)
    snapshot_gradebook(course_dir / GRADEBOOK, course_dir / GRADING_DIR / "base.db")
    if sandbox_command() is None:
        print("bubblewrap (bwrap) is not installed or cannot run here: submissions run without their "
              "read-only sandbox. Install it (Debian/Ubuntu: apt-get install bubblewrap).", flush=True)
    results: list[JobResult] = []
    start = time.perf_counter()
    bar = tqdm(total=len(todo), unit="submission", desc="grading", disable=not progress)
    failed = 0

    def finished(result: JobResult) -> None:
        nonlocal failed
        commit(course_dir, result)
        results.append(result)
        failed += result.status != "graded"
        mean = sum(r.seconds for r in results) / len(results)
        bar.set_postfix(graded=len(results) - failed, failed=failed, left=len(todo) - len(results),
                        mean=f"{mean:.0f} s", refresh=False)
        bar.update(1)

    arguments = {"time_limit": time_limit or NOTEBOOK_TIME_LIMIT_S, "memory_limit_gib": memory_limit_gib or
                 MEMORY_LIMIT_GIB, "threads": threads}
    try:
        if scheduler is not None or client is not None:  # a worker's kernel: the course's two threads
            _grade_on_dask(str(course_dir), todo, {**arguments, "threads": None}, finished, scheduler, client)
        else:
            _grade_here(str(course_dir), todo, arguments, workers, finished)
    finally:
        bar.close()
    return ClassReport(results, skipped, round(time.perf_counter() - start, 1))


def _grade_here(course_dir: str, jobs: list[Job], arguments: dict[str, Any], workers: int,
                finished: Callable[[JobResult], None]) -> None:
    """Grade ``jobs`` in ``workers`` threads (each waits on its nbgrader process); Ctrl-C stops them all."""
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: set[Future] = set()
        queue = list(jobs)
        try:
            while queue or pending:
                while queue and len(pending) < workers:
                    pending.add(pool.submit(grade_one, course_dir, queue.pop(0), stop=stop, **arguments))
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    if result.reason != "grading was interrupted":
                        finished(result)
        except BaseException:
            stop.set()  # each worker kills its submission; nothing half-done is committed
            queue.clear()
            raise


def _grade_on_dask(course_dir: str, jobs: list[Job], arguments: dict[str, Any],
                   finished: Callable[[JobResult], None], scheduler: str | None, client: Any) -> None:
    """Grade ``jobs`` on a Dask cluster's workers; results are committed here as they arrive."""
    from distributed import Client, as_completed

    own = client is None
    client = Client(scheduler) if own else client
    try:
        futures = [client.submit(grade_one, course_dir, job, pure=False, key=f"grade-{job.student}-"
                                 f"{job.assignment}-{uuid.uuid4().hex[:6]}", **arguments) for job in jobs]
        for future in as_completed(futures):
            finished(future.result())
    finally:
        if own:
            client.close()


def _assignments_in(gradebook: Path) -> set[str]:
    with sqlite3.connect(gradebook) as db:
        return {name for (name,) in db.execute("select name from assignment")}


def report_lines(report: ClassReport) -> list[str]:
    """The summary ``grade`` prints: counts, time per submission, and each failure with its reason."""
    lines = [f"graded {len(report.results) - len(report.failed)}, failed {len(report.failed)}, skipped "
             f"{len(report.skipped)} (graded before, unchanged) in {report.seconds:.0f} s"]
    if report.results:
        lines.append(f"{report.seconds / len(report.results):.1f} s per submission at this run's concurrency; "
                     f"{sum(r.seconds for r in report.results) / len(report.results):.1f} s each on its own worker")
    lines += [f"  failed: {r.student}/{r.assignment}: {r.reason}" for r in report.failed]
    return lines

