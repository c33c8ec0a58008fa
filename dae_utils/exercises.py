"""Checks for the notebooks' exercises: call one on your answer to see whether it is right.

Each ``check_*`` function runs your function on a few inputs and compares it with
the course's own implementation. If it agrees, the check prints a line that says
so. If not, it raises ``NotYet`` with a hint that points at the usual mistake
without giving the answer away; in a notebook you see the hint alone, without a
traceback. (``NotYet`` is an ``AssertionError``, so nbgrader scores a failed check
as a failed test.) A ``NotImplementedError`` from an unfinished answer is passed
on unchanged.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .clustering import mode_mapping
from .generation import decode
from .noise import add_noise

#: Seeds of the random inputs the checks use; fixed, so a check repeats exactly.
CHECK_SEED = 2024


class NotYet(AssertionError):
    """An answer that does not match yet; the message is a hint."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the hint is what a student needs.
        return [f"\u2717 Not yet. {self}"]


def _passed(message: str) -> None:
    print(f"\u2713 Right: {message}")


def _images(n: int = 16, seed: int = CHECK_SEED) -> torch.Tensor:
    """Return image-like test inputs in [0, 1] with black background, grey and white pixels."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=generator)
    images[images < 0.6] = 0.0  # most pixels black, as in MNIST
    images[images > 0.95] = 1.0  # some exactly white
    return images


def check_black_pixel_mse(formula: Callable[[float], float]) -> None:
    """Check a formula for the expected squared value of a black pixel after clamped noise of std s."""
    for s in (0.1, 0.2, 0.3):  # small enough that the clamp at 1 changes the answer by under 1 %
        exact = _black_pixel_mse(s)
        answer = float(formula(s))
        if not math.isclose(answer, exact, rel_tol=0.01, abs_tol=1e-4):
            if math.isclose(answer, s**2, rel_tol=0.01):
                raise NotYet("That is the MSE without the clamp. Half the time the clamp sets the pixel to 0.")
            if math.isclose(answer, s / math.sqrt(2 * math.pi), rel_tol=0.01):
                raise NotYet("That is the mean of the clamped pixel, not the mean of its square.")
            raise NotYet(
                f"For s = {s} your formula gives {answer:.4f}. Split the expectation into the half where "
                "s*eps < 0 (the clamp gives 0) and the half where it is positive."
            )
    _passed("the formula matches the exact expectation to 1 % for s = 0.1, 0.2 and 0.3.")


def _black_pixel_mse(s: float) -> float:
    """E[clamp(s eps, 0, 1)^2], exactly, by numerical integration over eps ~ N(0, 1)."""
    from scipy import integrate, stats

    inside, _ = integrate.quad(lambda z: (s * z) ** 2 * stats.norm.pdf(z), 0, 1 / s)
    return inside + stats.norm.sf(1 / s)


def check_add_noise(add_noise_mine: Callable[..., torch.Tensor]) -> None:
    """Check ``add_noise_mine(images, noise_factor, generator)`` against ``noise.add_noise``."""
    images = _images()
    for factor in (0.0, 0.3, 0.8):
        expected = add_noise(images, factor, generator=torch.Generator().manual_seed(CHECK_SEED))
        answer = add_noise_mine(images, factor, torch.Generator().manual_seed(CHECK_SEED))
        if not isinstance(answer, torch.Tensor) or answer.shape != images.shape:
            raise NotYet(f"Return a tensor of the images' shape {tuple(images.shape)}.")
        if torch.allclose(answer, expected, atol=1e-6):
            continue
        if answer.min() < 0 or answer.max() > 1:
            raise NotYet("Some pixels lie outside [0, 1]: the noisy image must be clamped back into the pixel range.")
        noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(CHECK_SEED))
        if torch.allclose(answer, (images + factor**2 * noise).clamp(0, 1), atol=1e-6) and factor != 1:
            raise NotYet("The noise is scaled by noise_factor squared. noise_factor is the standard deviation.")
        if factor == 0.0:
            raise NotYet("With noise_factor 0 the images must come back unchanged.")
        raise NotYet(
            "The values differ from image + noise_factor * N(0, 1), clamped. Draw the noise with "
            "torch.randn(images.shape, generator=generator), so that the same generator gives the same noise."
        )
    _passed("add_noise gives the same noisy images as noise.add_noise for noise factors 0, 0.3 and 0.8.")


def check_batch_norm(batch_norm_mine: Callable[..., torch.Tensor]) -> None:
    """Check ``batch_norm_mine(x, gamma, beta, eps)`` against ``nn.BatchNorm2d`` in training mode."""
    generator = torch.Generator().manual_seed(CHECK_SEED)
    x = torch.randn(8, 4, 5, 5, generator=generator) * 3 + 1
    gamma = torch.rand(4, generator=generator) + 0.5
    beta = torch.randn(4, generator=generator)
    layer = nn.BatchNorm2d(4).train()
    with torch.no_grad():
        layer.weight.copy_(gamma)
        layer.bias.copy_(beta)
        expected = layer(x)
    answer = batch_norm_mine(x, gamma, beta, layer.eps)
    if not isinstance(answer, torch.Tensor) or answer.shape != x.shape:
        raise NotYet(f"Return a tensor of the input's shape {tuple(x.shape)}.")
    if torch.allclose(answer, expected, atol=1e-4):
        _passed("your batch norm matches nn.BatchNorm2d in training mode to within 1e-4.")
        return
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    g, b = gamma.view(1, -1, 1, 1), beta.view(1, -1, 1, 1)
    wrong = {
        "You divide by the variance. Batch norm divides by the standard deviation, sqrt(var + eps).":
            g * (x - mean) / (var + layer.eps) + b,
        "You use the unbiased variance (divide by N - 1). In training mode batch norm divides by N.":
            g * (x - mean) / torch.sqrt(x.var(dim=(0, 2, 3), unbiased=True, keepdim=True) + layer.eps) + b,
        "gamma and beta are missing or swapped: scale by gamma, then shift by beta.":
            (x - mean) / torch.sqrt(var + layer.eps),
        "The statistics are taken per image. Each channel's mean and variance run over the batch AND "
        "both spatial axes, dims (0, 2, 3).":
            g * (x - x.mean(dim=(2, 3), keepdim=True))
            / torch.sqrt(x.var(dim=(2, 3), unbiased=False, keepdim=True) + layer.eps) + b,
    }
    for hint, candidate in wrong.items():
        if torch.allclose(answer, candidate, atol=1e-4):
            raise NotYet(hint)
    raise NotYet("The result differs from nn.BatchNorm2d. Check the axes of the mean and variance (0, 2, 3).")


def check_train_step(train_step_mine: Callable[..., float]) -> None:
    """Check ``train_step_mine(encoder, decoder, optimizer, clean, noise_factor)`` against one reference step.

    Your step must add noise with ``noise.add_noise`` (torch's global generator),
    encode, decode, take the MSE against the *clean* images, clear old gradients,
    backpropagate and step the optimizer, and return the loss as a float.
    """
    from .model import Decoder, Encoder
    from .training import train_epoch

    torch.manual_seed(CHECK_SEED)
    encoder, decoder = Encoder(4).train(), Decoder(4).train()
    clean = _images(32)

    def fresh() -> tuple[nn.Module, nn.Module, torch.optim.Optimizer]:
        enc, dec = copy.deepcopy(encoder), copy.deepcopy(decoder)
        optimizer = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
        # Stale gradients from an earlier step: a step that forgets zero_grad adds them in.
        for p in [*enc.parameters(), *dec.parameters()]:
            p.grad = torch.full_like(p, 0.1)
        return enc, dec, optimizer

    enc, dec, optimizer = fresh()
    torch.manual_seed(CHECK_SEED)  # the reference: the course's own train_epoch over this one batch
    expected_loss = train_epoch(enc, dec, torch.device("cpu"), [(clean, None)], nn.MSELoss(), optimizer, 0.3)
    expected_weights = torch.cat([p.detach().flatten() for p in [*enc.parameters(), *dec.parameters()]])

    enc, dec, optimizer = fresh()
    torch.manual_seed(CHECK_SEED)
    answer = train_step_mine(enc, dec, optimizer, clean, 0.3)
    weights = torch.cat([p.detach().flatten() for p in [*enc.parameters(), *dec.parameters()]])
    if isinstance(answer, torch.Tensor):
        raise NotYet("Return the loss as a Python float (loss.item()), not a tensor that keeps the graph alive.")
    if not isinstance(answer, float):
        raise NotYet(f"Return the loss as a float, got {type(answer).__name__}.")
    if math.isclose(answer, expected_loss, rel_tol=1e-5) and torch.allclose(weights, expected_weights, atol=1e-6):
        _passed("one step gives the same loss and the same weights as the course's train_epoch.")
        return
    torch.manual_seed(CHECK_SEED)
    noisy = add_noise(clean, 0.3)  # the same noise the step drew
    noisy_loss = nn.functional.mse_loss(copy.deepcopy(decoder)(copy.deepcopy(encoder)(noisy)), noisy).item()
    if math.isclose(answer, noisy_loss, rel_tol=1e-4):
        raise NotYet("The loss compares the output with the noisy input. Compare it with the clean images.")
    if math.isclose(answer, expected_loss, rel_tol=1e-5):
        raise NotYet("The loss is right but the weights are not: clear the old gradients (optimizer.zero_grad()) "
                     "before loss.backward(), then call optimizer.step().")
    raise NotYet("The loss differs. Add noise with noise.add_noise(clean, noise_factor), encode, decode, and take "
                 "nn.functional.mse_loss(denoised, clean).")


def check_decode_grid(decode_mine: Callable[..., torch.Tensor], decoder: nn.Module, device: torch.device) -> None:
    """Check ``decode_mine(decoder, latent, device)`` on 9 codes: (9, 1, 28, 28) images, in eval mode.

    The check works on a copy of ``decoder``: a decoder run in training mode would
    update its batch-norm statistics, and your model must come out unchanged.
    """
    decoder = copy.deepcopy(decoder)
    latent = torch.randn(9, decoder.latent_dim, generator=torch.Generator().manual_seed(CHECK_SEED))
    expected = decode(decoder, latent, device)
    decoder.train()  # a fair start: a correct answer must switch to eval mode itself
    reference = copy.deepcopy(decoder)
    answer = decode_mine(decoder, latent, device)
    _compare_decoded(answer, expected, reference, latent, device)


def _compare_decoded(
    answer: torch.Tensor, expected: torch.Tensor, decoder: nn.Module, latent: torch.Tensor, device: torch.device
) -> None:
    if not isinstance(answer, torch.Tensor) or tuple(answer.shape) != (9, 1, 28, 28):
        raise NotYet("Return the 9 decoded images as one tensor of shape (9, 1, 28, 28).")
    if answer.requires_grad:
        raise NotYet("The images still carry a gradient graph: decode inside torch.no_grad().")
    if torch.allclose(answer.cpu(), expected, atol=1e-5):
        _passed("the 9 images match the decoder's output in eval mode.")
        return
    with torch.no_grad():
        train_mode = decoder.train()(latent.to(device)).cpu()
    if torch.allclose(answer.cpu(), train_mode, atol=1e-5):
        raise NotYet("The decoder ran in training mode, so batch norm used the 9 codes' own statistics. "
                     "Call decoder.eval() first.")
    raise NotYet("The images differ from the decoder's output for these codes. Decode the codes you were given.")


def check_mode_mapping(mode_mapping_mine: Callable[..., tuple[np.ndarray, float]]) -> None:
    """Check ``mode_mapping_mine(clusters, labels)``, which returns (mapping, accuracy)."""
    rng = np.random.default_rng(CHECK_SEED)
    labels = rng.integers(0, 10, 500)
    clusters = (labels + (rng.random(500) < 0.3) * rng.integers(1, 10, 500)) % 10  # 70 % clean
    clusters = (clusters * 3) % 10  # cluster numbers are not the digits
    clusters[labels == 4] = clusters[labels == 9][0]  # two digits share a cluster, as 4 and 9 often do
    expected_mapping = mode_mapping(clusters, labels)
    expected_accuracy = float(np.mean(expected_mapping[clusters] == labels))
    mapping, accuracy = mode_mapping_mine(clusters, labels)
    mapping = np.asarray(mapping)
    if mapping.shape != (10,):
        raise NotYet("mapping must have one entry per cluster: mapping[c] is the digit cluster c stands for.")
    if np.array_equal(mapping, expected_mapping) and math.isclose(float(accuracy), expected_accuracy, abs_tol=1e-9):
        _passed(f"the mapping and the accuracy ({expected_accuracy:.1%} on the check's clusters) are right.")
        return
    if not np.array_equal(mapping, expected_mapping):
        if len(set(mapping.tolist())) == 10 and len(set(expected_mapping.tolist())) < 10:
            raise NotYet("Your mapping gives every cluster a different digit. The mode mapping lets two clusters "
                         "claim the same digit: take each cluster's most common label on its own.")
        raise NotYet("Name each cluster after the most common true label among its members "
                     "(for example with np.bincount(labels[clusters == c]).argmax()).")
    if math.isclose(float(accuracy), float(np.mean(clusters == labels)), abs_tol=1e-9):
        raise NotYet("The accuracy compares cluster numbers with labels. Compare mapping[clusters] with labels.")
    raise NotYet("The mapping is right; the accuracy is the share of images whose mapped cluster equals their label.")


def check_hungarian_accuracy(hungarian_mine: Callable[..., float]) -> None:
    """Check ``hungarian_mine(clusters, labels)``: the best one-to-one cluster-to-digit accuracy."""
    from .clustering import hungarian_mapping

    rng = np.random.default_rng(CHECK_SEED)
    labels = rng.integers(0, 10, 600)
    clusters = (labels * 7 + 3) % 10
    noisy = rng.random(600) < 0.35
    clusters[noisy] = rng.integers(0, 10, int(noisy.sum()))
    clusters[labels == 4] = clusters[labels == 9][0]  # two digits share a cluster: one of them must lose
    expected = float(np.mean(hungarian_mapping(clusters, labels)[clusters] == labels))
    answer = float(hungarian_mine(clusters, labels))
    if math.isclose(answer, expected, abs_tol=1e-9):
        _passed(f"the one-to-one accuracy is {expected:.1%} on the check's clusters.")
        return
    mapping = mode_mapping(clusters, labels)
    if math.isclose(answer, float(np.mean(mapping[clusters] == labels)), abs_tol=1e-9):
        raise NotYet("That is the mode mapping, where two clusters may claim one digit. Each digit may be "
                     "used once: solve the assignment problem with scipy.optimize.linear_sum_assignment.")
    raise NotYet("Build the counts[digit, cluster] table, find the one-to-one assignment that maximises the "
                 "matched counts (linear_sum_assignment(counts, maximize=True)), and divide by the number of images.")
