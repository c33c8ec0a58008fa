"""Encode images, summarise the latent codes, and decode samples and interpolations."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

#: Inputs per forward pass when encoding or decoding a whole data set.
EVAL_BATCH_SIZE = 1024


@torch.no_grad()
def apply_in_batches(
    module: nn.Module, inputs: torch.Tensor, device: torch.device, batch_size: int = EVAL_BATCH_SIZE
) -> torch.Tensor:
    """Run ``module`` in eval mode over ``inputs`` in batches on ``device``; return the outputs on the CPU.

    Eval mode makes batch norm use its running statistics, so each output depends
    on its own input alone, not on the batch it happens to share.
    """
    if len(inputs) == 0:
        raise ValueError(
            f"Nothing to run {type(module).__name__} on: the input has shape {tuple(inputs.shape)}. "
            "Pass at least one image or code; a single one needs a batch axis (x.unsqueeze(0))."
        )
    module.eval()
    outputs = [module(inputs[i : i + batch_size].to(device)).cpu() for i in range(0, len(inputs), batch_size)]
    return torch.cat(outputs)


def encode(
    encoder: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int = EVAL_BATCH_SIZE
) -> torch.Tensor:
    """Return the latent codes (N, d) of ``images`` (N, 1, 28, 28), on the CPU, in eval mode."""
    return apply_in_batches(encoder, images, device, batch_size)


def decode(
    decoder: nn.Module, latent: torch.Tensor, device: torch.device, batch_size: int = EVAL_BATCH_SIZE
) -> torch.Tensor:
    """Return the images (N, 1, 28, 28) that ``decoder`` makes of ``latent`` (N, d), on the CPU, in eval mode."""
    return apply_in_batches(decoder, latent, device, batch_size)


#: The assignment's part (e): this many random codes, decoded into a 3 x 3 grid.
GRID_CODES = 9


@torch.no_grad()
def random_grid(decoder: nn.Module, latent_dim: int, device: torch.device,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw 9 codes from N(0, I) with ``generator`` and decode them in eval mode: the assignment's 3 x 3 grid.

    Returns the codes (9, d) and their images (9, 1, 28, 28), both on the CPU.
    """
    latent = torch.randn(GRID_CODES, latent_dim, generator=generator)  # (9, d), drawn on the CPU
    decoder.eval()  # batch norm with its running statistics: each image depends on its own code alone
    return latent, decoder(latent.to(device)).cpu()


@dataclass(frozen=True)
class LatentGaussian:
    """A Gaussian N(mean, cov) fitted to latent codes."""

    mean: torch.Tensor  # (d,)
    cov: torch.Tensor  # (d, d)

    @classmethod
    def fit(cls, latent: torch.Tensor) -> LatentGaussian:
        """Fit the mean and the (unbiased) covariance of ``latent`` (N, d)."""
        latent = latent.double()
        return cls(latent.mean(dim=0), torch.cov(latent.T).reshape(latent.shape[1], latent.shape[1]))

    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``num_samples`` codes (num_samples, d) as mean + L z with L L^T = cov, z ~ N(0, I)."""
        chol = torch.linalg.cholesky(self.cov)
        z = torch.randn(num_samples, len(self.mean), generator=generator, dtype=torch.float64)
        return (self.mean + z @ chol.T).float()


#: The numbers of mixture components the course tries; held-out codes choose among them.
MIXTURE_COMPONENTS = (1, 5, 10, 20, 50, 100)
#: Share of the training codes held out to choose the number of components.
MIXTURE_HELD_OUT = 0.1


@dataclass(frozen=True)
class LatentMixture:
    """A mixture of full-covariance Gaussians fitted to latent codes after training (ex-post density estimation).

    Ghosh et al. (2020, "From variational to deterministic autoencoders") fit such a
    mixture to a plain autoencoder's codes and sample from it: no change to the
    training, one fit afterwards. scikit-learn's ``GaussianMixture`` does the fit (EM);
    ``sample`` draws with a torch generator, so a seed repeats the draws exactly.
    """

    weights: torch.Tensor  # (K,)
    means: torch.Tensor  # (K, d)
    covariances: torch.Tensor  # (K, d, d)
    model: object  # the fitted sklearn.mixture.GaussianMixture, for its log-likelihood

    @classmethod
    def fit(cls, latent: torch.Tensor, components: int, seed: int = 0) -> LatentMixture:
        """Fit ``components`` Gaussians (full covariances, k-means initialisation) to ``latent`` (N, d)."""
        from sklearn.mixture import GaussianMixture

        if isinstance(components, bool) or not isinstance(components, int) or not 1 <= components <= len(latent):
            raise ValueError(f"components must be a whole number from 1 to the number of codes ({len(latent)}), "
                             f"not {components!r}.")
        model = GaussianMixture(components, covariance_type="full", random_state=seed, reg_covar=1e-5)
        model.fit(latent.detach().cpu().double().numpy())
        return cls(torch.from_numpy(model.weights_), torch.from_numpy(model.means_),
                   torch.from_numpy(model.covariances_), model)

    def log_likelihood(self, latent: torch.Tensor) -> float:
        """Return the mean log-density (nats per code) of ``latent`` under the mixture."""
        return float(self.model.score(latent.detach().cpu().double().numpy()))

    def sample(self, num_samples: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``num_samples`` codes: a component by its weight, then mean + L z with L L^T its covariance."""
        component = torch.multinomial(self.weights, num_samples, replacement=True, generator=generator)
        z = torch.randn(num_samples, self.means.shape[1], generator=generator, dtype=torch.float64)
        chol = torch.linalg.cholesky(self.covariances)[component]  # (num_samples, d, d)
        return (self.means[component] + (chol @ z.unsqueeze(2)).squeeze(2)).float()


def choose_components(latent: torch.Tensor, candidates: tuple[int, ...] = MIXTURE_COMPONENTS,
                      held_out: float = MIXTURE_HELD_OUT, seed: int = 0) -> tuple[int, dict[int, dict[str, float]]]:
    """Choose the number of mixture components by the log-likelihood of held-out codes.

    Fits each candidate to a random (1 - ``held_out``) of ``latent`` and scores the
    rest (nats per code; higher is better); BIC on the fitted part is reported beside
    it (lower is better). Returns the best candidate and every candidate's scores.
    """
    if not 0 < held_out < 1:
        raise ValueError(f"held_out is a share between 0 and 1, not {held_out}.")
    order = torch.randperm(len(latent), generator=torch.Generator().manual_seed(seed))
    cut = round(len(latent) * (1 - held_out))
    fit_part, test_part = latent[order[:cut]], latent[order[cut:]]
    scores: dict[int, dict[str, float]] = {}
    for k in candidates:
        mixture = LatentMixture.fit(fit_part, k, seed)
        scores[k] = {"held_out_log_likelihood": mixture.log_likelihood(test_part),
                     "bic": float(mixture.model.bic(fit_part.double().numpy()))}
    best = max(scores, key=lambda k: scores[k]["held_out_log_likelihood"])
    return best, scores


def latent_summary(latent: torch.Tensor) -> dict[str, np.ndarray]:
    """Return per-dimension mean, std and 1st/99th percentiles of ``latent`` (N, d)."""
    values = latent.double().numpy()
    return {
        "mean": values.mean(axis=0),
        "std": values.std(axis=0, ddof=1),
        "p01": np.percentile(values, 1, axis=0),
        "p99": np.percentile(values, 99, axis=0),
    }


def class_means(latent: torch.Tensor, labels: torch.Tensor, num_classes: int = 10) -> torch.Tensor:
    """Return the mean code of each digit, shape (num_classes, d)."""
    return torch.stack([latent[labels == digit].mean(dim=0) for digit in range(num_classes)])


def interpolate(start: torch.Tensor, end: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Return ``num_steps`` codes on the straight line from ``start`` to ``end`` (both (d,))."""
    if num_steps < 2:
        raise ValueError(f"num_steps must be at least 2 (both ends), got {num_steps}.")
    weights = torch.linspace(0.0, 1.0, num_steps).unsqueeze(1)  # (num_steps, 1)
    return (1 - weights) * start + weights * end


def nearest_codes(reference: torch.Tensor, queries: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Return, for each query code (M, d), the distance to and the index of its nearest code in ``reference`` (N, d).

    A k-d tree (scikit-learn) makes this fast for the few dimensions of a latent code.
    """
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=1).fit(reference.detach().cpu().double().numpy())
    distances, indices = index.kneighbors(queries.detach().cpu().double().numpy())
    return distances[:, 0], indices[:, 0]


def share_by_parts(score: np.ndarray | torch.Tensor, flags: np.ndarray | torch.Tensor, parts: int = 10
                   ) -> tuple[list[float], list[float]]:
    """Sort samples by ``score`` into ``parts`` equal parts; return each part's median score and share of ``flags``.

    Where along a score do samples fail? ``flags`` marks the samples that pass (say, the
    decodes a judge reads); the parts run from the lowest score to the highest.
    """
    score = np.asarray(score, dtype=float).ravel()
    flags = np.asarray(flags, dtype=bool).ravel()
    if len(score) != len(flags):
        raise ValueError(f"{len(score)} scores but {len(flags)} flags: give one flag per sample.")
    if not 1 <= parts <= len(score):
        raise ValueError(f"parts must be between 1 and the number of samples ({len(score)}), got {parts}.")
    split = np.array_split(np.argsort(score, kind="stable"), parts)
    return [float(np.median(score[p])) for p in split], [float(flags[p].mean()) for p in split]


def sampler_report(
    train_latent: torch.Tensor,
    train_labels: torch.Tensor,
    test_latent: torch.Tensor,
    test_labels: torch.Tensor,
    samples: dict[str, torch.Tensor],
    far_percentile: float = 99.0,
) -> tuple[dict[str, dict[str, object]], float]:
    """Measure how each set of sampled codes sits among the training codes, against real unseen codes.

    For every entry of ``samples`` and for the test codes themselves (``"real test
    codes"``): the median distance to the nearest training code, the share of codes
    farther than ``far`` (the ``far_percentile`` of the test codes' own distances), the
    digits of the nearest training codes (``digit_share``, one share per digit), the
    total variation distance between that mix and the test set's (0: the same mix,
    1: no digit in common), and every code's distance (``distances``). Returns the rows
    and ``far``.
    """
    labels = train_labels.numpy()
    real_share = np.bincount(test_labels.numpy(), minlength=10) / len(test_labels)
    nearest = {name: nearest_codes(train_latent, codes) for name, codes in
               {**samples, "real test codes": test_latent}.items()}
    far = float(np.percentile(nearest["real test codes"][0], far_percentile))
    rows: dict[str, dict[str, object]] = {}
    for name, (distance, index) in nearest.items():
        share = np.bincount(labels[index], minlength=10) / len(index)
        rows[name] = {
            "median_distance": float(np.median(distance)),
            "far_share": float((distance > far).mean()),
            "total_variation": float(0.5 * np.abs(share - real_share).sum()),
            "digit_share": share.tolist(),
            "distances": distance,
        }
    return rows, far
