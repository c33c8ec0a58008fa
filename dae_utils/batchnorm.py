"""Batch normalisation: written out by hand (checked against ``nn.BatchNorm2d``), and notebook 2's experiment.

``batch_norm_2d`` is the formula in training mode; ``train_steps`` trains a
few hundred closely watched steps and records what a batch-norm layer sees
(``StepLog``), and ``InjectedShift`` perturbs its output, for section 2.8's
experiment on why batch norm helps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .data import MNISTData
from .model import Decoder, Encoder
from .parameters import check_int
from .training import TrainConfig, build_models, test_epoch, training_step


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


@dataclass
class StepLog:
    """What ``train_steps`` records at every optimisation step."""

    loss: list[float]  # the training loss of each batch
    batch_mean: torch.Tensor  # (steps, C): per-channel mean of the watched layer's input, each batch
    batch_var: torch.Tensor  # (steps, C): its biased variance
    running_mean: torch.Tensor | None  # (steps, C): batch norm's running mean after each step; None without it
    running_var: torch.Tensor | None  # (steps, C)
    test_loss: float  # at the end, in eval mode, on the test set with the fixed test noise

    def drift(self, window: int = 20) -> dict[str, tuple[float, float]]:
        """Say how far the watched layer's input moved: its first ``window`` steps against its last.

        Returns the (smallest, largest) over channels of the absolute change of the
        per-channel batch mean (``mean_shift``) and of the ratio of the per-channel batch
        variance, last window over first (``variance_ratio``).
        """
        window = min(window, len(self.loss))
        start_mean, end_mean = self.batch_mean[:window].mean(0), self.batch_mean[-window:].mean(0)
        start_var, end_var = self.batch_var[:window].mean(0), self.batch_var[-window:].mean(0)
        shift = (end_mean - start_mean).abs()
        ratio = end_var / start_var
        return {"mean_shift": (shift.min().item(), shift.max().item()),
                "variance_ratio": (ratio.min().item(), ratio.max().item())}


def moving_average(values: list[float] | np.ndarray, width: int = 20) -> np.ndarray:
    """Return the running mean over ``width`` consecutive values (``len(values) - width + 1`` of them)."""
    return np.convolve(np.asarray(values, dtype=float), np.ones(width) / width, mode="valid")


def last_crossing(lower: list[float], upper: list[float], width: int = 20) -> int | None:
    """Return the step from which ``lower``'s moving average stays below ``upper``'s to the end, or None.

    Steps count from 1, and a moving average over ``width`` steps is placed at its
    last step. None means the two curves end the other way round.
    """
    below = moving_average(lower, width) < moving_average(upper, width)
    if not below[-1]:
        return None
    above = np.flatnonzero(~below)
    first = above[-1] + 1 if len(above) else 0  # index into the moving average
    return int(first + width)


def train_steps(
    config: TrainConfig,
    data: MNISTData,
    device: torch.device,
    num_steps: int,
    progress: bool = True,
    after_norm: Callable[[nn.Module, tuple[torch.Tensor, ...], torch.Tensor], torch.Tensor | None] | None = None,
    every_norm: bool = False,
) -> tuple[Encoder, Decoder, StepLog]:
    """Train for ``num_steps`` batches and record the loss and the encoder's batch-norm statistics at each.

    A short, closely watched run for experiments (notebook 2): the batches,
    noise and initial weights follow ``config.seed`` exactly as ``fit`` does.
    The watched layer is the encoder's batch norm after the second convolution
    (its pass-through when ``config.batchnorm`` is off); its input statistics are
    recorded either way. ``after_norm``, a forward hook such as
    ``batchnorm.InjectedShift``, may change that layer's output while training;
    with ``every_norm`` it is hooked on every batch-norm layer of the encoder and the
    decoder (three in the course's model), as Santurkar et al. perturbed every one.
    """
    check_int("num_steps", num_steps, 1)
    encoder, decoder, optimizer = build_models(config, device)
    norm = encoder.conv[3]  # BatchNorm2d(16), or nn.Identity without batch norm
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def watch(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if layer.training:
            x = inputs[0].detach()
            seen.append((x.mean(dim=(0, 2, 3)).cpu(), x.var(dim=(0, 2, 3), unbiased=False).cpu()))

    handles = [norm.register_forward_hook(watch)]
    if after_norm is not None:
        layers = ([m for m in (*encoder.modules(), *decoder.modules()) if isinstance(m, nn.BatchNorm2d)]
                  if every_norm else [norm])
        if every_norm and not layers:
            raise ValueError("every_norm=True hooks the batch-norm layers, but this model has none "
                             "(TrainConfig(batchnorm=False)); leave every_norm off or turn batch norm on.")
        handles += [layer.register_forward_hook(after_norm) for layer in layers]
    loss_fn = nn.MSELoss()
    losses: list[float] = []
    running: list[tuple[torch.Tensor, torch.Tensor]] = []
    loader = data.train_loader(config.batch_size, device=device)
    bar = tqdm(total=num_steps, desc="steps", unit="batch", disable=not progress)
    try:
        encoder.train()
        decoder.train()
        epoch = 0
        while len(losses) < num_steps:
            torch.manual_seed(config.seed + epoch)  # as in fit: the epoch's shuffle and noise follow the seed
            for images, _ in loader:
                loss = training_step(encoder, decoder, loss_fn, optimizer, config.noise_factor, images.to(device))
                losses.append(loss.item())
                if isinstance(norm, nn.BatchNorm2d):
                    running.append((norm.running_mean.detach().cpu().clone(), norm.running_var.detach().cpu().clone()))
                bar.update(1)
                if len(losses) == num_steps:
                    break
            epoch += 1
    finally:
        for handle in handles:
            handle.remove()
        bar.close()
    test_loss = test_epoch(encoder, decoder, device, data.test_loader(config.batch_size), loss_fn, config.noise_factor)
    log = StepLog(
        loss=losses,
        batch_mean=torch.stack([m for m, _ in seen]),
        batch_var=torch.stack([v for _, v in seen]),
        running_mean=torch.stack([m for m, _ in running]) if running else None,
        running_var=torch.stack([v for _, v in running]) if running else None,
        test_loss=test_loss,
    )
    encoder.eval()
    decoder.eval()
    return encoder, decoder, log
