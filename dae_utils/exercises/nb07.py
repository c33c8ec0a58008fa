"""Notebook 7's checks: the reparameterisation step, the KL term and the VAE's loss."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .common import CHECK_SEED, NotYet, _calls_checked, _images, _kept, _number, _passed, _tensor, _unchanged

#: Draws per row in the reparameterisation check: the sample variance is then within about 1 % of the true one.
REPARAM_SAMPLES = 40_000


def check_reparameterize(reparameterize_mine: Callable[..., torch.Tensor]) -> None:
    """Check ``reparameterize_mine(mean, logvar, generator)``: one differentiable draw from N(mean, exp(logvar)).

    ``mean`` and ``logvar`` are (B, d); the result is a (B, d) sample whose
    randomness comes from ``generator`` alone and through which gradients reach both
    ``mean`` and ``logvar``. The check compares the samples' mean and variance over
    many draws with ``mean`` and ``exp(logvar)``, and each gradient with the one the
    trick gives (1 for the mean; (z - mean) / 2 for the log-variance).
    """
    from .. import vae

    forbidden = {"vae.reparameterize": vae.reparameterize}
    row_mean = torch.tensor([-1.0, 0.0, 2.0, 0.5])
    row_logvar = torch.tensor([-2.0, 0.0, 1.0, 0.3])  # variances 0.14, 1, 2.7, 1.35: a wrong power shows

    def run(rows: int, seed: int, grad: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
        mean = row_mean.repeat(rows, 1).requires_grad_(grad)
        logvar = row_logvar.repeat(rows, 1).requires_grad_(grad)
        inputs = {"mean": mean.detach(), "logvar": logvar.detach()}
        kept = _kept(inputs)
        returned = _calls_checked(forbidden, reparameterize_mine, mean, logvar, torch.Generator().manual_seed(seed))
        _unchanged(inputs, kept)
        return mean, logvar, returned, _tensor(returned, (rows, 4), f"the {rows} x 4 codes")

    _, _, _, first = run(8, CHECK_SEED)
    if torch.isnan(first).any():
        raise NotYet("Some codes are NaN. A log-variance can be negative: it is the logarithm of the variance, "
                     "not the variance itself, so undo the logarithm before taking a square root.")
    _, _, _, again = run(8, CHECK_SEED)
    _, _, _, other = run(8, CHECK_SEED + 1)
    if not torch.equal(first, again):
        raise NotYet("The same generator gave different codes. Draw the random numbers from the generator you "
                     "were given.")
    if torch.equal(first, other):
        raise NotYet("Two different generators gave the same codes: the codes are not random. A VAE decodes a "
                     "*draw* from the Gaussian, not its mean.")
    _, _, _, many = run(REPARAM_SAMPLES, CHECK_SEED + 2)
    got_mean, got_var = many.mean(dim=0), many.var(dim=0)
    var = row_logvar.double().exp()
    right_var = bool(((got_var / var - 1).abs() < 0.05).all())
    right_mean = bool(((got_mean - row_mean.double()).abs() < 5 * torch.sqrt(var / REPARAM_SAMPLES)).all())
    if not right_var:
        candidates = {
            "The samples' variance is exp(logvar) squared: exp(logvar) is the variance, so the draws must be "
            "scaled by its square root (the standard deviation).": var**2,
            "The samples' variance is the log-variance squared: logvar is the logarithm of the variance, not the "
            "standard deviation.": row_logvar.double() ** 2,
            "The samples' variance is 1 in every dimension: the draws are not scaled by the standard deviation.":
                torch.ones(4, dtype=torch.float64),
        }
        for hint, candidate in candidates.items():
            if ((got_var - candidate).abs() <= 0.05 * candidate + 1e-3).all():  # a candidate may be 0
                raise NotYet(hint)
        raise NotYet(f"Over {REPARAM_SAMPLES:,} draws the samples' variances are {got_var.numpy().round(3)}, but "
                     f"exp(logvar) is {var.numpy().round(3)}.")
    if not right_mean:
        raise NotYet(f"Over {REPARAM_SAMPLES:,} draws the samples' means are {got_mean.numpy().round(3)}, not the "
                     f"means {row_mean.numpy()} you were given: shift the scaled draws by the mean.")
    mean, logvar, returned, codes = run(16, CHECK_SEED + 3, grad=True)
    if not returned.requires_grad:
        raise NotYet("No gradient can flow from the codes back to the mean and the log-variance: the sample was "
                     "drawn outside the graph (.sample() or .detach() cut it). That is what the trick avoids: "
                     "draw the randomness alone, then build the code from it with differentiable operations.")
    returned.sum().backward()
    if mean.grad is None or logvar.grad is None:
        raise NotYet("The gradient reaches only one of the mean and the log-variance; the code must depend on "
                     "both through differentiable operations.")
    if not mean.grad.any() and not logvar.grad.any():
        raise NotYet("The codes have a grad_fn, but the gradients that reach the mean and the log-variance are all "
                     "zero: torch.normal(mean, std) draws this way (section 7.2 shows it), and so silently trains "
                     "nothing. Draw eps from the generator alone, then build mean + std * eps yourself.")
    if not torch.allclose(mean.grad, torch.ones_like(mean.grad), atol=1e-5) \
            or not torch.allclose(logvar.grad.double(), (codes - mean.detach().double()) / 2, atol=1e-4):
        raise NotYet("The samples have the right mean and variance, but the gradients are not the ones the trick "
                     "gives: d code / d mean should be 1 and d code / d logvar (code - mean) / 2.")
    _passed(f"over {REPARAM_SAMPLES:,} draws the codes have the given means and variances exp(logvar), repeat with "
            "the generator, and pass gradients to the mean (1) and the log-variance ((z - mean) / 2).")


def check_kl(kl_mine: Callable[..., Any]) -> None:
    """Check ``kl_mine(mean, logvar)``: KL(N(mean, diag(exp(logvar))) || N(0, I)), summed over d, averaged over B.

    The check compares it with ``torch.distributions.kl_divergence`` on batches of
    several sizes, and refuses a call to that function or to ``vae.kl_to_standard_normal``.
    """
    from torch.distributions import Normal, kl, kl_divergence

    from .. import vae

    forbidden = {"vae.kl_to_standard_normal": vae.kl_to_standard_normal, "torch.distributions.kl_divergence":
                 kl_divergence, "torch.distributions.kl._kl_normal_normal": kl._kl_normal_normal}
    for batch, dim, seed in ((8, 4, CHECK_SEED), (5, 3, CHECK_SEED + 1), (1, 4, CHECK_SEED + 2)):
        generator = torch.Generator().manual_seed(seed)
        mean = torch.randn(batch, dim, generator=generator) * 1.5
        logvar = torch.randn(batch, dim, generator=generator) - 0.5
        per_image = kl_divergence(Normal(mean.double(), (0.5 * logvar.double()).exp()), Normal(0.0, 1.0)).sum(1)
        expected = float(per_image.mean())
        inputs = {"mean": mean, "logvar": logvar}
        kept = _kept(inputs)
        returned = _calls_checked(forbidden, kl_mine, mean, logvar)
        _unchanged(inputs, kept)
        if isinstance(returned, torch.Tensor) and returned.shape in ((batch,), (batch, 1)) and batch > 1:
            raise NotYet(f"Your function returns one value per image, shape {tuple(returned.shape)}. Return the "
                         "batch's average KL as one number.")
        if isinstance(returned, torch.Tensor) and returned.shape == (dim,) and batch > 1:
            raise NotYet("Your function returns one value per code dimension. Sum over the dimensions (the KL of "
                         "independent dimensions adds up), then average over the images.")
        size = returned.numel() if isinstance(returned, torch.Tensor) else np.size(returned)  # np.size misreads tensors
        if isinstance(returned, (numbers.Real, torch.Tensor, np.ndarray)) and size == 1 and math.isnan(float(returned)):
            raise NotYet("Your KL is NaN. Is a logarithm taken of something that can be negative? logvar is "
                         "already the logarithm of the variance; the variance itself is exp(logvar).")
        got = _number(returned, "the KL divergence")
        if math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6):
            continue
        mean64, logvar64 = mean.double(), logvar.double()
        wrong = {
            "Your KL is twice the right one: the closed form has a factor 1/2 in front.": 2 * expected,
            "Your KL is half the right one: the factor 1/2 is there twice.": expected / 2,
            f"Your KL is {batch} times the right one: it is summed over the batch instead of averaged, so it "
            "would grow with the batch size.": batch * expected,
            f"Your KL is 1/{dim} of the right one: it is averaged over the code's dimensions instead of summed.":
                expected / dim,
            "Your KL has the wrong sign: a KL divergence is never negative.": -expected,
            "The terms with the variance cancel in your formula: the variance is exp(logvar), and the log of "
            "the variance is logvar itself.": float((0.5 * (mean64**2 - 1)).sum(1).mean()),
            "The variance term uses the standard deviation exp(logvar / 2) where the variance exp(logvar) "
            "belongs.": float((0.5 * ((0.5 * logvar64).exp() + mean64**2 - 1 - logvar64)).sum(1).mean()),
        }
        for hint, value in wrong.items():
            if math.isfinite(value) and math.isclose(got, value, rel_tol=1e-4, abs_tol=1e-6):
                raise NotYet(hint)
        raise NotYet(f"For a batch of {batch} codes of size {dim} your KL is {got:.6g}; it should be "
                     f"{expected:.6g}. Derive it per dimension, then sum over the dimensions and average over the "
                     "images.")
    _passed("the KL term agrees with torch.distributions.kl_divergence, summed over the code's dimensions and "
            "averaged over the images, for batches of 8, 5 and 1.")


#: The ELBO check's batches: (images, code size, beta), so that a beta left out or misplaced shows.
ELBO_CASES = ((8, 4, 1.0), (5, 3, 4.0), (3, 4, 0.25))


def check_elbo_loss(elbo_loss_mine: Callable[..., Any]) -> None:
    """Check ``elbo_loss_mine(recon, target, mean, logvar, beta)``: the VAE's loss, one number for the batch.

    The loss per image is the binary cross-entropy of the decoded ``recon`` against the
    clean ``target``, summed over the pixels, plus ``beta`` times the KL term summed
    over the code's dimensions; the batch's loss is its average over the images. Honest
    variants pass: a hand-written cross-entropy (with or without clamping the
    logarithm), ``F.binary_cross_entropy``, the KL by its closed form or by
    ``torch.distributions``, and returning the two terms as well, as long as the loss
    comes first. It must be a tensor with a gradient, since training steps on it, and
    the check compares that gradient with the right one. ``vae.elbo_loss`` is refused.
    """
    import torch.nn.functional as F

    from .. import vae

    for batch, dim, beta in ELBO_CASES:
        generator = torch.Generator().manual_seed(CHECK_SEED + batch)
        target = _images(batch, seed=CHECK_SEED + batch)
        # Decodes strictly inside (0, 1), as a sigmoid gives them, so clamping the logarithm changes nothing.
        recon = torch.sigmoid(torch.randn(batch, 1, 28, 28, generator=generator) * 2).clamp(0.01, 0.99)
        mean = torch.randn(batch, dim, generator=generator) * 1.5
        logvar = torch.randn(batch, dim, generator=generator) - 0.5
        leaves = {name: value.clone().requires_grad_(True) for name, value in
                  (("recon", recon), ("mean", mean), ("logvar", logvar))}
        # The answer gets what training gives it: tensors inside the autograd graph, not leaves.
        inputs = {"recon": leaves["recon"] * 1, "target": target.clone(), "mean": leaves["mean"] * 1,
                  "logvar": leaves["logvar"] * 1}
        kept = _kept({name: value.detach() for name, value in inputs.items()})
        returned = _calls_checked({"vae.elbo_loss": vae.elbo_loss}, elbo_loss_mine, inputs["recon"],
                                  inputs["target"], inputs["mean"], inputs["logvar"], beta)
        _unchanged({name: value.detach() for name, value in inputs.items()}, kept)
        if isinstance(returned, (tuple, list)) or hasattr(returned, "loss"):
            returned = returned.loss if hasattr(returned, "loss") else (returned[0] if len(returned) else None)
        recon64, target64 = recon.double(), target.double()
        # The reference: the course's own loss (tested against a hand computation), in float64.
        terms = vae.elbo_loss(recon64, target64, mean.double(), logvar.double(), beta)
        expected, reconstruction, kl_mean = float(terms.loss), float(terms.reconstruction), float(terms.kl)
        if isinstance(returned, torch.Tensor) and returned.numel() == batch and batch > 1:
            raise NotYet(f"Your function returns one loss per image, shape {tuple(returned.shape)}. Return the "
                         "batch's average as one number: the optimiser steps on one loss.")
        value = returned.detach() if isinstance(returned, torch.Tensor) else returned
        if isinstance(value, torch.Tensor) and value.numel() == 1 and math.isnan(float(value)):
            raise NotYet("Your loss is NaN: a logarithm of 0 or of a negative number? The cross-entropy takes the "
                         "log of the decoded pixels and of 1 minus them, never of the target.")
        got = _number(value, "the loss")
        if math.isclose(got, expected, rel_tol=1e-4):
            if not isinstance(returned, torch.Tensor) or returned.grad_fn is None:
                raise NotYet("Your loss has the right value but no gradient: it was turned into a plain number "
                             "(float(), .item(), NumPy) or computed from detached tensors. Training steps on its "
                             "gradient, so return the tensor itself.")
            returned.backward()
            # d loss / d mean = beta * mean / B: the KL's gradient, averaged over the batch.
            if leaves["mean"].grad is None or not torch.allclose(leaves["mean"].grad, beta * mean / batch,
                                                                 rtol=1e-3, atol=1e-6):
                raise NotYet("Your loss has the right value, but its gradient with respect to the mean is not "
                             "beta * mean / batch size. Is part of it computed from a detached copy?")
            continue
        wrong = {
            "Your reconstruction term is averaged over the pixels: sum it over each image's 784 pixels. The sum is "
            "the image's negative log-likelihood, and its scale is what the KL term is weighed against.":
                reconstruction / recon[0].numel() + beta * kl_mean,
            f"Your loss is {batch} times the right one: it is summed over the batch instead of averaged, so it "
            "would grow with the batch size.": batch * expected,
            "Your loss ignores beta: it multiplies the KL term, and this batch has beta = "
            f"{beta:g}.": reconstruction + kl_mean,
            "beta multiplies your reconstruction term; it weighs the KL term.": beta * reconstruction + kl_mean,
            "Your KL term is subtracted: the loss is the *negative* ELBO, reconstruction + beta * KL, and both "
            "terms are costs.": reconstruction - beta * kl_mean,
            "Your reconstruction term is the squared error. The VAE of this notebook reads each pixel as the "
            "probability of ink (section 7.3): use the binary cross-entropy, summed over the pixels.":
                float((recon64 - target64).pow(2).flatten(1).sum(1).mean() + beta * kl_mean),
            # PyTorch's cross-entropy clamps its logarithms at -100, so the swapped call stays finite.
            "Your cross-entropy has its arguments swapped: the decoded pixels are the probabilities inside the "
            "logarithm, the clean image is the target, and PyTorch's cross-entropy takes the prediction first.":
                float(F.binary_cross_entropy(target64, recon64, reduction="sum") / batch + beta * kl_mean),
        }
        for hint, wrong_value in wrong.items():
            if math.isfinite(wrong_value) and math.isclose(got, wrong_value, rel_tol=1e-4):
                raise NotYet(hint)
        raise NotYet(f"For a batch of {batch} images with beta = {beta:g} your loss is {got:.6g}; it should be "
                     f"{expected:.6g}. Per image: the cross-entropy summed over the pixels, plus beta times the KL "
                     "summed over the code's dimensions; then the average over the images.")
    _passed("the loss is the cross-entropy summed over the pixels plus beta times the KL, averaged over the images, "
            "for batches of 8, 5 and 3 at beta = 1, 4 and 0.25, and its gradient reaches the code.")
