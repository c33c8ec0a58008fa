"""Reference results over several seeds: the files ``benchmarks/`` writes, and the course's rule for differences.

One training run is never *the* result. Where a notebook draws a conclusion
from a comparison that is too slow to repeat over seeds in the notebook itself,
``benchmarks/seed_spread.py`` runs it for several seeds and writes a results
file into ``benchmarks/results/``; the notebook trains one seed live and shows
the file beside it. Each file says which command, machine and commit made it.

The course's rule (notebook 5): a difference counts only when it is larger
than the spread between seeds. ``differs`` is that rule, written once.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

#: Where the committed results files live, next to the scripts that write them.
RESULTS_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


@dataclass(frozen=True)
class Spread:
    """The mean and the range of one figure over seeds."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    @property
    def width(self) -> float:
        """The range, highest minus lowest: the spread the course's rule compares a difference with."""
        return self.high - self.low

    def __format__(self, spec: str) -> str:
        """Write ``mean (low to high)`` with ``spec`` for each number, e.g. ``f"{s:.4f}"`` or ``f"{s:.1%}"``."""
        return f"{format(self.mean, spec)} ({format(self.low, spec)} to {format(self.high, spec)})"


def spread(values: Sequence[float]) -> Spread:
    """Return the spread of ``values``, one per seed; at least one is needed."""
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError("spread() needs at least one value, one per seed.")
    return Spread(values)


Values = float | Sequence[float]


def _as_spread(values: Values) -> tuple[Spread, bool]:
    """Return the spread of ``values`` and whether it is a fixed number (no seed, so no spread)."""
    if isinstance(values, (int, float)):
        return spread([values]), True
    return spread(values), False


def differs(a: Values, b: Values) -> bool:
    """Apply the course's rule: True when the means of ``a`` and ``b`` differ by more than the spread between seeds.

    ``a`` and ``b`` hold one value per seed; a plain number stands for something
    with no randomness (a fixed filter, a published figure). The spread is the larger
    range (highest minus lowest) of the two. One seed alone has no spread to judge
    by, so a comparison with it decides nothing: the answer is False.
    """
    (sa, fixed_a), (sb, fixed_b) = _as_spread(a), _as_spread(b)
    if (len(sa.values) < 2 and not fixed_a) or (len(sb.values) < 2 and not fixed_b):
        return False
    return abs(sa.mean - sb.mean) > max(sa.width, sb.width)  # two fixed numbers: any gap counts


def verdict(a: Values, b: Values, fmt: str = ".4f") -> str:
    """Say in words whether ``a`` and ``b`` differ by the course's rule, with the gap and the spread."""
    (sa, _), (sb, _) = _as_spread(a), _as_spread(b)
    gap, width = abs(sa.mean - sb.mean), max(sa.width, sb.width)
    real = differs(a, b)
    return (f"gap {format(gap, fmt)}, spread between seeds {format(width, fmt)}: "
            + ("larger than the spread, a real difference" if real
               else "not larger than the spread, no difference by the course's rule"))


def provenance(command: str, data: str) -> dict[str, Any]:
    """Describe how a results file was made: command, data, machine, library versions, commit and date."""
    import torch

    from .runtime import device_name

    root = RESULTS_DIR.parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown (not a git checkout)"
    return {
        "command": command,
        "data": data,
        "machine": f"{platform.machine()}, {device_name(torch.device('cpu'))}",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "commit": commit,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }


def write_results(name: str, results: dict[str, Any], folder: Path = RESULTS_DIR) -> Path:
    """Write ``results`` to ``folder/<name>.json`` atomically: a reader never sees half a file."""
    from .runtime import write_text_atomically

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    write_text_atomically(path, json.dumps(results, indent=1) + "\n")
    return path


def load_results(name: str, folder: Path = RESULTS_DIR) -> dict[str, Any]:
    """Return the committed results file ``<name>.json``, with a clear error when it is missing."""
    path = folder / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing. It is committed with the course; to make it again, run "
            f"`python benchmarks/seed_spread.py {name} --data-dir <folder with MNIST/raw>` from the repository."
        )
    return json.loads(path.read_text())


def describe(results: dict[str, Any]) -> str:
    """Return one line saying what made a results file: seeds, data, command, machine, commit and date."""
    made = results["provenance"]
    seeds = results.get("seeds")
    runs = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}; " if seeds else ""
    return (f"Reference: {runs}{made['data']}; made by `{made['command']}` on {made['machine']}, "
            f"torch {made['torch']}, commit {made['commit']}, {made['date']}.")


def command_line() -> str:
    """Return the command that started this process, as a person would type it."""
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(RESULTS_DIR.parent.parent)
    except ValueError:
        pass
    return " ".join(["python", str(script), *sys.argv[1:]])
