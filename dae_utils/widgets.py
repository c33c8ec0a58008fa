"""Live explorers for JupyterLab: noise on an image, and decoding a latent vector.

Each explorer draws into an ``ipywidgets.Image`` that is updated in place, so
the picture changes as a slider moves, with no flicker and no extra plotting
back end. The update methods are plain methods, tested without a browser.
"""

from __future__ import annotations

import io

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from .generation import LatentGaussian, class_means, decode, latent_summary
from .noise import DEFAULT_NOISE_FACTOR, add_noise, psnr

#: Step of the latent sliders.
SLIDER_STEP = 0.01
#: Resolution of the explorers' pictures, in pixels per inch of figure size.
PNG_DPI = 80


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PNG_DPI)
    return buffer.getvalue()


def _image_widget(fig: Figure) -> widgets.Image:
    """Return an image widget shown at the figure's natural size, not stretched to the cell's width."""
    return widgets.Image(format="png", width=int(fig.get_figwidth() * PNG_DPI))


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
        self.images = images
        self.labels = labels
        self.noise_factor = widgets.FloatSlider(
            value=noise_factor, min=0.0, max=1.0, step=0.01, description="noise factor", continuous_update=True
        )
        self.digit = widgets.Dropdown(options=[("any", -1)] + [(str(d), d) for d in range(10)], description="digit")
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
        """Redraw the figure for the current controls and return the noisy image (1, 28, 28)."""
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

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


class LatentExplorer:
    """Decode a latent vector live; one slider per latent dimension.

    Slider ranges run from the 1st to the 99th percentile of the encoded data.
    A menu starts from a digit's mean code; a button draws a code from the
    Gaussian fitted to the encoded data.
    """

    def __init__(
        self, decoder: nn.Module, latent: torch.Tensor, labels: torch.Tensor, device: torch.device, seed: int = 0
    ):
        self.decoder = decoder
        self.device = device
        self.gaussian = LatentGaussian.fit(latent)
        self.means = class_means(latent, labels)
        self.generator = torch.Generator().manual_seed(seed)
        summary = latent_summary(latent)
        self.sliders = [
            widgets.FloatSlider(
                value=float(np.clip(summary["mean"][i], summary["p01"][i], summary["p99"][i])),
                min=float(summary["p01"][i]),
                max=float(summary["p99"][i]),
                step=SLIDER_STEP,
                description=f"z{i}",
                continuous_update=True,
            )
            for i in range(latent.shape[1])
        ]
        self.start = widgets.Dropdown(
            options=[("-", -1)] + [(f"mean of {d}", d) for d in range(10)], description="start from"
        )
        self.random = widgets.Button(description="random sample", icon="random")
        self._fig = Figure(figsize=(3, 3))
        self.image = _image_widget(self._fig)
        ax = self._fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        self._im = ax.imshow(np.zeros((28, 28)), cmap="gray", vmin=0, vmax=1)
        self._holding = False  # set while several sliders move at once

        for slider in self.sliders:
            slider.observe(lambda change: self.update(), names="value")
        self.start.observe(lambda change: self._on_start(), names="value")
        self.random.on_click(lambda button: self.set_code(self.gaussian.sample(1, self.generator)[0]))
        self.widget = widgets.HBox(
            [widgets.VBox([*self.sliders, self.start, self.random]), self.image]
        )
        self.update()

    @property
    def code(self) -> torch.Tensor:
        """The latent vector the sliders show, (d,)."""
        return torch.tensor([s.value for s in self.sliders], dtype=torch.float32)

    def set_code(self, code: torch.Tensor) -> torch.Tensor:
        """Move every slider to ``code`` (clipped to its range) and redraw once."""
        self._holding = True
        try:
            for slider, value in zip(self.sliders, code.tolist(), strict=True):
                slider.value = float(np.clip(value, slider.min, slider.max))
        finally:
            self._holding = False
        return self.update()

    def _on_start(self) -> None:
        if self.start.value >= 0:
            self.set_code(self.means[self.start.value])

    def update(self) -> torch.Tensor | None:
        """Decode the current code, redraw, and return the image (1, 28, 28)."""
        if self._holding:
            return None
        image = decode(self.decoder, self.code.unsqueeze(0), self.device)[0]
        self._im.set_data(image[0].numpy())
        self.image.value = _png(self._fig)
        self.decoded = image
        return image

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
