"""Checks for the notebooks' exercises: call one on your answer to see whether it is right.

Each ``check_*`` function runs your function on a few inputs and compares it with
the course's own implementation. If it agrees, the check prints a line that says
so. If not, it raises ``NotYet`` with a hint that points at the usual mistake
without giving the answer away; in a notebook you see the hint alone, without a
traceback. (``NotYet`` is an ``AssertionError``, so nbgrader scores a failed check
as a failed test.) A ``NotImplementedError`` from an unfinished answer is passed
on unchanged.

The checks are fair to every honest answer: a number may come as any real type
(float, NumPy or torch scalar, float32 included) and is compared at a tolerance that
fits the quantity; a tensor may have any floating dtype and is compared at that
dtype's precision; an unusual return (None, a dict, an array of one number) gets a
hint, never a crash inside the check; and an answer that changes its input in
place is refused, because in the notebook it would quietly change the student's
data. Hints name the mistake, not the line that fixes it.

The notebooks' grade cells reload this module before they check
(``importlib.reload(dae_utils.exercises).check_...``), so rebinding a check in an
unlocked cell does not change what grades the answer.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable
from typing import Any

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


#: The noise factor of the training-step check: strong, so that a step fed the clean images stands out.
STEP_NOISE = 0.8
#: Accuracies are shares of a few hundred images: a float32 answer is within 1e-6 of the exact share.
ACCURACY_TOL = 1e-6


def _number(value: Any, what: str) -> float:
    """Return ``value`` as a float if it is one real number of any type; otherwise raise a hint."""
    if value is None:
        raise NotYet(f"Your function returned None instead of {what}. Is the `return` line missing?")
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.shape != ():
            raise NotYet(f"Return {what} as one number, not an array or tensor of shape {tuple(value.shape)}.")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise NotYet(f"Return {what} as a number, not a {type(value).__name__}.")
    number = float(value)
    if not math.isfinite(number):
        raise NotYet(f"Your {what} is {number}, not a finite number.")
    return number


def _tensor(value: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """Return ``value`` as float64 on the CPU if it is a floating tensor of ``shape``; otherwise raise a hint."""
    if value is None:
        raise NotYet(f"Your function returned None instead of {what}. Is the `return` line missing?")
    if not isinstance(value, torch.Tensor):
        raise NotYet(f"Return {what} as a torch tensor of shape {shape}, not a {type(value).__name__}.")
    if tuple(value.shape) != shape:
        raise NotYet(f"Return {what} as a tensor of shape {shape}; yours has shape {tuple(value.shape)}.")
    if not value.is_floating_point():
        raise NotYet(f"{what[0].upper() + what[1:]} must be floating-point values; yours are {value.dtype}.")
    return value.detach().cpu().double()


def _close(answer: torch.Tensor, dtype: torch.dtype, expected: torch.Tensor, atol: float) -> bool:
    """Compare at ``atol`` or at the precision of the answer's own dtype, whichever is coarser."""
    precision = 4 * torch.finfo(dtype).eps
    return torch.allclose(answer, expected.double(), atol=max(atol, precision), rtol=precision)


def _kept(inputs: dict[str, Any]) -> dict[str, Any]:
    """Copy the inputs an answer is given, to find out afterwards whether it changed them."""
    return {name: value.clone() if isinstance(value, torch.Tensor) else np.array(value, copy=True)
            for name, value in inputs.items()}


def _unchanged(inputs: dict[str, Any], kept: dict[str, Any]) -> None:
    """Refuse an answer that changed an input in place: in the notebook it would change the caller's data."""
    for name, value in inputs.items():
        same = torch.equal(value, kept[name]) if isinstance(value, torch.Tensor) else np.array_equal(value, kept[name])
        if not same:
            raise NotYet(f"Your function changed its input `{name}` in place, so it would also change the data "
                         "of whoever calls it. Leave the inputs as they are and build new tensors or arrays "
                         "(in-place operations such as +=, .add_() or .clamp_() change their input).")


def check_black_pixel_mse(formula: Callable[[float], float]) -> None:
    """Check a formula for the expected squared value of a black pixel after clamped noise of std s."""
    for s in (0.1, 0.2, 0.3):  # small enough that the clamp at 1 changes the answer by under 1 %
        exact = _black_pixel_mse(s)
        answer = _number(formula(s), "the expected squared value")
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
        inputs = {"images": images}
        kept = _kept(inputs)
        returned = add_noise_mine(images, factor, torch.Generator().manual_seed(CHECK_SEED))
        _unchanged(inputs, kept)
        answer = _tensor(returned, tuple(images.shape), "the noisy images")
        if _close(answer, returned.dtype, expected, 1e-6):
            continue
        if answer.min() < 0 or answer.max() > 1:
            raise NotYet("Some pixels lie outside [0, 1]: the noisy image must be clamped back into the pixel range.")
        noise = torch.randn(images.shape, generator=torch.Generator().manual_seed(CHECK_SEED))
        if _close(answer, returned.dtype, (images + factor**2 * noise).clamp(0, 1), 1e-6) and factor != 1:
            raise NotYet("The noise is scaled by noise_factor squared. noise_factor is the standard deviation.")
        if _close(answer, returned.dtype, (images + factor * noise).clamp(0, 1).round(), 1e-6):
            raise NotYet("The noisy pixels are rounded to 0 or 1; keep them as fractions.")
        if factor == 0.0:
            raise NotYet("With noise_factor 0 the images must come back unchanged.")
        raise NotYet(
            "The values differ from image + noise_factor * N(0, 1), clamped. Is the noise drawn from the "
            "generator you were given, with one value per pixel, so that the same generator gives the same noise?"
        )
    _passed("add_noise gives the same noisy images as noise.add_noise for noise factors 0, 0.3 and 0.8.")


def check_batch_norm(batch_norm_mine: Callable[..., torch.Tensor]) -> None:
    """Check ``batch_norm_mine(x, gamma, beta, eps)`` against ``nn.BatchNorm2d`` in training mode."""
    generator = torch.Generator().manual_seed(CHECK_SEED)
    x = torch.randn(8, 4, 5, 5, generator=generator) * 3 + 1
    x[:, 3] = 0.5 + 0.003 * x[:, 3]  # a channel whose variance is near eps: where eps goes matters there
    gamma = torch.rand(4, generator=generator) + 0.5
    beta = torch.randn(4, generator=generator)
    layer = nn.BatchNorm2d(4).train()
    with torch.no_grad():
        layer.weight.copy_(gamma)
        layer.bias.copy_(beta)
        expected = layer(x)
    inputs = {"x": x, "gamma": gamma, "beta": beta}
    kept = _kept(inputs)
    returned = batch_norm_mine(x, gamma, beta, layer.eps)
    _unchanged(inputs, kept)
    answer = _tensor(returned, tuple(x.shape), "the normalised tensor")
    if _close(answer, returned.dtype, expected, 1e-4):
        _passed("your batch norm matches nn.BatchNorm2d in training mode to within 1e-4.")
        return
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    std = torch.sqrt(var + layer.eps)
    g, b = gamma.view(1, -1, 1, 1), beta.view(1, -1, 1, 1)
    wrong = {
        "You divide by the variance. Batch norm divides by the standard deviation, sqrt(var + eps).":
            g * (x - mean) / (var + layer.eps) + b,
        "You use the unbiased variance (divide by N - 1). In training mode batch norm divides by N.":
            g * (x - mean) / torch.sqrt(x.var(dim=(0, 2, 3), unbiased=True, keepdim=True) + layer.eps) + b,
        "eps belongs inside the square root: sqrt(var + eps), not sqrt(var) + eps.":
            g * (x - mean) / (torch.sqrt(var) + layer.eps) + b,
        "gamma and beta are swapped: gamma scales the normalised values, beta shifts them.":
            b * (x - mean) / std + g,
        "Neither gamma nor beta is applied: scale the normalised values by gamma, then shift them by beta.":
            (x - mean) / std,
        "beta is missing: after scaling by gamma, shift by beta.": g * (x - mean) / std,
        "gamma is missing: scale the normalised values by gamma before shifting by beta.": (x - mean) / std + b,
        "The statistics are taken per image. Each channel's mean and variance run over the batch AND "
        "both spatial axes.":
            g * (x - x.mean(dim=(2, 3), keepdim=True))
            / torch.sqrt(x.var(dim=(2, 3), unbiased=False, keepdim=True) + layer.eps) + b,
        "The statistics are taken over all channels together. Batch norm keeps one mean and one variance "
        "per channel.":
            g * (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + layer.eps) + b,
    }
    for hint, candidate in wrong.items():
        if _close(answer, returned.dtype, candidate, 1e-4):
            raise NotYet(hint)
    raise NotYet("The result differs from nn.BatchNorm2d. Check over which axes the mean and variance are taken: "
                 "one value per channel.")


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
    expected_loss = train_epoch(enc, dec, torch.device("cpu"), [(clean, None)], nn.MSELoss(), optimizer,
                                STEP_NOISE)
    expected_weights = torch.cat([p.detach().flatten() for p in [*enc.parameters(), *dec.parameters()]])

    enc, dec, optimizer = fresh()
    inputs = {"clean": clean}
    kept = _kept(inputs)
    torch.manual_seed(CHECK_SEED)
    returned = train_step_mine(enc, dec, optimizer, clean, STEP_NOISE)
    _unchanged(inputs, kept)
    weights = torch.cat([p.detach().flatten() for p in [*enc.parameters(), *dec.parameters()]])
    if isinstance(returned, torch.Tensor):
        raise NotYet("Return the loss as a Python float (loss.item()), not a tensor that keeps the graph alive.")
    answer = _number(returned, "the loss")
    if math.isclose(answer, expected_loss, rel_tol=1e-5) and torch.allclose(weights, expected_weights, atol=1e-6):
        _passed("one step gives the same loss and the same weights as the course's train_epoch.")
        return
    torch.manual_seed(CHECK_SEED)
    noisy = add_noise(clean, STEP_NOISE)  # the same noise the step drew
    with torch.no_grad():
        noisy_loss = nn.functional.mse_loss(copy.deepcopy(decoder)(copy.deepcopy(encoder)(noisy)), noisy).item()
        clean_in = nn.functional.mse_loss(copy.deepcopy(decoder)(copy.deepcopy(encoder)(clean)), clean).item()
        eval_loss = nn.functional.mse_loss(copy.deepcopy(decoder).eval()(copy.deepcopy(encoder).eval()(noisy)),
                                           clean).item()
    # An untrained model answers clean and noisy inputs nearly alike (their losses differ by 2.6e-4 at
    # STEP_NOISE), so the candidates are told apart at 1e-5, the right loss first.
    if math.isclose(answer, expected_loss, rel_tol=1e-5):
        raise NotYet("The loss is right but the weights are not. Are the old gradients cleared before "
                     "backpropagating, and does the optimizer take its step?")
    if math.isclose(answer, noisy_loss, rel_tol=1e-5):
        raise NotYet("The loss compares the output with the noisy input. Compare it with the clean images.")
    if math.isclose(answer, clean_in, rel_tol=1e-5):
        raise NotYet("The model was given the clean images. A denoising autoencoder gets the noisy ones as input "
                     "and is scored against the clean ones.")
    if math.isclose(answer, eval_loss, rel_tol=1e-5):
        raise NotYet("The models ran in evaluation mode, so batch norm used its running statistics instead of "
                     "the batch's. A training step runs them in training mode.")
    raise NotYet("The loss differs. Check what goes into the model (the noisy images), what its output is compared "
                 "with (the clean ones) and how (the mean squared error over all pixels).")


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
    inputs = {"latent": latent}
    kept = _kept(inputs)
    returned = decode_mine(decoder, latent, device)
    _unchanged(inputs, kept)
    _compare_decoded(returned, expected, reference, latent, device)


def _compare_decoded(
    returned: Any, expected: torch.Tensor, decoder: nn.Module, latent: torch.Tensor, device: torch.device
) -> None:
    answer = _tensor(returned, (9, 1, 28, 28), "the 9 decoded images")
    if returned.requires_grad:
        raise NotYet("The images still carry a gradient graph, which keeps memory busy: decoding needs no "
                     "gradients.")
    if _close(answer, returned.dtype, expected, 1e-5):
        _passed("the 9 images match the decoder's output in eval mode.")
        return
    with torch.no_grad():
        train_mode = decoder.train()(latent.to(device)).cpu()
    if _close(answer, returned.dtype, train_mode, 1e-5):
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
    inputs = {"clusters": clusters, "labels": labels}
    kept = _kept(inputs)
    returned = mode_mapping_mine(clusters, labels)
    _unchanged(inputs, kept)
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise NotYet("Return two things, the mapping and the accuracy, as a pair (mapping, accuracy).")
    mapping, accuracy = returned
    if isinstance(mapping, dict):  # {cluster: digit} works as well as an array indexed by cluster
        missing = [c for c in range(10) if c not in mapping]
        if missing:
            raise NotYet(f"The mapping has no entry for cluster {missing[0]}: every cluster 0-9 needs a digit.")
        mapping = [mapping[c] for c in range(10)]
    if mapping is None:
        raise NotYet("The mapping is None. Is it filled in and returned?")
    mapping = np.asarray(mapping)
    if mapping.shape != (10,):
        raise NotYet(f"The mapping must hold one digit per cluster, 10 in all: mapping[c] is the digit cluster c "
                     f"stands for. Yours has shape {mapping.shape}.")
    accuracy = _number(accuracy, "the accuracy")
    right_mapping = np.array_equal(mapping, expected_mapping)
    if right_mapping and math.isclose(accuracy, expected_accuracy, abs_tol=ACCURACY_TOL):
        _passed(f"the mapping and the accuracy ({expected_accuracy:.1%} on the check's clusters) are right.")
        return
    if not right_mapping:
        if len(set(mapping.tolist())) == 10 and len(set(expected_mapping.tolist())) < 10:
            raise NotYet("Your mapping gives every cluster a different digit. The mode mapping lets two clusters "
                         "claim the same digit: take each cluster's most common label on its own.")
        raise NotYet("Some clusters map to the wrong digit. Each cluster stands for the digit that is most "
                     "common among the true labels of its members.")
    if math.isclose(accuracy, 100 * expected_accuracy, abs_tol=100 * ACCURACY_TOL):
        raise NotYet("That is a percentage. Return the accuracy as a share between 0 and 1.")
    if math.isclose(accuracy, float(np.mean(clusters == labels)), abs_tol=ACCURACY_TOL):
        raise NotYet("The accuracy compares cluster numbers with labels. Compare each image's mapped digit "
                     "with its label.")
    raise NotYet("The mapping is right; the accuracy is the share of images whose mapped cluster equals their label.")


def check_hungarian_accuracy(hungarian_mine: Callable[..., float]) -> None:
    """Check ``hungarian_mine(clusters, labels)``: the best one-to-one cluster-to-digit accuracy."""
    from .clustering import digit_cluster_counts, hungarian_mapping

    rng = np.random.default_rng(CHECK_SEED)
    labels = rng.integers(0, 10, 600)
    clusters = (labels * 7 + 3) % 10
    noisy = rng.random(600) < 0.35
    clusters[noisy] = rng.integers(0, 10, int(noisy.sum()))
    clusters[labels == 4] = clusters[labels == 9][0]  # two digits share a cluster: one of them must lose
    expected = float(np.mean(hungarian_mapping(clusters, labels)[clusters] == labels))
    inputs = {"clusters": clusters, "labels": labels}
    kept = _kept(inputs)
    returned = hungarian_mine(clusters, labels)
    _unchanged(inputs, kept)
    answer = _number(returned, "the accuracy")
    if math.isclose(answer, expected, abs_tol=ACCURACY_TOL):
        _passed(f"the one-to-one accuracy is {expected:.1%} on the check's clusters.")
        return
    mapping = mode_mapping(clusters, labels)
    if math.isclose(answer, float(np.mean(mapping[clusters] == labels)), abs_tol=ACCURACY_TOL):
        raise NotYet("That is the mode mapping, where two clusters may claim one digit. Here each digit may be "
                     "used once: that makes it an assignment problem, which scipy.optimize can solve.")
    if math.isclose(answer, 100 * expected, abs_tol=100 * ACCURACY_TOL):
        raise NotYet("That is a percentage. Return the accuracy as a share between 0 and 1.")
    counts = digit_cluster_counts(clusters, labels)
    if math.isclose(answer, counts.max(axis=1).sum() / len(labels), abs_tol=ACCURACY_TOL):
        raise NotYet("Each digit took its best cluster on its own, so two digits may share one. The pairing must "
                     "be one-to-one: one cluster per digit, one digit per cluster.")
    raise NotYet("Count how many images of each digit fall in each cluster, choose the one-to-one pairing of "
                 "clusters and digits that keeps the most images, and divide by the number of images.")
