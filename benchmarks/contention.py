"""Train the course's step in K processes at once and measure what sharing the CPUs costs, per thread setting.

    python benchmarks/contention.py                     # K = 1, 2, 4; PyTorch's defaults against the course's
    python benchmarks/contention.py --settings default course passive one-thread spin=10000 --rounds 3

A course rarely runs alone: a student keeps two notebooks busy, an instructor runs
``make course`` beside ``make test``, a JupyterHub node holds many kernels. Each
process here runs ``training.training_step`` on batches of 256 images (synthetic:
the step's cost does not depend on the pixels) after a warm-up, and reports its
milliseconds per step. For each K the table gives every process's ms per step, the
machine's total images per second, and that total as a share of K = 1's with the
same setting and with PyTorch's defaults. The settings:

- ``default``: PyTorch's and OpenMP's own choices (``DAE_THREADS=default``);
- ``course``: what ``dae_utils.threads`` chooses: as many threads as the usable CPUs,
  fewer while other processes keep them busy (looked at once a second by each step);
- ``passive``: only ``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep at once);
- ``one-thread``: ``OMP_NUM_THREADS=1``;
- ``spin=N``: only ``GOMP_SPINCOUNT=N`` (waiting threads spin N times, then sleep).

Rounds alternate the settings, so a machine whose speed drifts treats them alike;
the table shows the median over rounds (and the round in the middle); the thread
count is each process's at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from dae_utils import threads  # imports no torch; importing dae_utils applies the course's thread settings

BATCH = 256


def worker(steps: int, warmup: int) -> None:
    """Run the course's training step and print one JSON line: ms per step and the threads used."""
    import torch  # after dae_utils: OpenMP reads the settings the course chose
    from torch import nn

    from dae_utils import training

    device = torch.device("cpu")
    encoder, decoder, optimizer = training.build_models(training.TrainConfig(seed=0), device)
    images = torch.rand(BATCH, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    loss_fn = nn.MSELoss()
    for _ in range(warmup):
        training.training_step(encoder, decoder, loss_fn, optimizer, 0.3, images)
    start = time.perf_counter()
    for _ in range(steps):
        training.training_step(encoder, decoder, loss_fn, optimizer, 0.3, images)
    ms = (time.perf_counter() - start) / steps * 1000
    print(json.dumps({"ms_per_step": ms, "threads": torch.get_num_threads(),
                      "chose": threads.describe()}))


def environment(setting: str) -> dict[str, str]:
    """Return the environment a worker starts with under ``setting``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OMP_", "GOMP_", "KMP_", "MKL_")) and k not in ("DAE_THREADS", "DAE_NUM_THREADS")}
    if setting == "default":
        env["DAE_THREADS"] = "default"
    elif setting == "course":
        pass  # dae_utils.threads applies its choice when the worker imports dae_utils before torch
    elif setting == "passive":
        env.update(DAE_THREADS="default", OMP_WAIT_POLICY="PASSIVE")
    elif setting == "one-thread":
        env.update(DAE_THREADS="default", OMP_NUM_THREADS="1")
    elif setting.startswith("spin="):  # GNU OpenMP spins this many times before it sleeps
        env.update(DAE_THREADS="default", GOMP_SPINCOUNT=setting.removeprefix("spin="))
    else:
        raise ValueError(f"unknown setting {setting!r}")
    return env


def run_together(setting: str, count: int, steps: int, warmup: int) -> list[dict]:
    """Start ``count`` workers at once and return what each reported."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--steps", str(steps),
               "--warmup", str(warmup)]
    processes = [subprocess.Popen(command, env=environment(setting), stdout=subprocess.PIPE, text=True)
                 for _ in range(count)]
    results = []
    for process in processes:
        out, _ = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"a worker failed under {setting}, K = {count}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=100, help="timed steps per process")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--counts", type=int, nargs="+", default=[1, 2, 4], help="processes at once (K)")
    parser.add_argument("--settings", nargs="+", default=["default", "course"],
                        help="default, course, passive, one-thread, or spin=N (GOMP_SPINCOUNT=N)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        worker(args.steps, args.warmup)
        return

    print(f"{os.cpu_count()} CPUs in the machine, {threads.affinity_cpus()} in this process's affinity, "
          f"cgroup quota {threads.cpu_quota()}; batch {BATCH}; {args.steps} timed steps per process; "
          f"median of {args.rounds} rounds")
    runs: dict[tuple[str, int], list[list[dict]]] = {}
    for _ in range(args.rounds):
        for count in args.counts:
            for setting in args.settings:
                runs.setdefault((setting, count), []).append(run_together(setting, count, args.steps, args.warmup))

    def total(setting: str, count: int) -> float:  # the machine's images per second, median over rounds
        return statistics.median(sum(BATCH * 1000 / r["ms_per_step"] for r in round_)
                                 for round_ in runs[setting, count])

    print(f"\n{'setting':<12}{'K':>3}{'threads at the end':>20}  {'ms per step, each process':<28}"
          f"{'images/s':>10}{'vs K=1':>8}{'vs default K=1':>16}")
    for setting in args.settings:
        for count in args.counts:
            rounds = runs[setting, count]
            middle = sorted(rounds, key=lambda round_: sum(1 / r["ms_per_step"] for r in round_))[len(rounds) // 2]
            each = ", ".join(f"{r['ms_per_step']:.0f}" for r in middle)
            used = ", ".join(str(r["threads"]) for r in middle)
            against_default = total(setting, count) / total("default", 1) if "default" in args.settings else math.nan
            print(f"{setting:<12}{count:>3}{used:>20}  {each:<28}{total(setting, count):>10,.0f}"
                  f"{total(setting, count) / total(setting, 1):>8.0%}{against_default:>16.0%}")
    chose = runs.get(("course", 1), [[{}]])[0][0].get("chose")
    if chose:
        print(f"\nthe course's choice: {chose}")


if __name__ == "__main__":
    main()
