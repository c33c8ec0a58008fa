"""Generation, clustering, plotting and the live explorers."""

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from dae_utils import clustering, generation, plotting, widgets
from dae_utils.model import Decoder, Encoder
from dae_utils.noise import add_noise

CPU = torch.device("cpu")


# --- generation ----------------------------------------------------------------------------


def test_encode_and_decode_shapes_and_eval_mode():
    torch.manual_seed(0)
    encoder, decoder = Encoder(3), Decoder(3)
    images = torch.rand(10, 1, 28, 28)
    latent = generation.encode(encoder, images, CPU, batch_size=4)
    assert latent.shape == (10, 3) and not encoder.training
    # Batched encoding in eval mode equals encoding one image at a time.
    one_by_one = torch.cat([generation.encode(encoder, images[i : i + 1], CPU) for i in range(10)])
    assert torch.allclose(latent, one_by_one, atol=1e-6)
    assert generation.decode(decoder, latent, CPU).shape == (10, 1, 28, 28)


def test_fitted_gaussian_recovers_mean_and_covariance():
    rng = torch.Generator().manual_seed(0)
    cov = torch.tensor([[2.0, 0.8], [0.8, 1.0]], dtype=torch.float64)
    mean = torch.tensor([3.0, -1.0], dtype=torch.float64)
    latent = (mean + torch.randn(50_000, 2, generator=rng, dtype=torch.float64) @ torch.linalg.cholesky(cov).T).float()
    gaussian = generation.LatentGaussian.fit(latent)
    assert torch.allclose(gaussian.mean, mean, atol=0.03)
    assert torch.allclose(gaussian.cov, cov, atol=0.05)
    samples = gaussian.sample(50_000, generator=torch.Generator().manual_seed(1)).double()
    assert torch.allclose(samples.mean(0), mean, atol=0.03)
    assert torch.allclose(torch.cov(samples.T), cov, atol=0.05)


def test_interpolation_ends_and_midpoint():
    start, end = torch.tensor([0.0, 2.0]), torch.tensor([4.0, -2.0])
    path = generation.interpolate(start, end, 5)
    assert path.shape == (5, 2)
    assert torch.equal(path[0], start) and torch.equal(path[-1], end)
    assert torch.allclose(path[2], torch.tensor([2.0, 0.0]))
    with pytest.raises(ValueError, match="num_steps"):
        generation.interpolate(start, end, 1)


def test_latent_summary_and_class_means():
    latent = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]])
    labels = torch.tensor([0, 0, 1, 1])
    summary = generation.latent_summary(latent)
    assert np.allclose(summary["mean"], [3.0, 4.0])
    assert np.allclose(summary["std"], np.std([0, 2, 4, 6], ddof=1))
    assert torch.equal(generation.class_means(latent, labels, num_classes=2), torch.tensor([[1.0, 2.0], [5.0, 6.0]]))


# --- clustering ----------------------------------------------------------------------------


def test_mode_mapping_by_hand():
    clusters = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    labels = np.array([5, 5, 3, 3, 3, 5, 5, 1])
    mapping = clustering.mode_mapping(clusters, labels, n_clusters=4)
    assert mapping.tolist() == [5, 3, 5, -1]  # cluster 3 is empty
    assert clustering.shared_digits(mapping) == {5: [0, 2]}


def test_hungarian_is_one_to_one_and_never_beats_mode():
    # Clusters 0 and 1 both hold mostly 7s; the Hungarian mapping must give one of them another digit.
    clusters = np.array([0] * 10 + [1] * 10 + [2] * 10)
    labels = np.array([7] * 9 + [1] + [7] * 6 + [2] * 4 + [4] * 10)
    mode = clustering.mode_mapping(clusters, labels, n_clusters=3)
    hungarian = clustering.hungarian_mapping(clusters, labels, n_clusters=3)
    assert mode.tolist() == [7, 7, 4]
    assert hungarian.tolist() == [7, 2, 4]
    scores = clustering.cluster_scores(clusters, labels, n_clusters=3)
    assert scores["accuracy_mode"] == pytest.approx(25 / 30)
    assert scores["accuracy_hungarian"] == pytest.approx(23 / 30)


def test_perfect_clustering_scores_one_whatever_the_cluster_numbers():
    labels = np.repeat(np.arange(10), 20)
    clusters = (labels * 3 + 1) % 10  # a permutation of the digits
    scores = clustering.cluster_scores(clusters, labels)
    assert scores == pytest.approx({"accuracy_mode": 1.0, "accuracy_hungarian": 1.0, "nmi": 1.0, "ari": 1.0})


def test_best_kmeans_keeps_the_lowest_inertia():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, size=(10, 2))
    points = np.concatenate([c + rng.normal(0, 0.5, size=(50, 2)) for c in centres])
    truth = np.repeat(np.arange(10), 50)
    best = clustering.best_kmeans(points, random_states=range(3), n_init=1, progress=False)
    from sklearn.cluster import KMeans

    inertias = [KMeans(10, n_init=1, random_state=s).fit(points).inertia_ for s in range(3)]
    assert best.inertia_ == pytest.approx(min(inertias))
    assert clustering.cluster_scores(best.labels_, truth)["accuracy_hungarian"] > 0.9
    with pytest.raises(ValueError, match="random_states"):
        clustering.best_kmeans(points, random_states=[], progress=False)


# --- plotting ------------------------------------------------------------------------------


def test_plotting_functions_return_figures_without_showing(monkeypatch):
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plotting must not call plt.show()"))
    images = torch.rand(6, 1, 28, 28)
    figures = [
        plotting.show_images(images, nrow=3),
        plotting.show_rows({"a": images, "b": images[:3]}),
        plotting.plot_losses({"train_loss": [0.1, 0.05], "test_loss": [0.12, 0.06]}),
        plotting.plot_curve([0, 1], {"x": [1, 2]}, "x", "y"),
        plotting.pixel_histograms({"clean": images}),
        plotting.latent_pairs(np.random.rand(100, 3), np.arange(100) % 10),
        plotting.scatter_2d(np.random.rand(50, 2), np.arange(50) % 10, "t"),
        plotting.confusion(np.eye(3, dtype=int), "x", "y"),
        plotting.image_grids({"a": images, "b": images}),
    ]
    assert all(isinstance(f, Figure) for f in figures)
    assert len(figures[1].axes) == 2 * 6  # two rows of six panels
    plt.close("all")


# --- widgets -------------------------------------------------------------------------------


@pytest.fixture
def digits():
    torch.manual_seed(0)
    return torch.rand(30, 1, 28, 28), torch.arange(30) % 10


def test_noise_explorer_slider_changes_the_noise(digits):
    images, labels = digits
    explorer = widgets.NoiseExplorer(images, labels, noise_factor=0.3, seed=5)
    first_png = explorer.image.value
    expected = add_noise(images[0], 0.3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(explorer.noisy, expected)

    explorer.noise_factor.value = 0.8  # what dragging the slider does
    assert torch.equal(explorer.noisy, add_noise(images[0], 0.8, generator=torch.Generator().manual_seed(5)))
    assert explorer.image.value != first_png
    explorer.noise_factor.value = 0.0
    assert torch.equal(explorer.noisy, images[0])


def test_noise_explorer_digit_menu_resample_button(digits):
    images, labels = digits
    explorer = widgets.NoiseExplorer(images, labels, seed=0)
    explorer.digit.value = 7
    assert explorer.index.max == 2  # three images of digit 7 among 30
    explorer.index.value = 1
    assert torch.equal(explorer.clean, images[17])
    before = explorer.noisy.clone()
    explorer.resample.click()
    assert not torch.equal(explorer.noisy, before)
    assert torch.equal(explorer.clean, images[17])


def test_latent_explorer_sliders_decode_live():
    torch.manual_seed(0)
    decoder = Decoder(3).eval()
    latent = torch.randn(500, 3) * torch.tensor([1.0, 2.0, 0.5]) + torch.tensor([0.0, 1.0, -1.0])
    labels = torch.arange(500) % 10
    explorer = widgets.LatentExplorer(decoder, latent, labels, CPU, seed=0)
    summary = generation.latent_summary(latent)
    assert [s.min for s in explorer.sliders] == pytest.approx(summary["p01"].tolist())
    assert [s.max for s in explorer.sliders] == pytest.approx(summary["p99"].tolist())

    before, png = explorer.decoded.clone(), explorer.image.value
    explorer.sliders[1].value = explorer.sliders[1].max  # moving a slider re-decodes
    assert not torch.equal(explorer.decoded, before)
    assert explorer.image.value != png
    with torch.no_grad():
        assert torch.allclose(explorer.decoded, decoder(explorer.code.unsqueeze(0))[0])

    same = explorer.set_code(explorer.code)  # the same code gives the same image
    assert torch.equal(same, explorer.decoded)


def test_latent_explorer_digit_mean_and_random_button():
    torch.manual_seed(0)
    decoder = Decoder(2).eval()
    latent = torch.randn(400, 2)
    labels = torch.arange(400) % 10
    explorer = widgets.LatentExplorer(decoder, latent, labels, CPU, seed=0)
    explorer.start.value = 3
    target = latent[labels == 3].mean(0)
    clipped = [min(max(v, s.min), s.max) for v, s in zip(target.tolist(), explorer.sliders, strict=True)]
    assert explorer.code.tolist() == pytest.approx(clipped, abs=0.01)
    before = explorer.code.clone()
    explorer.random.click()
    assert not torch.equal(explorer.code, before)
