"""Batch normalisation written out by hand, to check against ``nn.BatchNorm2d``."""

from __future__ import annotations

import torch


def batch_norm_2d(
    x: torch.Tensor,
    gamma: torch.Tensor | None = None,
    beta: torch.Tensor | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Normalise each channel of ``x`` over the batch and both spatial axes.

    y = gamma * (x - mean) / sqrt(var + eps) + beta, with the biased variance
    (divide by N, not N - 1), as ``nn.BatchNorm2d`` does in training mode.

    Args:
        x: activations of shape (B, C, H, W).
        gamma, beta: per-channel scale and shift of shape (C,); None means 1 and 0.
        eps: small constant that keeps the division finite for a constant channel.
    """
    if x.dim() != 4:
        raise ValueError(f"x must have shape (B, C, H, W), got {tuple(x.shape)}.")
    mean = x.mean(dim=(0, 2, 3), keepdim=True)  # (1, C, 1, 1)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)  # biased, (1, C, 1, 1)
    x_hat = (x - mean) / torch.sqrt(var + eps)  # the standard deviation, not the variance
    if gamma is not None:
        x_hat = x_hat * gamma.view(1, -1, 1, 1)
    if beta is not None:
        x_hat = x_hat + beta.view(1, -1, 1, 1)
    return x_hat
