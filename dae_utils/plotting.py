"""Figures for the course. Each function takes arrays or CPU tensors and an optional
``ax``, returns the ``Figure``, and never calls ``plt.show()`` or saves a file."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torchvision.utils import make_grid


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def show_images(
    images: torch.Tensor,
    nrow: int = 8,
    title: str | None = None,
    ax: Axes | None = None,
    padding: int = 2,
    scale: float = 0.8,
) -> Figure:
    """Show a batch of images (N, 1, 28, 28) in [0, 1] as one grid, ``nrow`` per row, ``scale`` inches each."""
    grid = make_grid(images.detach().cpu().float(), nrow=nrow, padding=padding, pad_value=1.0)  # (3, H, W)
    fig, ax = _axes(ax, (nrow * scale, (len(images) + nrow - 1) // nrow * scale))
    ax.imshow(grid[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return fig


def show_rows(rows: dict[str, torch.Tensor], figsize_per_image: float = 0.9) -> Figure:
    """Show named rows of images one above the other, e.g. clean / noisy / denoised."""
    ncols = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(
        len(rows), ncols, figsize=(ncols * figsize_per_image, len(rows) * figsize_per_image * 1.15), squeeze=False
    )
    for r, (name, images) in enumerate(rows.items()):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                image = images[c].detach().cpu().squeeze(0).numpy()
                ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def plot_losses(history: dict[str, Sequence[float]], ax: Axes | None = None, title: str | None = None) -> Figure:
    """Plot the train and test loss per epoch."""
    fig, ax = _axes(ax, (6, 3.5))
    for name, values in history.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE per pixel")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right")  # the first epochs' points sit at the far left; the top right is empty
    if title:
        ax.set_title(title)
    return fig


def plot_curve(
    x: Sequence[float],
    ys: dict[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    ax: Axes | None = None,
    marker: str | None = "o",
    logy: bool = False,
    title: str | None = None,
) -> Figure:
    """Plot one or more named curves over a shared x axis (``marker=None`` for long curves)."""
    fig, ax = _axes(ax, (6, 3.5))
    for name, y in ys.items():
        ax.plot(x, y, marker=marker, markersize=3, linewidth=1.2 if marker else 0.9, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, which="both" if logy else "major", alpha=0.3)
    if len(ys) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    return fig


def plot_spread(
    x: Sequence[float],
    runs: dict[str, np.ndarray],
    xlabel: str,
    ylabel: str,
    ax: Axes | None = None,
    logy: bool = False,
    title: str | None = None,
    highlight: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None,
) -> Figure:
    """Plot, for each name, the mean over seeds as a line and the range (lowest to highest) as a band.

    ``runs[name]`` has one row per seed, (seeds, len(x)). ``highlight[name] = (x, y)``
    adds a single run (e.g. the one trained in the notebook) as a dashed line in the
    same colour.
    """
    fig, ax = _axes(ax, (6, 3.5))
    for name, values in runs.items():
        values = np.asarray(values, dtype=float)
        (line,) = ax.plot(x, values.mean(axis=0), linewidth=1.4,
                          label=f"{name} (mean of {len(values)} seeds; band: lowest to highest)")
        ax.fill_between(x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2, linewidth=0)
        if highlight and name in highlight:
            ax.plot(*highlight[name], color=line.get_color(), linestyle="--", linewidth=0.9)
    if highlight:
        ax.plot([], [], color="gray", linestyle="--", linewidth=0.9, label="this notebook's run (dashed)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, which="both" if logy else "major", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def pixel_histograms(
    samples: dict[str, torch.Tensor],
    bins: int = 50,
    ax: Axes | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
    xlabel: str = "pixel value",
    log: bool = True,
) -> Figure:
    """Overlay histograms of the values of named batches over ``value_range`` (log counts by default)."""
    fig, ax = _axes(ax, (6, 3.5))
    edges = np.linspace(*value_range, bins + 1)
    for name, values in samples.items():
        ax.hist(values.detach().cpu().flatten().numpy(), bins=edges, histtype="step", linewidth=1.5, label=name)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    ax.legend()
    return fig


def show_matrices(matrices: dict[str, np.ndarray], fmt: str = "{:g}", size: float = 0.45) -> Figure:
    """Show small 2-D arrays side by side with every entry written in its cell."""
    fig, axes = plt.subplots(
        1, len(matrices), squeeze=False,
        figsize=(sum(m.shape[1] for m in matrices.values()) * size + len(matrices) * 0.6,
                 max(m.shape[0] for m in matrices.values()) * size + 0.7),
        gridspec_kw={"width_ratios": [m.shape[1] for m in matrices.values()]},
    )
    for ax, (title, matrix) in zip(axes[0], matrices.items(), strict=True):
        matrix = np.asarray(matrix, dtype=float)
        ax.imshow(matrix, cmap="coolwarm", vmin=-np.abs(matrix).max() or -1, vmax=np.abs(matrix).max() or 1)
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def latent_pairs(latent: np.ndarray, colors: np.ndarray, max_points: int = 3000, seed: int = 0) -> Figure:
    """Scatter every pair of latent dimensions, coloured by ``colors`` (e.g. the digit).

    At most ``max_points`` codes, drawn at random, are shown; the title says how many.
    The diagonal holds each dimension's histogram (its height, a count, is left unlabelled).
    """
    latent = np.asarray(latent)
    colors = np.asarray(colors)
    total = len(latent)
    if total > max_points:  # thousands of points already show the shape
        keep = np.random.default_rng(seed).choice(total, max_points, replace=False)
        latent, colors = latent[keep], colors[keep]
    d = latent.shape[1]
    fig, axes = plt.subplots(d, d, figsize=(2.2 * d, 2.0 * d), squeeze=False,
                             gridspec_kw={"wspace": 0.45, "hspace": 0.3})  # room for every panel's tick labels
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if i == j:
                ax.hist(latent[:, i], bins=40, color="black", alpha=0.6)
                ax.set_yticks([])  # counts: their scale does not matter, and their labels collided with z's
            else:
                points = ax.scatter(
                    latent[:, j], latent[:, i], c=colors, cmap="tab10", s=1, vmin=-0.5, vmax=9.5, rasterized=True
                )
            ax.tick_params(labelsize=7)
            if i == d - 1:
                ax.set_xlabel(f"z{j}")
            if j == 0:
                ax.set_ylabel(f"z{i}")
    if d > 1:
        fig.colorbar(points, ax=axes, ticks=range(10), label="digit", shrink=0.6)
    shown = f"all {total:,} codes" if total == len(latent) else f"{len(latent):,} of {total:,} codes, drawn at random"
    fig.suptitle(f"Every pair of latent dimensions ({shown}); diagonal: histograms")
    return fig


def scatter_2d(
    points: np.ndarray,
    colors: np.ndarray,
    title: str,
    ax: Axes | None = None,
    label: str = "digit",
    axis_labels: tuple[str, str] = ("", ""),
) -> Figure:
    """Scatter 2-D points coloured by ten classes, each class also labelled at its median point.

    The points are drawn in random order, so no class is painted over the others, and
    the labels find a class whose colour is hard to see among its neighbours.
    """
    fig, ax = _axes(ax, (5, 5))
    order = np.random.default_rng(0).permutation(len(points))
    sc = ax.scatter(points[order, 0], points[order, 1], c=np.asarray(colors)[order], cmap="tab10", s=2,
                    vmin=-0.5, vmax=9.5, rasterized=True)
    fig.colorbar(sc, ax=ax, ticks=range(10), label=label)
    label_classes(ax, points, colors)
    ax.set_title(title)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    return fig


def scatter_panels(panels: dict[str, tuple], axis_labels: tuple[str, str] = ("", ""), size: float = 5.5) -> Figure:
    """``scatter_2d`` side by side: ``panels[title] = (2-D points, their ten classes[, the colour bar's label])``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), 4.8), squeeze=False)
    for ax, (title, (points, colors, *label)) in zip(axes[0], panels.items(), strict=True):
        scatter_2d(points, colors, title, ax=ax, axis_labels=axis_labels, label=label[0] if label else "digit")
    fig.tight_layout()
    return fig


def label_classes(ax: Axes, points: np.ndarray, classes: np.ndarray, fontsize: float = 10) -> None:
    """Write each class's number, in its colour (tab10), at the median of its 2-D points."""
    points, classes = np.asarray(points), np.asarray(classes)
    for value in np.unique(classes):
        centre = np.median(points[classes == value], axis=0)
        ax.text(*centre, str(value), ha="center", va="center", fontsize=fontsize, fontweight="bold",
                color=plt.get_cmap("tab10")(int(value) % 10),
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.8, "linewidth": 0})


def confusion(
    matrix: np.ndarray,
    xlabel: str,
    ylabel: str,
    xticklabels: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Show a confusion matrix with its counts written in the cells."""
    fig, ax = _axes(ax, (6, 5))
    im = ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=7,
                color="white" if count > matrix.max() / 2 else "black")
    ax.set_xticks(range(matrix.shape[1]))
    if xticklabels is not None:
        ax.set_xticklabels(xticklabels, rotation=45)
    ax.set_yticks(range(matrix.shape[0]))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax)
    return fig


def image_grids(grids: dict[str, torch.Tensor], nrow: int = 3, size: float = 4.0) -> Figure:
    """Show several image batches side by side, one titled grid each."""
    fig, axes = plt.subplots(1, len(grids), figsize=(size * len(grids), size * 1.08), squeeze=False)
    for ax, (title, images) in zip(axes[0], grids.items(), strict=True):
        show_images(images, nrow=nrow, title=title, ax=ax)
    return fig


def paired_runs(runs: dict[str, Sequence[float]], ylabel: str, seeds: Sequence[int] | None = None,
                ax: Axes | None = None, title: str | None = None) -> Figure:
    """Plot two arms' values over seeds, one line per seed joining its two runs (a slope chart).

    ``runs`` maps the two arms' names to one value per seed, in the same seed order.
    Lines that slope the same way show a paired difference, whatever the seeds'
    own levels. ``seeds`` names the seeds in the legend (default 0, 1, ...).
    """
    if len(runs) != 2 or len({len(v) for v in runs.values()}) != 1:
        raise ValueError(f"paired_runs needs two arms with one value per seed each; got "
                         f"{ {name: len(v) for name, v in runs.items()} }.")
    fig, ax = _axes(ax, (3.6, 3.5))
    (first, a), (second, b) = runs.items()
    seeds = list(range(len(a))) if seeds is None else list(seeds)
    for seed, y0, y1 in zip(seeds, a, b, strict=True):
        ax.plot([0, 1], [y0, y1], marker="o", markersize=4, linewidth=1.1, label=f"seed {seed}")
    ax.set_xticks([0, 1], [first, second])
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylabel(ylabel)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title)
    return fig


def reliability_diagram(confidence: torch.Tensor, correct: torch.Tensor, ax: Axes | None = None,
                        title: str | None = None, bins: int = 10, label: str | None = None) -> Figure:
    """Plot accuracy against confidence, binned (scikit-learn's ``calibration_curve``), with the diagonal.

    A calibrated classifier's points lie on the diagonal: of the predictions made with
    confidence 0.8, 80 % are right. Points below it mean overconfidence. The bars at the
    bottom show how many predictions fall in each bin (most sit near 1).
    """
    from sklearn.calibration import calibration_curve

    fig, ax = _axes(ax, (3.6, 3.5))
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.int64)
    accuracy, mean_confidence = calibration_curve(correct, confidence, n_bins=bins, strategy="uniform")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, linestyle="--", label="calibrated")
    ax.plot(mean_confidence, accuracy, marker="o", markersize=4, label=label or "measured")
    counts, edges = np.histogram(confidence, bins=bins, range=(0, 1))
    ax.bar(edges[:-1], 0.25 * counts / max(counts.max(), 1), width=1 / bins, align="edge", alpha=0.2,
           color="C0", label="share of predictions (scaled)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7, loc="upper left")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def threshold_sweep(shares: dict[str, Sequence[float]], thresholds: Sequence[float], ax: Axes | None = None,
                    chosen: float | None = None, ylabel: str = "share read as a digit",
                    title: str | None = None) -> Figure:
    """Plot, for each named set of images, the share read as a digit against the threshold; mark the chosen one."""
    fig, ax = _axes(ax, (5.0, 3.5))
    for name, values in shares.items():
        if len(values) != len(thresholds):
            raise ValueError(f"{name}: {len(values)} shares for {len(thresholds)} thresholds.")
        ax.plot(thresholds, values, marker="o", markersize=3, label=name)
    if chosen is not None:
        ax.axvline(chosen, color="grey", linestyle="--", linewidth=0.8, label=f"chosen threshold {chosen:.3f}")
    ax.set_xlabel("threshold on the confidence")
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def epoch_panels(panels: dict[str, tuple[str, dict[str, Sequence[float]]]], size: tuple[float, float] = (5, 3.4)
                 ) -> Figure:
    """One panel per title: ``panels[title] = (ylabel, {name: one value per epoch})``, epochs counted from 1."""
    fig, axes = plt.subplots(1, len(panels), figsize=(size[0] * len(panels), size[1]), squeeze=False)
    for ax, (title, (ylabel, curves)) in zip(axes[0], panels.items(), strict=True):
        for name, values in curves.items():
            ax.plot(np.arange(1, len(values) + 1), values, marker="o", markersize=3, label=name)
        ax.set(xlabel="epoch", ylabel=ylabel, title=title)
        if len(curves) > 1:
            ax.legend()
    fig.tight_layout()
    return fig


def digit_shares(shares: dict[str, Sequence[float]], expected: Sequence[float] | None = None,
                 xlabel: str = "digit the judge reads (readable samples only)") -> Figure:
    """Bars of each named set's share of every digit, side by side; the expected mix, if given, as black ticks."""
    fig, ax = plt.subplots(figsize=(9, 3.2))
    width = 0.8 / len(shares)
    for k, (name, share) in enumerate(shares.items()):
        ax.bar(np.arange(10) + (k - (len(shares) - 1) / 2) * width, share, width, label=name)
    if expected is not None:
        ax.plot(np.arange(10), expected, "k_", markersize=18, label="test set's mix")
    ax.set(xticks=range(10), xlabel=xlabel, ylabel="share")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def readable_by_parts(by_distance: dict[str, tuple[Sequence[float], Sequence[float]]],
                      by_density: dict[str, tuple[Sequence[float], Sequence[float]]]) -> Figure:
    """Readable share of samples by tenths: of the distance to the nearest training code, and of the density.

    Each entry is (the parts' median value, the parts' readable share), as ``generation.share_by_parts`` returns.
    """
    fig, (near, dense) = plt.subplots(1, 2, figsize=(11, 3.4))
    for name, (centres, shares) in by_distance.items():
        near.plot(centres, shares, marker="o", label=name)
    for k, (name, (centres, shares)) in enumerate(by_density.items()):
        dense.plot(centres, shares, marker="o", color=f"C{k + len(by_distance) - 1}", label=name)
    near.set(xscale="log", xlabel="distance to the nearest training code / the same for real test codes",
             ylabel="readable share", ylim=(0, 1), title="by distance (tenths of the samples)")
    dense.set(xlabel="log-density under the aggregate posterior (nats)", ylabel="readable share", ylim=(0, 1),
              title="by the aggregate posterior's density (tenths)")
    near.legend()
    dense.legend()
    fig.tight_layout()
    return fig


def beta_tradeoff(betas: Sequence[float], readable: dict[str, np.ndarray], baseline: tuple[str, float],
                  information: Sequence[float], mismatch: Sequence[float], by_density: np.ndarray,
                  cap: float, top: float = 16) -> Figure:
    """The VAE's beta trade-off in three panels: what each beta reads, how its KL splits, where its samples fail.

    ``readable[name]`` is (seeds, betas); ``baseline`` a named level (the autoencoder's); ``information`` and
    ``mismatch`` the mean KL's two parts per beta, under the cap log n; ``by_density`` (betas, tenths) the
    readable share in each tenth of the N(0, I) samples by their density under the aggregate posterior.
    """
    fig, (reads, split, where) = plt.subplots(1, 3, figsize=(14, 3.6))
    ticks = {"xticks": range(len(betas)), "xticklabels": [f"{b:g}" for b in betas], "xlabel": "beta"}
    for (name, values), marker in zip(readable.items(), "os", strict=False):
        values = np.asarray(values)
        line, = reads.plot(range(len(betas)), values.mean(axis=0), marker=marker, label=name)
        for k in range(len(betas)):
            reads.plot([k] * len(values), values[:, k], ".", color=line.get_color(), alpha=0.4)
    reads.axhline(baseline[1], color="k", ls="--", lw=1, label=baseline[0])
    reads.set(**ticks, ylabel="readable share (mean; dots: seeds)", ylim=(0, 1))
    reads.legend(fontsize=8)
    split.bar(range(len(betas)), information, label="information I(image; code)")
    split.bar(range(len(betas)), mismatch, bottom=information, label="KL(aggregate posterior || N(0, I))")
    split.axhline(cap, color="k", ls="--", lw=1, label=f"log {round(np.exp(cap)):,}: the cap on I")
    for k, (i, m) in enumerate(zip(information, mismatch, strict=True)):
        if i + m > top:  # a bar that runs off the panel: its total is written on it
            split.text(k, top - 0.3, f"{i + m:.0f}", ha="center", va="top", fontsize=8)
    split.set(**ticks, ylabel="mean KL per image (nats)", ylim=(0, top))
    split.legend(fontsize=8)
    for beta, tenths in zip(betas, by_density, strict=True):
        where.plot(range(1, len(tenths) + 1), tenths, marker=".", label=f"beta {beta:g}")
    where.set(xticks=range(1, 11), xlabel="tenth of the N(0, I) samples by aggregate density (1: lowest)",
              ylabel="readable share (mean of the seeds)", ylim=(0, 1))
    where.legend(fontsize=8, ncol=3, loc="lower right")
    fig.tight_layout()
    return fig


def latent_plane(images: torch.Tensor, axis_values: Sequence[float], marked: np.ndarray, title: str,
                 labels: tuple[str, str] = ("z0", "z1")) -> Figure:
    """Decodes over a square grid of two code dimensions, row 0 at the top; ``marked`` ones get a red frame."""
    size = len(axis_values)
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    canvas = images.view(size, size, 28, 28).permute(0, 2, 1, 3).reshape(size * 28, size * 28)
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, extent=(0, size, 0, size))
    for k in np.flatnonzero(marked):
        row, column = divmod(int(k), size)
        ax.add_patch(plt.Rectangle((column + 0.04, size - row - 0.96), 0.92, 0.92, fill=False, color="red", lw=1.2))
    ticks = [f"{v:.1f}" for v in axis_values]
    ax.set_xticks(np.arange(size) + 0.5, ticks, fontsize=7)
    ax.set_yticks(np.arange(size) + 0.5, ticks, fontsize=7)
    ax.set(xlabel=labels[0], ylabel=labels[1], title=title)
    fig.tight_layout()
    return fig


def latent_sweep(latent_dims: Sequence[int], this_run: dict[str, dict[str, Sequence[float]]],
                 reference: dict[str, dict[str, np.ndarray]] | None, reference_dims: Sequence[int],
                 levels: dict[str, tuple[str, float]], logy: Sequence[str] = ()) -> Figure:
    """One panel per measure over the code size d (log 2 axis): the reference seeds' spread and this run dashed.

    ``this_run[ylabel][name]`` has one value per ``latent_dims``; ``reference[ylabel][name]`` (seeds,
    reference_dims), or None where the reference has no runs of these settings (this run alone is drawn);
    ``levels[ylabel] = (label, value)`` a dotted line, e.g. a baseline's figure.
    """
    fig, axes = plt.subplots(1, len(this_run), figsize=(16 / 3 * len(this_run), 4))
    for ax, (ylabel, runs) in zip(axes, this_run.items(), strict=True):
        log = ylabel in logy
        if reference is not None:
            plot_spread(reference_dims, reference[ylabel], "latent dimension d", ylabel, ax=ax, logy=log,
                        highlight={name: (latent_dims, values) for name, values in runs.items()})
        else:
            plot_curve(latent_dims, runs, "latent dimension d", ylabel, ax=ax, logy=log)
        if ylabel in levels:
            ax.axhline(levels[ylabel][1], color="gray", linestyle=":", label=levels[ylabel][0])
            ax.legend(fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(latent_dims, [str(d) for d in latent_dims])
    fig.tight_layout()
    return fig


def curve_panels(x: Sequence[float], panels: dict[str, dict[str, Sequence[float]]], xlabel: str,
                 ylabel: str | None = None, logy: Sequence[str] = (), levels: dict[str, float] | None = None,
                 size: tuple[float, float] = (5.5, 3.6)) -> Figure:
    """``plot_curve`` side by side: ``panels[key] = {name: one value per x}``; ``levels[key]`` a dotted line.

    A panel's key is its y label, or its title when all panels share ``ylabel``.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(size[0] * len(panels), size[1]), squeeze=False)
    for ax, (key, curves) in zip(axes[0], panels.items(), strict=True):
        plot_curve(x, curves, xlabel, ylabel or key, ax=ax, logy=key in logy, title=key if ylabel else None)
        if levels and key in levels:
            ax.axhline(levels[key], color="gray", linestyle=":", linewidth=1)
    fig.tight_layout()
    return fig


def running_statistics(steps: Sequence[int], batch_mean: np.ndarray, running_mean: np.ndarray,
                       batch_var: np.ndarray, running_var: np.ndarray, channels: int = 4) -> Figure:
    """A batch-norm layer's batch statistics (thin) and running estimates (thick) per step, for a few channels."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for c in range(channels):
        (line,) = axes[0].plot(steps, batch_mean[:, c], linewidth=0.6, alpha=0.6)
        axes[0].plot(steps, running_mean[:, c], linewidth=2, color=line.get_color(), label=f"channel {c}")
        axes[1].plot(steps, batch_var[:, c], linewidth=0.6, alpha=0.6, color=line.get_color())
        axes[1].plot(steps, running_var[:, c], linewidth=2, color=line.get_color())
    axes[0].set(xlabel="step", ylabel="mean of the layer's input", title="batch mean (thin), running mean (thick)")
    axes[1].set(xlabel="step", ylabel="variance of the layer's input", yscale="log",
                title="batch variance (thin), running variance (thick)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def judge_calibration(reliability: dict[str, tuple[torch.Tensor, torch.Tensor, float]],
                      shares: dict[str, Sequence[float]], thresholds: Sequence[float], chosen: float,
                      examples: torch.Tensor, examples_title: str) -> Figure:
    """Reliability diagrams in a row (``reliability[name] = (confidence, correct, ECE)``); below them what each
    threshold passes, and example hard negatives, four a row."""
    fig = plt.figure(figsize=(14, 7.2))
    grid = fig.add_gridspec(2, len(reliability), height_ratios=[1, 1])
    for column, (name, (confidence, correct, ece)) in enumerate(reliability.items()):
        reliability_diagram(confidence, correct, ax=fig.add_subplot(grid[0, column]), title=f"{name}\nECE {ece:.4f}")
    half = len(reliability) // 2
    threshold_sweep(shares, thresholds, ax=fig.add_subplot(grid[1, :half]), chosen=chosen,
                    title="what each threshold passes")
    show_images(examples, nrow=4, ax=fig.add_subplot(grid[1, half:]), title=examples_title)
    fig.tight_layout()
    return fig


def samples_and_thresholds(images: torch.Tensor, title: str, shares: dict[str, Sequence[float]],
                           thresholds: Sequence[float], chosen: float) -> Figure:
    """Nine decoded samples in a 3 x 3 grid beside the readable share of each sampler against the threshold."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1, 1.6]})
    show_images(images[:9], nrow=3, ax=left, title=title)
    threshold_sweep(shares, thresholds, ax=right, chosen=chosen, title="readable share against the threshold")
    fig.tight_layout()
    return fig
