"""Notebook 4's checks: the assignment's 3 x 3 grid of random codes, sampling a fitted Gaussian."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .common import CHECK_SEED, NotYet, _calls_checked, _check_grid, _codes_and_images, _kept, _passed, _unchanged


def _check_codes(latent_dim: int) -> torch.Tensor:
    """Codes (3,000, d) with an offset mean and strongly correlated dimensions, like an autoencoder's."""
    generator = torch.Generator().manual_seed(CHECK_SEED)
    mix = torch.randn(latent_dim, latent_dim, generator=generator)
    offset = torch.randn(latent_dim, generator=generator) * 2
    return torch.randn(3000, latent_dim, generator=generator) @ mix.T + offset


#: Codes drawn by the fitted-Gaussian check: enough that a right sampler's mean and covariance are close.
FIT_SAMPLES = 20_000


def check_fitted_samples(sample_mine: Callable[..., Any], decoder: nn.Module, device: torch.device) -> None:
    """Check ``sample_mine(decoder, train_latent, num_samples, device, generator)``, which returns (codes, images).

    It fits a Gaussian to ``train_latent`` (N, d): its mean and its full covariance;
    draws ``num_samples`` codes from it with ``generator``; and decodes them in eval
    mode into (num_samples, 1, 28, 28) images. The check works on a copy of
    ``decoder``, so your model comes out unchanged, and compares the codes'
    mean and covariance with the fitted ones over 20,000 draws.
    """
    from .. import generation

    decoder = copy.deepcopy(decoder).train()  # a fair start: a right answer switches to eval mode itself
    reference = copy.deepcopy(decoder)
    latent_dim = decoder.latent_dim
    latent = _check_codes(latent_dim)
    mean, cov = latent.double().mean(dim=0), torch.cov(latent.double().T)
    forbidden = {"generation.LatentGaussian.fit": generation.LatentGaussian.fit.__func__,
                 "generation.LatentGaussian.sample": generation.LatentGaussian.sample}

    def run(num_samples: int, seed: int) -> tuple[torch.Tensor, Any]:
        inputs = {"train_latent": latent}
        kept = _kept(inputs)
        returned = _calls_checked(forbidden, sample_mine, decoder, latent, num_samples, device,
                                  torch.Generator().manual_seed(seed))
        _unchanged(inputs, kept)
        return _codes_and_images(returned, num_samples, latent_dim)

    _check_grid(lambda seed: run(9, seed), reference, device)
    many, _ = run(FIT_SAMPLES, CHECK_SEED + 1)
    got_mean, got_cov = many.mean(dim=0), torch.cov(many.T)
    standard_error = torch.sqrt(torch.diagonal(cov) / FIT_SAMPLES)

    def near(a: torch.Tensor, b: torch.Tensor) -> bool:
        return bool(torch.linalg.norm(a - b) <= 0.06 * torch.linalg.norm(b))

    right_mean = bool(((got_mean - mean).abs() <= 5 * standard_error).all())
    if right_mean and near(got_cov, cov):
        _passed("the codes have the fitted mean and covariance, repeat with the generator, and decode to the "
                "decoder's images in eval mode.")
        return
    chol = torch.linalg.cholesky(cov)
    centred_on_zero = bool((got_mean.abs() <= 5 / math.sqrt(FIT_SAMPLES)).all())
    if centred_on_zero and near(got_cov, torch.eye(latent_dim, dtype=torch.float64)):
        raise NotYet("These codes look like draws from N(0, I). Sample from the Gaussian fitted to train_latent: "
                     "its mean and its covariance.")
    if right_mean and near(got_cov, torch.diag(torch.diagonal(cov))):
        raise NotYet("The codes' dimensions come out uncorrelated, but the training codes' are not: use the full "
                     "covariance matrix, not only each dimension's variance.")
    if right_mean and near(got_cov, cov @ cov):
        raise NotYet("The codes' covariance is the square of the fitted one: the random draws were multiplied by "
                     "the covariance, which is a squared scale. Multiply by a square root of it instead.")
    if right_mean and near(got_cov, chol.T @ chol):
        raise NotYet("The codes' covariance is L^T L instead of L L^T: check which side of the draws the "
                     "matrix L multiplies, and whether it needs a transpose.")
    if not right_mean and near(got_cov, cov):
        raise NotYet("The codes' spread is right but they are not centred on the training codes' mean. Add the "
                     "fitted mean to every sample.")
    raise NotYet(f"Over {FIT_SAMPLES:,} draws your codes' mean or covariance differ from the Gaussian fitted to "
                 "train_latent. Fit its mean and full covariance, and make each sample mean + (a square root of "
                 "the covariance) x (standard normal draws).")


#: Calls of the grid function over which the grid check measures the codes' distribution (9 codes each).
GRID_CALLS = 300


def check_random_grid(grid_mine: Callable[..., Any], decoder: nn.Module, device: torch.device) -> None:
    """Check ``grid_mine(decoder, latent_dim, device, generator)``, which returns (codes, images): part (e).

    It draws 9 codes from N(0, I) with ``generator`` and decodes them with the decoder in evaluation mode, without
    gradients, into (9, 1, 28, 28) images for a 3 x 3 grid. The check works on a copy of ``decoder``, so your model
    comes out unchanged; it asks for the same codes from the same seed, and measures the codes' mean and
    covariance over 300 calls.
    """
    from .. import generation

    decoder = copy.deepcopy(decoder).train()  # a fair start: a right answer switches to eval mode itself
    reference = copy.deepcopy(decoder)
    latent_dim = decoder.latent_dim
    forbidden = {"generation.random_grid": generation.random_grid, "generation.decode": generation.decode,
                 "generation.apply_in_batches": generation.apply_in_batches}

    def run(seed: int, watch: bool = True) -> tuple[torch.Tensor, Any]:
        args = (decoder, latent_dim, device, torch.Generator().manual_seed(seed))
        returned = _calls_checked(forbidden, grid_mine, *args) if watch else grid_mine(*args)
        return _codes_and_images(returned, 9, latent_dim)

    _check_grid(run, reference, device)
    many = torch.cat([run(CHECK_SEED + 1 + call, watch=False)[0] for call in range(GRID_CALLS)])  # watched above
    count = len(many)
    mean, cov = many.mean(dim=0), torch.cov(many.T)
    identity = torch.eye(latent_dim, dtype=torch.float64)
    if (mean - 0.5).abs().max() < 0.05 and (torch.diagonal(cov) - 1 / 12).abs().max() < 0.02:
        raise NotYet("These codes are uniform on [0, 1), not standard normal: N(0, I) has mean 0 and variance 1 "
                     "in every dimension.")
    if (mean.abs() <= 5 / math.sqrt(count)).all() and torch.linalg.norm(cov - identity) <= 0.12 * math.sqrt(
            latent_dim):
        _passed(f"9 codes from N(0, I) (mean and spread measured over {GRID_CALLS} grids), repeated by the "
                "generator, decoded in evaluation mode without gradients: the assignment's 3 x 3 grid.")
        return
    raise NotYet(f"Over {count:,} codes yours have mean {mean.numpy().round(2).tolist()} and variances "
                 f"{torch.diagonal(cov).numpy().round(2).tolist()}; codes from N(0, I) have mean 0 and variance 1 "
                 "in every dimension, independent of each other.")
