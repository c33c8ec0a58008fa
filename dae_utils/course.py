"""Run the course's notebooks headless with papermill and summarise their key figures.

    python -m dae_utils.course run                      # every notebook, in order
    python -m dae_utils.course run --notebooks 01 03    # a subset, by number or name
    python -m dae_utils.course run -p num_epochs 5 -p noise_factor 0.5
    python -m dae_utils.course list                     # notebooks and their parameters

Executed copies go to a new run folder (``runs/<date-time>`` by default). The key
figures in the summary are the values each notebook recorded with
``runtime.record``, read back from the executed copies: nothing is recomputed.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import nbformat

from .runtime import RECORD_MIMETYPE

#: The course's notebooks live here, next to the package.
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
#: Run folders go here unless --output-dir says otherwise.
RUNS_DIR = Path(__file__).resolve().parent.parent / "runs"


class CourseError(RuntimeError):
    """A run that cannot start or did not finish; the message says what to do."""


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
        number = f"{int(item):02d}" if item.isdigit() else None
        matches = [p for p in notebooks if p.name.startswith(item) or p.name[:2] == number]
        if len(matches) != 1:
            names = ", ".join(p.name for p in notebooks)
            raise CourseError(f"--notebooks {item!r} matches {len(matches)} notebooks; choose from: {names}.")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return sorted(chosen)


def parse_value(text: str) -> Any:
    """Turn a command-line value into a Python literal where it is one (5, 0.5, True, None), else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Return the parameters a notebook declares in its ``parameters`` cell, with defaults."""
    import papermill

    return {name: info["default"] for name, info in papermill.inspect_notebook(str(path)).items()}


def recorded_values(path: Path) -> dict[str, Any]:
    """Return the values a notebook recorded with ``runtime.record``, read from its outputs."""
    values: dict[str, Any] = {}
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if RECORD_MIMETYPE in data:
                values.update(data[RECORD_MIMETYPE])
    return values


def run_course(
    notebooks: list[Path],
    output_dir: Path,
    parameters: dict[str, Any],
    kernel_name: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Execute ``notebooks`` in order into ``output_dir`` and return their recorded values.

    Each notebook gets the parameters it declares; a parameter no selected
    notebook declares is an error, since a typo would otherwise be ignored.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    declared = {path: notebook_parameters(path) for path in notebooks}
    unknown = set(parameters) - set().union(*(set(d) for d in declared.values()))
    if unknown:
        known = sorted(set().union(*(set(d) for d in declared.values())))
        raise CourseError(f"Unknown parameter(s) {sorted(unknown)}; these notebooks take: {', '.join(known)}.")
    output_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, dict[str, Any]] = {}
    for number, path in enumerate(notebooks, start=1):
        out_path = output_dir / path.name
        own = {k: v for k, v in parameters.items() if k in declared[path]}
        shown = " ".join(f"{k}={v!r}" for k, v in own.items())
        print(f"[{number}/{len(notebooks)}] {path.name} {shown}".rstrip(), flush=True)
        start = time.perf_counter()
        try:
            papermill.execute_notebook(
                str(path), str(out_path), parameters=own, cwd=str(path.parent),
                kernel_name=kernel_name, progress_bar=False,
            )
        except PapermillExecutionError as error:
            raise CourseError(
                f"{path.name} failed in cell {error.cell_index} (execution count {error.exec_count}): "
                f"{error.ename}: {error.evalue}\n"
                f"The executed copy, with the error in place, is {out_path}. "
                f"Notebooks done before it are kept in {output_dir}."
            ) from error
        seconds = time.perf_counter() - start
        summary[path.name] = {"wall_time_s": round(seconds, 1), **recorded_values(out_path)}
        print(f"      done in {seconds:.1f} s -> {out_path}", flush=True)
        (output_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(summary: dict[str, dict[str, Any]]) -> str:
    """Return the run's key figures as aligned text, one block per notebook."""
    lines = ["Summary"]
    width = max((len(key) for values in summary.values() for key in values), default=0) + 2
    for name, values in summary.items():
        lines.append(f"  {name}")
        for key, value in values.items():
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
            lines.append(f"    {key:<{width}}{shown}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run or list the course."""
    parser = argparse.ArgumentParser(prog="python -m dae_utils.course", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="execute notebooks headless into a run folder")
    run.add_argument("--notebooks", nargs="+", metavar="NB", help="numbers or names, e.g. 01 03 (default: all)")
    run.add_argument("--output-dir", type=Path, help="run folder (default: runs/<date-time>); must be new or empty")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="set a notebook parameter, e.g. -p num_epochs 5 (repeatable)")
    run.add_argument("--kernel", help="Jupyter kernel name (default: the notebooks' own)")
    listing = commands.add_parser("list", help="list the notebooks and their parameters")
    for command in (run, listing):
        command.add_argument("--notebook-dir", type=Path, default=NOTEBOOK_DIR,
                             help="folder of numbered notebooks (default: the course's)")
    args = parser.parse_args(argv)

    try:
        if args.command == "list":
            for path in find_notebooks(args.notebook_dir):
                print(path.name)
                for name, default in notebook_parameters(path).items():
                    print(f"    {name} = {default}")
            return 0
        notebooks = find_notebooks(args.notebook_dir, args.notebooks)
        output_dir = args.output_dir or RUNS_DIR / datetime.now().strftime("%Y%m%d-%H%M%S")
        if output_dir.exists() and any(output_dir.iterdir()):
            raise CourseError(f"{output_dir} is not empty; choose a new --output-dir so no earlier run is overwritten.")
        parameters = {name: parse_value(value) for name, value in args.parameter}
        print(f"Running {len(notebooks)} notebook(s) into {output_dir}", flush=True)
        summary = run_course(notebooks, output_dir, parameters, args.kernel)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(format_summary(summary))
    print(f"Executed notebooks and summary.json are in {output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
