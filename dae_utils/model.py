"""The convolutional encoder and decoder of the assignment, and a per-layer summary.

A note on padding. The assignment asks for padding 1 on every convolution *and*
for a 3x3x32 encoder output. Those two disagree. A convolution maps a side of n
pixels to floor((n + 2p - k) / s) + 1, so with k = 3 and s = 2:

    28 -> 14 (p = 1) -> 7 (p = 1) -> 3 with p = 0, but 4 with p = 1.

We keep the stated 3x3x32 output (it fixes the 288 inputs of the fully connected
layer) and give the third convolution padding 0. The decoder mirrors the encoder's
sizes with a transposed convolution 3 -> 7 that has padding 0 and no output
padding. It is not an exact mirror: it has batch norm after its first *two*
transposed convolutions, where the encoder has one.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import nn

from .parameters import check_int

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


def _norm(channels: int, batchnorm: bool, affine: bool) -> nn.Module:
    """Batch norm over ``channels``, or a pass-through when ``batchnorm`` is off (for experiments)."""
    return nn.BatchNorm2d(channels, affine=affine) if batchnorm else nn.Identity()


class Encoder(nn.Module):
    """Map a (B, 1, 28, 28) image batch to (B, d) latent codes.

    ``batchnorm=False`` replaces batch norm by a pass-through (for the experiment
    of notebook 2); ``batchnorm_affine=False`` drops its learnable gamma and beta.
    """

    def __init__(self, latent_dim: int = DEFAULT_LATENT_DIM, batchnorm_affine: bool = True, batchnorm: bool = True):
        super().__init__()
        self.latent_dim = _check_latent_dim(latent_dim)
        c1, c2, c3 = CONV_CHANNELS
        self.conv = nn.Sequential(
            nn.Conv2d(1, c1, KERNEL_SIZE, stride=STRIDE, padding=1),  # (B, 1, 28, 28) -> (B, 8, 14, 14)
            nn.ReLU(),
            nn.Conv2d(c1, c2, KERNEL_SIZE, stride=STRIDE, padding=1),  # -> (B, 16, 7, 7)
            _norm(c2, batchnorm, batchnorm_affine),
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
        if images.dim() != 4 or tuple(images.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE) or len(images) == 0:
            raise ValueError(
                f"The encoder takes a batch of MNIST images of shape (B, 1, {IMAGE_SIZE}, {IMAGE_SIZE}) with B >= 1, "
                f"got {tuple(images.shape)}. Add the batch and channel axes with images.view(-1, 1, 28, 28); "
                "other image sizes would silently change the feature maps (see the padding note)."
            )
        return self.fc(self.flatten(self.conv(images)))


class Decoder(nn.Module):
    """Map (B, d) latent codes back to (B, 1, 28, 28) images in [0, 1].

    It mirrors the encoder's sizes, but has batch norm after its first two
    transposed convolutions where the encoder has it after one convolution.
    """

    def __init__(self, latent_dim: int = DEFAULT_LATENT_DIM, batchnorm_affine: bool = True, batchnorm: bool = True):
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
            _norm(c2, batchnorm, batchnorm_affine),
            nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, KERNEL_SIZE, stride=STRIDE, padding=1, output_padding=1),  # -> (B, 8, 14, 14)
            _norm(c1, batchnorm, batchnorm_affine),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, 1, KERNEL_SIZE, stride=STRIDE, padding=1, output_padding=1),  # -> (B, 1, 28, 28)
            nn.Sigmoid(),  # pixel values in [0, 1], like the clean images
        )

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        if latent.dim() != 2 or latent.shape[1] != self.latent_dim or len(latent) == 0:
            raise ValueError(
                f"The decoder takes latent codes of shape (B, {self.latent_dim}) with B >= 1, got "
                f"{tuple(latent.shape)}. A single code needs a batch axis: code.unsqueeze(0)."
            )
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


def biases_before_batchnorm(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Return the (name, bias) of every convolution whose output goes straight into batch norm.

    Batch norm subtracts each channel's batch mean, so a constant added per
    channel just before it cancels: such a bias gets a zero gradient (float
    rounding leaves about 1e-9) and learns nothing, though Adam still moves it a
    little. The usual convention is ``bias=False`` on those layers.
    """
    found = []
    for name, layer in module.named_modules():
        if not isinstance(layer, nn.Sequential):
            continue
        children = list(layer.named_children())
        for (conv_name, conv), (_, nxt) in itertools.pairwise(children):
            is_conv = isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d))
            if is_conv and isinstance(nxt, nn.BatchNorm2d) and conv.bias is not None:
                found.append((f"{name}.{conv_name}.bias" if name else f"{conv_name}.bias", conv.bias))
    return found


def conv_transpose_by_hand(
    x: torch.Tensor, weight: torch.Tensor, stride: int = 1, padding: int = 0, output_padding: int = 0
) -> torch.Tensor:
    """Compute a transposed convolution as a scatter-add of the kernel, to check ``nn.ConvTranspose2d``.

    Every input pixel x[b, i, r, c] adds ``x[b, i, r, c] * weight[i, o]`` into the
    output window that starts at (r * stride, c * stride); then ``padding`` pixels
    are cut from each border (``output_padding`` extra rows and columns stay at the
    bottom and right). No bias.

    Args:
        x: (B, C_in, H, W).
        weight: (C_in, C_out, k, k), the layout of ``nn.ConvTranspose2d.weight``.
    """
    batch, _, height, width = x.shape
    k = weight.shape[-1]
    full_h, full_w = (height - 1) * stride + k + output_padding, (width - 1) * stride + k + output_padding
    out = x.new_zeros(batch, weight.shape[1], full_h, full_w)
    for r in range(height):
        for c in range(width):
            # (B, C_in) x (C_in, C_out, k, k) -> (B, C_out, k, k): every input channel's kernel, weighted
            patch = torch.einsum("bi,iokl->bokl", x[:, :, r, c], weight)
            out[:, :, r * stride : r * stride + k, c * stride : c * stride + k] += patch
    return out[:, :, padding : full_h - padding, padding : full_w - padding]


def count_parameters(module: nn.Module) -> int:
    """Return the number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
