"""The convolutional encoder and decoder of the assignment, and a per-layer summary.

A note on padding. The assignment asks for padding 1 on every convolution *and*
for a 3x3x32 encoder output. Those two disagree. A convolution maps a side of n
pixels to floor((n + 2p - k) / s) + 1, so with k = 3 and s = 2:

    28 -> 14 (p = 1) -> 7 (p = 1) -> 3 with p = 0, but 4 with p = 1.

We keep the stated 3x3x32 output (it fixes the 288 inputs of the fully connected
layer) and give the third convolution padding 0. The decoder mirrors this with a
transposed convolution 3 -> 7 that has padding 0 and no output padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .runtime import check_int

#: Side of an MNIST image, in pixels.
IMAGE_SIZE = 28
#: Channels after each of the three convolutions.
CONV_CHANNELS = (8, 16, 32)
#: Side of the last feature map: 28 -> 14 -> 7 -> 3.
FEATURE_SIZE = 3
#: Width of the hidden fully connected layer.
HIDDEN_UNITS = 128
#: Size of the latent code in the assignment.
DEFAULT_LATENT_DIM = 4

KERNEL_SIZE = 3
STRIDE = 2


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Return the side of a convolution's output: floor((n + 2p - k) / s) + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def _check_latent_dim(latent_dim: int) -> int:
    return check_int("latent_dim", latent_dim, 1, "The assignment uses d = 4.")


class Encoder(nn.Module):
    """Map a (B, 1, 28, 28) image batch to (B, d) latent codes."""

    def __init__(self, latent_dim: int = DEFAULT_LATENT_DIM, batchnorm_affine: bool = True):
        super().__init__()
        self.latent_dim = _check_latent_dim(latent_dim)
        c1, c2, c3 = CONV_CHANNELS
        self.conv = nn.Sequential(
            nn.Conv2d(1, c1, KERNEL_SIZE, stride=STRIDE, padding=1),  # (B, 1, 28, 28) -> (B, 8, 14, 14)
            nn.ReLU(),
            nn.Conv2d(c1, c2, KERNEL_SIZE, stride=STRIDE, padding=1),  # -> (B, 16, 7, 7)
            nn.BatchNorm2d(c2, affine=batchnorm_affine),
            nn.ReLU(),
            nn.Conv2d(c2, c3, KERNEL_SIZE, stride=STRIDE, padding=0),  # -> (B, 32, 3, 3), see module doc
            nn.ReLU(),
        )
        self.flatten = nn.Flatten(start_dim=1)  # -> (B, 288)
        self.fc = nn.Sequential(
            nn.Linear(c3 * FEATURE_SIZE * FEATURE_SIZE, HIDDEN_UNITS),  # -> (B, 128)
            nn.ReLU(),
            nn.Linear(HIDDEN_UNITS, latent_dim),  # -> (B, d); no activation: codes may be negative
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.conv(images)))


class Decoder(nn.Module):
    """Map (B, d) latent codes back to (B, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = DEFAULT_LATENT_DIM, batchnorm_affine: bool = True):
        super().__init__()
        self.latent_dim = _check_latent_dim(latent_dim)
        c1, c2, c3 = CONV_CHANNELS
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, HIDDEN_UNITS),  # (B, d) -> (B, 128)
            nn.ReLU(),
            nn.Linear(HIDDEN_UNITS, c3 * FEATURE_SIZE * FEATURE_SIZE),  # -> (B, 288)
            nn.ReLU(),
        )
        self.unflatten = nn.Unflatten(dim=1, unflattened_size=(c3, FEATURE_SIZE, FEATURE_SIZE))
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(c3, c2, KERNEL_SIZE, stride=STRIDE, padding=0),  # (B, 32, 3, 3) -> (B, 16, 7, 7)
            nn.BatchNorm2d(c2, affine=batchnorm_affine),
            nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, KERNEL_SIZE, stride=STRIDE, padding=1, output_padding=1),  # -> (B, 8, 14, 14)
            nn.BatchNorm2d(c1, affine=batchnorm_affine),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, 1, KERNEL_SIZE, stride=STRIDE, padding=1, output_padding=1),  # -> (B, 1, 28, 28)
            nn.Sigmoid(),  # pixel values in [0, 1], like the clean images
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.unflatten(self.fc(latent)))


@dataclass(frozen=True)
class LayerRow:
    """One row of ``layer_table``: a layer's name, output shape and parameter count."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    num_params: int


def layer_table(module: nn.Module, input_shape: tuple[int, ...]) -> list[LayerRow]:
    """Run one batch of zeros through ``module`` and list every leaf layer it passes.

    Args:
        module: an ``Encoder``, a ``Decoder`` or any other ``nn.Module``.
        input_shape: the input's shape with the batch dimension, e.g. (1, 1, 28, 28).

    Returns:
        One ``LayerRow`` per leaf layer, in the order the forward pass calls them.
    """
    rows: list[LayerRow] = []
    hooks = []
    for name, layer in module.named_modules():
        if any(True for _ in layer.children()):
            continue  # only leaves: containers would repeat their children's rows

        def hook(layer: nn.Module, inputs: object, output: torch.Tensor, name: str = name) -> None:
            num_params = sum(p.numel() for p in layer.parameters(recurse=False))
            rows.append(LayerRow(name, type(layer).__name__, tuple(output.shape), num_params))

        hooks.append(layer.register_forward_hook(hook))
    was_training = module.training
    try:
        module.eval()  # batch norm in eval mode accepts a batch of one
        with torch.no_grad():
            param = next(module.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
            module(torch.zeros(input_shape, device=device))
    finally:
        for handle in hooks:
            handle.remove()
        module.train(was_training)
    return rows


def format_layer_table(rows: list[LayerRow]) -> str:
    """Return ``rows`` as an aligned text table with a total line."""
    lines = [f"{'layer':<12}{'type':<18}{'output shape':<22}{'parameters':>11}"]
    for row in rows:
        shape = "(B, " + ", ".join(str(s) for s in row.output_shape[1:]) + ")"
        lines.append(f"{row.name:<12}{row.kind:<18}{shape:<22}{row.num_params:>11,}")
    total = sum(row.num_params for row in rows)
    lines.append(f"{'total':<52}{total:>11,}")
    return "\n".join(lines)


def count_parameters(module: nn.Module) -> int:
    """Return the number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
