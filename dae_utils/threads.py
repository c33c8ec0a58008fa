"""Choose how many CPU threads a kernel trains with, and fewer while other programs keep the CPUs busy.

PyTorch sizes its thread pool from the machine's cores, not from the CPUs a
process may really use: a JupyterHub container limited to 2 CPUs of a 64-core node
still starts 64 threads. And OpenMP's threads *spin* while they wait for work, so
two trainings that each run several threads on the same cores steal each other's
time: measured on a 2-core machine, each ran 4.5-17x slower than alone, where
sharing fairly would cost 2x (``benchmarks/contention.py``). The course therefore

- starts with as many threads as the CPUs the process may use: the fewer of its CPU
  affinity (``os.sched_getaffinity``) and its cgroup CPU quota (``cpu.max``, or
  cgroup v1's ``cpu.cfs_quota_us``), rounded up;
- while training, looks once a second at how busy those CPUs are with *other*
  processes (``/proc/stat``, or the cgroup's own CPU time when a quota limits it)
  and trains with the CPUs left over, at least one. One thread never waits for
  another, so nothing spins; alone again, the process takes all its CPUs back.

Why not a calmer OpenMP instead: ``OMP_WAIT_POLICY=PASSIVE`` (or a small
``GOMP_SPINCOUNT``) ends the spinning but makes a training that runs alone a third
slower, because its threads then sleep and wake between every two operations. The
benchmark measures all of these side by side.

The thread count is applied when ``dae_utils`` is imported: to the environment
(``OMP_NUM_THREADS``, which OpenMP reads once, when torch loads it, and which the
runner's kernels, the test suite's and ``make lab``'s inherit) and, if torch is
already loaded, with ``torch.set_num_threads``. ``DAE_NUM_THREADS`` (or an
``OMP_NUM_THREADS`` you set) fixes the count and turns the adapting off;
``DAE_THREADS=default`` leaves PyTorch's own choice alone. This module does not
import torch.

Adapting has a price: a changed thread count changes how sums are split, so a
training run that shared the CPUs for a while ends a few last digits away from the
same run alone. Fix the count (``DAE_NUM_THREADS``) where runs must repeat bit for
bit; the test suite does.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: The environment variable that sets the thread count by hand (a whole number >= 1).
NUM_THREADS_ENV = "DAE_NUM_THREADS"
#: ``DAE_THREADS=default`` leaves PyTorch's and OpenMP's own defaults alone.
SWITCH_ENV = "DAE_THREADS"
#: Where cgroup v2 (and v1's cpu controller) live on Linux.
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Set beside ``OMP_NUM_THREADS`` when the course chose that value, so that a process started with it (a
#: kernel, a test worker) knows the count was the course's choice, to adapt, and not the user's, to keep.
CHOSEN_ENV = "DAE_CHOSEN_OMP_NUM_THREADS"
#: How often, at most, a training step looks at the other processes' load (seconds).
ADAPT_INTERVAL_S = 1.0
#: What this module chose and why, for ``describe``; filled by ``apply``.
CHOICE: dict[str, str] = {}


def cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """Return the CPUs the cgroup quota allows (e.g. 1.5), or None when there is no quota.

    cgroup v2 keeps ``"<quota> <period>"`` in ``cpu.max`` (``"max <period>"``: no
    quota); cgroup v1 keeps the two numbers in ``cpu/cpu.cfs_quota_us`` (-1: none)
    and ``cpu/cpu.cfs_period_us``. An unreadable or malformed file counts as no quota.
    """
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else _ratio(int(quota), int(period))
        for folder in (root / "cpu", root / "cpu,cpuacct", root):
            quota_file, period_file = folder / "cpu.cfs_quota_us", folder / "cpu.cfs_period_us"
            if quota_file.is_file() and period_file.is_file():
                quota = int(quota_file.read_text().strip())
                return None if quota < 0 else _ratio(quota, int(period_file.read_text().strip()))
    except (OSError, ValueError):
        return None
    return None


def _ratio(quota: int, period: int) -> float | None:
    return quota / period if quota > 0 and period > 0 else None


def affinity_cpus() -> int:
    """Return how many CPUs this process may run on (its affinity mask), or the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


def usable_cpus(root: Path = CGROUP_ROOT) -> int:
    """Return the CPUs a kernel may really use: the fewer of its affinity and its quota (rounded up), at least 1."""
    quota = cpu_quota(root)
    cpus = affinity_cpus()
    return max(1, min(cpus, math.ceil(quota)) if quota is not None else cpus)


def chosen_threads(environ: dict[str, str] | None = None, root: Path = CGROUP_ROOT) -> tuple[int, str]:
    """Return the thread count and where it came from: DAE_NUM_THREADS, OMP_NUM_THREADS, or the usable CPUs.

    An ``OMP_NUM_THREADS`` that the course itself set (``CHOSEN_ENV`` holds the same
    value) counts as the course's choice, made again here.
    """
    environ = os.environ if environ is None else environ
    for name in (NUM_THREADS_ENV, "OMP_NUM_THREADS"):
        text = environ.get(name, "").strip()
        if name == "OMP_NUM_THREADS" and text and text == environ.get(CHOSEN_ENV, "").strip():
            break
        if text:
            try:
                value = int(text)
            except ValueError:
                value = 0
            if value < 1:
                raise ValueError(f"The environment variable {name} is {text!r}; it must be a whole number >= 1, "
                                 "the CPU threads to train with, or unset.")
            return value, name
    quota = cpu_quota(root)
    reason = f"the CPUs this process may use: affinity {affinity_cpus()}"
    reason += f", cgroup quota {quota:g}" if quota is not None else ", no cgroup quota"
    return usable_cpus(root), reason


class LoadWatcher:
    """Measure how many CPUs other processes keep busy, and suggest how many threads are left for this one.

    Each call of ``suggest`` compares the CPU time spent on the watched CPUs since
    the last call with this process's own CPU time over the same wall time. The
    watched CPU time is the cgroup's own (``cpu.stat``'s ``usage_usec``, or v1's
    ``cpuacct.usage``) when a quota limits the process, and otherwise the busy time
    of the CPUs in its affinity from ``/proc/stat``. Readers can be replaced, for tests.
    """

    def __init__(self, cpus: int, root: Path = CGROUP_ROOT, proc_stat: Path = Path("/proc/stat"),
                 busy: Callable[[], float | None] | None = None, own: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic, interval: float = ADAPT_INTERVAL_S) -> None:
        self.cpus, self.root, self.proc_stat, self.interval = cpus, root, proc_stat, interval
        self.own, self.clock = own, clock
        self.busy = busy if busy is not None else (self._cgroup_busy if cpu_quota(root) is not None
                                                   else self._proc_stat_busy)
        self._last = self._read()

    def _read(self) -> tuple[float, float | None, float]:
        return self.clock(), self.busy(), self.own()

    def _cgroup_busy(self) -> float | None:
        try:
            v2 = self.root / "cpu.stat"
            if v2.is_file():
                fields = dict(line.split() for line in v2.read_text().splitlines() if line.strip())
                return int(fields["usage_usec"]) / 1e6
            for folder in (self.root / "cpuacct", self.root / "cpu,cpuacct", self.root):
                if (folder / "cpuacct.usage").is_file():
                    return int((folder / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError, KeyError):
            return None
        return None

    def _proc_stat_busy(self) -> float | None:
        try:
            allowed = os.sched_getaffinity(0)
            ticks = os.sysconf("SC_CLK_TCK")
            total = 0
            for line in self.proc_stat.read_text().splitlines():
                name, *values = line.split()
                if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in allowed:
                    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in values[:7])
                    total += user + nice + system + irq + softirq
            return total / ticks
        except (AttributeError, OSError, ValueError):  # no /proc (macOS) or no sched_getaffinity
            return None

    def others(self) -> float | None:
        """Return the CPUs other processes used since the last call (e.g. 1.0), or None if that cannot be read."""
        now = self._read()
        (then_wall, then_busy, then_own), (wall, busy, own) = self._last, now
        self._last = now
        if busy is None or then_busy is None or wall <= then_wall:
            return None
        return max(0.0, (busy - then_busy) - (own - then_own)) / (wall - then_wall)

    def suggest(self) -> int | None:
        """Return the CPUs left over for this process (at least 1), or None before ``interval`` has passed."""
        if self.clock() - self._last[0] < self.interval:
            return None
        others = self.others()
        if others is None:
            return None
        return min(self.cpus, max(1, math.floor(self.cpus - others + 0.5)))


_watcher: LoadWatcher | None = None


def adapt() -> None:
    """Train with the CPUs other processes leave free; called by every training step, cheap in between.

    Does nothing unless the course chose the thread count itself (no DAE_NUM_THREADS,
    no OMP_NUM_THREADS of your own, no DAE_THREADS=default).
    """
    global _watcher
    if CHOICE.get("adaptive") != "yes":
        return
    if _watcher is None:
        _watcher = LoadWatcher(int(CHOICE["cpus"]))
        return
    suggested = _watcher.suggest()
    if suggested is not None:
        import torch

        if suggested != torch.get_num_threads():
            torch.set_num_threads(suggested)


@contextlib.contextmanager
def fixed(count: int) -> Iterator[None]:
    """Run the body with ``count`` torch threads and the adapting off; restore both afterwards.

    For work that must repeat bit for bit whatever the load, such as an exercise check that compares a
    student's training steps with the course's: with a count that changes under load, sums come out in
    another order, and Adam's first steps move a weight whose gradient is rounding noise by a whole
    learning rate, one way or the other.
    """
    import torch

    before, adaptive = torch.get_num_threads(), CHOICE.get("adaptive")
    torch.set_num_threads(count)
    CHOICE["adaptive"] = "no"
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if adaptive is None:
            CHOICE.pop("adaptive", None)
        else:
            CHOICE["adaptive"] = adaptive


def apply(environ: dict[str, str] | None = None, root: Path = CGROUP_ROOT) -> dict[str, str]:
    """Set the course's starting thread count in ``environ`` (before torch) and in torch (if already loaded).

    Returns what was chosen, also kept in ``CHOICE``. A count the user set is kept and not adapted.
    """
    environ = os.environ if environ is None else environ
    CHOICE.clear()
    if environ.get(SWITCH_ENV, "").strip().lower() == "default":
        CHOICE.update(threads="PyTorch's default", how=f"{SWITCH_ENV}=default", adaptive="no", cpus="0")
        return dict(CHOICE)
    threads, reason = chosen_threads(environ, root)
    adaptive = reason not in (NUM_THREADS_ENV, "OMP_NUM_THREADS")
    # In the environment for this process's OpenMP if it has not started yet, and for its children; the marker
    # tells a child that the count is the course's to adapt, not one the user fixed.
    environ["OMP_NUM_THREADS"] = str(threads)
    if adaptive:
        environ[CHOSEN_ENV] = str(threads)
    else:
        environ.pop(CHOSEN_ENV, None)
    if "torch" in sys.modules:  # OpenMP has started: only torch itself can still change the count
        import torch

        torch.set_num_threads(threads)
    CHOICE.update(threads=f"{threads} ({reason})", adaptive="yes" if adaptive else "no", cpus=str(threads),
                  how="fewer while other processes keep these CPUs busy" if adaptive else "fixed, as set")
    return dict(CHOICE)


def describe() -> str:
    """Say in one line how many threads the course chose, and whether it adapts them to the load."""
    if not CHOICE:
        return "threads: not chosen by the course"
    return f"threads: {CHOICE['threads']}; {CHOICE['how']}"


def main() -> None:
    """Print the course's choice as environment assignments for a shell (``make lab`` starts JupyterLab with them)."""
    environ: dict[str, str] = dict(os.environ)
    apply(environ)
    if CHOICE["adaptive"] == "yes":
        print(f"OMP_NUM_THREADS={environ['OMP_NUM_THREADS']} {CHOSEN_ENV}={environ[CHOSEN_ENV]}")
