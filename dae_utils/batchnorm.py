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


class InjectedShift:
    """Shift and rescale every channel of a layer's output by new random amounts at every training step.

    Santurkar, Tsipras, Ilyas and Madry (2018, section 2.1) tested the covariate-shift
    explanation of batch norm this way: after each batch-norm layer they injected noise
    of non-zero mean and non-unit variance that changed at every step, so the next layer's
    input distribution kept moving, and training still went well. Here each channel c
    gets ``y = scale_c * x + shift_c`` with ``shift_c ~ U(-max_shift, max_shift)`` and
    ``scale_c ~ U(1 / max_scale, max_scale)``, drawn afresh at every step from its own
    generator (so the training batches and noise stay those of the undisturbed run).
    Use it as a forward hook on the batch-norm layer: ``layer.register_forward_hook(shift)``.
    It changes nothing in eval mode.
    """

    def __init__(self, seed: int = 0, max_shift: float = 1.0, max_scale: float = 2.0) -> None:
        if not max_shift >= 0 or not max_scale >= 1:
            raise ValueError(f"max_shift must be >= 0 and max_scale >= 1, got {max_shift!r} and {max_scale!r}.")
        self.generator = torch.Generator().manual_seed(seed)
        self.max_shift, self.max_scale = max_shift, max_scale

    def __call__(self, layer: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        if not layer.training:
            return output
        channels = output.shape[1]
        shift = (torch.rand(channels, generator=self.generator) * 2 - 1) * self.max_shift
        log_scale = (torch.rand(channels, generator=self.generator) * 2 - 1) * torch.log(torch.tensor(self.max_scale))
        shape = (1, channels) + (1,) * (output.dim() - 2)
        return output * log_scale.exp().view(shape).to(output) + shift.view(shape).to(output)
