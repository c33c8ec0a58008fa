"""The course's command line: run the notebooks headless and summarise their figures; make its editions.

    python -m dae_utils.course run                      # every notebook, in order
    python -m dae_utils.course run --notebooks 01 03    # a subset, by number or name
    python -m dae_utils.course run -p num_epochs 5 -p noise_factor 0.5
    python -m dae_utils.course list                     # notebooks and their parameters
    python -m dae_utils.course student --output-dir DIR # the student edition, solutions removed
    python -m dae_utils.course student --output-dir DIR --core   # the core path only (notebooks 1-5)
    python -m dae_utils.course nbgrader --course-dir DIR --checkpoints CKPT   # an nbgrader course
    python -m dae_utils.course grade --course-dir DIR --assignment NAME [--workers N]   # autograde a class

The student edition and the nbgrader course are made by ``dae_utils.editions``.

Executed copies go to a new run folder (``runs/<date-time>`` by default; a run
started in the same second gets ``runs/<date-time>-2``). The key figures in the
summary are the values each notebook recorded with ``runtime.record``, read back
from the executed copies: nothing is recomputed.

Each ``-p`` value is typed against the default its notebook declares (a number, a
boolean such as true/false/yes/no/1/0, a string, or None), and refused before any
notebook starts if it does not fit. Relative folders (``-p checkpoint_dir ckpt``,
``$DAE_DATA_DIR``) are taken from the folder the command runs in.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager
from traitlets import Unicode

from . import editions
from .data import CACHE_DIR_ENV, DATA_DIR_ENV, SAMPLE_LINE
from .errors import CourseError
from .parameters import PARAMETER_CHECKS, check_parameters
from .runtime import RECORD_MIMETYPE, REFERENCE_PREFIX

#: The course's notebooks live here, next to the package.
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
#: Run folders go here unless --output-dir says otherwise.
RUNS_DIR = Path(__file__).resolve().parent.parent / "runs"




def find_notebooks(folder: Path = NOTEBOOK_DIR, selection: list[str] | None = None) -> list[Path]:
    """Return the notebooks in ``folder`` in course order, or those named in ``selection``.

    A selection item matches a notebook by its number (``3``, ``03``) or the start
    of its file name (``03_training``).
    """
    notebooks = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise CourseError(f"No notebooks named like 01_*.ipynb in {folder}.")
    if not selection:
        return notebooks
    chosen = []
    for item in selection:
        number = f"{int(item):02d}" if item.isascii() and item.isdigit() else None  # not '²', which isdigit()
        matches = [p for p in notebooks if p.name.startswith(item) or p.name[:2] == number]
        if len(matches) != 1:
            names = ", ".join(p.name for p in notebooks)
            raise CourseError(f"--notebooks {item!r} matches {len(matches)} notebooks; choose from: {names}.")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return sorted(chosen)


TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")
NONE_WORDS = ("none", "")


def typed_value(name: str, text: str, default: Any) -> Any:
    """Turn the command-line ``text`` for parameter ``name`` into a value of its default's type.

    A boolean takes true/false, yes/no or 1/0 in any case; a number must be one,
    whole for an integer; a string is taken as written (quotes around it are
    dropped); a parameter whose default is None takes None or a string. A
    parameter named ``*_dir`` is a folder, made absolute against the current one.

    Raises:
        CourseError: ``text`` does not fit, saying what would.
    """
    word = text.strip().lower()
    given = f"-p {name} {shorten(text)!r}"  # a 5,000-digit value is not echoed in full
    if isinstance(default, bool):
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise CourseError(f"{given}: {name} is true or false (also yes/no, 1/0), e.g. -p {name} false.")
    if isinstance(default, int):
        try:
            return int(text.strip())
        except ValueError:
            raise CourseError(f"{given}: {name} is a whole number, e.g. -p {name} {default}.") from None
    if isinstance(default, float):
        try:
            value = float(text.strip())
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise CourseError(f"{given}: {name} is a finite number, e.g. -p {name} {default}.")
        return value
    if name.endswith("_dir") and word == "":
        raise CourseError(f"{given}: {name} is a folder; give its path, or none to use no folder.")
    if (default is None or name.endswith("_dir")) and word in NONE_WORDS:
        return None  # a folder parameter set to none: no folder (e.g. train without saving checkpoints)
    if isinstance(default, str) or default is None:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        value = value if isinstance(value, str) else text
        if name.endswith("_dir"):  # a folder: relative to where the command runs, not to notebooks/
            value = os.path.abspath(os.path.expanduser(value))
        return value
    raise CourseError(f"-p {name}: parameters of type {type(default).__name__} cannot be set from the command line.")


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Return the parameters a notebook declares in its ``parameters`` cell, with their default values."""
    import papermill

    return {
        name: ast.literal_eval(info["default"]) for name, info in papermill.inspect_notebook(str(path)).items()
    }


def prepare_parameters(notebooks: list[Path], parameters: dict[str, str]) -> dict[Path, dict[str, Any]]:
    """Return each notebook's own parameters, typed against its defaults; refuse unknown names and bad values."""
    declared = {path: notebook_parameters(path) for path in notebooks}
    unknown = set(parameters) - set().union(*(set(d) for d in declared.values()))
    if unknown:
        known = sorted(set().union(*(set(d) for d in declared.values())))
        raise CourseError(f"Unknown parameter(s) {sorted(unknown)}; these notebooks take: {', '.join(known)}.")
    typed = {path: {name: typed_value(name, str(text), declared[path][name])
                    for name, text in parameters.items() if name in declared[path]}
             for path in notebooks}
    for own in typed.values():  # the notebooks' own range checks (their first cell), before any kernel starts
        for name, value in own.items():
            if name in PARAMETER_CHECKS:
                try:
                    check_parameters(**{name: value})
                except ValueError as error:
                    raise CourseError(f"-p {name} {shorten(parameters[name])!r}: {error}") from None
    return typed


def shorten(text: str, limit: int = 40) -> str:
    """Return ``text``, cut in the middle if it is longer than ``limit`` characters, for messages."""
    text = str(text)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-limit // 2 :]} ({len(text)} characters)"


def check_kernel(kernel_name: str | None) -> None:
    """Refuse an unknown Jupyter kernel before any notebook starts, listing the known ones."""
    if kernel_name is None:
        return
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    manager = KernelSpecManager()
    try:
        manager.get_kernel_spec(kernel_name)
    except NoSuchKernel:
        known = ", ".join(sorted(manager.find_kernel_specs())) or "none"
        raise CourseError(f"--kernel {kernel_name!r}: no such Jupyter kernel. Installed kernels: {known}.") from None


def refuse_inside(output_dir: Path, notebook_dir: Path) -> None:
    """Refuse an output folder inside the notebook folder: ``pytest --nbval`` would collect its notebooks."""
    inside = Path(os.path.abspath(output_dir))
    if inside == Path(os.path.abspath(notebook_dir)) or Path(os.path.abspath(notebook_dir)) in inside.parents:
        raise CourseError(
            f"--output-dir {output_dir} is inside the notebook folder {notebook_dir}, where the test suite would "
            "run its notebooks as if they were the course's. Choose a folder outside it, e.g. student/ or runs/."
        )


def claim_run_dir(output_dir: Path | None) -> Path:
    """Create the run folder so that exactly one run owns it, and write an empty ``summary.json`` there.

    Without ``output_dir``: ``runs/<date-time>``, or ``-2``, ``-3``, ... when a run
    started in the same second took the name (creating a folder is atomic).
    With it: the folder may exist if empty; ``summary.json`` is created
    exclusively, so a second run into the same folder is refused.
    """
    try:
        if output_dir is None:
            base = RUNS_DIR / datetime.now().strftime("%Y%m%d-%H%M%S")
            base.parent.mkdir(parents=True, exist_ok=True)
            for number in range(1, 1000):
                candidate = base if number == 1 else base.with_name(f"{base.name}-{number}")
                try:
                    candidate.mkdir()
                except FileExistsError:
                    continue
                output_dir = candidate
                break
            else:
                raise CourseError(f"Could not create a new run folder next to {base}; pass --output-dir.")
        else:
            if output_dir.is_symlink() and not output_dir.exists():
                raise CourseError(f"--output-dir {output_dir} is a link to {os.readlink(output_dir)}, which does not "
                                  "exist; create that folder, or name another one.")
            if output_dir.exists() and not output_dir.is_dir():
                raise CourseError(f"--output-dir {output_dir} is a file; name a folder (new or empty).")
            if output_dir.is_dir() and any(output_dir.iterdir()):
                raise CourseError(
                    f"{output_dir} is not empty; choose a new --output-dir so no earlier run is overwritten."
                )
            output_dir.mkdir(parents=True, exist_ok=True)
        with open(output_dir / "summary.json", "x") as file:  # "x": fails if another run got here first
            file.write("{}\n")
    except FileExistsError:
        raise CourseError(f"{output_dir} is in use by another run; choose a new --output-dir.") from None
    except OSError as error:
        raise CourseError(
            f"Cannot write the run folder {output_dir or RUNS_DIR}: {error.strerror or error}. "
            "Choose a folder you can write to with --output-dir."
        ) from None
    return output_dir


def recorded_values(nb: nbformat.NotebookNode) -> dict[str, Any]:
    """Return the values an executed notebook recorded with ``runtime.record``, read from its outputs."""
    values: dict[str, Any] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RECORD_MIMETYPE in data:
                values.update(data[RECORD_MIMETYPE])
    return values


def ran_on_sample(nb: nbformat.NotebookNode) -> bool:
    """Whether an executed notebook loaded the offline sample (its data line says so)."""
    return any(SAMPLE_LINE in output.get("text", "") for cell in nb.cells for output in cell.get("outputs", []))


def notebook_summary(path: Path) -> dict[str, Any]:
    """Return an executed notebook's figures: this run's, then ``data`` and the ``reference`` figures apart.

    A figure recorded with ``runtime.record_reference`` is not this run's: it goes under ``reference``
    with its source, so that the summary never shows it as a live result.
    """
    nb = nbformat.read(path, as_version=4)
    live: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    for name, value in recorded_values(nb).items():
        if name.startswith(REFERENCE_PREFIX):
            reference[name[len(REFERENCE_PREFIX):]] = value
        else:
            live[name] = value
    live["data"] = "offline sample" if ran_on_sample(nb) else "as loaded (see the notebook's data line)"
    if reference:
        live["reference"] = reference
    return live


class CourseKernelManager(AsyncKernelManager):
    """Start a course kernel whose own messages go to a log file, not to the runner's terminal.

    A kernel stopped in the middle of a cell (Ctrl-C, SIGTERM) prints a long ZMQ
    traceback while its sockets close; it belongs in the run folder, not between the
    runner's lines. What the notebook's cells print is not affected: that reaches the
    executed notebook as usual.
    """

    stderr_log = Unicode("", config=True, help="file that receives the kernel process's stderr ('': inherit it)")

    async def start_kernel(self, **kw: Any) -> None:
        if not self.stderr_log:
            return await super().start_kernel(**kw)
        with open(self.stderr_log, "ab") as log:  # the kernel process keeps its own copy of the handle
            kw.setdefault("stderr", log)
            return await super().start_kernel(**kw)


def run_course(
    notebooks: list[Path],
    output_dir: Path,
    parameters: dict[Path, dict[str, Any]],
    kernel_name: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Execute ``notebooks`` in order into ``output_dir`` and return their recorded values.

    ``parameters`` holds each notebook's own, typed parameters, as
    ``prepare_parameters`` returns them; ``main`` prepares them, checks the
    kernel and claims ``output_dir`` before the first notebook starts.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError
    from traitlets.config import Config

    output_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict[str, Any]] = {}
    for number, path in enumerate(notebooks, start=1):
        out_path = output_dir / path.name
        own = parameters[path]
        shown = " ".join(f"{k}={v!r}" for k, v in own.items())
        print(f"[{number}/{len(notebooks)}] {path.name} {shown}".rstrip(), flush=True)
        start = time.perf_counter()
        kept = f"Notebooks done before it, and summary.json, are in {output_dir}."
        rest = " ".join(p.name[:2] for p in notebooks[number - 1 :])
        interrupted = (
            f"Interrupted during {path.name}. {kept} Training keeps its last completed epoch in its "
            f"checkpoint, so running the rest again resumes there: --notebooks {rest} with the same -p values."
        )
        kernel_log = Path(os.path.abspath(output_dir / f"{path.stem}.kernel.log"))  # papermill runs in notebooks/
        try:
            with tempfile.TemporaryDirectory(prefix="dae-kernel-") as sockets:
                # Kernels talk to the runner over local IPC sockets, not TCP: nothing to eavesdrop on, and no
                # "running over TCP without encryption" warning. The sockets live in a private folder of their
                # own, so runs started together never share a name, and nothing is written into notebooks/.
                config = Config({"CourseKernelManager": {
                    "transport": "ipc", "ip": str(Path(sockets) / "kernel"), "stderr_log": str(kernel_log)}})
                papermill.execute_notebook(
                    str(path), str(out_path), parameters=own, cwd=str(path.parent), kernel_name=kernel_name,
                    progress_bar=False, config=config, kernel_manager_class=CourseKernelManager,
                )
        except PapermillExecutionError as error:
            if error.ename == "KeyboardInterrupt":  # Ctrl-C reached the kernel before the runner
                raise CourseError(interrupted) from None
            raise CourseError(
                f"{path.name} failed in cell {error.cell_index} (execution count {error.exec_count}): "
                f"{error.ename}: {error.evalue}\n"
                f"The executed copy, with the error in place, is {out_path}. {kept}"
            ) from error
        except KeyboardInterrupt:
            raise CourseError(interrupted) from None
        except Exception as error:  # the kernel died, could not start, or the notebook could not be written
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise CourseError(
                f"{path.name} stopped: {type(error).__name__}: {first_line}"
                f"\nIf the kernel died, the machine may have run out of memory; the kernel's own messages are "
                f"in {kernel_log}. {kept}"
            ) from error
        if kernel_log.exists() and kernel_log.stat().st_size == 0:
            kernel_log.unlink()
        seconds = time.perf_counter() - start
        summary[path.name] = {"wall_time_s": round(seconds, 1), **notebook_summary(out_path)}
        print(f"      done in {seconds:.1f} s -> {out_path}", flush=True)
        (output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(summary: dict[str, dict[str, Any]]) -> str:
    """Return the run's key figures as aligned text, one block per notebook; reference figures apart, with sources."""

    def shown(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["Summary"]
    on_sample = [name for name, values in summary.items() if values.get("data") == "offline sample"]
    if on_sample:
        lines.append(f"  {len(on_sample)} of {len(summary)} notebooks ran on the offline sample: their figures below "
                     "are the sample's; the numbers in the notebooks' text are a run on full MNIST.")
    width = max((len(key) for values in summary.values() for key in values), default=0) + 2
    for name, values in summary.items():
        lines.append(f"  {name}")
        for key, value in values.items():
            if key not in ("data", "reference"):
                lines.append(f"    {key:<{width}}{shown(value)}")
        reference = values.get("reference", {})
        if reference:
            lines.append("    reference figures, not measured in this run:")
            for key, entry in reference.items():
                lines.append(f"      {key:<{width - 2}}{shown(entry['value'])}  ({entry['source']})")
    return "\n".join(lines)


#: Each ``-p NAME VALUE`` travels as one ``--parameter-pair=NAME=VALUE`` token through argparse (see ``main``).
PAIR_OPTION = "--parameter-pair"


def join_parameter_options(argv: list[str]) -> list[str]:
    """Turn every ``-p NAME VALUE`` into one token, so that argparse reads a VALUE such as -1e-3 or -inf as a value.

    argparse takes any word that starts with '-' and is not a plain negative number
    for an option, and then says "expected 2 arguments".
    """
    joined, i = [], 0
    while i < len(argv):
        if argv[i] in ("-p", "--parameter") and i + 2 < len(argv):  # a -p short of two words: argparse says so
            joined.append(f"{PAIR_OPTION}={argv[i + 1]}={argv[i + 2]}")
            i += 3
        else:
            joined.append(argv[i])
            i += 1
    return joined


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (``kill``, a batch system's time limit) like Ctrl-C while the course runs.

    Without this, SIGTERM ends the runner at once: exit code 143, no message, and
    the kernel left to die on its own. As a KeyboardInterrupt it takes Ctrl-C's
    path: a short message, exit code 1, ``summary.json`` with what finished, and
    the kernel shut down.
    """
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():  # signals can only be caught there
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run or list the course."""
    parser = argparse.ArgumentParser(prog="python -m dae_utils.course", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks headless into a run folder")
    run.add_argument("--notebooks", nargs="+", metavar="NB", help="numbers or names, e.g. 01 03 (default: all)")
    run.add_argument("--output-dir", type=Path, help="run folder (default: runs/<date-time>); must be new or empty")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="set a notebook parameter, e.g. -p num_epochs 5 (repeatable)")
    run.add_argument(PAIR_OPTION, action="append", default=[], help=argparse.SUPPRESS)
    run.add_argument("--kernel", help="Jupyter kernel name (default: the notebooks' own)")
    listing = commands.add_parser("list", help="list the notebooks and their parameters")
    student = commands.add_parser("student", help="write the student edition: solutions replaced by stubs")
    student.add_argument("--output-dir", type=Path, required=True, help="folder for the student edition (new or empty)")
    student.add_argument("--notebooks", nargs="+", metavar="NB", help="numbers or names (default: all)")
    student.add_argument("--core", action="store_true",
                         help="the core path only: notebooks 1 to 5, without what is marked going further")
    grading = commands.add_parser("nbgrader", help="lay out an nbgrader course: one assignment per notebook")
    grading.add_argument("--course-dir", type=Path, required=True, help="the nbgrader course folder (new or empty)")
    grading.add_argument("--checkpoints", type=Path, help="the shared checkpoint folder `make checkpoints` filled")
    grading.add_argument("--notebooks", nargs="+", metavar="NB", help="numbers or names (default: all)")
    grading.add_argument("--timeout", type=int, default=editions.GRADING_CELL_TIMEOUT_S, help="seconds per cell")
    grading.add_argument("--hide-model-answers", action="store_true",
                         help="keep the open questions' model answers out of the release (graders still see them)")
    grading.add_argument("--core", action="store_true",
                         help="the core path only: notebooks 1 to 5, without what is marked going further")
    grade = commands.add_parser("grade", help="autograde a class's submissions in parallel, resumably, with progress")
    grade.add_argument("--course-dir", type=Path, required=True, help="the nbgrader course folder")
    grade.add_argument("--assignment", nargs="+", required=True, metavar="NAME",
                       help="the assignments (notebooks) to grade, e.g. 01_noise_and_data")
    grade.add_argument("--students", nargs="+", metavar="ID", help="only these students (default: every submission)")
    grade.add_argument("--workers", type=int, help="submissions at once (default: one per two usable CPUs)")
    grade.add_argument("--time-limit", type=float,
                       help="seconds one submission may take before it is stopped and scored 0 (default 1800)")
    grade.add_argument("--memory-limit", type=float,
                       help="GiB one submission may hold before it is stopped and scored 0 (default 6)")
    grade.add_argument("--regrade", action="store_true", help="grade again what was graded before")
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="a Dask scheduler (tcp://host:8786) whose workers grade; they must see --course-dir")
    for command in (run, listing, student, grading):
        command.add_argument("--notebook-dir", type=Path, default=NOTEBOOK_DIR,
                             help="folder of numbered notebooks (default: the course's)")
    args = parser.parse_args(join_parameter_options(sys.argv[1:] if argv is None else list(argv)))
    for variable in (DATA_DIR_ENV, CACHE_DIR_ENV):  # kernels run in notebooks/: make folders absolute here
        if os.environ.get(variable):
            os.environ[variable] = os.path.abspath(os.path.expanduser(os.environ[variable]))

    try:
        if args.command == "list":
            for path in find_notebooks(args.notebook_dir):
                print(path.name)
                for name, default in notebook_parameters(path).items():
                    print(f"    {name} = {default}")
            return 0
        if args.command == "student":
            refuse_inside(args.output_dir, args.notebook_dir)
            chosen = find_notebooks(args.notebook_dir, args.notebooks)
            for path in editions.make_student_edition(chosen, args.output_dir, args.core):
                print(f"wrote {path}")
            print(f"The student edition is in {args.output_dir}: open it with jupyter lab {args.output_dir}")
            return 0
        if args.command == "nbgrader":
            refuse_inside(args.course_dir, args.notebook_dir)
            written = editions.make_nbgrader_course(find_notebooks(args.notebook_dir, args.notebooks),
                                                    args.course_dir, args.checkpoints, args.timeout,
                                                    args.hide_model_answers, args.core)
            for path in written:
                print(f"wrote {path}")
            print(f"Next, in {args.course_dir}: nbgrader generate_assignment <notebook>, and after the "
                  "submissions are collected, nbgrader autograde <notebook> "
                  "(book/instructors.md: Grading a class with nbgrader)")
            return 0
        if args.command == "grade":
            from . import grading as class_grading

            if args.workers is not None and args.workers < 1:
                raise CourseError(f"--workers {args.workers}: give 1 or more.")
            with sigterm_as_interrupt():
                report = class_grading.grade_class(args.course_dir, args.assignment, args.students, args.workers,
                                                   args.time_limit, args.memory_limit, args.regrade, args.scheduler)
            print("\n".join(class_grading.report_lines(report)))
            print(f"Gradebook: {args.course_dir / class_grading.GRADEBOOK}; log: "
                  f"{args.course_dir / class_grading.GRADING_DIR / 'log.csv'}")
            return 0
        notebooks = find_notebooks(args.notebook_dir, args.notebooks)
        # Check everything that can be checked before the run folder exists, so a refused
        # command leaves nothing behind.
        parameters = prepare_parameters(notebooks, dict(pair.split("=", 1) for pair in args.parameter_pair))
        check_kernel(args.kernel)
        if args.output_dir is not None:
            refuse_inside(args.output_dir, args.notebook_dir)
        output_dir = claim_run_dir(args.output_dir)
        print(f"Running {len(notebooks)} notebook(s) into {output_dir}", flush=True)
        with sigterm_as_interrupt():
            summary = run_course(notebooks, output_dir, parameters, args.kernel)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.command != "grade":
            raise
        print("Grading interrupted: what finished is in the gradebook; run the same command again to grade "
              "the rest.", file=sys.stderr)
        return 1
    print(format_summary(summary))
    print(f"Executed notebooks and summary.json are in {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
