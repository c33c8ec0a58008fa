"""Probe notebook 3's digit judge: what it does with right digits drawn unusually, and how far its numbers reach.

    python benchmarks/judge_probe.py --data-dir ../shared/data/mnist

Writes ``benchmarks/results/judge_probe.json`` (seed 0's judge, full MNIST) with, for
the course's judge (trained on varied digits) and for two judges trained differently:

- **unusual digits** (``negatives.unusual_digits``: blurred at sigma 1.0 and 1.5,
  shifted 3 pixels diagonally, the mean of two images of the same digit), which a
  person reads: each split four ways (``judge.readings``), beside the clean test
  digits and the hard negatives' pass rates;
- the **reconstructions** of seed 0's autoencoder and VAE (beta 1) split the same way;
- a judge trained on **written digits only** (``train_judge(varied_digits=False)``: half
  of each batch blurred a little, none shifted or mixed), the same measures: what the
  varied digits change;
- a judge trained **without strokes** among its negatives, read on strokes: how it
  does on a family of negatives it never saw, beside every judge's pass rate on the
  autoencoder's **decoded midpoints** (the codes halfway between two different digits,
  decoded: not a family any judge trains on);
- the **threshold's check**: the seeded split stratified by digit that chose it
  (``judge.threshold_split``), its other half, and, for contrast, the first and second
  halves of the ordered test set, each pass rate with its Clopper-Pearson interval;
- **calibration of P(digit)** (one minus "not a digit") on the test digits with the
  blends, halves and strokes: reliability in 10 equal-mass bins, and the Brier score and
  the negative log-likelihood with 95 % bootstrap intervals over the images.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, log_loss

from dae_utils import data, generation, judge, negatives, results, runtime, training, vae

ROOT = Path(__file__).resolve().parent.parent
UNUSUAL_SEED = 2025
PROBE_IMAGES = 5000
MIDPOINT_SEED = 2026
WITHOUT_STROKES = {"pixel blends": 0.6, "halves": 0.2, "noise": 0.1, "flat": 0.1}


def share_interval(passed: int, total: int) -> dict[str, float]:
    """A share with its 95 % Clopper-Pearson interval."""
    interval = stats.binomtest(passed, total).proportion_ci(0.95)
    return {"share": passed / total, "low": float(interval.low), "high": float(interval.high), "n": total}


@dataclass(frozen=True)
class ProbeSets:
    """The images every judge is probed on, made once: unusual digits (with labels), hard negatives, reconstructions."""

    unusual: dict[str, tuple[torch.Tensor, torch.Tensor]]
    hard: dict[str, torch.Tensor]
    reconstructions: dict[str, torch.Tensor]


def probe(the_judge: judge.CalibratedJudge, mnist: data.MNISTData, sets: ProbeSets) -> dict[str, Any]:
    """Every measure of one judge: clean and unusual digits four ways, hard negatives, reconstructions four ways,
    the threshold's check and P(digit)'s calibration."""
    labels = mnist.test_labels
    return {"threshold": float(the_judge.threshold),
            "clean test digits": judge.readings(the_judge, mnist.test_images, labels),
            "unusual digits": {kind: judge.readings(the_judge, images, kind_labels)
                               for kind, (images, kind_labels) in sets.unusual.items()},
            "hard negatives pass": judge.pass_rates(the_judge, sets.hard),
            "reconstructions": {name: judge.readings(the_judge, images, labels)
                                for name, images in sets.reconstructions.items()},
            "threshold check": threshold_check(the_judge, mnist),
            "calibration": calibration(the_judge, mnist, sets.hard)}


def threshold_check(the_judge: judge.CalibratedJudge, mnist: data.MNISTData) -> dict[str, Any]:
    """The judge's threshold on the stratified half that chose it and on the other, and on the ordered halves."""
    scores = judge.readable_scores(judge.logits_of(the_judge, mnist.test_images))  # calibrated: logits / T
    passed = scores >= float(the_judge.threshold)
    half = len(scores) // 2
    choose, check = judge.threshold_split(mnist.test_labels)
    parts = {"stratified half (chooses)": choose, "stratified half (checks)": check,
             "first half": torch.arange(half), "second half": torch.arange(half, len(scores))}
    return {name: share_interval(int(passed[rows].sum()), len(rows)) for name, rows in parts.items()}


def calibration(the_judge: judge.CalibratedJudge, mnist: data.MNISTData, hard: dict[str, torch.Tensor],
                bins: int = 10, resamples: int = 1000) -> dict[str, Any]:
    """P(digit) against the truth on test digits and three kinds of ``hard`` negative: reliability, Brier, NLL."""
    images = torch.cat([mnist.test_images, hard["pixel blends"], hard["halves"], hard["strokes"]])
    truth = np.r_[np.ones(len(mnist.test_images)), np.zeros(3 * judge.TEST_NEGATIVES)]
    logits = judge.logits_of(the_judge, images).double()
    p_digit = (1 - logits.softmax(dim=1)[:, judge.NOT_A_DIGIT]).clamp(1e-7, 1 - 1e-7).numpy()
    observed, predicted = calibration_curve(truth, p_digit, n_bins=bins, strategy="quantile")

    def interval(score) -> dict[str, float]:
        value = score(truth, p_digit)
        boot = stats.bootstrap((np.arange(len(truth)),), lambda i: score(truth[i], p_digit[i]), n_resamples=resamples,
                               vectorized=False, random_state=0, method="percentile")
        return {"value": float(value), "low": float(boot.confidence_interval.low),
                "high": float(boot.confidence_interval.high)}

    return {"images": {"digits": len(mnist.test_images), "negatives": 3 * judge.TEST_NEGATIVES},
            "reliability": {"predicted": predicted.tolist(), "observed": observed.tolist()},
            "brier": interval(brier_score_loss), "nll": interval(lambda y, p: log_loss(y, p, labels=[0, 1]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="folder with MNIST/raw (default: what load_mnist finds)")
    parser.add_argument("--checkpoint-dir", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--output-dir", type=Path, default=results.RESULTS_DIR)
    args = parser.parse_args()
    device = runtime.get_device()
    mnist = data.load_mnist(data_dir=args.data_dir)
    kind = "full MNIST" if mnist.is_full else f"MNIST ({mnist.key})"
    line = f"{kind}, {len(mnist.train_images):,} training and {len(mnist.test_images):,} test images"
    made = results.provenance(results.command_line(), line)
    start = time.perf_counter()
    course_judge = judge.load_or_train_judge(mnist, device, args.checkpoint_dir, progress=False)
    models = {"autoencoder": training.train_or_load(training.TrainConfig(seed=0), mnist, device,
                                                    checkpoint_dir=args.checkpoint_dir, progress=False),
              "vae": training.train_or_load(vae.VAEConfig(num_epochs=30, seed=0), mnist, device,
                                            checkpoint_dir=args.checkpoint_dir, progress=False)}
    reconstructions = {name: generation.decode(m.decoder, generation.encode(m.encoder, mnist.test_images, device),
                                               device) for name, m in models.items()}
    course = models["autoencoder"]  # its decoded midpoints: what a generator draws between two digits
    midpoints = negatives.decoded_midpoints(course.encoder, course.decoder, mnist.test_images, mnist.test_labels,
                                            judge.TEST_NEGATIVES, torch.Generator().manual_seed(MIDPOINT_SEED),
                                            device)
    sets = ProbeSets(negatives.unusual_digits(mnist.test_images, mnist.test_labels, PROBE_IMAGES, UNUSUAL_SEED),
                     {**judge.hard_negatives(mnist.test_images, mnist.test_labels),
                      "decoded midpoints": midpoints}, reconstructions)
    found: dict[str, Any] = {"course judge": probe(course_judge, mnist, sets)}
    print(f"course judge done ({time.perf_counter() - start:.0f} s)", flush=True)
    written = judge.train_judge(mnist, device, seed=0, progress=False, varied_digits=False)
    found["written digits only"] = probe(written, mnist, sets)
    print(f"judge on written digits only done ({time.perf_counter() - start:.0f} s)", flush=True)
    unseen = judge.train_judge(mnist, device, seed=0, progress=False, negative_shares=WITHOUT_STROKES)
    found["without strokes"] = {"threshold": float(unseen.threshold),
                                "hard negatives pass": judge.pass_rates(unseen, sets.hard),
                                "clean test digits": judge.readings(unseen, mnist.test_images, mnist.test_labels)}
    print(f"judge without strokes done ({time.perf_counter() - start:.0f} s)", flush=True)
    settings = {"judge_steps": judge.judge_steps(mnist), "judge_seed": 0, "probe_images": PROBE_IMAGES,
                "unusual_seed": UNUSUAL_SEED, "midpoint_seed": MIDPOINT_SEED, "test_negatives": judge.TEST_NEGATIVES,
                "test_negatives_seed": judge.TEST_NEGATIVES_SEED, "without_strokes": WITHOUT_STROKES,
                "models": "seed 0: the course's autoencoder (30 epochs) and the VAE at beta 1 (30 epochs)"}
    payload = {"experiment": "judge_probe", "seeds": [0], "provenance": made, "settings": settings,
               "fixed": found}
    path = results.write_results("judge_probe", payload, args.output_dir)
    print(f"done in {time.perf_counter() - start:.0f} s -> {path}")


if __name__ == "__main__":
    main()
