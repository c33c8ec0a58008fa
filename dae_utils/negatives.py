"""Images that are not a digit, made to test (and to train) the digit judge.

A judge of generated digits must say "no digit" where a sampler draws something
else. The cheap failures are easy to make (a blank page, noise); the failures that
samplers of this course actually produce are harder: **two digits blended**, a stroke
that stops half way, a scribble. Each function here makes one labelled kind, from
real digits where it needs them and from its own random generator, so the negatives
a judge is trained on (made from training images) stay apart from those it is
tested on (made from test images, with another seed):

- ``blends``: two digits of *different* classes mixed pixel by pixel,
  w * a + (1 - w) * b; w = 0.5 is the plain pixel mean.
- ``decoded_midpoints``: the decoder's image of the midpoint between the codes of
  two different digits; what a sampler that lands between two clusters draws.
- ``halves``: a digit with one half (top, bottom, left or right) erased.
- ``strokes``: one to three random pen strokes (quadratic Bezier curves, drawn with
  a soft pen): scribbles with the ink and stroke width of a digit.
- ``noise``: uniform noise, and Gaussian noise around a grey level.
- ``flat``: blank pages and flat grey.

The judge that learns to reject them is ``judge.train_judge`` (outlier exposure:
Hendrycks, Mazeika and Dietterich, 2019).

A judge that rejects these must not reject what a person still reads as a digit.
``unusual_digits`` makes right digits drawn unusually, each kind with its labels:
shifted off centre, blurred, and the pixel mean of two images of the *same* digit
(ghosted, as a decoder draws between two styles). Section 3's judge is measured on
them beside the negatives.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: The kinds of negative, in the order the course reports them.
KINDS = ("pixel blends", "halves", "strokes", "noise", "flat")


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a whole number of images, at least 1, not {count!r}.")


def different_pairs(labels: torch.Tensor, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``count`` index pairs (i, j) into ``labels`` whose digits differ, drawn at random."""
    _check_count(count)
    if len(labels) < 2 or len(torch.unique(labels)) < 2:
        raise ValueError("Blends need images of at least two different digits.")
    first = torch.randint(len(labels), (count,), generator=generator)
    second = torch.randint(len(labels), (count,), generator=generator)
    same = labels[first] == labels[second]
    while same.any():  # redraw the partners of the pairs that show the same digit
        second[same] = torch.randint(len(labels), (int(same.sum()),), generator=generator)
        same = labels[first] == labels[second]
    return first, second


def blends(images: torch.Tensor, labels: torch.Tensor, count: int, generator: torch.Generator,
           weight: float | tuple[float, float] = 0.5) -> torch.Tensor:
    """Return ``count`` blends w * a + (1 - w) * b of two digits of different classes from ``images``.

    ``weight`` is w, or a range (low, high) to draw w from uniformly for each blend.
    """
    first, second = different_pairs(labels, count, generator)
    if isinstance(weight, tuple):
        low, high = weight
        w = low + (high - low) * torch.rand(count, 1, 1, 1, generator=generator)
    else:
        w = torch.full((count, 1, 1, 1), float(weight))
    return w * images[first] + (1 - w) * images[second]


@torch.no_grad()
def decoded_midpoints(encoder: nn.Module, decoder: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                      count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Return the decoder's images of the midpoints between the codes of ``count`` pairs of different digits."""
    from .generation import decode, encode

    first, second = different_pairs(labels, count, generator)
    codes = encode(encoder, torch.cat([images[first], images[second]]), device)
    return decode(decoder, 0.5 * (codes[:count] + codes[count:]), device)


def halves(images: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Return ``count`` digits from ``images`` with their top, bottom, left or right half erased."""
    _check_count(count)
    chosen = images[torch.randint(len(images), (count,), generator=generator)].clone()
    side = torch.randint(4, (count,), generator=generator)
    chosen[side == 0, :, :14, :] = 0
    chosen[side == 1, :, 14:, :] = 0
    chosen[side == 2, :, :, :14] = 0
    chosen[side == 3, :, :, 14:] = 0
    return chosen


def _soft_pen(ink: torch.Tensor) -> torch.Tensor:
    """Thicken single-pixel traces (N, 1, 28, 28) into strokes about as wide as MNIST's, ink scaled to [0, 1]."""
    from torchvision.transforms.functional import gaussian_blur

    thick = gaussian_blur(ink.clamp(max=1.0), kernel_size=5, sigma=1.0)
    peak = thick.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return (1.6 * thick / peak).clamp(max=1.0)


def strokes(count: int, generator: torch.Generator, points_per_stroke: int = 60) -> torch.Tensor:
    """Return ``count`` scribbles: one to three random quadratic Bezier strokes each, drawn with a soft pen."""
    _check_count(count)
    ends = 4 + 20 * torch.rand(count, 3, 3, 2, generator=generator)  # 3 strokes x (start, control, end) x (row, col)
    t = torch.linspace(0, 1, points_per_stroke).view(1, 1, -1, 1)
    start, control, end = ends[:, :, 0:1], ends[:, :, 1:2], ends[:, :, 2:3]
    path = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t ** 2 * end  # (count, 3, points, 2)
    used = torch.arange(3).view(1, 3) < torch.randint(1, 4, (count, 1), generator=generator)  # (count, 3)
    pixels = path.round().long().clamp(0, 27)
    flat = (pixels[..., 0] * 28 + pixels[..., 1]) * used.unsqueeze(2)  # unused strokes all land on pixel 0 ...
    weight = used.unsqueeze(2).expand_as(flat).float()  # ... with no ink
    ink = torch.zeros(count, 28 * 28).scatter_add_(1, flat.reshape(count, -1), weight.reshape(count, -1))
    return _soft_pen(ink.view(count, 1, 28, 28))


def noise(count: int, generator: torch.Generator) -> torch.Tensor:
    """Return ``count`` noise images: half uniform in [0, 1], half N(grey, 0.3) around a random grey, clamped."""
    _check_count(count)
    uniform = torch.rand(count, 1, 28, 28, generator=generator)
    grey = torch.rand(count, 1, 1, 1, generator=generator)
    gaussian = (grey + 0.3 * torch.randn(count, 1, 28, 28, generator=generator)).clamp(0, 1)
    return torch.where(torch.arange(count).view(-1, 1, 1, 1) % 2 == 0, uniform, gaussian)


def flat(count: int, generator: torch.Generator) -> torch.Tensor:
    """Return ``count`` flat images: blank pages and flat greys (levels drawn uniformly in [0, 1], a third blank)."""
    _check_count(count)
    level = torch.rand(count, 1, 1, 1, generator=generator)
    level[torch.arange(count) % 3 == 0] = 0.0
    return level.expand(count, 1, 28, 28).clone()


def make(kind: str, images: torch.Tensor, labels: torch.Tensor, count: int, generator: torch.Generator,
         blend_weight: float | tuple[float, float] = 0.5) -> torch.Tensor:
    """Return ``count`` negatives of one of ``KINDS``, made from ``images`` where the kind needs digits."""
    makers: dict[str, Callable[[], torch.Tensor]] = {
        "pixel blends": lambda: blends(images, labels, count, generator, blend_weight),
        "halves": lambda: halves(images, count, generator),
        "strokes": lambda: strokes(count, generator),
        "noise": lambda: noise(count, generator),
        "flat": lambda: flat(count, generator),
    }
    if kind not in makers:
        raise ValueError(f"Unknown kind of negative {kind!r}; choose one of {', '.join(KINDS)}.")
    return makers[kind]()


def mixed(images: torch.Tensor, labels: torch.Tensor, count: int, generator: torch.Generator,
          shares: dict[str, float] | None = None) -> torch.Tensor:
    """Return ``count`` negatives of all kinds in the given ``shares`` (default: half blends), shuffled.

    Blends are drawn with weights from 0.3 to 0.7, so the judge learns the whole family, not one mixing weight.
    """
    shares = shares or {"pixel blends": 0.5, "halves": 0.15, "strokes": 0.15, "noise": 0.1, "flat": 0.1}
    counts = {kind: round(share * count) for kind, share in shares.items()}
    counts[next(iter(counts))] += count - sum(counts.values())
    parts = [make(kind, images, labels, n, generator, blend_weight=(0.3, 0.7)) for kind, n in counts.items() if n]
    everything = torch.cat(parts)
    return everything[torch.randperm(len(everything), generator=generator)]


#: Right digits drawn unusually, which a person still reads: (kind, what ``unusual`` does).
UNUSUAL_KINDS = ("blurred, sigma 1.0", "blurred, sigma 1.5", "shifted 3 pixels diagonally", "two of the same digit")


def same_digit_pairs(labels: torch.Tensor, count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``count`` index pairs (i, j), i != j, into ``labels`` that show the same digit, drawn at random."""
    _check_count(count)
    first = torch.randint(len(labels), (count,), generator=generator)
    second = torch.empty_like(first)
    for digit in torch.unique(labels[first]).tolist():
        pool = torch.nonzero(labels == digit).squeeze(1)
        if len(pool) < 2:
            raise ValueError(f"Digit {digit} has fewer than two images: a same-digit pair needs two.")
        rows = torch.nonzero(labels[first] == digit).squeeze(1)
        second[rows] = pool[torch.randint(len(pool), (len(rows),), generator=generator)]
    clash = first == second
    while clash.any():  # an image paired with itself: draw it a new partner of its digit
        for row in torch.nonzero(clash).squeeze(1).tolist():
            pool = torch.nonzero(labels == labels[first[row]]).squeeze(1)
            second[row] = pool[torch.randint(len(pool), (1,), generator=generator)]
        clash = first == second
    return first, second


def unusual(kind: str, images: torch.Tensor, labels: torch.Tensor, count: int,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``count`` right digits of one of ``UNUSUAL_KINDS``, made from ``images``, and their labels."""
    from torchvision.transforms.functional import gaussian_blur

    if kind not in UNUSUAL_KINDS:
        raise ValueError(f"Unknown kind of unusual digit {kind!r}; choose one of {', '.join(UNUSUAL_KINDS)}.")
    if kind == "two of the same digit":
        first, second = same_digit_pairs(labels, count, generator)
        return 0.5 * (images[first] + images[second]), labels[first]
    _check_count(count)
    chosen = torch.randint(len(images), (count,), generator=generator)
    picked = images[chosen]
    if kind.startswith("blurred"):
        sigma = float(kind.rsplit(" ", 1)[1])
        return gaussian_blur(picked, kernel_size=7, sigma=sigma), labels[chosen]
    shifted = torch.zeros_like(picked)  # 3 pixels right and down; MNIST's margin of 4 keeps the digit whole
    shifted[..., 3:, 3:] = picked[..., :-3, :-3]
    return shifted, labels[chosen]


def unusual_digits(images: torch.Tensor, labels: torch.Tensor, count: int,
                   seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Return ``count`` unusual digits of every kind, with their labels, made from ``images`` with their own seed."""
    generator = torch.Generator().manual_seed(seed)
    return {kind: unusual(kind, images, labels, count, generator) for kind in UNUSUAL_KINDS}

