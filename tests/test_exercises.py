"""Every exercise check accepts each honest right answer and turns each wrong or unusual one into a hint.

The table below holds right answers written the ways students write them (other
dtypes, NumPy or torch scalars, dicts for mappings) and typical wrong ones, each
with the hint it must get. A check must never crash on an answer: it passes it or
raises ``NotYet`` with a hint.
"""

import ast
import importlib
import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn

from dae_utils import exercises, generation, training, vae
from dae_utils.batchnorm import batch_norm_2d
from dae_utils.clustering import hungarian_mapping, mode_mapping
from dae_utils.generation import LatentGaussian, decode
from dae_utils.model import Decoder, Encoder
from dae_utils.noise import add_noise
from dae_utils.training import train_epoch, training_step

CPU = torch.device("cpu")
RIGHT = None  # the expected outcome of a right answer: the check passes

# --- Notebook 1: the expected squared value of a black pixel -------------------------------------------------

BLACK_PIXEL = {
    "s^2 / 2": (lambda s: s**2 / 2, RIGHT),
    "0.5 s s": (lambda s: 0.5 * s * s, RIGHT),
    "float32 NumPy scalar": (lambda s: np.float32(s**2 / 2), RIGHT),
    "0-d tensor": (lambda s: torch.tensor(s**2 / 2), RIGHT),
    "exact integral": (exercises.nb01._black_pixel_mse, RIGHT),
    "no clamp": (lambda s: s**2, "without the clamp"),
    "mean, not mean square": (lambda s: s / math.sqrt(2 * math.pi), "not the mean of its square"),
    "s / 2": (lambda s: s / 2, "Split the expectation"),
    "None": (lambda s: None, "returned None"),
    "array of one": (lambda s: np.array([s**2 / 2]), r"one number, not an array or tensor of shape \(1,\)"),
    "list": (lambda s: [s**2 / 2], "not a list"),
    "string": (lambda s: "0.045", "not a str"),
    "bool": (lambda s: True, "not a bool"),
    "NaN": (lambda s: math.nan, "not a finite number"),
}

# --- Notebook 1: noise with a strength of its own at every pixel ----------------------------------------------


def _noisy(images, std, g):
    return images + std * torch.randn(images.shape, generator=g)


def _add_in_place(images, std, g):
    images += std * torch.randn(images.shape, generator=g)
    return images.clamp_(0, 1)


ADD_NOISE_MAP = {
    "clamp(0, 1)": (lambda images, std, g: _noisy(images, std, g).clamp(0, 1), RIGHT),
    "clamp(min=, max=)": (lambda images, std, g: torch.clamp(_noisy(images, std, g), min=0.0, max=1.0), RIGHT),
    "map reshaped to (1, 1, 28, 28)": (lambda images, std, g: (images + std.view(1, 1, 28, 28) * torch.randn(
        images.shape, generator=g)).clamp(0, 1), RIGHT),
    "randn(*shape)": (lambda images, std, g: (images + std * torch.randn(*images.shape, generator=g)).clamp(0, 1),
                      RIGHT),
    "normal(0, std) per pixel": (lambda images, std, g: (images + torch.randn(images.shape, generator=g)
                                                         .mul(std.expand(images.shape))).clamp(0, 1), RIGHT),
    "float64 result": (lambda images, std, g: _noisy(images, std, g).clamp(0, 1).double(), RIGHT),
    "half result": (lambda images, std, g: _noisy(images, std, g).clamp(0, 1).half(), RIGHT),
    "the course's add_noise": (lambda images, std, g: add_noise(images, std, generator=g),
                               (ValueError, r"noise_factor must be a number, got a Tensor of shape \(28, 28\)")),
    "the course's add_noise at the map's mean": (lambda images, std, g: add_noise(images, float(std.mean()),
                                                                                   generator=g), "same strength"),
    "no clamp": (_noisy, "clamped back"),
    "clamp below only": (lambda images, std, g: _noisy(images, std, g).clamp(min=0), "outside \\[0, 1\\]"),
    "map as variances": (lambda images, std, g: _noisy(images, std**2, g).clamp(0, 1), "their squares"),
    "square root of the map": (lambda images, std, g: _noisy(images, std.sqrt(), g).clamp(0, 1), "square root"),
    "map's mean everywhere": (lambda images, std, g: _noisy(images, std.mean(), g).clamp(0, 1), "same strength"),
    "global generator": (lambda images, std, g: (images + std * torch.randn(images.shape)).clamp(0, 1),
                         "generator you were given"),
    "one noise image for all": (lambda images, std, g: (images + std * torch.randn(28, 28, generator=g)).clamp(0, 1),
                                "one value per pixel"),
    "map transposed and shifted": (lambda images, std, g: _noisy(images, std.roll(3, 0), g).clamp(0, 1),
                                   "pixel by pixel"),
    "rounded": (lambda images, std, g: _noisy(images, std, g).clamp(0, 1).round(), "rounded"),
    "zeros": (lambda images, std, g: torch.zeros_like(images), "pixel by pixel"),
    "in place": (_add_in_place, "changed its input `images` in place"),
    "None": (lambda images, std, g: None, "returned None"),
    "NumPy array": (lambda images, std, g: _noisy(images, std, g).clamp(0, 1).numpy(), "not a ndarray"),
    "channel dropped": (lambda images, std, g: _noisy(images, std, g).clamp(0, 1)[:, 0], r"shape \(16, 1, 28, 28\)"),
    "integers": (lambda images, std, g: _noisy(images, std, g).clamp(0, 1).long(), "floating-point"),
}

# --- Notebook 2: batch norm in evaluation mode, from the running statistics ----------------------------------


def _bn_eval(x, mean, var, gamma, beta, eps, *, divide=None, scale=True, shift=True, swap=False, centre=True):
    m, v = mean.view(1, -1, 1, 1), var.view(1, -1, 1, 1)
    g, b = gamma.view(1, -1, 1, 1), beta.view(1, -1, 1, 1)
    if swap:
        g, b = b, g
    normed = ((x - m) if centre else x) / (divide(v, eps) if divide else torch.sqrt(v + eps))
    return (g * normed if scale else normed) + (b if shift else 0)


def _bn_eval_in_place(x, mean, var, gamma, beta, eps):
    x.sub_(mean.view(1, -1, 1, 1)).div_(torch.sqrt(var.view(1, -1, 1, 1) + eps))
    return x * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def _bn_layer(x, mean, var, gamma, beta, eps):
    layer = nn.BatchNorm2d(len(mean), eps=eps).eval()
    layer.load_state_dict({"weight": gamma, "bias": beta, "running_mean": mean, "running_var": var,
                           "num_batches_tracked": torch.tensor(1)})
    with torch.no_grad():
        return layer(x)


BATCH_NORM_EVAL = {
    "by hand": (_bn_eval, RIGHT),
    "with rsqrt": (lambda x, m, v, g, b, eps: (x - m[:, None, None]) * torch.rsqrt(v[:, None, None] + eps)
                   * g[:, None, None] + b[:, None, None], RIGHT),
    "as one scale and shift": (lambda x, m, v, g, b, eps: x * (g / torch.sqrt(v + eps)).view(1, -1, 1, 1)
                               + (b - m * g / torch.sqrt(v + eps)).view(1, -1, 1, 1), RIGHT),
    "float64 result": (lambda x, m, v, g, b, eps: _bn_eval(x.double(), m.double(), v.double(), g.double(),
                                                           b.double(), eps), RIGHT),
    "torch's layer": (_bn_layer, "torch.nn.functional.batch_norm"),
    "torch's function": (lambda x, m, v, g, b, eps: nn.functional.batch_norm(x, m, v, g, b, training=False, eps=eps),
                         "torch.nn.functional.batch_norm"),
    "torch.batch_norm": (lambda x, m, v, g, b, eps: torch.batch_norm(x, g, b, m, v, False, 0.1, eps, False),
                         "torch.batch_norm"),
    "the batch's statistics (the course's training-mode function)": (lambda x, m, v, g, b, eps:
                                                                      batch_norm_2d(x, g, b, eps), "running"),
    "by the variance": (lambda *a: _bn_eval(*a, divide=lambda v, e: v + e), "standard deviation"),
    "eps outside the root": (lambda *a: _bn_eval(*a, divide=lambda v, e: torch.sqrt(v) + e),
                             "inside the square root"),
    "gamma and beta swapped": (lambda *a: _bn_eval(*a, swap=True), "swapped"),
    "neither gamma nor beta": (lambda *a: _bn_eval(*a, scale=False, shift=False), "Neither gamma nor beta"),
    "beta missing": (lambda *a: _bn_eval(*a, shift=False), "beta is missing"),
    "gamma missing": (lambda *a: _bn_eval(*a, scale=False), "gamma is missing"),
    "mean not subtracted": (lambda *a: _bn_eval(*a, centre=False), "running mean is not subtracted"),
    "running statistics swapped": (lambda x, m, v, g, b, eps: _bn_eval(x, v, m.abs(), g, b, eps), "own running_mean"),
    "in place": (_bn_eval_in_place, "changed its input `x` in place"),
    "None": (lambda *a: None, "returned None"),
    "squeezed": (lambda *a: _bn_eval(*a)[:, :, 0], r"shape \(8, 4, 5, 5\)"),
    "NumPy array": (lambda *a: _bn_eval(*a).numpy(), "not a ndarray"),
}

# --- Notebook 3: one training step on the L1 loss ------------------------------------------------------------


def _step(encoder, decoder, optimizer, clean, noise_factor, *, model_input="noisy", target="clean",
          zero_grad=True, step=True, loss="l1", eval_mode=False, result=lambda loss: loss.item()):
    if eval_mode:
        encoder.eval()
        decoder.eval()
    noisy = add_noise(clean, noise_factor)
    output = decoder(encoder(noisy if model_input == "noisy" else clean))
    reference = clean if target == "clean" else noisy
    value = {"mse": nn.functional.mse_loss, "l1": nn.functional.l1_loss,
             "l1 sum": lambda a, b: nn.functional.l1_loss(a, b, reduction="sum"),
             "abs mean": lambda a, b: (a - b).abs().mean(),
             "smooth": nn.functional.smooth_l1_loss}[loss](output, reference)
    if zero_grad:
        optimizer.zero_grad()
    value.backward()
    if step:
        optimizer.step()
    return result(value)


def _step_noising_in_place(encoder, decoder, optimizer, clean, noise_factor):
    clean.add_(noise_factor * torch.randn(clean.shape)).clamp_(0, 1)
    return _step(encoder, decoder, optimizer, clean, 0.0)


TRAIN_STEP_L1 = {
    "the reference": (_step, RIGHT),
    "abs().mean() by hand": (lambda *a: _step(*a, loss="abs mean"), RIGHT),
    "float(loss)": (lambda *a: _step(*a, result=lambda loss: float(loss.detach())), RIGHT),
    "float32 NumPy scalar": (lambda *a: _step(*a, result=lambda loss: np.float32(loss.item())), RIGHT),
    "zero_grad(set_to_none=True) first": (lambda e, d, o, c, f: (o.zero_grad(set_to_none=True),
                                                                 _step(e, d, o, c, f))[1], RIGHT),
    "the course's train_epoch with L1": (lambda e, d, o, c, f: train_epoch(e, d, CPU, [(c, None)], nn.L1Loss(), o, f),
                                         "training.train_epoch"),
    "the course's training_step with L1": (lambda e, d, o, c, f: training_step(e, d, nn.L1Loss(), o, f, c).item(),
                                           "training.training_step"),
    "MSE (the notebook's step)": (lambda *a: _step(*a, loss="mse"), "squared error"),
    "L1 summed": (lambda *a: _step(*a, loss="l1 sum"), "summed"),
    "target noisy": (lambda *a: _step(*a, target="noisy"), "noisy input"),
    "clean input": (lambda *a: _step(*a, model_input="clean"), "given the clean images"),
    "eval mode": (lambda *a: _step(*a, eval_mode=True), "evaluation mode"),
    "no zero_grad": (lambda *a: _step(*a, zero_grad=False), "old gradients cleared"),
    "no optimizer step": (lambda *a: _step(*a, step=False), "optimizer take its step"),
    "smooth L1": (lambda *a: _step(*a, loss="smooth"), "The loss differs"),
    "tensor returned": (lambda *a: _step(*a, result=lambda loss: loss), "not a tensor"),
    "None": (lambda *a: _step(*a, result=lambda loss: None), "returned None"),
    "string": (lambda *a: _step(*a, result=lambda loss: f"{loss.item():.4f}"), "not a str"),
    "noise added in place": (_step_noising_in_place, "changed its input `clean` in place"),
}

# --- Notebook 4: sampling a fitted Gaussian and decoding the samples -----------------------------------------


def _fitted(decoder, latent, n, device, generator, *, cov="full", centre=True, scale="chol", mode="eval",
            grad=False, global_rng=False, dtype=torch.float32):
    latent = latent.double()
    mean = latent.mean(dim=0)
    covariance = torch.cov(latent.T)
    if cov == "diag":
        covariance = torch.diag(torch.diagonal(covariance))
    if cov == "identity":
        mean, covariance = torch.zeros_like(mean), torch.eye(len(mean), dtype=torch.float64)
    chol = torch.linalg.cholesky(covariance)
    matrix = {"chol": chol.T, "cov": covariance, "wrong side": chol}[scale]
    z = torch.randn(n, len(mean), dtype=torch.float64, generator=None if global_rng else generator)
    codes = ((mean if centre else 0) + z @ matrix).to(dtype)
    decoder.eval() if mode == "eval" else decoder.train()
    with torch.set_grad_enabled(grad):
        images = decoder(codes.float().to(device)).cpu()
    return codes, images


def _fitted_eigh(decoder, latent, n, device, generator):
    values, vectors = torch.linalg.eigh(torch.cov(latent.double().T))
    z = torch.randn(n, latent.shape[1], dtype=torch.float64, generator=generator)
    codes = (latent.double().mean(dim=0) + (z * values.sqrt()) @ vectors.T).float()
    return codes, decode(decoder, codes, device)


def _fitted_in_place(decoder, latent, n, device, generator):
    latent -= latent.mean(dim=0)
    return _fitted(decoder, latent, n, device, generator)


FITTED = {
    "Cholesky": (_fitted, RIGHT),
    "eigendecomposition, the course's decode": (_fitted_eigh, RIGHT),
    "float64 codes": (lambda *a: _fitted(*a, dtype=torch.float64), RIGHT),
    "the course's LatentGaussian": (lambda d, z, n, dev, g: (lambda s: (s, decode(d, s, dev)))(
        LatentGaussian.fit(z).sample(n, generator=g)), "LatentGaussian"),
    "N(0, I)": (lambda *a: _fitted(*a, cov="identity"), "N\\(0, I\\)"),
    "variances only": (lambda *a: _fitted(*a, cov="diag"), "uncorrelated"),
    "scaled by the covariance": (lambda *a: _fitted(*a, scale="cov"), "square of the fitted one"),
    "Cholesky factor on the wrong side": (lambda *a: _fitted(*a, scale="wrong side"), "L\\^T L"),
    "mean left out": (lambda *a: _fitted(*a, centre=False), "not centred"),
    "global generator": (lambda *a: _fitted(*a, global_rng=True), "same generator gave different codes"),
    "decoded in training mode": (lambda *a: _fitted(*a, mode="train"), "training mode"),
    "gradient kept": (lambda *a: _fitted(*a, grad=True), "gradient graph"),
    "images of other codes": (lambda d, z, n, dev, g: (_fitted(d, z, n, dev, g)[0], _fitted(
        d, z, n, dev, torch.Generator().manual_seed(99))[1]), "Decode the codes you were given"),
    "images only": (lambda *a: _fitted(*a)[1], r"as a pair \(codes, images\)"),
    "None": (lambda *a: None, r"as a pair"),
    "codes None": (lambda *a: (None, _fitted(*a)[1]), "returned None"),
    "codes as NumPy": (lambda *a: (_fitted(*a)[0].numpy(), _fitted(*a)[1]), "not a ndarray"),
    "codes changed in place": (_fitted_in_place, "changed its input `train_latent` in place"),
}

# --- Notebook 5: the mode mapping from a cluster-by-digit count matrix --------------------------------------


def _mode_counts(counts, accuracy=None):
    mapping = counts.argmax(axis=1)
    right = counts[np.arange(len(counts)), mapping].sum()
    return mapping, (accuracy(right, counts) if accuracy else right / counts.sum())


def _hungarian_of(counts):
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return rows, cols, counts[rows, cols].sum() / counts.sum()


def _sorting_counts(counts):
    counts.sort(axis=1)
    return _mode_counts(counts)


MODE_COUNTS = {
    "argmax per row": (_mode_counts, RIGHT),
    "float32 accuracy": (lambda c: _mode_counts(c, lambda r, c: np.float32(r / c.sum())), RIGHT),
    "0-d torch tensor": (lambda c: _mode_counts(c, lambda r, c: torch.tensor(r / c.sum(), dtype=torch.float32)),
                         RIGHT),
    "loop over the rows": (lambda c: ([int(np.argmax(row)) for row in c], _mode_counts(c)[1]), RIGHT),
    "dict mapping": (lambda c: (dict(enumerate(_mode_counts(c)[0].tolist())), _mode_counts(c)[1]), RIGHT),
    "torch mapping": (lambda c: (torch.from_numpy(_mode_counts(c)[0]), _mode_counts(c)[1]), RIGHT),
    "the course's mode_mapping on labels rebuilt from the counts": (lambda c: (lambda k, y: (
        mode_mapping(k, y, n_clusters=len(c)), _mode_counts(c)[1]))(
        np.repeat(np.arange(len(c)), c.sum(axis=1)), np.concatenate([np.repeat(np.arange(10), row) for row in c])),
        "clustering.mode_mapping"),
    "argmax per column": (lambda c: (c.argmax(axis=0), _mode_counts(c)[1]), "rows of counts are the clusters"),
    "least common digit": (lambda c: (c.argmin(axis=1), 0.1), "wrong digit"),
    "cluster numbers as digits": (lambda c: _mode_counts(c, lambda r, c: np.trace(c[:10]) / c.sum()),
                                  "cluster number equals their digit"),
    "mean of the clusters' accuracies": (lambda c: _mode_counts(c, lambda r, c: np.mean(c.max(axis=1)
                                                                                        / c.sum(axis=1))),
                                         "weighs a small cluster"),
    "percentage": (lambda c: _mode_counts(c, lambda r, c: 100 * r / c.sum()), "percentage"),
    "divided by the clusters": (lambda c: _mode_counts(c, lambda r, c: r / len(c) / 1000), "share of all images"),
    "bare mapping": (lambda c: _mode_counts(c)[0], r"as a pair \(mapping, accuracy\)"),
    "None": (lambda c: None, "as a pair"),
    "mapping None": (lambda c: (None, 0.5), "mapping is None"),
    "accuracy None": (lambda c: (_mode_counts(c)[0], None), "returned None"),
    "accuracy of shape (1,)": (lambda c: _mode_counts(c, lambda r, c: np.array([r / c.sum()])), "one number"),
    "dict missing a cluster": (lambda c: ({k: 0 for k in range(11)}, 0.5), "no entry for cluster 11"),
    "ten clusters only": (lambda c: (_mode_counts(c)[0][:10], _mode_counts(c)[1]), "12 here"),
    "counts sorted in place": (_sorting_counts, "changed its input `counts` in place"),
}

# --- Notebook 6: the one-to-one (Hungarian) accuracy from the count matrix ----------------------------------


def _hungarian_in_place(counts):
    counts[counts < 0] = 0
    counts *= 1
    counts[0, 0] += 1
    return _hungarian_of(counts)[2]


HUNGARIAN_COUNTS = {
    "linear_sum_assignment": (lambda c: _hungarian_of(c)[2], RIGHT),
    "on the transpose": (lambda c: _hungarian_of(c.T.copy())[2], RIGHT),
    "minimising the negated counts": (lambda c: (lambda r, k: c[r, k].sum() / c.sum())(*linear_sum_assignment(-c)),
                                      RIGHT),
    "float32": (lambda c: np.float32(_hungarian_of(c)[2]), RIGHT),
    "0-d tensor": (lambda c: torch.tensor(_hungarian_of(c)[2], dtype=torch.float32), RIGHT),
    "the course's hungarian_mapping on rebuilt labels": (lambda c: (lambda k, y: float(np.mean(
        hungarian_mapping(k, y, n_clusters=len(c))[k] == y)))(np.repeat(np.arange(len(c)), c.sum(axis=1)),
                                                             np.concatenate([np.repeat(np.arange(10), row)
                                                                             for row in c])),
        "clustering.hungarian_mapping"),
    "mode mapping instead": (lambda c: c.max(axis=1).sum() / c.sum(), "assignment problem"),
    "best cluster per digit": (lambda c: c.max(axis=0).sum() / c.sum(), "one-to-one"),
    "worst pairing": (lambda c: (lambda r, k: c[r, k].sum() / c.sum())(*linear_sum_assignment(c)), "fewest"),
    "cluster k as digit k": (lambda c: np.trace(c) / c.sum(), "pairs cluster k with digit k"),
    "percentage": (lambda c: 100 * _hungarian_of(c)[2], "percentage"),
    "divided by the paired images": (lambda c: (lambda r, k: 1.0)(*linear_sum_assignment(c, maximize=True)),
                                     "differs"),
    "None": (lambda c: None, "returned None"),
    "array of one": (lambda c: np.array([_hungarian_of(c)[2]]), "one number"),
    "string": (lambda c: f"{_hungarian_of(c)[2]:.3f}", "not a str"),
    "counts changed in place": (_hungarian_in_place, "changed its input `counts` in place"),
}


# --- Notebook 7: the reparameterisation step and the KL term ---------------------------------------------------


def _draws(mean, generator):
    return torch.randn(mean.shape, generator=generator)


def _reparam(mean, logvar, g, *, std=None):
    std = torch.exp(0.5 * logvar) if std is None else std(logvar)
    return mean + std * _draws(mean, g)


def _reparam_in_place(mean, logvar, g):
    return mean.add_(torch.exp(0.5 * logvar) * _draws(mean, g))


REPARAM = {
    "exp(0.5 logvar)": (_reparam, RIGHT),
    "sqrt(exp(logvar))": (lambda m, lv, g: m + lv.exp().sqrt() * _draws(m, g), RIGHT),
    "eps first, then scale and shift": (lambda m, lv, g: _draws(m, g).mul(lv.div(2).exp()).add(m), RIGHT),
    "float64": (lambda m, lv, g: _reparam(m.double(), lv.double(), g), RIGHT),
    "missing 1/2": (lambda m, lv, g: _reparam(m, lv, g, std=torch.exp), "exp\\(logvar\\) squared"),
    "logvar as variance": (lambda m, lv, g: _reparam(m, lv, g, std=torch.sqrt), "NaN"),
    "logvar as std": (lambda m, lv, g: _reparam(m, lv, g, std=lambda v: v), "log-variance squared"),
    "not scaled": (lambda m, lv, g: m + _draws(m, g), "not scaled by the standard deviation"),
    "no mean": (lambda m, lv, g: (0.5 * lv).exp() * _draws(m, g), "shift the scaled draws"),
    "the mean alone": (lambda m, lv, g: m.clone(), "not random"),
    "global generator": (lambda m, lv, g: m + (0.5 * lv).exp() * torch.randn_like(m), "same generator"),
    "torch.normal, detached": (lambda m, lv, g: torch.normal(m.detach(), (0.5 * lv.detach()).exp(), generator=g),
                               "No gradient can flow"),
    # what a student writes: it has a grad_fn, and every gradient it passes on is 0
    "torch.normal": (lambda m, lv, g: torch.normal(m, (0.5 * lv).exp(), generator=g), "all zero: torch.normal"),
    "detached": (lambda m, lv, g: _reparam(m, lv, g).detach(), "No gradient can flow"),
    "gradient to the mean only": (lambda m, lv, g: m + (0.5 * lv.detach()).exp() * _draws(m, g), "only one"),
    "the course's own": (lambda m, lv, g: vae.reparameterize(m, lv, g), "calls `vae.reparameterize`"),
    "changes mean in place": (_reparam_in_place, "changed its input"),
    "None": (lambda m, lv, g: None, "returned None"),
    "numpy": (lambda m, lv, g: _reparam(m, lv, g).detach().numpy(), "not a ndarray"),
    "wrong shape": (lambda m, lv, g: _reparam(m, lv, g).T, "shape"),
}


def _kl(mean, logvar, *, half=0.5, reduce_batch="mean", reduce_dim="sum", var=None):
    var = logvar.exp() if var is None else var(logvar)
    per = half * (var + mean**2 - 1 - logvar)
    per = per.sum(dim=1) if reduce_dim == "sum" else per.mean(dim=1)
    return per.mean() if reduce_batch == "mean" else per.sum()


def _kl_in_place(mean, logvar):
    mean.pow_(2)
    return (0.5 * (logvar.exp() + mean - 1 - logvar)).sum(1).mean()


KL = {
    "closed form": (_kl, RIGHT),
    "-0.5 (1 + logvar - mean^2 - exp(logvar))": (
        lambda m, lv: (-0.5 * (1 + lv - m.pow(2) - lv.exp()).sum(dim=1)).mean(), RIGHT),
    "float (.item())": (lambda m, lv: _kl(m, lv).item(), RIGHT),
    "float64": (lambda m, lv: _kl(m.double(), lv.double()), RIGHT),
    "numpy scalar": (lambda m, lv: np.float32(_kl(m, lv).item()), RIGHT),
    "missing 1/2": (lambda m, lv: _kl(m, lv, half=1.0), "twice the right one"),
    "1/4": (lambda m, lv: _kl(m, lv, half=0.25), "half the right one"),
    "summed over the batch": (lambda m, lv: _kl(m, lv, reduce_batch="sum"), "summed over the batch"),
    "averaged over dimensions": (lambda m, lv: _kl(m, lv, reduce_dim="mean"), "averaged over the code"),
    "wrong sign": (lambda m, lv: -_kl(m, lv), "wrong sign"),
    "logvar as variance": (lambda m, lv: (0.5 * (lv + m**2 - 1 - lv.log())).sum(1).mean(), "already the logarithm"),
    "variance terms cancel": (lambda m, lv: _kl(m, lv, var=lambda v: v), "cancel"),
    "std for variance": (lambda m, lv: _kl(m, lv, var=lambda v: (0.5 * v).exp()), "standard deviation"),
    "one per image": (lambda m, lv: 0.5 * (lv.exp() + m**2 - 1 - lv).sum(1), "one value per image"),
    "one per dimension": (lambda m, lv: 0.5 * (lv.exp() + m**2 - 1 - lv).mean(0), "one value per code dimension"),
    "torch.distributions": (lambda m, lv: torch.distributions.kl_divergence(
        torch.distributions.Normal(m, (0.5 * lv).exp()), torch.distributions.Normal(0.0, 1.0)).sum(1).mean(),
        "calls `torch.distributions"),
    "the course's own": (lambda m, lv: vae.kl_to_standard_normal(m, lv).mean(), "calls `vae.kl_to_standard_normal`"),
    "changes mean in place": (_kl_in_place, "changed its input `mean`"),
    "None": (lambda m, lv: None, "returned None"),
    "NaN": (lambda m, lv: float("nan"), "Your KL is NaN"),
    "infinite": (lambda m, lv: float("inf"), "not a finite number"),
    "something else": (lambda m, lv: _kl(m, lv) + 1, "it should be"),
}


def _elbo(recon, target, mean, logvar, beta, *, pixels="sum", batch="mean", kl_weight=None, rec_weight=1.0,
          reconstruction=None):
    rec = F.binary_cross_entropy(recon, target, reduction="none").flatten(1) if reconstruction is None \
        else reconstruction(recon, target).flatten(1)
    rec = rec.sum(1) if pixels == "sum" else rec.mean(1)
    kl = 0.5 * (logvar.exp() + mean**2 - 1 - logvar).sum(1)
    per_image = rec_weight * rec + (beta if kl_weight is None else kl_weight(beta)) * kl
    return per_image.mean() if batch == "mean" else per_image.sum()


def _elbo_by_hand(recon, target, mean, logvar, beta):
    """The textbook way: log-likelihood with a clamped log, KL from torch.distributions, and the terms returned."""
    log = lambda t: t.clamp_min(1e-12).log()  # noqa: E731
    rec = -(target * log(recon) + (1 - target) * log(1 - recon)).sum(dim=(1, 2, 3)).mean()
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(mean, (0.5 * logvar).exp()),
                                           torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    return rec + beta * kl, rec, kl


def _elbo_in_place(recon, target, mean, logvar, beta):
    recon.clamp_(0.05, 0.95)
    return _elbo(recon, target, mean, logvar, beta)


ELBO = {
    "F.binary_cross_entropy, summed": (_elbo, RIGHT),
    "by hand, returning the terms too": (_elbo_by_hand, RIGHT),
    "the course's ELBOTerms": (lambda *a: vae.ELBOTerms(_elbo(*a), _elbo(*a), _elbo(*a)), RIGHT),
    "float64": (lambda r, t, m, lv, b: _elbo(r.double(), t.double(), m.double(), lv.double(), b), RIGHT),
    "averaged over the pixels": (lambda *a: _elbo(*a, pixels="mean"), "averaged over the pixels"),
    "summed over the batch": (lambda *a: _elbo(*a, batch="sum"), "summed over the batch"),
    "beta left out": (lambda *a: _elbo(*a, kl_weight=lambda b: 1.0), "ignores beta"),
    "beta on the reconstruction": (lambda *a: _elbo(*a, kl_weight=lambda b: 1.0, rec_weight=a[-1]),
                                   "beta multiplies your reconstruction"),
    "KL subtracted": (lambda *a: _elbo(*a, kl_weight=lambda b: -b), "subtracted"),
    "squared error": (lambda *a: _elbo(*a, reconstruction=lambda r, t: (r - t) ** 2), "squared error"),
    "arguments swapped": (lambda r, t, m, lv, b: _elbo(t, r, m, lv, b), "swapped"),
    "a plain number": (lambda *a: _elbo(*a).item(), "no gradient"),
    "KL from a detached mean": (lambda r, t, m, lv, b: _elbo(r, t, m.detach(), lv, b), "gradient with respect"),
    "one per image": (lambda r, t, m, lv, b: F.binary_cross_entropy(r, t, reduction="none").sum(dim=(1, 2, 3)),
                      "one loss per image"),
    "the course's own": (lambda *a: vae.elbo_loss(*a).loss, "calls `vae.elbo_loss`"),
    "changes recon in place": (_elbo_in_place, "changed its input `recon`"),
    "None": (lambda *a: None, "returned None"),
    "NaN": (lambda *a: _elbo(*a) * float("nan"), "NaN"),
    "something else": (lambda *a: _elbo(*a) + 1, "it should be"),
}


def _decoder():
    torch.manual_seed(0)
    return Decoder(4)


TABLE = [
    *[(exercises.check_black_pixel_mse, name, answer, outcome, ()) for name, (answer, outcome) in BLACK_PIXEL.items()],
    *[(exercises.check_add_noise_map, name, answer, outcome, ()) for name, (answer, outcome) in ADD_NOISE_MAP.items()],
    *[(exercises.check_batch_norm_eval, name, answer, outcome, ())
      for name, (answer, outcome) in BATCH_NORM_EVAL.items()],
    *[(exercises.check_train_step_l1, name, answer, outcome, ()) for name, (answer, outcome) in TRAIN_STEP_L1.items()],
    *[(exercises.check_fitted_samples, name, answer, outcome, ("decoder",))
      for name, (answer, outcome) in FITTED.items()],
    *[(exercises.check_mode_mapping_counts, name, answer, outcome, ())
      for name, (answer, outcome) in MODE_COUNTS.items()],
    *[(exercises.check_hungarian_counts, name, answer, outcome, ())
      for name, (answer, outcome) in HUNGARIAN_COUNTS.items()],
    *[(exercises.check_reparameterize, name, answer, outcome, ()) for name, (answer, outcome) in REPARAM.items()],
    *[(exercises.check_kl, name, answer, outcome, ()) for name, (answer, outcome) in KL.items()],
    *[(exercises.check_elbo_loss, name, answer, outcome, ()) for name, (answer, outcome) in ELBO.items()],
]


@pytest.mark.parametrize("check, answer, outcome, extra",
                         [pytest.param(check, answer, outcome, extra, id=f"{check.__name__[6:]}: {name}")
                          for check, name, answer, outcome, extra in TABLE])
def test_each_answer_gets_the_verdict_it_deserves(check, answer, outcome, extra, capsys):
    args = (_decoder(), CPU) if extra else ()
    if outcome is RIGHT:
        check(answer, *args)
        assert capsys.readouterr().out.startswith("\u2713 Right")
        return
    if isinstance(outcome, tuple):  # the answer's own error (calling a function wrongly) reaches the student
        error, message = outcome
        with pytest.raises(error, match=message):
            check(answer, *args)
        return
    with pytest.raises(exercises.NotYet, match=outcome) as caught:
        check(answer, *args)
    assert caught.value._render_traceback_()[0].startswith("\u2717 Not yet.")


def test_the_table_is_long_and_every_check_has_right_and_wrong_answers():
    assert len(TABLE) >= 100
    for table in (BLACK_PIXEL, ADD_NOISE_MAP, BATCH_NORM_EVAL, TRAIN_STEP_L1, FITTED, MODE_COUNTS, HUNGARIAN_COUNTS,
                  REPARAM, KL, ELBO):
        outcomes = [outcome for _, outcome in table.values()]
        assert RIGHT in outcomes and sum(o is not RIGHT for o in outcomes) >= 5


# The model: the student's encoder and decoder classes, built and run by check_model.
class SpecEncoder(nn.Module):
    def __init__(self, latent_dim=4, pad3=0, bn_after_relu=False, code_relu=False, bn=True, affine=True,
                 conv2_bias=True, fc_bias=True):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.c2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=conv2_bias)
        self.bn = nn.BatchNorm2d(16, affine=affine) if bn else None
        self.c3 = nn.Conv2d(16, 32, 3, stride=2, padding=pad3)
        side = 3 if pad3 == 0 else 4
        self.f1 = nn.Linear(32 * side * side, 128, bias=fc_bias)
        self.f2 = nn.Linear(128, latent_dim)
        self.bn_after_relu, self.code_relu = bn_after_relu, code_relu

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = self.c2(x)
        if self.bn is not None and not self.bn_after_relu:
            x = self.bn(x)
        x = torch.relu(x)
        if self.bn is not None and self.bn_after_relu:
            x = self.bn(x)
        x = F.relu(self.c3(x)).flatten(1)
        x = self.f2(F.relu(self.f1(x)))
        return F.relu(x) if self.code_relu else x


class SpecDecoder(nn.Module):
    def __init__(self, latent_dim=4, second_bn=True, sigmoid=True, output_padding=1, fixed=False):
        super().__init__()
        d = 4 if fixed else latent_dim
        self.fc = nn.Sequential(nn.Linear(d, 128), nn.ReLU(), nn.Linear(128, 288), nn.ReLU())
        layers = [nn.ConvTranspose2d(32, 16, 3, stride=2), nn.BatchNorm2d(16), nn.ReLU(),
                  nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=output_padding)]
        if second_bn:
            layers.append(nn.BatchNorm2d(8))
        layers += [nn.ReLU(), nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1)]
        if sigmoid:
            layers.append(nn.Sigmoid())
        self.deconv = nn.Sequential(*layers)

    def forward(self, z):
        return self.deconv(self.fc(z).view(-1, 32, 3, 3))


class CoursesEncoderInside(nn.Module):
    def __init__(self, latent_dim=4):
        super().__init__()
        from dae_utils.model import Encoder

        self.inner = Encoder(latent_dim)

    def forward(self, x):
        return self.inner(x)


def spec(cls, **options):
    return lambda latent_dim: cls(latent_dim, **options)


MODEL = {
    "as specified, with module attributes and F.relu": (SpecEncoder, SpecDecoder, RIGHT),
    "batch norm after the ReLU": (spec(SpecEncoder, bn_after_relu=True), SpecDecoder, RIGHT),
    "a strict mirror: one batch norm in the decoder": (SpecEncoder, spec(SpecDecoder, second_bn=False), RIGHT),
    "no bias before batch norm": (spec(SpecEncoder, conv2_bias=False), SpecDecoder, RIGHT),
    "the course's own classes": (Encoder, Decoder, "calls `model.Encoder`"),
    "the course's encoder inside": (CoursesEncoderInside, SpecDecoder, "calls `model.Encoder`"),
    "padding 1 on the third convolution": (spec(SpecEncoder, pad3=1), SpecDecoder,
                                           r"\(B, 32, 4, 4\).*padding 0 there \(section 2.2\)"),
    "no batch norm": (spec(SpecEncoder, bn=False), SpecDecoder, "between the second and the third convolution"),
    "a ReLU on the code": (spec(SpecEncoder, code_relu=True), SpecDecoder, "no activation"),
    "batch norm without gamma and beta": (spec(SpecEncoder, affine=False), SpecDecoder, "affine=False"),
    "a linear layer without its bias": (spec(SpecEncoder, fc_bias=False), SpecDecoder,
                                        "43,300 trainable parameters.*43,428"),
    "no sigmoid": (SpecEncoder, spec(SpecDecoder, sigmoid=False), "ends without a sigmoid"),
    "output_padding 0": (SpecEncoder, spec(SpecDecoder, output_padding=0), r"\(B, 8, 13, 13\).*output_padding"),
    "a fixed latent size": (SpecEncoder, spec(SpecDecoder, fixed=True), "latent_dim = 2.*not a fixed 4"),
    "a function, not a class": (lambda latent_dim: None, SpecDecoder, "build an nn.Module"),
}


@pytest.mark.parametrize("encoder, decoder, outcome", MODEL.values(), ids=MODEL.keys())
def test_the_model_check_reads_every_layer_and_names_the_first_difference(encoder, decoder, outcome, capsys):
    if outcome is RIGHT:
        exercises.check_model(encoder, decoder)
        assert capsys.readouterr().out.startswith("\u2713 Right")
        return
    with pytest.raises(exercises.NotYet, match=outcome):
        exercises.check_model(encoder, decoder)


def test_the_model_check_reads_layers_however_they_are_written():
    """nn.ReLU, F.relu and torch.relu read alike; reshaping is no layer; the course's model reads as its layers."""
    functional = exercises.nb02._trace(SpecEncoder(4).eval(), torch.zeros(2, 1, 28, 28))
    modules = exercises.nb02._trace(Encoder(4).eval(), torch.zeros(2, 1, 28, 28))
    assert functional == modules == [
        ("convolution", (8, 14, 14)), ("ReLU", (8, 14, 14)), ("convolution", (16, 7, 7)), ("batch norm", (16, 7, 7)),
        ("ReLU", (16, 7, 7)), ("convolution", (32, 3, 3)), ("ReLU", (32, 3, 3)), ("linear layer", (128,)),
        ("ReLU", (128,)), ("linear layer", (4,))]


# The train and test functions, written as a student might (on purpose not the checks' own variants, which
# they must recognise); check_train_epoch and check_test_epoch run them beside training's own.
def train_right(encoder, decoder, device, dataloader, loss_fn, optimizer, noise_factor, mistake=None):
    encoder.train(mistake != "eval mode")
    decoder.train(mistake != "eval mode")
    total, count, batch_means = 0.0, 0, []
    for images, _ in dataloader:
        clean = images.to(device)
        noisy = add_noise(clean, noise_factor)
        denoised = decoder(encoder(clean if mistake == "clean input" else noisy))
        loss = loss_fn(denoised, noisy if mistake == "noisy target" else clean)
        if mistake != "no zero_grad":
            optimizer.zero_grad(set_to_none=False)  # zeros instead of None: as good
        loss.backward()
        optimizer.step()
        total += loss.item() * len(clean)
        count += len(clean)
        batch_means.append(loss.item())
    if mistake == "mean of batch means":
        return float(np.mean(batch_means))
    return total / count


def score_right(encoder, decoder, device, dataloader, loss_fn, noise_factor, noise_seed=12345, mistake=None):
    if mistake != "train mode":
        encoder.eval()
        decoder.eval()
    generator = torch.Generator().manual_seed(noise_seed)
    losses, sizes = [], []
    with torch.no_grad() if mistake != "gradients" else torch.enable_grad():
        for images, _ in dataloader:
            noisy = add_noise(images, noise_factor, generator=None if mistake == "fresh noise" else generator)
            losses.append(F.mse_loss(decoder(encoder(noisy)), images))
            sizes.append(len(images))
    if mistake == "mean of batch means":
        return torch.stack(losses).mean().item()
    return float(sum(loss.detach() * size for loss, size in zip(losses, sizes, strict=True)) / sum(sizes))


def with_mistake(function, mistake):
    return lambda *args: function(*args, mistake=mistake)


TRAIN_EPOCH = {
    "as notebook 3 writes it": (train_right, RIGHT),
    "the course's train_epoch": (lambda *args: train_epoch(*args), "calls `training.train_epoch`"),
    "no zero_grad": (with_mistake(train_right, "no zero_grad"), "never cleared"),
    "scored against the noisy input": (with_mistake(train_right, "noisy target"), "Compare it with the clean images"),
    "the clean images as input": (with_mistake(train_right, "clean input"), "gets the noisy ones"),
    "the batches' means averaged": (with_mistake(train_right, "mean of batch means"),
                                    "Weight each batch's loss by its number of images"),
    "evaluation mode": (with_mistake(train_right, "eval mode"), "in training mode"),
}
TEST_EPOCH = {
    "as notebook 3 writes it": (score_right, RIGHT),
    "the course's test_epoch": (lambda *args: training.test_epoch(*args[:-1]), "calls `training.test_epoch`"),
    "training mode": (with_mistake(score_right, "train mode"), r"encoder.eval\(\)"),
    "gradients recorded": (with_mistake(score_right, "gradients"), "gradients it never uses"),
    "fresh noise every call": (with_mistake(score_right, "fresh noise"), "noise_seed"),
    "the batches' means averaged": (with_mistake(score_right, "mean of batch means"),
                                    "each batch weighted by its size"),
}


@pytest.mark.parametrize("check, answer, outcome", [
    *[pytest.param(exercises.check_train_epoch, answer, outcome, id=f"train: {name}")
      for name, (answer, outcome) in TRAIN_EPOCH.items()],
    *[pytest.param(exercises.check_test_epoch, answer, outcome, id=f"test: {name}")
      for name, (answer, outcome) in TEST_EPOCH.items()]])
def test_the_train_and_test_checks_name_the_mistake(check, answer, outcome, capsys):
    if outcome is RIGHT:
        check(answer)
        assert capsys.readouterr().out.startswith("\u2713 Right")
        return
    with pytest.raises(exercises.NotYet, match=outcome):
        check(answer)


def test_a_check_that_trains_runs_on_one_thread_and_gives_the_count_back():
    before = torch.get_num_threads()
    exercises.check_train_epoch(train_right)
    assert torch.get_num_threads() == before


# The assignment's part (e): nine codes from N(0, I), decoded for a 3 x 3 grid.
def grid_right(decoder, latent_dim, device, generator, mistake=None):
    draw = torch.rand if mistake == "uniform" else torch.randn
    codes = draw(9, latent_dim, generator=None if mistake == "global generator" else generator)
    codes = 2 * codes if mistake == "twice the spread" else codes
    if mistake != "training mode":
        decoder.eval()
    with torch.no_grad() if mistake != "gradients" else torch.enable_grad():
        return codes, decoder(codes.to(device)).cpu()


def grid_by_normal(decoder, latent_dim, device, generator):
    codes = torch.normal(0.0, 1.0, size=(9, latent_dim), generator=generator)
    decoder.eval()
    with torch.no_grad():
        return codes, decoder(codes)


GRID = {
    "randn, eval mode, no_grad": (grid_right, RIGHT),
    "torch.normal(0, 1)": (grid_by_normal, RIGHT),
    "the course's random_grid": (lambda d, k, dev, g: generation.random_grid(d, k, dev, g), "calls `generation"),
    "uniform codes": (with_mistake(grid_right, "uniform"), "uniform on \\[0, 1\\)"),
    "the global generator": (with_mistake(grid_right, "global generator"), "generator you were given"),
    "training mode": (with_mistake(grid_right, "training mode"), "training mode"),
    "gradients": (with_mistake(grid_right, "gradients"), "gradient graph"),
    "twice the spread": (with_mistake(grid_right, "twice the spread"), "variance 1 in every dimension"),
    "codes only": (lambda d, k, dev, g: torch.randn(9, k, generator=g), "as a pair"),
}


@pytest.mark.parametrize("answer, outcome", GRID.values(), ids=GRID.keys())
def test_the_grid_check_names_the_mistake(answer, outcome, capsys):
    decoder = Decoder(4)
    before = {k: v.clone() for k, v in decoder.state_dict().items()}
    if outcome is RIGHT:
        exercises.check_random_grid(answer, decoder, CPU)
        assert capsys.readouterr().out.startswith("\u2713 Right")
    else:
        with pytest.raises(exercises.NotYet, match=outcome):
            exercises.check_random_grid(answer, decoder, CPU)
    assert all(torch.equal(v, before[k]) for k, v in decoder.state_dict().items())  # the check used a copy
    assert decoder.training  # and left the model's mode alone


def test_the_course_grid_is_the_inline_one_of_notebook_4():
    """generation.random_grid draws and decodes exactly as notebook 4's section 4.1 did inline."""
    torch.manual_seed(0)
    decoder = Decoder(4)
    codes, images = generation.random_grid(decoder, 4, CPU, torch.Generator().manual_seed(3))
    inline = torch.randn(9, 4, generator=torch.Generator().manual_seed(3))
    decoder.eval()
    with torch.no_grad():
        assert torch.equal(codes, inline) and torch.equal(images, decoder(inline).cpu())


# The assignment's part (a): add_noise exactly as it defines it.
def noise_right(images, noise_factor, generator=None):
    return (images + noise_factor * torch.randn(images.shape, generator=generator)).clamp(0.0, 1.0)


ADD_NOISE = {
    "randn, scaled, clamped": (noise_right, RIGHT),
    "torch.normal and clamp(min=, max=)": (lambda images, f, g: torch.clamp(
        images + torch.normal(0.0, 1.0, size=images.shape, generator=g) * f, min=0, max=1), RIGHT),
    "the course's add_noise": (lambda images, f, g: add_noise(images, f, generator=g), "calls `noise.add_noise`"),
    "no clamp": (lambda images, f, g: images + f * torch.randn(images.shape, generator=g), "at both ends"),
    "clamped below only": (lambda images, f, g: (images + f * torch.randn(images.shape, generator=g)).clamp(min=0),
                           "at both ends"),
    "not scaled": (lambda images, f, g: noise_right(images, 1.0, g), "not scaled by noise_factor"),
    "scaled by the variance": (lambda images, f, g: noise_right(images, f**2, g), "squared"),
    "uniform noise": (lambda images, f, g: (images + f * torch.rand(images.shape, generator=g)).clamp(0, 1),
                      "uniform"),
    "the global generator": (lambda images, f, g: noise_right(images, f), "generator you were given"),
    "one draw for all images": (lambda images, f, g: (images + f * torch.randn(images.shape[1:], generator=g))
                                .clamp(0, 1), "one value per pixel of every image"),
    "in place": (lambda images, f, g: images.add_(f * torch.randn(images.shape, generator=g)).clamp_(0, 1),
                 "in place"),
}


@pytest.mark.parametrize("answer, outcome", ADD_NOISE.values(), ids=ADD_NOISE.keys())
def test_the_add_noise_check_names_the_mistake(answer, outcome, capsys):
    if outcome is RIGHT:
        exercises.check_add_noise(answer)
        assert capsys.readouterr().out.startswith("\u2713 Right")
        return
    with pytest.raises(exercises.NotYet, match=outcome):
        exercises.check_add_noise(answer)


#: What a hint must never contain: the line that solves the exercise.
SOLUTION_LINES = ["torch.randn(images.shape, generator=generator)", "noise_std * torch.randn", "bincount(",
                  "argmax(", "linear_sum_assignment(", "maximize=True", "optimizer.zero_grad()", "loss.backward()",
                  "l1_loss(denoised, clean)", "abs().mean()", "running_mean.view", "view(1, -1, 1, 1)",
                  "torch.no_grad()", "linalg.cholesky", "torch.cov(", "z @ ", "exp(0.5 * logvar)",
                  "0.5 * (logvar.exp()", "1 + logvar - mean",
                  "binary_cross_entropy(recon"]


#: Every module of checks: the shared helpers and one module per notebook.
CHECK_MODULES = (exercises.common, exercises.nb01, exercises.nb02, exercises.nb03, exercises.nb04, exercises.nb05,
                 exercises.nb06, exercises.nb07)


def hint_texts(source: str) -> list[str]:
    """Return every string a module's code holds (the text of f-strings included, joined), less its docstrings.

    Hints are raised as ``NotYet(...)`` directly, through a variable, or as the keys of a table of wrong answers,
    so every string counts; implicitly joined strings arrive as one, as the student reads them.
    """
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    texts = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            texts.append("".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            texts.append(node.value)
    return texts


def test_the_hint_scan_reads_f_strings_and_tables_and_skips_docstrings():
    source = ('def check():\n    """Call torch.no_grad() in the answer."""\n'
              '    wrong = {"Wrap it in " "torch.no_grad().": 1}\n'
              '    raise NotYet(f"Use {name} with torch.no_grad() here")\n')
    texts = hint_texts(source)
    assert "Wrap it in torch.no_grad()." in texts and "Use {} with torch.no_grad() here" in texts
    assert not [t for t in texts if t.startswith("Call")]


def test_no_hint_gives_the_solution_line_away():
    texts = [t for module in CHECK_MODULES for t in hint_texts(inspect.getsource(module))]
    assert any("Is the `return` line missing?" in t for t in texts)  # an f-string hint is read
    for forbidden in SOLUTION_LINES:
        assert not [t for t in texts if forbidden in t], forbidden


def test_unfinished_answers_raise_not_implemented():
    def stub(*args):
        raise NotImplementedError("the student's own stub")

    for check in (exercises.check_add_noise_map, exercises.check_batch_norm_eval, exercises.check_black_pixel_mse,
                  exercises.check_train_step_l1, exercises.check_mode_mapping_counts, exercises.check_hungarian_counts,
                  exercises.check_reparameterize, exercises.check_kl, exercises.check_elbo_loss):
        with pytest.raises(NotImplementedError, match="the student's own stub"):
            check(stub)
    with pytest.raises(NotImplementedError, match="the student's own stub"):
        exercises.check_fitted_samples(stub, Decoder(4), CPU)


def test_the_fitted_samples_check_leaves_the_model_unchanged():
    torch.manual_seed(0)
    decoder = Decoder(4).eval()
    before = {k: v.clone() for k, v in decoder.state_dict().items()}

    with pytest.raises(exercises.NotYet, match="training mode"):
        exercises.check_fitted_samples(lambda *a: _fitted(*a, mode="train"), decoder, CPU)
    assert not decoder.training
    assert all(torch.equal(before[k], v) for k, v in decoder.state_dict().items())


#: What a student's unlocked cell may rebind before the grade cell runs: the check where the package names it, the
#: check in its notebook's module, a shared helper (a comparison that always agrees), and NotYet itself.
TAMPERING = {
    "the package's check": "import dae_utils.exercises\ndae_utils.exercises.check_add_noise_map = print\n",
    "the notebook module's check": "import dae_utils.exercises.nb01\n"
                                   "dae_utils.exercises.nb01.check_add_noise_map = print\n",
    "a shared helper": "import dae_utils.exercises.common\ndae_utils.exercises.common._close = lambda *args: True\n",
    "NotYet": "import dae_utils.exercises.common\n"
              "dae_utils.exercises.common.NotYet = type('NotYet', (Exception,), {})\n",
}


def grade_cell_source(grade_id: str) -> str:
    import nbformat

    from dae_utils import course

    notebook = next(p for p in course.find_notebooks() if p.name.startswith(grade_id[2:4] + "_"))
    return next(c.source for c in nbformat.read(notebook, as_version=4).cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def run_after_tampering(tampering: str, grade_cell: str) -> None:
    """Run a student's cell that tampers and defines a wrong answer, then the grade cell, in one namespace."""
    namespace = {}
    exec(tampering + "def my_add_noise_map(images, noise_std, generator=None):\n    return images\n", namespace)
    try:
        exec(grade_cell, namespace)
    finally:
        for module in CHECK_MODULES:  # the real checks for the tests that follow
            importlib.reload(module)
        importlib.reload(exercises)


@pytest.mark.parametrize("what", list(TAMPERING))
def test_a_grade_cell_is_not_fooled_by_a_check_or_helper_rebound_in_another_cell(what):
    """What nbgrader runs: an unlocked cell rebinds part of the checks, then the locked grade cell runs."""
    with pytest.raises(AssertionError, match="values differ"):
        run_after_tampering(TAMPERING[what], grade_cell_source("nb01-add-noise-check"))
    assert exercises.check_add_noise_map is not print


def test_a_grade_cell_that_reloads_only_its_notebook_module_is_fooled_by_a_helper(capsys):
    """The control: without reloading the shared helpers first, a rebound helper passes a wrong answer."""
    grade_cell = grade_cell_source("nb01-add-noise-check")
    partial = grade_cell.replace("importlib.reload(dae_utils.exercises.common)\n", "")
    assert partial != grade_cell
    run_after_tampering(TAMPERING["a shared helper"], partial)  # no error: the wrong answer passed
    assert "Right" in capsys.readouterr().out
