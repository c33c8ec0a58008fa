"""Measures of images: denoised ones against their originals, and a generator's samples against real digits.

A denoised image is scored against its clean original by ``image_scores``: MSE and
PSNR compare pixels, ``digits_kept`` asks the digit judge whether the digit survived,
and SSIM (``ssim``: the structural similarity index of Wang, Bovik, Sheikh and
Simoncelli, 2004, from scikit-image; 1 for identical images) compares local means,
contrasts and correlations rather than single pixels.

A generator's samples are measured as the field measures them. One number cannot say
both "the samples look like digits" and "the samples cover all the digits". The field
therefore measures a generator in a feature space, where real and generated images
are compared as two clouds of points; the course takes the
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

import numpy as np
import torch
from torch import nn

from . import judge
from .generation import apply_in_batches
from .noise import mse, psnr

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


def feature_report(real: torch.Tensor, generated: torch.Tensor, nearest_k: int = NEAREST_K) -> dict[str, float]:
    """Return precision, recall, density, coverage and the Fréchet distance of ``generated`` against ``real``.

    Rows are points in one space: judge features, or codes. Against the decoded test
    codes (a model's reconstructions), it isolates what the prior adds to what the
    decoder can draw: a sampler that fed the decoder codes as real ones are would
    score as the other half of the reconstructions do.
    """
    report = precision_recall(real, generated, nearest_k)
    report["frechet_distance"] = frechet_distance(real, generated)
    return report


def code_report(codes: torch.Tensor, held_out: torch.Tensor, train: torch.Tensor,
                nearest_k: int = NEAREST_K) -> dict[str, float]:
    """Measure sampled ``codes`` in the latent space itself, against codes of real images, with no judge.

    ``held_out``: codes of real images no sampler saw (the reference for precision,
    recall, density, coverage and the Fréchet distance); ``train``: the training codes.
    ``novelty`` is the median distance of a sampled code to its nearest training code
    over that of a held-out code (1: as new as unseen digits' codes; near 0: copies of
    training codes); ``copy_share`` the share of codes nearer to a training code than
    99 % of the held-out codes are. Distances in one model's latent space compare only
    within that model: its scale is its own.
    """
    for name, tensor in (("codes", codes), ("held_out", held_out), ("train", train)):
        if tensor.ndim != 2 or tensor.shape[1] != codes.shape[1]:
            raise ValueError(f"{name} must be codes of one width, (N, d); got shape {tuple(tensor.shape)}.")
    report = feature_report(held_out, codes, nearest_k)
    nearest, real = nearest_distances(train, codes), nearest_distances(train, held_out)
    report["novelty"] = float(nearest.median() / real.median())
    report["copy_share"] = float((nearest < torch.quantile(real, 0.01)).float().mean())
    return report


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
        ``generator_report``; ``readable_by_threshold`` over ``thresholds``;
        ``frechet_distance`` against the training images; ``precision``, ``recall``,
        ``density`` and ``coverage`` on the first ``PRDC_IMAGES`` images; ``novelty``,
        the median distance to the nearest training image over that of the real test
        images (1: as new as unseen real digits; near 0: copies); ``copy_share``, the
        share of images nearer to a training image than 99 % of the test images are.
        """
        verdict = judge.classify(self.classifier, images)
        report = verdict_report(verdict, self.test_labels, judge.threshold_of(self.classifier))
        report["readable_by_threshold"] = {f"{t:g}": float(verdict.readable(t).float().mean()) for t in thresholds}
        generated = features(self.classifier, images)
        report["frechet_distance"] = frechet_distance(self.train_features, generated)
        report.update(precision_recall(self.prdc_real, generated[: len(self.prdc_real)]))
        nearest = nearest_distances(self.train_features, generated)
        report["novelty"] = float(nearest.median() / self.test_nearest.median())
        report["copy_share"] = float((nearest < torch.quantile(self.test_nearest, 0.01)).float().mean())
        return report


def digit_counts(digits: torch.Tensor) -> np.ndarray:
    """Return how many times each digit 0-9 occurs among ``digits``: the spread a generator draws."""
    return np.bincount(np.asarray(digits, dtype=np.int64), minlength=10)


def ssim_each(images: torch.Tensor, references: torch.Tensor) -> np.ndarray:
    """Return the SSIM of each image against its reference (scikit-image; pixels in [0, 1])."""
    from skimage.metrics import structural_similarity

    judge.check_images(images)
    judge.check_images(references)
    if images.shape != references.shape:
        raise ValueError(f"SSIM compares each image with its own reference: shapes {tuple(images.shape)} and "
                         f"{tuple(references.shape)} differ.")
    a = images.detach().cpu().double().numpy()[:, 0]
    b = references.detach().cpu().double().numpy()[:, 0]
    return np.array([structural_similarity(x, y, data_range=1.0) for x, y in zip(a, b, strict=True)])


def ssim(images: torch.Tensor, references: torch.Tensor) -> float:
    """Return the mean SSIM of ``images`` against ``references`` (both (N, 1, 28, 28), pixels in [0, 1])."""
    if len(images) == 0:
        raise ValueError("No images to compare.")
    return float(ssim_each(images, references).mean())


def image_scores(classifier: nn.Module, images: torch.Tensor, clean: torch.Tensor, labels: torch.Tensor,
                 ssim_images: int | None = None) -> dict[str, float]:
    """Return the three measures of ``images`` (denoised or noisy) against their ``clean`` originals.

    ``mse`` and ``psnr`` (dB) compare pixels; ``digits_kept`` is the share the
    classifier reads as the true ``labels``; ``ssim`` is the mean SSIM, over the first
    ``ssim_images`` images only when given (SSIM costs about 0.1 ms an image).
    """
    if images.shape != clean.shape:
        raise ValueError(f"Each image is scored against its own clean original: shapes {tuple(images.shape)} and "
                         f"{tuple(clean.shape)} differ.")
    shown = slice(None) if ssim_images is None else slice(0, ssim_images)
    return {
        "mse": mse(images, clean),
        "psnr": psnr(images, clean),
        "digits_kept": judge.digits_kept(classifier, images, labels),
        "ssim": ssim(images[shown], clean[shown]),
    }


def changed_digits(classifier: nn.Module, images: torch.Tensor, clean: torch.Tensor,
                   labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the indices of the images whose digit was changed, and the digit each now shows.

    Changed means: the classifier reads the ``clean`` image as its true label, and the
    processed ``images`` (denoised, say) as another digit. Images the classifier
    already misreads when clean are left out: their change is the judge's error.
    """
    if not len(images) == len(clean) == len(labels):
        raise ValueError(f"{len(images)} images, {len(clean)} originals and {len(labels)} labels: give one of each "
                         "per image.")
    before = judge.classify(classifier, clean).digits
    after = judge.classify(classifier, images).digits
    changed = ((before == labels.cpu()) & (after != labels.cpu())).nonzero().flatten()
    return changed, after[changed]


def generator_report(classifier: nn.Module, images: torch.Tensor, real_labels: torch.Tensor,
                     threshold: float | None = None) -> dict[str, Any]:
    """Return how readable generated ``images`` are, and which digits the readable ones show.

    ``readable_share``: the share read as some digit with at least ``threshold``
    confidence; ``digit_share``: each digit's share among the readable images (ten
    numbers summing to 1); ``total_variation``: the distance between that mix and
    the mix of ``real_labels`` (0: the same mix; 1: no digit in common, or no
    readable image at all); ``fewest_digit``: the digit drawn least often.
    """
    return verdict_report(judge.classify(classifier, images), real_labels, judge.threshold_of(classifier, threshold))


def verdict_report(verdict: judge.Verdict, real_labels: torch.Tensor, threshold: float) -> dict[str, Any]:
    """Return ``generator_report``'s figures from a ``Verdict`` already made, at ``threshold``."""
    readable = verdict.readable(threshold)
    counts = digit_counts(verdict.digits[readable])
    share = counts / max(int(counts.sum()), 1)
    real = digit_counts(real_labels) / len(real_labels)
    return {
        "readable_share": float(readable.float().mean()),
        "digit_share": share.tolist(),
        "total_variation": float(0.5 * np.abs(share - real).sum()) if counts.sum() else 1.0,
        "fewest_digit": int(share.argmin()),
    }
