"""Classical denoisers to measure the autoencoder against: a median filter and a Gaussian blur.

A denoising score means little alone. These two filters need no training (the
blur has one number, its width, chosen on training images) and run in a second
on the whole test set, so they are the bar a learned denoiser has to clear.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage, optimize

from .noise import mse  # the course's one MSE; baselines.mse is what the notebooks call

#: Side of the median filter's window, in pixels.
MEDIAN_SIZE = 3
#: The blur widths searched when fitting sigma, in pixels.
SIGMA_BOUNDS = (0.1, 3.0)


def _per_image(images: torch.Tensor) -> np.ndarray:
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (N, 1, H, W), got {tuple(images.shape)}.")
    return images.detach().cpu().numpy()


def median_filter(images: torch.Tensor, size: int = MEDIAN_SIZE) -> torch.Tensor:
    """Replace each pixel by the median of its ``size`` x ``size`` neighbourhood, image by image.

    The window never crosses from one image to the next (size 1 along the batch
    and channel axes); at the border the image is mirrored.
    """
    filtered = ndimage.median_filter(_per_image(images), size=(1, 1, size, size), mode="reflect")
    return torch.from_numpy(filtered)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each image with a Gaussian of standard deviation ``sigma`` pixels."""
    blurred = ndimage.gaussian_filter(_per_image(images), sigma=(0, 0, sigma, sigma), mode="reflect")
    return torch.from_numpy(blurred)


def fit_blur_sigma(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """Return the blur width that minimises the MSE of ``gaussian_blur(noisy)`` against ``clean``.

    Fit it on training images, then score it on the test set, as for any model.
    """
    result = optimize.minimize_scalar(
        lambda sigma: mse(gaussian_blur(noisy, sigma), clean), bounds=SIGMA_BOUNDS, method="bounded",
        options={"xatol": 1e-3},
    )
    return float(result.x)
