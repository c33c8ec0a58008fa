"""Notebook 1's checks: the assignment's ``add_noise``, noise with a strength per pixel, a black pixel's error."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .common import CHECK_SEED, NotYet, _calls_checked, _close, _images, _kept, _number, _passed, _tensor, _unchanged


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


def _noise_map(size: int = 28) -> torch.Tensor:
    """A (28, 28) map of noise strengths: 0.1 at the centre, rising to 0.6 in the corners, like a cheap sensor."""
    coords = torch.linspace(-1.0, 1.0, size)
    radius_squared = (coords[:, None] ** 2 + coords[None, :] ** 2) / 2
    return 0.1 + 0.5 * radius_squared


def check_add_noise_map(add_noise_mine: Callable[..., torch.Tensor]) -> None:
    """Check ``add_noise_mine(images, noise_std, generator)``: noise with its own strength at every pixel.

    ``noise_std`` is a (28, 28) tensor of standard deviations, one per pixel; the
    result is each image + noise_std x N(0, 1), pixel by pixel, clamped to [0, 1],
    with the noise drawn from ``generator`` (one value per pixel of every image).
    """
    images = _images()
    maps = {"a vignette (0.1 at the centre, 0.6 in the corners)": _noise_map(),
            "a uniform map of 0.3": torch.full((28, 28), 0.3), "a map of zeros": torch.zeros(28, 28)}
    for name, noise_std in maps.items():
        draws = torch.randn(images.shape, generator=torch.Generator().manual_seed(CHECK_SEED))
        expected = (images + noise_std * draws).clamp(0, 1)
        inputs = {"images": images, "noise_std": noise_std}
        kept = _kept(inputs)
        returned = add_noise_mine(images, noise_std, torch.Generator().manual_seed(CHECK_SEED))
        _unchanged(inputs, kept)
        answer = _tensor(returned, tuple(images.shape), "the noisy images")
        if _close(answer, returned.dtype, expected, 1e-6):
            continue
        if answer.min() < 0 or answer.max() > 1:
            raise NotYet("Some pixels lie outside [0, 1]: the noisy image must be clamped back into the pixel range.")
        wrong = {
            "noise_std holds standard deviations, but your noise is scaled by their squares (variances).":
                images + noise_std**2 * draws,
            "Your noise is scaled by the square root of noise_std, as if it held variances; it holds standard "
            "deviations already.": images + noise_std.sqrt() * draws,
            "Your noise has the same strength at every pixel. Each pixel's noise must be scaled by its own entry "
            "of noise_std.": images + noise_std.mean() * draws,
            "The noisy pixels are rounded to 0 or 1; keep them as fractions.": (images + noise_std * draws).round(),
        }
        for hint, candidate in wrong.items():
            if noise_std.std() > 0 or "same strength" not in hint:
                if _close(answer, returned.dtype, candidate.clamp(0, 1), 1e-6):
                    raise NotYet(hint)
        if not noise_std.any():
            raise NotYet("With a map of zeros the images must come back unchanged.")
        raise NotYet(
            f"For {name} the values differ from image + noise_std * N(0, 1), pixel by pixel, clamped. Is the noise "
            "drawn from the generator you were given, with one value per pixel of every image?"
        )
    _passed("the noise follows the map pixel by pixel: for a vignette, for a uniform map (the same as "
            "noise.add_noise at 0.3) and for a map of zeros.")


def check_add_noise(add_noise_mine: Callable[..., torch.Tensor]) -> None:
    """Check ``add_noise_mine(images, noise_factor, generator)``: the assignment's noise, part (a).

    The result is images + noise_factor x N(0, 1), one draw per pixel from ``generator``, clamped to [0, 1],
    as ``noise.add_noise`` computes it; checked at noise factors 0.3, 0.8 and 0.
    """
    from .. import noise

    images = _images()
    for factor in (0.3, 0.8, 0.0):
        draws = torch.randn(images.shape, generator=torch.Generator().manual_seed(CHECK_SEED))
        expected = noise.add_noise(images, factor, generator=torch.Generator().manual_seed(CHECK_SEED))
        inputs = {"images": images}
        kept = _kept(inputs)
        returned = _calls_checked({"noise.add_noise": noise.add_noise}, add_noise_mine, images, factor,
                                  torch.Generator().manual_seed(CHECK_SEED))
        _unchanged(inputs, kept)
        answer = _tensor(returned, tuple(images.shape), "the noisy images")
        if _close(answer, returned.dtype, expected, 1e-6):
            continue
        if answer.min() < 0 or answer.max() > 1:
            raise NotYet("Some pixels lie outside [0, 1]: the noisy image must be clamped back into the pixel "
                         "range, at both ends.")
        uniform = torch.rand(images.shape, generator=torch.Generator().manual_seed(CHECK_SEED))
        wrong = {
            "The noise is not scaled by noise_factor: its standard deviation must be noise_factor.":
                images + draws,
            "The noise is scaled by noise_factor squared; noise_factor is the standard deviation, not the variance.":
                images + factor**2 * draws,
            "The noise is uniform (torch.rand); the assignment's noise is Gaussian, N(0, 1) times noise_factor.":
                images + factor * uniform,
            "The noise is drawn once and added to every image alike; draw one value per pixel of every image.":
                images + factor * draws[:1],
        }
        for hint, candidate in wrong.items():
            if factor > 0 and _close(answer, returned.dtype, candidate.clamp(0, 1), 1e-6):
                raise NotYet(hint)
        if factor == 0:
            raise NotYet("With noise_factor = 0 the images must come back unchanged.")
        again = add_noise_mine(images, factor, torch.Generator().manual_seed(CHECK_SEED))
        if not torch.equal(again, returned):
            raise NotYet("The same generator gave different noise: draw the noise from the generator you were "
                         "given, so that a seed repeats the noisy images.")
        raise NotYet(f"At noise_factor = {factor} the values differ from images + noise_factor * N(0, 1), clamped "
                     "to [0, 1]. Is the noise drawn from the generator you were given, with the images' shape?")
    _passed("your noise matches noise.add_noise at noise factors 0.3, 0.8 and 0, drawn from the generator you "
            "were given and clamped to [0, 1].")
