"""Live explorers for JupyterLab: noise on an image, and decoding a latent vector.

Each explorer draws into an ``ipywidgets.Image`` that is updated in place, so
the picture changes as a slider moves, with no flicker and no extra plotting
back end. The update methods are plain methods, tested without a browser.

Where no live kernel is there (GitHub, nbviewer, a papermill run), an explorer's
output still shows a picture: its display carries a PNG of its current view
beside the widget, and viewers that cannot run widgets show that instead.
"""

from __future__ import annotations

import base64
import io
import math

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors
from torch import nn

from . import plotting
from .generation import LatentGaussian, class_means, decode
from .noise import DEFAULT_NOISE_FACTOR, add_noise, check_noise_factor, psnr

#: Step of the latent sliders: fine enough to morph smoothly, coarse enough that one key press changes the picture.
SLIDER_STEP = 0.05
#: The latent sliders reach this share of the codes' range beyond their smallest and largest value.
SLIDER_MARGIN = 0.1
#: With ``prior=True`` (a VAE) the sliders span N(0, 1)'s -3 to 3: 99.7 % of each dimension's prior mass.
PRIOR_RANGE = 3.0
#: Training codes drawn on the explorer's 2-D map.
MAP_POINTS = 3000
#: Resolution of the explorers' pictures, in pixels per inch of figure size.
PNG_DPI = 80


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI)
    return buffer.getvalue()


def _image_widget(fig: Figure) -> widgets.Image:
    """Return an image widget shown at the figure's natural size, not stretched to the cell's width."""
    return widgets.Image(format="png", width=int(fig.get_figwidth() * PNG_DPI))


def _mimebundle(widget: widgets.Widget, png: bytes, **kwargs: object) -> dict:
    """Return the widget's display data plus a PNG of its current view, for viewers without a kernel."""
    bundle = widget._repr_mimebundle_(**kwargs) or {}
    return {**bundle, "image/png": base64.b64encode(png).decode("ascii")}


class NoiseExplorer:
    """Show an image next to a noisy copy; a slider sets the noise factor.

    Controls: a noise-factor slider (0 to 1), a digit menu and an index slider to
    pick the image, and a button that draws new noise.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        noise_factor: float = DEFAULT_NOISE_FACTOR,
        seed: int = 0,
    ):
        noise_factor = check_noise_factor(noise_factor)  # a NaN or a negative factor: a clear ValueError now
        if len(images) == 0 or len(images) != len(labels):
            raise ValueError(f"NoiseExplorer needs images and one label per image; got {len(images)} images and "
                             f"{len(labels)} labels.")
        self.images = images
        self.labels = labels
        self.noise_factor = widgets.FloatSlider(
            value=noise_factor, min=0.0, max=max(1.0, noise_factor), step=0.01, description="noise factor",
            continuous_update=True,
        )
        present = sorted(int(d) for d in torch.unique(labels))  # a digit with no image is not offered
        self.digit = widgets.Dropdown(options=[("any", -1)] + [(str(d), d) for d in present], description="digit")
        self.index = widgets.IntSlider(value=0, min=0, max=len(images) - 1, description="image")
        self.resample = widgets.Button(description="new noise", icon="refresh")
        self._fig = Figure(figsize=(5, 2.8))
        self.image = _image_widget(self._fig)
        axes = self._fig.subplots(1, 2)
        blank = np.zeros((28, 28))
        self._clean_im = axes[0].imshow(blank, cmap="gray", vmin=0, vmax=1)
        self._noisy_im = axes[1].imshow(blank, cmap="gray", vmin=0, vmax=1)
        for ax in axes:
            ax.set_axis_off()
        self._axes = axes
        self._noise_seed = seed
        self._last_factor = float(noise_factor)
        self.update()

        self.noise_factor.observe(lambda change: self.update(), names="value")
        self.index.observe(lambda change: self.update(), names="value")
        self.digit.observe(lambda change: self._on_digit(), names="value")
        self.resample.on_click(lambda button: self._draw_noise())
        self.widget = widgets.VBox(
            [widgets.HBox([self.noise_factor, self.resample]), widgets.HBox([self.digit, self.index]), self.image]
        )

    def _candidates(self) -> torch.Tensor:
        if self.digit.value < 0:
            return torch.arange(len(self.images))
        return torch.nonzero(self.labels == self.digit.value).flatten()

    def _on_digit(self) -> None:
        self.index.max = len(self._candidates()) - 1
        self.index.value = 0
        self.update()

    def _draw_noise(self) -> None:
        self._noise_seed += 1
        self.update()

    @property
    def clean(self) -> torch.Tensor:
        """The image currently shown, (1, 28, 28)."""
        return self.images[self._candidates()[self.index.value]]

    def update(self) -> torch.Tensor:
        """Redraw the figure for the current controls and return the noisy image (1, 28, 28).

        A noise factor that is not a finite number >= 0 (a NaN typed into the box)
        puts the slider back to its last good value, so the explorer keeps working.
        """
        factor = self.noise_factor.value
        if not (isinstance(factor, (int, float)) and math.isfinite(factor) and factor >= 0):
            self.noise_factor.value = self._last_factor  # observed: this redraws
            return self.noisy
        self._last_factor = factor
        clean = self.clean
        # The same seed gives the same unit noise, so the slider scales one draw of noise
        # instead of drawing new noise at every step.
        generator = torch.Generator().manual_seed(self._noise_seed)
        noisy = add_noise(clean, self.noise_factor.value, generator=generator)
        self._clean_im.set_data(clean[0].numpy())
        self._noisy_im.set_data(noisy[0].numpy())
        label = int(self.labels[self._candidates()[self.index.value]])
        self._axes[0].set_title(f"clean (digit {label})")
        self._axes[1].set_title(f"noise {self.noise_factor.value:.2f}, PSNR {psnr(noisy, clean):.1f} dB")
        self.image.value = _png(self._fig)
        self.noisy = noisy
        return noisy

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return _mimebundle(self.widget, self.image.value, **kwargs)


class LatentExplorer:
    """Decode a latent vector live, and show where it lies among the training codes.

    One slider per latent dimension, spanning the training codes' range and a
    margin beyond. The picture shows the decoded image, the training image whose
    code is nearest, and a 2-D map (PCA) of the training codes with the current
    code marked. A menu starts from a digit's mean code, a button draws a code
    from the Gaussian fitted to the codes, and a slider walks the straight line
    between two digits' mean codes. A value outside a slider's range or not a
    number is never applied silently: the line under the sliders says so.

    ``prior=True`` is for a variational autoencoder, whose codes are meant to
    follow N(0, I): the sliders then span -3 to 3 from 0, and the button draws
    from N(0, I).
    """

    def __init__(
        self,
        decoder: nn.Module,
        latent: torch.Tensor,
        labels: torch.Tensor,
        device: torch.device,
        images: torch.Tensor | None = None,
        seed: int = 0,
        prior: bool = False,
    ):
        self.decoder = decoder
        self.device = device
        self.images = images
        self.labels = labels
        self.prior = prior
        self.gaussian = LatentGaussian.fit(latent)
        self.means = class_means(latent, labels)
        self.generator = torch.Generator().manual_seed(seed)
        if prior:  # a VAE's prior N(0, I): each slider spans +-3 standard deviations, from 0
            low, high = torch.full((latent.shape[1],), -PRIOR_RANGE), torch.full((latent.shape[1],), PRIOR_RANGE)
            margin, mean = torch.zeros(latent.shape[1]), torch.zeros(latent.shape[1])
        else:
            low, high = latent.min(dim=0).values, latent.max(dim=0).values
            margin = SLIDER_MARGIN * (high - low)
            mean = latent.mean(dim=0)
        self.sliders = [
            widgets.FloatSlider(
                value=float(mean[i]), min=float(low[i] - margin[i]), max=float(high[i] + margin[i]),
                step=SLIDER_STEP, description=f"z{i}", continuous_update=True,
            )
            for i in range(latent.shape[1])
        ]
        self.note = widgets.HTML(value="")
        self.start = widgets.Dropdown(
            options=[("-", -1)] + [(f"mean of {d}", d) for d in range(10)], description="start from"
        )
        self.random = widgets.Button(description="random sample", icon="random")
        digits = list(range(10))
        self.walk_from = widgets.Dropdown(options=digits, value=1, description="walk from", layout={"width": "160px"})
        self.walk_to = widgets.Dropdown(options=digits, value=7, description="to", layout={"width": "120px"})
        self.walk = widgets.FloatSlider(value=0.0, min=0.0, max=1.0, step=0.02, description="position")

        # The map: training codes projected on their first two principal components.
        self._index = NearestNeighbors(n_neighbors=1).fit(latent.double().numpy())
        self._pca = PCA(n_components=2).fit(latent.double().numpy()) if latent.shape[1] > 1 else None
        panels = 2 + (images is not None)
        self._fig = Figure(figsize=(2.6 * panels + 0.4, 2.9))
        axes = self._fig.subplots(1, panels, gridspec_kw={"width_ratios": [1] * (panels - 1) + [1.35]})
        blank = np.zeros((28, 28))
        self._im = axes[0].imshow(blank, cmap="gray", vmin=0, vmax=1)
        axes[0].set_title("decoded", fontsize=9)
        self._nearest_im = None
        if images is not None:
            self._nearest_im = axes[1].imshow(blank, cmap="gray", vmin=0, vmax=1)
        for ax in axes[:-1]:
            ax.set_axis_off()
        self._nearest_ax = axes[1] if images is not None else None
        map_ax = axes[-1]
        keep = torch.randperm(len(latent), generator=torch.Generator().manual_seed(seed))[:MAP_POINTS]
        points = self._project(latent[keep])
        map_ax.scatter(points[:, 0], points[:, 1], c=labels[keep].numpy(), cmap="tab10", s=2, vmin=-0.5, vmax=9.5,
                       rasterized=True)
        plotting.label_classes(map_ax, points, labels[keep].numpy(), fontsize=7)  # the colour legend, in place
        (self._marker,) = map_ax.plot([0], [0], marker="*", markersize=15, color="black", markeredgecolor="white")
        map_ax.set_title("training codes (PCA) by digit, current: *", fontsize=9)
        map_ax.set_xticks([])
        map_ax.set_yticks([])
        self._fig.tight_layout()
        self.image = _image_widget(self._fig)
        self._holding = False  # set while several sliders move at once
        self._last_code = mean.clone()

        for slider in self.sliders:
            slider.observe(lambda change: self.update(), names="value")
        self.start.observe(lambda change: self._on_start(), names="value")
        self.random.on_click(lambda button: self.set_code(self.random_code()))
        for control in (self.walk, self.walk_from, self.walk_to):
            control.observe(lambda change: self._on_walk(), names="value")
        self.widget = widgets.HBox([
            widgets.VBox([*self.sliders, self.note, self.start, self.random,
                          widgets.HBox([self.walk_from, self.walk_to]), self.walk]),
            self.image,
        ])
        self.update()

    def random_code(self) -> torch.Tensor:
        """Draw a code (d,): from N(0, I) with ``prior=True``, else from the Gaussian fitted to the codes."""
        if self.prior:
            return torch.randn(len(self.sliders), generator=self.generator)
        return self.gaussian.sample(1, self.generator)[0]

    def _project(self, codes: torch.Tensor) -> np.ndarray:
        values = codes.double().numpy().reshape(len(codes), -1)
        if self._pca is None:  # d = 1: the code itself against zero
            return np.column_stack([values[:, 0], np.zeros(len(values))])
        return self._pca.transform(values)

    @property
    def code(self) -> torch.Tensor:
        """The latent vector the sliders show, (d,)."""
        return torch.tensor([s.value for s in self.sliders], dtype=torch.float32)

    def set_code(self, code: torch.Tensor) -> torch.Tensor:
        """Move every slider to ``code`` and redraw once.

        A value beyond a slider's range is clipped to it, and a value that is not a
        finite number leaves its slider where it was; the note under the sliders
        says which, so no sample is changed silently.
        """
        values = torch.as_tensor(code, dtype=torch.float64).flatten() if not isinstance(code, str) else None
        if values is None or values.numel() != len(self.sliders) or torch.as_tensor(code).dim() > 1:
            shape = tuple(torch.as_tensor(code).shape) if values is not None else type(code).__name__
            raise ValueError(f"set_code needs one code of {len(self.sliders)} numbers, shape ({len(self.sliders)},); "
                             f"got {shape}. Nothing was changed.")
        notes = []
        self._holding = True
        try:
            for slider, value in zip(self.sliders, values.tolist(), strict=True):
                if not math.isfinite(value):
                    notes.append(f"{slider.description} = {value} ignored (not a number)")
                    continue
                clipped = min(max(value, slider.min), slider.max)
                if clipped != value:
                    notes.append(f"{slider.description} = {value:.2f} clipped to {clipped:.2f}")
                slider.value = clipped
        finally:
            self._holding = False
        image = self.update()
        self.note.value = "; ".join(notes)
        return image

    def _on_start(self) -> None:
        if self.start.value >= 0:
            self.set_code(self.means[self.start.value])

    def _on_walk(self) -> None:
        t = self.walk.value
        self.set_code((1 - t) * self.means[self.walk_from.value] + t * self.means[self.walk_to.value])

    def update(self) -> torch.Tensor | None:
        """Decode the current code, redraw, and return the image (1, 28, 28)."""
        if self._holding:
            return None
        code = self.code
        if not torch.isfinite(code).all():  # a NaN typed into a slider's box: go back to the last good code
            image = self.set_code(self._last_code)
            self.note.value = "a value that is not a number was ignored; the sliders are back where they were"
            return image
        self._last_code = code
        self.note.value = ""
        image = decode(self.decoder, code.unsqueeze(0), self.device)[0]
        self._im.set_data(image[0].numpy())
        distance, index = self._index.kneighbors(code.double().numpy()[None])
        self.nearest_index = int(index[0, 0])
        self.nearest_distance = float(distance[0, 0])
        if self._nearest_im is not None:
            self._nearest_im.set_data(self.images[self.nearest_index, 0].numpy())
            digit = int(self.labels[self.nearest_index])
            self._nearest_ax.set_title(
                f"nearest training image\n(a {digit}, distance {self.nearest_distance:.2f})", fontsize=9
            )
        x, y = self._project(code.unsqueeze(0))[0]
        self._marker.set_data([x], [y])
        self.image.value = _png(self._fig)
        self.decoded = image
        return image

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return _mimebundle(self.widget, self.image.value, **kwargs)
