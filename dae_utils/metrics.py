"""How the field measures a generator: Fréchet distance, precision and recall, novelty, and readable shares.

One number cannot say both "the samples look like digits" and "the samples cover
all the digits". The field therefore measures a generator in a feature space, where
real and generated images are compared as two clouds of points; the course takes the
digit judge's 128 penultimate features (``judge.DigitClassifier.embed``), as FID on
MNIST is usually taken in a classifier's features rather than Inception's:

- **Fréchet distance** (Heusel et al., 2017): fit one Gaussian to the real features
  and one to the generated ones; the distance ``|m1 - m2|^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2))``.
  0 for the same Gaussian; it grows with a shifted mean (wrong digits, wrong mix)
  and with a wrong spread (blur, too little or too much variety). torchmetrics'
  ``FrechetInceptionDistance`` computes it from the features handed to it. It has a
  floor above 0 for any finite sample: the course reports it for real test images
  (and for the decoded test codes) against the training images.
- **Precision and recall** (Kynkäänniemi et al., 2019), **density and coverage**
  (Naeem et al., 2020), from the ``prdc`` package: around each real feature a ball
  reaching to its k-th nearest real neighbour. Precision: the share of samples inside
  some real ball (they look real); recall: the share of real points inside some
  sample's ball (the real variety is covered); density counts how many real balls
  hold a sample (robust to outliers); coverage is the share of real balls that hold
  at least one sample.
- **Novelty**: each sample's distance to its nearest training image (in features),
  against the same distance for real test images, which the model never saw. A
  sampler that copies training digits has samples much closer than test images are.
- The **readable share** at the judge's threshold, and across a sweep of thresholds,
  so that a verdict is drawn only where it holds across the sweep.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import judge
from .generation import apply_in_batches

#: The thresholds of the readable-share sweep.
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)
#: Nearest neighbours that set each real point's ball in precision, recall, density and coverage.
NEAREST_K = 5
#: Real and generated images compared by precision and recall (the distances cost N^2).
PRDC_IMAGES = 5000


class _GivenFeatures(nn.Module):
    """The identity, with the width torchmetrics asks of a feature extractor: the features are computed before."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


class _Embedding(nn.Module):
    """Wrap a judge or classifier so that calling it returns its penultimate features (its ``embed``)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.embed(images)


def features(classifier: nn.Module, images: torch.Tensor, batch_size: int = judge.JUDGE_BATCH_SIZE) -> torch.Tensor:
    """Return the judge's penultimate features (N, 128) of ``images``, on the CPU, in eval mode."""
    if not hasattr(classifier, "embed"):
        raise TypeError(f"{type(classifier).__name__} has no embed(): pass the course's digit judge or classifier.")
    judge.check_images(images)
    device = next(classifier.parameters()).device
    return apply_in_batches(_Embedding(classifier), images, device, batch_size).float()


def frechet_distance(real: torch.Tensor, generated: torch.Tensor) -> float:
    """Return the Fréchet distance between the Gaussians fitted to two sets of features (N, F), by torchmetrics."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise ValueError(f"Fréchet distance compares two sets of features of one width, (N, F); got shapes "
                         f"{tuple(real.shape)} and {tuple(generated.shape)}.")
    if min(len(real), len(generated)) < 2:
        raise ValueError("Fréchet distance needs at least two feature vectors on each side.")
    metric = FrechetInceptionDistance(feature=_GivenFeatures(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(generated.double(), real=False)
    return float(metric.compute())


def precision_recall(real: torch.Tensor, generated: torch.Tensor, nearest_k: int = NEAREST_K) -> dict[str, float]:
    """Return precision, recall, density and coverage of ``generated`` features against ``real`` (the prdc package)."""
    import prdc

    if min(len(real), len(generated)) <= nearest_k:
        raise ValueError(f"Precision and recall need more than nearest_k = {nearest_k} points on each side.")
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the two counts
        values = prdc.compute_prdc(real_features=real.double().numpy(), fake_features=generated.double().numpy(),
                                   nearest_k=nearest_k)
    return {name: float(value) for name, value in values.items()}


def nearest_distances(reference: torch.Tensor, queries: torch.Tensor, chunk: int = 2000) -> torch.Tensor:
    """Return each query's Euclidean distance to its nearest ``reference`` row, chunk by chunk."""
    return torch.cat([torch.cdist(queries[i : i + chunk].double(), reference.double()).min(dim=1).values
                      for i in range(0, len(queries), chunk)]).float()


@dataclass
class Reference:
    """What every sampler is measured against: the training images' features, and real test images for the floors.

    ``make`` computes the features once; ``measure`` then scores any set of images.
    """

    classifier: nn.Module
    train_features: torch.Tensor  # (N_train, F)
    prdc_real: torch.Tensor  # (PRDC_IMAGES, F), a fixed random subset of the training features
    test_nearest: torch.Tensor  # (N_test,), each real test image's distance to its nearest training image
    test_labels: torch.Tensor

    @classmethod
    def make(cls, classifier: nn.Module, train_images: torch.Tensor, test_images: torch.Tensor,
             test_labels: torch.Tensor, seed: int = 0, prdc_images: int = PRDC_IMAGES) -> Reference:
        train_features = features(classifier, train_images)
        chosen = torch.randperm(len(train_features), generator=torch.Generator().manual_seed(seed))[:prdc_images]
        return cls(classifier, train_features, train_features[chosen],
                   nearest_distances(train_features, features(classifier, test_images)), test_labels)

    def measure(self, images: torch.Tensor, thresholds: tuple[float, ...] = THRESHOLDS) -> dict[str, Any]:
        """Return every measure of ``images`` (generated, or real for a floor).

        ``readable_share``, ``digit_share``, ``total_variation`` and ``fewest_digit`` as
        ``judge.generator_report``; ``readable_by_threshold`` over ``thresholds``;
        ``frechet_distance`` against the training images; ``precision``, ``recall``,
        ``density`` and ``coverage`` on the first ``PRDC_IMAGES`` images; ``novelty``,
        the median distance to the nearest training image over that of the real test
        images (1: as new as unseen real digits; near 0: copies); ``copy_share``, the
        share of images nearer to a training image than 99 % of the test images are.
        """
        verdict = judge.classify(self.classifier, images)
        report = judge.verdict_report(verdict, self.test_labels, judge.threshold_of(self.classifier))
        report["readable_by_threshold"] = {f"{t:g}": float(verdict.readable(t).float().mean()) for t in thresholds}
        generated = features(self.classifier, images)
        report["frechet_distance"] = frechet_distance(self.train_features, generated)
        report.update(precision_recall(self.prdc_real, generated[: len(self.prdc_real)]))
        nearest = nearest_distances(self.train_features, generated)
        report["novelty"] = float(nearest.median() / self.test_nearest.median())
        report["copy_share"] = float((nearest < torch.quantile(self.test_nearest, 0.01)).float().mean())
        return report
