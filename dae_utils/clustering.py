"""Cluster latent codes with k-means and score the clusters against the true digits."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import mode
from sklearn.cluster import KMeans
from sklearn.metrics import (
    accuracy_score,
    adjusted_rand_score,
    confusion_matrix,
    normalized_mutual_info_score,
)
from tqdm.auto import tqdm

NUM_DIGITS = 10


def kmeans_restarts(
    features: np.ndarray,
    n_clusters: int = NUM_DIGITS,
    random_states: range | list[int] = range(10),
    n_init: int = 10,
    progress: bool = True,
) -> list[KMeans]:
    """Fit ``KMeans(n_clusters, n_init)`` once per random state and return every fitted run."""
    runs = [
        KMeans(n_clusters=n_clusters, n_init=n_init, random_state=state).fit(features)
        for state in tqdm(list(random_states), desc="k-means", disable=not progress)
    ]
    if not runs:
        raise ValueError("random_states is empty: give at least one, e.g. range(10).")
    return runs


def best_kmeans(
    features: np.ndarray,
    n_clusters: int = NUM_DIGITS,
    random_states: range | list[int] = range(10),
    n_init: int = 10,
    progress: bool = True,
) -> KMeans:
    """Fit ``KMeans(n_clusters, n_init)`` once per random state and keep the lowest inertia.

    Inertia (the sum of squared distances to the nearest centre) is what k-means
    minimises, so it is the fair way to choose between runs: the labels are not used.
    """
    return min(kmeans_restarts(features, n_clusters, random_states, n_init, progress), key=lambda km: km.inertia_)


def gaussian_mixture(
    features: np.ndarray, n_clusters: int = NUM_DIGITS, random_state: int = 0, n_init: int = 1
) -> np.ndarray:
    """Fit a Gaussian mixture with full covariance matrices and return each point's most likely component.

    Unlike k-means, each cluster gets its own covariance: clusters may be elongated,
    tilted and of different sizes.
    """
    from sklearn.mixture import GaussianMixture

    model = GaussianMixture(n_clusters, covariance_type="full", random_state=random_state, n_init=n_init)
    return model.fit(features).predict(features)


def umap_embedding(
    features: np.ndarray, n_components: int = 2, n_neighbors: int = 15, min_dist: float = 0.0, random_state: int = 0
) -> np.ndarray:
    """Embed ``features`` with UMAP (umap-learn) into ``n_components`` dimensions, seeded.

    UMAP builds a graph of each point's nearest neighbours and lays it out so that
    neighbours stay together: a digit whose codes form a curved arm becomes one
    compact blob. ``min_dist=0`` packs clusters tightly, as the N2D method does.
    The result depends on ``random_state``; with it set, UMAP runs on one thread.
    The first call in a process compiles UMAP's code (about half a minute).
    """
    import umap

    reducer = umap.UMAP(n_components=n_components, n_neighbors=n_neighbors, min_dist=min_dist,
                        random_state=random_state)
    with warnings.catch_warnings():  # the single thread is the price of the seed, chosen on purpose
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        return reducer.fit_transform(features)


def mode_mapping(clusters: np.ndarray, labels: np.ndarray, n_clusters: int = NUM_DIGITS) -> np.ndarray:
    """Map each cluster to the most common true label in it (many clusters may share a digit).

    Returns an array ``mapping`` of length ``n_clusters``: cluster c stands for digit
    ``mapping[c]``. An empty cluster maps to -1.
    """
    mapping = np.full(n_clusters, -1, dtype=np.int64)
    for cluster in range(n_clusters):
        members = labels[clusters == cluster]
        if len(members):
            mapping[cluster] = mode(members, keepdims=False).mode
    return mapping


def digit_cluster_counts(clusters: np.ndarray, labels: np.ndarray, size: int = NUM_DIGITS) -> np.ndarray:
    """Return counts[digit, cluster]: how many images of each digit fall in each cluster (size x size)."""
    return confusion_matrix(labels, clusters, labels=range(size))


def hungarian_mapping(clusters: np.ndarray, labels: np.ndarray, n_clusters: int = NUM_DIGITS) -> np.ndarray:
    """Map clusters to digits one-to-one so that the most images are right (Hungarian method)."""
    size = max(n_clusters, NUM_DIGITS)  # square, so every cluster and digit takes part
    counts = digit_cluster_counts(clusters, labels, size)
    digits, cluster_ids = linear_sum_assignment(counts, maximize=True)
    mapping = np.full(size, -1, dtype=np.int64)
    mapping[cluster_ids] = digits
    return mapping[:n_clusters]


def cluster_scores(clusters: np.ndarray, labels: np.ndarray, n_clusters: int = NUM_DIGITS) -> dict[str, float]:
    """Return mode and Hungarian accuracy, NMI and ARI of ``clusters`` against ``labels``."""
    return {
        "accuracy_mode": float(accuracy_score(labels, mode_mapping(clusters, labels, n_clusters)[clusters])),
        "accuracy_hungarian": float(
            accuracy_score(labels, hungarian_mapping(clusters, labels, n_clusters)[clusters])
        ),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "ari": float(adjusted_rand_score(labels, clusters)),
    }


def kmeans_scores(codes: np.ndarray, labels: np.ndarray, restarts: int = 3) -> dict[str, float]:
    """Cluster ``codes`` with 10-cluster k-means (the lowest inertia of ``restarts`` runs) and score them.

    The quick measurement of notebooks 6 and 7 and ``benchmarks/seed_spread.py``: notebook 5
    does the same with ten restarts, step by step.
    """
    kmeans = best_kmeans(codes, random_states=range(restarts), progress=False)
    return cluster_scores(kmeans.labels_, labels)


def mixed_clusters(counts: np.ndarray, share: float = 0.4) -> dict[int, dict[int, float]]:
    """The clusters that hold more than ``share`` of the images of two digits or more, with those shares.

    ``counts[digit, cluster]`` counts the images (``digit_cluster_counts``); a cluster maps to
    ``{digit: the share of that digit's images it holds}``.
    """
    shares = counts / counts.sum(axis=1, keepdims=True)  # each digit's images, spread over the clusters
    held = {cluster: {int(digit): float(shares[digit, cluster]) for digit in np.flatnonzero(shares[:, cluster] > share)}
            for cluster in range(counts.shape[1])}
    return {cluster: digits for cluster, digits in held.items() if len(digits) > 1}


def split_digits(counts: np.ndarray, share: float = 0.2) -> list[int]:
    """The digits whose second-largest cluster holds more than ``share`` of their images."""
    shares = counts / counts.sum(axis=1, keepdims=True)
    return [digit for digit in range(counts.shape[0]) if np.sort(shares[digit])[-2] > share]


def held_out_scores(
    kmeans: KMeans, train_clusters: np.ndarray, train_labels: np.ndarray, test_features: np.ndarray,
    test_labels: np.ndarray,
) -> dict[str, float]:
    """Score a clustering on images it never saw: assign them to the fitted centres, name them as on training.

    Both mappings (mode and Hungarian) come from the training images and their labels;
    the held-out labels are used only to count. Returns ``accuracy_mode``,
    ``accuracy_hungarian`` and ``nmi`` of the held-out images.
    """
    test_clusters = kmeans.predict(test_features)
    n_clusters = kmeans.n_clusters
    mode = mode_mapping(train_clusters, train_labels, n_clusters)
    hungarian = hungarian_mapping(train_clusters, train_labels, n_clusters)
    return {
        "accuracy_mode": float(np.mean(mode[test_clusters] == test_labels)),
        "accuracy_hungarian": float(np.mean(hungarian[test_clusters] == test_labels)),
        "nmi": float(normalized_mutual_info_score(test_labels, test_clusters)),
    }


def shared_digits(mapping: np.ndarray) -> dict[int, list[int]]:
    """Return the digits claimed by more than one cluster, with those clusters."""
    claims: dict[int, list[int]] = {}
    for cluster, digit in enumerate(mapping):
        claims.setdefault(int(digit), []).append(cluster)
    return {digit: clusters for digit, clusters in claims.items() if len(clusters) > 1}
