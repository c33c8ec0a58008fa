"""Corrupt images with Gaussian noise and measure how far two images are apart."""

from __future__ import annotations

import math

import torch

from .parameters import check_noise_factor

#: The noise factor of the tutorial the assignment follows. The assignment names
#: none; 0.3 visibly corrupts a digit while leaving it recognisable.
DEFAULT_NOISE_FACTOR = 0.3




def add_noise(
    images: torch.Tensor,
    noise_factor: float = DEFAULT_NOISE_FACTOR,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Return ``images + noise_factor * N(0, 1)``, clamped to the pixel range [0, 1].

    Args:
        images: float tensor of any shape, for example (B, 1, 28, 28), values in [0, 1].
        noise_factor: standard deviation of the Gaussian noise, >= 0.
        generator: optional ``torch.Generator`` that makes the noise repeatable.
    """
    noise_factor = check_noise_factor(noise_factor)
    if not torch.is_floating_point(images):
        raise ValueError(
            f"images must be a float tensor with values in [0, 1], got dtype {images.dtype}. "
            "Convert with images.float() / 255."
        )
    # Draw the noise where the generator lives, then move it next to the images.
    noise_device = generator.device if generator is not None else images.device
    noise = torch.randn(images.shape, generator=generator, device=noise_device, dtype=images.dtype)
    noisy = images + noise_factor * noise.to(images.device)
    # Clamping keeps the noisy image a valid image, as the decoder's sigmoid output is.
    return noisy.clamp(0.0, 1.0)


def salt_and_pepper(images: torch.Tensor, amount: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Return a copy of ``images`` with a random share ``amount`` of the pixels set to 0 or 1, half each.

    Args:
        images: float tensor with values in [0, 1], any shape.
        amount: the share of pixels hit, from 0 to 1.
        generator: optional ``torch.Generator`` (on the CPU) that makes the choice repeatable.
    """
    if not isinstance(amount, (int, float)) or isinstance(amount, bool) or not 0 <= amount <= 1:
        raise ValueError(f"amount must be a share of the pixels from 0 to 1, got {amount!r}. Use 0.1 for 10 %.")
    hit = torch.rand(images.shape, generator=generator) < amount  # which pixels change
    white = torch.rand(images.shape, generator=generator) < 0.5  # and to which extreme
    noisy = images.clone()
    noisy[hit.to(images.device)] = white[hit].to(images.dtype).to(images.device)
    return noisy


def expected_clamped(x: float, noise_factor: float) -> float:
    """Return the mean of clamp(x + noise_factor * N(0, 1), 0, 1) for a pixel of value ``x``, exactly.

    With Y = x + f * eps ~ N(x, f^2), a = -x / f and b = (1 - x) / f, the clamp keeps
    Y between 0 and 1 and maps everything above 1 to 1:

        E[clamp(Y)] = x (Phi(b) - Phi(a)) + f (phi(a) - phi(b)) + (1 - Phi(b)).

    For a black pixel (x = 0) this is about f / sqrt(2 pi) (0.12 at f = 0.3): the
    noise no longer averages out, it brightens the background.
    """
    from scipy.stats import norm

    f = check_noise_factor(noise_factor)
    if f == 0:
        return min(max(float(x), 0.0), 1.0)
    a, b = -x / f, (1 - x) / f
    return float(x * (norm.cdf(b) - norm.cdf(a)) + f * (norm.pdf(a) - norm.pdf(b)) + norm.sf(b))


def mse(estimate: torch.Tensor, target: torch.Tensor) -> float:
    """Return the mean squared error per pixel between two image batches: the course's one MSE."""
    return torch.mean((estimate.float() - target.float()) ** 2).item()


def psnr(estimate: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> float:
    """Return the peak signal-to-noise ratio in dB of ``estimate`` against ``target``.

    PSNR = 10 log10(data_range^2 / MSE), over all pixels of the batch.
    """
    error = mse(estimate, target)
    if error == 0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / error)
