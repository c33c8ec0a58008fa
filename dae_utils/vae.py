"""A variational autoencoder of the course's family: the same encoder and decoder, a Gaussian code.

The denoising autoencoder maps an image to one point. A variational autoencoder
(Kingma and Welling, 2014) maps it to a Gaussian N(mean, diag(exp(logvar))) over
codes, decodes a *sample* of it, and pays for every bit of the Gaussian that differs
from N(0, I):

    loss per image = reconstruction + beta * KL(N(mean, diag(var)) || N(0, I))

The KL term pulls the codes of the whole data set towards N(0, I), so that a
sample of N(0, I) lands where the decoder has learned to draw a digit: the property
notebook 4 measured the denoising autoencoder to lack. ``beta`` weighs the two terms
(beta = 1 is the evidence lower bound, ELBO; Higgins et al., 2017, study beta > 1).

What changes from the course's model, and nothing else:

- ``VariationalEncoder`` is the course's ``Encoder`` with a last layer twice as wide:
  d means and d log-variances. Calling it returns the means (the code of an image,
  as for the autoencoder), so everything that encodes images (``generation.encode``,
  k-means, the latent explorer) works unchanged; ``posterior`` returns both halves.
- The decoder is the course's ``Decoder``, unchanged.
- ``ELBOStep`` is the training step; ``VAEConfig`` the settings, checkpointed,
  resumed and shared exactly like the autoencoder's (``training.train_or_load``).

The reconstruction term is the Bernoulli log-likelihood (binary cross-entropy,
summed over the 784 pixels), the usual choice for MNIST: the decoder's sigmoid
output is read as each pixel's probability of being ink. MNIST's pixels are grey
levels, not 0 or 1, so the term cannot reach 0 (its minimum is the pixels' own
entropy), but its gradient, and so the training, is what a Bernoulli model asks for.
Summing over pixels, not averaging, matters: it sets the scale against which the KL
term (summed over the d code dimensions) is weighed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import threads
from .generation import apply_in_batches
from .model import DEFAULT_LATENT_DIM, Encoder
from .noise import add_noise
from .training import Step, TrainConfig

#: The weight of the KL term in the course's VAE: the plain ELBO.
DEFAULT_BETA = 1.0


class VariationalEncoder(Encoder):
    """The course's encoder with a last layer of 2d outputs: d means and d log-variances.

    ``encoder(images)`` returns the means (B, d), the code of each image;
    ``encoder.posterior(images)`` returns (means, log-variances), both (B, d).
    """

    def __init__(self, latent_dim: int = DEFAULT_LATENT_DIM, batchnorm_affine: bool = True, batchnorm: bool = True):
        super().__init__(2 * latent_dim, batchnorm_affine, batchnorm)
        self.latent_dim = latent_dim  # the code's size; the last layer has twice as many outputs

    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the mean and the log-variance (each (B, d)) of the Gaussian over codes for each image."""
        mean, logvar = super().forward(images).chunk(2, dim=1)
        return mean, logvar

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.posterior(images)[0]


class _Posterior(nn.Module):
    """Wrap a ``VariationalEncoder`` so that it returns means and log-variances side by side, (B, 2d)."""

    def __init__(self, encoder: VariationalEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat(self.encoder.posterior(images), dim=1)


def posterior(encoder: VariationalEncoder, images: torch.Tensor,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the means and log-variances (each (N, d), on the CPU) of ``images``, in eval mode, in batches."""
    stats = apply_in_batches(_Posterior(encoder), images, device)
    mean, logvar = stats.chunk(2, dim=1)
    return mean, logvar


def reparameterize(mean: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one code from N(mean, diag(exp(logvar))) as mean + exp(logvar / 2) * eps, eps ~ N(0, I).

    Written this way the sample is a differentiable function of ``mean`` and
    ``logvar`` (the randomness sits in eps alone), so gradients reach both.
    """
    eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device) \
        if generator is not None else torch.randn_like(mean)
    return mean + torch.exp(0.5 * logvar) * eps


def kl_to_standard_normal(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Return KL(N(mean, diag(exp(logvar))) || N(0, I)) for each row, (B,): summed over the d dimensions.

    Per dimension, with var = exp(logvar): 0.5 * (var + mean^2 - 1 - logvar).
    """
    return 0.5 * (logvar.exp() + mean.pow(2) - 1.0 - logvar).sum(dim=1)


@dataclass(frozen=True)
class ELBOTerms:
    """A batch's loss and its two terms, each averaged over the images (nats per image)."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def elbo_loss(recon: torch.Tensor, target: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
              beta: float = DEFAULT_BETA) -> ELBOTerms:
    """Return the negative ELBO (with the KL term weighted by ``beta``) per image, and its two terms.

    reconstruction: binary cross-entropy summed over each image's pixels; kl: summed
    over the code's dimensions; both averaged over the batch.
    """
    reconstruction = F.binary_cross_entropy(recon, target, reduction="sum") / len(target)
    kl = kl_to_standard_normal(mean, logvar).mean()
    return ELBOTerms(reconstruction + beta * kl, reconstruction, kl)


@dataclass(frozen=True)
class ELBOStep:
    """One optimisation step of a (denoising) VAE: noise, encode, sample, decode, negative ELBO.

    It has the signature of ``training.training_step``, so ``training.fit`` runs it
    unchanged; its loss is per image, and ``loss_fn`` is not used (``fit`` scores the
    test pass with it: the MSE per pixel of decoding the means, comparable with the
    autoencoder's test loss).
    """

    beta: float = DEFAULT_BETA

    def __call__(self, encoder: nn.Module, decoder: nn.Module, loss_fn: nn.Module,
                 optimizer: torch.optim.Optimizer, noise_factor: float, clean: torch.Tensor) -> torch.Tensor:
        threads.adapt()
        noisy = add_noise(clean, noise_factor)
        mean, logvar = encoder.posterior(noisy)
        recon = decoder(reparameterize(mean, logvar))
        terms = elbo_loss(recon, clean, mean, logvar, self.beta)  # against the *clean* images, as the denoiser
        optimizer.zero_grad()
        terms.loss.backward()
        optimizer.step()
        return terms.loss.detach()


@dataclass(frozen=True)
class VAEConfig(TrainConfig):
    """The settings of a VAE's training: the autoencoder's, and ``beta``, the weight of the KL term."""

    beta: float = DEFAULT_BETA

    kind: ClassVar[str] = "vae"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not np.isfinite(self.beta) \
                or self.beta < 0:
            raise ValueError(f"beta must be a number >= 0, not {self.beta!r}. The ELBO has beta = 1; "
                             "beta = 0 drops the KL term (an autoencoder with noisy codes).")

    def name_parts(self) -> list[str]:
        parts = super().name_parts()
        return [parts[0], f"beta{self.beta:g}", *parts[1:]]

    def make_encoder(self) -> VariationalEncoder:
        return VariationalEncoder(self.latent_dim, self.batchnorm_affine, self.batchnorm)

    def training_step(self) -> Step:
        return ELBOStep(self.beta)


@torch.no_grad()
def elbo_report(encoder: VariationalEncoder, decoder: nn.Module, images: torch.Tensor, device: torch.device,
                seed: int = 0) -> dict[str, object]:
    """Score clean ``images`` by the VAE's two terms, in eval mode, with one code sample per image.

    Returns the reconstruction term and the KL term (nats per image), their sum (the
    negative ELBO at beta = 1), and the KL of each code dimension (``kl_per_dim``): a
    dimension whose KL stays near 0 carries no information about the image (its
    posterior is N(0, 1) whatever the input; "posterior collapse").
    """
    mean, logvar = posterior(encoder, images, device)
    codes = reparameterize(mean, logvar, torch.Generator().manual_seed(seed))
    recon = apply_in_batches(decoder, codes, device)
    reconstruction = F.binary_cross_entropy(recon, images, reduction="sum").item() / len(images)
    kl_per_dim = (0.5 * (logvar.exp() + mean.pow(2) - 1.0 - logvar)).mean(dim=0)
    return {
        "reconstruction": reconstruction,
        "kl": float(kl_per_dim.sum()),
        "negative_elbo": reconstruction + float(kl_per_dim.sum()),
        "kl_per_dim": kl_per_dim.tolist(),
    }


def aggregate_log_density(codes: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor,
                          chunk: int = 500) -> torch.Tensor:
    """Return log q(z) of each of ``codes`` (N, d) under the aggregate posterior of the images behind ``mean``.

    The aggregate posterior q(z) = (1/n) sum_i N(z; mean_i, diag(exp(logvar_i))) is the
    distribution of codes the decoder was trained on: an equal mixture of the n images'
    own Gaussians. ``mean`` and ``logvar`` are (n, d), as ``posterior`` returns them.
    """
    if codes.ndim != 2 or mean.shape != logvar.shape or codes.shape[1] != mean.shape[1]:
        raise ValueError(f"codes must be (N, d) and mean, logvar (n, d) with the same d; got {tuple(codes.shape)}, "
                         f"{tuple(mean.shape)} and {tuple(logvar.shape)}.")
    components = torch.distributions.Independent(torch.distributions.Normal(mean, torch.exp(0.5 * logvar)), 1)
    parts = [torch.logsumexp(components.log_prob(block[:, None, :]), dim=1) for block in codes.split(chunk)]
    return torch.cat(parts) - float(np.log(len(mean)))


def aggregate_kl(mean: torch.Tensor, logvar: torch.Tensor, samples: int = 10_000,
                 generator: torch.Generator | None = None) -> float:
    """Estimate KL(q(z) || N(0, I)) in nats, q the aggregate posterior of the images behind ``mean``, ``logvar``.

    Monte Carlo: draw ``samples`` codes from q (an image at random, then a code from its
    Gaussian) and average log q(z) - log N(z; 0, I); in d = 4 this is cheap. The estimate
    spreads more the further q lies from N(0, I). With the average per-image KL it splits the KL term
    (Hoffman and Johnson 2016, "ELBO surgery"): mean KL = I(image; code) + KL(q || N(0, I)).
    """
    picked = torch.randint(len(mean), (samples,), generator=generator)
    codes = reparameterize(mean[picked], logvar[picked], generator)
    standard = torch.distributions.Independent(torch.distributions.Normal(torch.zeros_like(codes),
                                                                          torch.ones_like(codes)), 1)
    return float((aggregate_log_density(codes, mean, logvar) - standard.log_prob(codes)).mean())


def index_information(mean: torch.Tensor, logvar: torch.Tensor, samples: int = 10_000,
                      generator: torch.Generator | None = None) -> tuple[float, float]:
    """Estimate, with its standard error, how much a code says about which of the n images it came from (nats).

    The mean over draws (an image i at random, a code z from its Gaussian) of
    log q(z | x_i) - log q_n(z), q_n the aggregate posterior of the same n images, in
    float64. It is at most log n: it counts the information about the image's *index*
    among these n, not I(x; z) over all images, which can be larger.
    """
    mean, logvar = mean.double(), logvar.double()
    picked = torch.randint(len(mean), (samples,), generator=generator)
    codes = reparameterize(mean[picked], logvar[picked], generator)
    own = torch.distributions.Independent(torch.distributions.Normal(mean[picked], torch.exp(0.5 * logvar[picked])),
                                          1).log_prob(codes)
    terms = own - aggregate_log_density(codes, mean, logvar)
    return float(terms.mean()), float(terms.std() / np.sqrt(samples))


def well_arranged_posteriors(n: int, latent_dim: int, information: float,
                             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n Gaussian posteriors whose mixture is exactly N(0, I) over all images, at ``information`` nats per code.

    Each posterior is N(m_i, s^2 I) with its mean drawn from N(0, (1 - s^2) I), so the
    population's aggregate posterior is N(0, I) at any s; the information about the image
    is d/2 log(1 / s^2), which sets s. Returns (means, log-variances), both (n, d): the
    perfect arrangement, against which an estimate from n posteriors shows its floor.
    """
    variance = float(np.exp(-2 * information / latent_dim))
    if not 0 < variance < 1:
        raise ValueError(f"information must be positive, got {information}.")
    means = np.sqrt(1 - variance) * torch.randn(n, latent_dim, generator=generator)
    return means, torch.full((n, latent_dim), float(np.log(variance)))
