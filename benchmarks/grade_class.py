"""Time a class's autograding: nbgrader alone, one at a time, against `grade` with 1 and with N workers.

    python benchmarks/grade_class.py --checkpoints checkpoints --data-dir ../shared/data/mnist --students 20
    python benchmarks/grade_class.py --checkpoints checkpoints --source sample --students 20 --workers 2

Lays out notebook 1 as an nbgrader course in a temporary folder, releases it and makes a class of generated
submissions: right ones (every solution cell from the instructor's notebook), wrong ones, two stuck ones (a cell
that sleeps), one that fills memory, one that forks, and one that tries to delete files outside its folder. Then:

1. `nbgrader autograde` alone, one submission after another, on the submissions it can finish (the stuck and
   greedy ones would hold it for its cell timeout, or take the machine's memory);
2. `grade_class` with one worker, and with `--workers` workers, on the whole class (a time limit of
   `--time-limit` seconds stops the stuck ones).

Prints the time per submission of each, the speed-up, each failure's reason, and a projection for a class of
200 on a machine with more cores. It asserts nothing. Say which machine made the numbers when you quote them.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from grade_core import data_arguments, filled, nbgrader, solutions_of, use_data  # benchmarks/, beside this

from dae_utils import course, editions, grading
from dae_utils.threads import usable_cpus

ASSIGNMENT = "01_noise_and_data"
WRONG = "def add_noise_by_hand(images, noise_factor, generator=None):\n    return images\n"
STUCK = "import time\ntime.sleep(3600)\n"
GREEDY = "hoard = bytearray(64 * 2**30)\n"
FORKER = "import os, time\nfor _ in range(200):\n    if os.fork() == 0:\n        time.sleep(3600)\n"
HOSTILE = ("import os, pathlib\n"
           "shared = pathlib.Path(os.environ.get('DAE_SHARED_CHECKPOINTS', '/nonexistent'))\n"
           "above = [p for parent in pathlib.Path.cwd().parents for p in parent.glob('*.db')]\n"
           "for path in [*shared.glob('*'), *above]:\n"
           "    try:\n        path.unlink()\n    except OSError as error:\n        print('refused:', error)\n")


def make_class(course_dir: Path, students: int) -> dict[str, str]:
    """Write the class's submissions into ``submitted/``; returns each student's kind."""
    source = course_dir / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    release = nbformat.read(course_dir / "release" / ASSIGNMENT / source.name, as_version=4)
    right = solutions_of(source)
    first = next(iter(right))
    special = {"stuck-1": STUCK, "stuck-2": STUCK, "greedy": GREEDY, "forker": FORKER + right[first],
               "hostile": HOSTILE + right[first]}
    kinds = {}
    for k in range(students):
        name = list(special)[k] if k < len(special) else f"{'wrong' if k % 4 == 0 else 'right'}-{k:03d}"
        answers = dict(right)
        if name in special:
            answers[first] = special[name]
        elif name.startswith("wrong"):
            answers[first] = WRONG
        folder = course_dir / "submitted" / name / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(filled(release, answers), folder / source.name)
        kinds[name] = name.split("-")[0]
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    data_arguments(parser)
    parser.add_argument("--students", type=int, default=20, help="submissions in the class (at least 6)")
    parser.add_argument("--workers", type=int, default=grading.default_workers() if usable_cpus() > 2 else 2)
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds a submission may take")
    parser.add_argument("--memory-limit", type=float, default=3.0, help="GiB a submission may hold")
    args = parser.parse_args()
    use_data(args)
    with tempfile.TemporaryDirectory() as folder:
        template = Path(folder) / "template"
        notebooks = course.find_notebooks(selection=["01"])
        editions.make_nbgrader_course(notebooks, template, args.checkpoints.resolve())
        nbgrader(template, "generate_assignment", ASSIGNMENT, "--force")
        kinds = make_class(template, args.students)
        checkpoints_before = len(list(args.checkpoints.iterdir()))
        print(f"{len(kinds)} submissions: " + ", ".join(f"{kind} {list(kinds.values()).count(kind)}"
                                                     for kind in dict.fromkeys(kinds.values())), flush=True)
        # 1. nbgrader alone, one at a time, on what it can finish.
        alone = Path(folder) / "alone"
        shutil.copytree(template, alone)
        finishable = [s for s, kind in kinds.items() if kind in ("right", "wrong")]
        for student in set(kinds) - set(finishable):
            shutil.rmtree(alone / "submitted" / student)
        start = time.perf_counter()
        nbgrader(alone, "autograde", ASSIGNMENT)
        per_alone = (time.perf_counter() - start) / len(finishable)
        print(f"nbgrader autograde alone: {per_alone:.1f} s per submission ({len(finishable)} right and wrong)",
              flush=True)
        # 2. grade_class with one worker, then with N.
        timings = {}
        for workers in (1, args.workers):
            copy = Path(folder) / f"workers-{workers}"
            shutil.copytree(template, copy)
            report = grading.grade_class(copy, [ASSIGNMENT], workers=workers, time_limit=args.time_limit,
                                         memory_limit_gib=args.memory_limit)
            timings[workers] = report.seconds
            graded = [r for r in report.results if r.status == "graded"]
            print(f"grade, {workers} worker(s): {report.seconds:.0f} s for {len(report.results)} submissions, "
                  f"{report.seconds / len(report.results):.1f} s per submission; {len(graded)} graded, "
                  f"{len(report.failed)} failed; the right and wrong ones took "
                  f"{sum(r.seconds for r in graded) / len(graded):.1f} s each on their worker", flush=True)
            for result in report.failed:
                print(f"   failed {result.student}: {result.reason}")
            print(f"   outside the submissions' folders: the course's gradebook is there: "
                  f"{(copy / grading.GRADEBOOK).exists()}; shared checkpoints {len(list(args.checkpoints.iterdir()))} "
                  f"files (before: {checkpoints_before})")
        speedup = timings[1] / timings[args.workers]
        print(f"speed-up with {args.workers} workers: {speedup:.2f}x")
        class_size, cores = 200, 16
        projected = class_size * timings[args.workers] / len(kinds) * args.workers / (cores // 2)
        print(f"projection: {class_size} students on {cores} cores ({cores // 2} workers of 2 threads), this class's "
              f"mix of stuck submissions: about {projected / 60:.0f} minutes (from this run's "
              f"{timings[args.workers] / len(kinds):.1f} s per submission with {args.workers} workers, scaled by "
              f"workers; assumes the bigger machine's cores are as fast as these)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores ({usable_cpus()} usable); data: "
          f"{os.environ.get('DAE_DATA_DIR') or os.environ.get('DAE_DATA_SOURCE') or 'auto'}")


if __name__ == "__main__":
    main()
