"""Judge images by the digit they show: a digit classifier, and a calibrated judge that can say "not a digit".

MSE rewards an image that is close pixel by pixel, and so it rewards blur: a grey
smudge where a stroke should be costs little. The course therefore asks two more
questions of a denoised or generated image:

- **Which digit does it show?** ``DigitClassifier`` is a small LeNet-sized
  convolutional network trained on clean training images (98.9 % on the clean
  test set of full MNIST, measured; 95-97 % on the offline sample's). ``digits_kept`` is the share
  of images it still reads as their true digit; ``readable_share`` the share it
  reads with a confidence above a threshold, for images that have no true digit
  (samples from a generator). A classifier always names *some* digit, even for a
  blank image or pure noise, so a confidence threshold (or the entropy of its
  prediction) is part of every "readable" figure. This is how generative models
  are judged in practice (the Inception Score and FID use an image classifier the
  same way), with the same weakness: the judge has blind spots of its own.
- **Does it keep the structure?** ``metrics.ssim``, the structural similarity index,
  asks it; ``metrics.image_scores`` reports all four measures of a denoised image.

The classifier is cached like the autoencoder's checkpoints: saved atomically in
the checkpoint folder, under a name that says what it was trained on, and loaded
with ``weights_only=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .data import MNISTData, make_loader
from .runtime import seed_everything

#: Optimisation steps of the classifier's training (batch 128): about 4 epochs of full MNIST.
CLASSIFIER_STEPS = 2000
CLASSIFIER_BATCH_SIZE = 128
#: A prediction counts as readable when the classifier gives its digit at least this probability.
READABLE_CONFIDENCE = 0.9
#: Images per forward pass when judging.
JUDGE_BATCH_SIZE = 1000
#: Units of the classifiers' penultimate layer: the feature space of ``metrics``.
FEATURES = 128
#: The judge's eleventh class.
NOT_A_DIGIT = 10
#: What a cached classifier's file must hold.
_FORMAT = "dae-digit-classifier"


class DigitClassifier(nn.Module):
    """LeNet-sized: two 5x5 convolutions (16 and 32 channels) with max pooling, then 128 units, then the logits.

    ``num_classes`` is 10 for the digit reader, 11 for the judge (the eleventh: not a digit).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),  # 28 -> 14
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),  # 14 -> 10 -> 5
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(32 * 5 * 5, FEATURES), nn.ReLU(),
                                  nn.Linear(FEATURES, num_classes))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images)
        return self.head(self.features(images))

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Return the 128 penultimate features (after the ReLU): the space Frechet distance and recall are taken in."""
        check_images(images)
        return self.head[:-1](self.features(images))


def check_images(images: Any) -> None:
    """Refuse anything but a float tensor of MNIST images, (N, 1, 28, 28), with a message that says what to pass."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"The digit judge takes a torch tensor of images, not a {type(images).__name__}.")
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        hint = " (add the channel axis: images.unsqueeze(1))" if tuple(images.shape[-2:]) == (28, 28) \
            and images.ndim == 3 else ""
        raise ValueError(f"The digit judge takes images of shape (N, 1, 28, 28); these have shape "
                         f"{tuple(images.shape)}{hint}.")
    if not images.is_floating_point():
        raise ValueError(f"The digit judge takes float images in [0, 1], not {images.dtype} "
                         "(divide 0-255 pixels by 255).")


def classifier_path(folder: str | Path, data_key: str, steps: int = CLASSIFIER_STEPS, seed: int = 0) -> Path:
    """Return the cache file of the classifier trained with ``steps`` and ``seed`` on the data ``data_key``."""
    return Path(folder) / f"digit_classifier_steps{steps}_seed{seed}_{data_key}.pt"


def train_classifier(data: MNISTData, device: torch.device, steps: int = CLASSIFIER_STEPS, seed: int = 0,
                     progress: bool = True) -> DigitClassifier:
    """Train a ``DigitClassifier`` on ``data``'s clean training images (Adam, lr 0.001, cross-entropy)."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}.")
    generator = seed_everything(seed)
    model = DigitClassifier().to(device).train()
    _train_steps(model, data.train_images, data.train_labels, steps, generator, device, progress, "digit classifier",
                 loader_device=device)
    return model.eval()


def _train_steps(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int,
                 generator: torch.Generator, device: torch.device, progress: bool, desc: str,
                 loader_device: torch.device | None = None,
                 batch: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
                 ) -> None:
    """Train ``model`` for ``steps`` batches (Adam, lr 0.001, cross-entropy), reshuffling ``images`` each pass.

    ``batch`` turns each shuffled (images, labels) into a step's (inputs, targets)
    (default: as they are); ``loader_device`` is where the loader keeps the images.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    done = 0
    with tqdm(total=steps, desc=desc, unit="step", disable=not progress) as bar:
        while done < steps:
            loader = make_loader(images, labels, CLASSIFIER_BATCH_SIZE, shuffle=True, generator=generator,
                                 device=loader_device)
            for inputs, targets in loader:
                if batch is not None:
                    inputs, targets = batch(inputs, targets)
                loss = loss_fn(model(inputs.to(device)), targets.to(device))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                done += 1
                bar.update()
                if done == steps:
                    break


def load_or_train_classifier(data: MNISTData, device: torch.device, folder: str | Path | None,
                             steps: int = CLASSIFIER_STEPS, seed: int = 0, progress: bool = True) -> DigitClassifier:
    """Load the cached classifier for ``data`` from ``folder``, or train it (and cache it there unless None).

    A shared checkpoint folder (``$DAE_SHARED_CHECKPOINTS``) is read too, never written.
    """
    return ckpt.load_or_train(
        classifier_path(".", data.key, steps, seed).name, folder,
        lambda path: read_classifier(path, data.key).to(device),
        lambda: train_classifier(data, device, steps, seed, progress),
        lambda path, model: ckpt.save_model(path, model, _FORMAT, data_key=data.key, steps=steps, seed=seed))


def read_classifier(path: str | Path, data_key: str | None = None) -> DigitClassifier:
    """Read a cached classifier with ``weights_only=True``; refuse a file that is not one, by name."""
    return ckpt.read_model(path, DigitClassifier, _FORMAT, "digit classifier", data_key)


#: The judge's training on full MNIST: steps of 128 digits and 64 negatives each (about 9 epochs of the digits).
JUDGE_STEPS = 4000
#: ... and on smaller data (the offline sample): more passes over 4,000 images would only learn them by heart.
JUDGE_STEPS_SMALL = 1000
JUDGE_NEGATIVES_PER_STEP = 64
#: Training images held out of the judge's training, to fit its temperature.
JUDGE_HELD_OUT = 5000
#: The threshold rule: the highest threshold that still passes this share of one half of the clean test digits
#: (``threshold_split``; the other half checks it).
KEEP_CLEAN_SHARE = 0.95
#: The seed of the split of the test digits into the half that chooses the threshold and the half that checks it.
THRESHOLD_SPLIT_SEED = 0
_JUDGE_FORMAT = "dae-digit-judge"


class CalibratedJudge(nn.Module):
    """An 11-class ``DigitClassifier`` with its fitted ``temperature`` and its chosen readable ``threshold``.

    Calling it returns the logits divided by the temperature, so ``classify`` and every
    measure built on it see calibrated probabilities; ``embed`` returns the features.
    """

    def __init__(self, classifier: DigitClassifier | None = None, temperature: float = 1.0,
                 threshold: float = READABLE_CONFIDENCE) -> None:
        super().__init__()
        self.classifier = classifier if classifier is not None else DigitClassifier(NOT_A_DIGIT + 1)
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self.register_buffer("threshold", torch.tensor(float(threshold)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images) / self.temperature

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.embed(images)


def logits_of(model: nn.Module, images: torch.Tensor, batch_size: int = JUDGE_BATCH_SIZE,
              device: torch.device | None = None) -> torch.Tensor:
    """Return ``model``'s logits for ``images``, in eval mode, batch by batch, on the CPU (float32)."""
    from .generation import apply_in_batches

    check_images(images)
    device = device if device is not None else next(model.parameters()).device
    return apply_in_batches(model, images, device, batch_size).float()


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Return the temperature T > 0 that minimises the cross-entropy of softmax(logits / T) on held-out ``labels``.

    Temperature scaling (Guo, Pleiss, Sun and Weinberger, 2017): one number, fitted
    after training, that softens (T > 1) or sharpens (T < 1) every prediction alike.
    It changes the confidences, never which class wins.
    """
    if len(logits) != len(labels) or len(logits) == 0:
        raise ValueError(f"{len(logits)} rows of logits and {len(labels)} labels: give one label per row, and some.")
    log_t = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")
    logits, labels = logits.double(), labels.long()

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.double().exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def calibration_error(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0, bins: int = 15) -> float:
    """Return the expected calibration error (top label, ``bins`` equal-width bins) of softmax(logits / T).

    The gap between confidence and accuracy, averaged over the bins with the share of
    predictions in each as weight: torchmetrics' ``multiclass_calibration_error``.
    """
    from torchmetrics.functional.classification import multiclass_calibration_error

    probabilities = (logits.double() / temperature).softmax(dim=1).float()
    return float(multiclass_calibration_error(probabilities, labels.long(), num_classes=logits.shape[1],
                                              n_bins=bins, norm="l1"))


def readable_scores(logits: torch.Tensor) -> torch.Tensor:
    """Return each image's readable score: its digit's probability, or 0 where the judge says "not a digit"."""
    probabilities = logits.double().softmax(dim=1)
    confidence, digits = probabilities.max(dim=1)
    return torch.where(digits == NOT_A_DIGIT, torch.zeros_like(confidence), confidence).float()


def choose_threshold(scores: torch.Tensor, keep: float = KEEP_CLEAN_SHARE) -> float:
    """Return the highest threshold that still passes ``keep`` of the clean digits with these readable ``scores``."""
    if not 0 < keep < 1:
        raise ValueError(f"keep is a share between 0 and 1, not {keep}.")
    ordered = scores.double().sort(descending=True).values
    return float(ordered[int(np.ceil(keep * len(ordered))) - 1])


def judge_steps(data: MNISTData) -> int:
    """Return the judge's default training steps for ``data``: ``JUDGE_STEPS`` on full MNIST, fewer on less."""
    return JUDGE_STEPS if len(data.train_images) >= 50_000 else JUDGE_STEPS_SMALL


def vary_digits(images: torch.Tensor, labels: torch.Tensor, pool: torch.Tensor, pool_labels: torch.Tensor,
                generator: torch.Generator) -> torch.Tensor:
    """Return a batch of digits drawn the ways a person still reads: a quarter each blurred (sigma 0.5 to 1.5),
    shifted (up to 3 pixels each way), mixed with another image of the same digit from ``pool`` (weight 0.3 to
    0.7), and left as written."""
    from torchvision.transforms.functional import gaussian_blur

    quarter = len(images) // 4
    out = images.clone()
    sigma = 0.5 + float(torch.rand(1, generator=generator))
    out[:quarter] = gaussian_blur(images[:quarter], kernel_size=7, sigma=sigma)
    for row in range(quarter, 2 * quarter):
        dy, dx = (int(v) for v in torch.randint(-3, 4, (2,), generator=generator))
        out[row] = torch.roll(images[row], shifts=(dy, dx), dims=(-2, -1))  # MNIST's margin of 4 keeps it whole
    rows = slice(2 * quarter, 3 * quarter)
    partners = torch.empty(quarter, dtype=torch.long)
    for i, digit in enumerate(labels[rows].tolist()):
        same = torch.nonzero(pool_labels == digit).squeeze(1)
        partners[i] = same[torch.randint(len(same), (1,), generator=generator)]
    weight = 0.3 + 0.4 * torch.rand(quarter, 1, 1, 1, generator=generator)
    out[rows] = weight * images[rows] + (1 - weight) * pool[partners]
    return out


def train_judge(data: MNISTData, device: torch.device, steps: int | None = None, seed: int = 0,
                progress: bool = True, varied_digits: bool = True,
                negative_shares: dict[str, float] | None = None) -> CalibratedJudge:
    """Train the 11-class judge with outlier exposure, fit its temperature, and choose its threshold.

    Digits: the training images less the last ``JUDGE_HELD_OUT``, drawn the ways a
    person still reads them (``vary_digits``: blurred, shifted, two of the same digit
    mixed, or as written), so that "not a digit" has to mean no digit rather than an
    unusual one; with ``varied_digits=False``, half of each batch is only blurred a
    little (a judge trained so calls most shifted or ghosted digits "not a digit").
    Negatives: ``negatives.mixed`` made from the same images, a new set every step,
    labelled ``NOT_A_DIGIT``; ``negative_shares`` sets their kinds (leave a kind out to
    test the judge on a family it never saw). The held-out images, with negatives of
    their own, fit the temperature. The threshold is the highest that passes
    ``KEEP_CLEAN_SHARE`` of one half of the clean test digits, a seeded split stratified
    by digit (``threshold_split``); the other half is left to check it. The held-out
    training images would set it too high: they are easier than the test digits.
    """
    from torchvision.transforms.functional import gaussian_blur

    from . import negatives

    steps = judge_steps(data) if steps is None else steps
    if steps < 1:
        raise ValueError(f"steps must be at least 1, not {steps}.")
    if len(data.train_images) < 100 or len(data.test_images) < 20:
        raise ValueError(f"{len(data.train_images)} training and {len(data.test_images)} test images are too few "
                         "for the judge: it holds a fifth of the training images out (at most "
                         f"{JUDGE_HELD_OUT}), and half of the test images choose its threshold.")
    held_out = min(JUDGE_HELD_OUT, len(data.train_images) // 5)
    fit_images, fit_labels = data.train_images[:-held_out], data.train_labels[:-held_out]
    generator = seed_everything(seed)
    classifier = DigitClassifier(NOT_A_DIGIT + 1).to(device).train()

    def digits_and_negatives(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if varied_digits:
            images = vary_digits(images, labels, fit_images, fit_labels, generator)
        else:
            sigma = 0.5 + 0.7 * float(torch.rand(1, generator=generator))
            half = len(images) // 2
            images = torch.cat([gaussian_blur(images[:half], kernel_size=5, sigma=sigma), images[half:]])
        fakes = negatives.mixed(fit_images, fit_labels, JUDGE_NEGATIVES_PER_STEP, generator, negative_shares)
        return torch.cat([images, fakes]), torch.cat([labels, torch.full((len(fakes),), NOT_A_DIGIT)])

    _train_steps(classifier, fit_images, fit_labels, steps, generator, device, progress, "digit judge",
                 batch=digits_and_negatives)
    held_images, held_labels = data.train_images[-held_out:], data.train_labels[-held_out:]
    held_negatives = negatives.mixed(held_images, held_labels, held_out, torch.Generator().manual_seed(seed + 1),
                                     negative_shares)
    logits = logits_of(classifier, torch.cat([held_images, held_negatives]))
    targets = torch.cat([held_labels, torch.full((held_out,), NOT_A_DIGIT)])
    temperature = fit_temperature(logits, targets)
    choosing, _ = threshold_split(data.test_labels)
    threshold = choose_threshold(readable_scores(logits_of(classifier, data.test_images[choosing]) / temperature))
    if threshold <= 0:
        raise RuntimeError(f"After {steps} steps the judge calls more than {1 - KEEP_CLEAN_SHARE:.0%} of the clean "
                           "test digits 'not a digit', so no threshold passes the share the rule asks; train it for "
                           f"more steps (the course uses {JUDGE_STEPS}).")
    return CalibratedJudge(classifier.eval(), temperature, threshold).eval()


def threshold_split(test_labels: torch.Tensor, seed: int = THRESHOLD_SPLIT_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the indices of the test digits that choose the judge's threshold and of those that check it.

    ``data.stratified_halves``: a seeded random split stratified by digit, so that the
    two halves are replicates (the first and second 5,000 test images are not: the
    judge trained on written digits passed 95.0 % of one and 97.6 % of the other at
    one threshold, measured).
    """
    from .data import stratified_halves

    return stratified_halves(test_labels, seed)


def judge_path(folder: str | Path, data_key: str, steps: int = JUDGE_STEPS, seed: int = 0) -> Path:
    """Return the cache file of the judge trained with ``steps`` and ``seed`` on the data ``data_key``."""
    return Path(folder) / f"digit_judge_varied_steps{steps}_seed{seed}_{data_key}.pt"


def load_or_train_judge(data: MNISTData, device: torch.device, folder: str | Path | None,
                        steps: int | None = None, seed: int = 0, progress: bool = True) -> CalibratedJudge:
    """Load the cached judge for ``data`` from ``folder`` (or the shared folder), or train it and cache it.

    ``steps`` defaults to ``judge_steps(data)``.
    """
    steps = judge_steps(data) if steps is None else steps
    return ckpt.load_or_train(
        judge_path(".", data.key, steps, seed).name, folder, lambda path: read_judge(path, data.key).to(device),
        lambda: train_judge(data, device, steps, seed, progress),
        lambda path, model: ckpt.save_model(path, model, _JUDGE_FORMAT, data_key=data.key, steps=steps, seed=seed))


def read_judge(path: str | Path, data_key: str | None = None) -> CalibratedJudge:
    """Read a cached judge with ``weights_only=True``; refuse a file that is not one, by name."""
    return ckpt.read_model(path, CalibratedJudge, _JUDGE_FORMAT, "digit judge", data_key)


#: Hard negatives per kind when the judge is tested (made from test images, seed ``TEST_NEGATIVES_SEED``).
TEST_NEGATIVES = 5000
TEST_NEGATIVES_SEED = 2024


def hard_negatives(images: torch.Tensor, labels: torch.Tensor, count: int = TEST_NEGATIVES,
                   seed: int = TEST_NEGATIVES_SEED) -> dict[str, torch.Tensor]:
    """Return ``count`` hard negatives of each kind, made from (test) ``images`` with their own seed.

    Blends are plain pixel means (w = 0.5): what the judge must reject and the issue measured.
    """
    from . import negatives

    generator = torch.Generator().manual_seed(seed)
    return {kind: negatives.make(kind, images, labels, count, generator) for kind in negatives.KINDS}


def pass_rates(classifier: nn.Module, sets: dict[str, torch.Tensor],
               threshold: float | None = None) -> dict[str, float]:
    """Return the share of each named set of images that the judge reads as a digit at ``threshold``."""
    return {name: readable_share(classifier, images, threshold) for name, images in sets.items()}


def readings(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             threshold: float | None = None) -> dict[str, float]:
    """Split what the judge makes of right digits (``labels``) four ways, as shares of ``images``.

    ``right and readable``: the true digit at the threshold or above; ``right, below the
    threshold``: the true digit, less sure; ``another digit``: the wrong digit, at any
    confidence; ``not a digit``. The first is the readable share of right digits; the
    other three say why the rest fail.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"{len(images)} images and {len(labels)} labels: give one label per image, and some.")
    verdict = classify(classifier, images)
    right = verdict.digits == labels.cpu()
    sure = verdict.confidence >= threshold_of(classifier, threshold)
    rejected = verdict.digits == NOT_A_DIGIT
    return {"right and readable": float((right & sure).float().mean()),
            "right, below the threshold": float((right & ~sure).float().mean()),
            "another digit": float((~right & ~rejected).float().mean()),
            "not a digit": float(rejected.float().mean())}


@dataclass(frozen=True)
class Verdict:
    """What the classifier says about each image: its digit, its probability, and the prediction's entropy (nats)."""

    digits: torch.Tensor  # (N,) int64; NOT_A_DIGIT (10) where the judge says so
    confidence: torch.Tensor  # (N,) float, the probability of the named class
    entropy: torch.Tensor  # (N,) float, 0 (certain) to log(classes) (no idea): 2.30 for 10, 2.40 for 11

    def readable(self, threshold: float = READABLE_CONFIDENCE) -> torch.Tensor:
        """Return which images are read as a digit (not "not a digit") with at least ``threshold`` confidence."""
        return (self.digits != NOT_A_DIGIT) & (self.confidence >= threshold)


def threshold_of(classifier: nn.Module, threshold: float | None = None) -> float:
    """Return ``threshold`` if given, else the judge's own chosen threshold, else ``READABLE_CONFIDENCE``."""
    if threshold is None:
        own = getattr(classifier, "threshold", None)
        threshold = float(own) if own is not None else READABLE_CONFIDENCE
    if not 0 < threshold < 1:
        raise ValueError(f"threshold is a probability between 0 and 1, not {threshold}.")
    return threshold


@torch.no_grad()
def classify(classifier: nn.Module, images: torch.Tensor, device: torch.device | None = None,
             batch_size: int = JUDGE_BATCH_SIZE) -> Verdict:
    """Return the classifier's ``Verdict`` on ``images`` (N, 1, 28, 28), in eval mode, batch by batch."""
    check_images(images)
    logits = logits_of(classifier, images, batch_size, device) if len(images) else torch.empty(0, 10)
    probabilities = logits.softmax(dim=1)
    confidence, digits = probabilities.max(dim=1)
    entropy = -(probabilities * probabilities.clamp_min(1e-12).log()).sum(dim=1)
    return Verdict(digits, confidence, entropy)


def digits_kept(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, **kwargs: Any) -> float:
    """Return the share of ``images`` that the classifier reads as their true ``labels``."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels: give one label per image.")
    if len(images) == 0:
        raise ValueError("No images to judge.")
    return float((classify(classifier, images, **kwargs).digits == labels.cpu()).float().mean())


def readable_share(classifier: nn.Module, images: torch.Tensor, threshold: float | None = None,
                   **kwargs: Any) -> float:
    """Return the share of ``images`` read as some digit with at least ``threshold`` confidence.

    The default threshold is the judge's own (``CalibratedJudge.threshold``), or
    ``READABLE_CONFIDENCE`` for a plain classifier.
    """
    threshold = threshold_of(classifier, threshold)
    if len(images) == 0:
        raise ValueError("No images to judge.")
    return float(classify(classifier, images, **kwargs).readable(threshold).float().mean())
