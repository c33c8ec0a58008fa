"""Generation, clustering, plotting and the live explorers."""

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from sklearn.cluster import KMeans

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
    low, high = latent.min(0).values, latent.max(0).values
    margin = widgets.SLIDER_MARGIN * (high - low)
    assert [s.min for s in explorer.sliders] == pytest.approx((low - margin).tolist(), abs=1e-6)
    assert [s.max for s in explorer.sliders] == pytest.approx((high + margin).tolist(), abs=1e-6)

    before, png = explorer.decoded.clone(), explorer.image.value
    explorer.sliders[1].value = explorer.sliders[1].max  # moving a slider re-decodes
    assert not torch.equal(explorer.decoded, before)
    assert explorer.image.value != png
    with torch.no_grad():
        assert torch.allclose(explorer.decoded, decoder(explorer.code.unsqueeze(0))[0])

    same = explorer.set_code(explorer.code)  # the same code gives the same image
    assert torch.equal(same, explorer.decoded)


def test_latent_explorer_over_the_prior_for_a_vae():
    torch.manual_seed(0)
    decoder = Decoder(3).eval()
    latent = torch.randn(400, 3) * 0.2 + 5.0  # codes far from N(0, I): the sliders must not follow them
    explorer = widgets.LatentExplorer(decoder, latent, torch.arange(400) % 10, CPU, seed=0, prior=True)
    assert [(s.min, s.max, s.value) for s in explorer.sliders] == [(-3.0, 3.0, 0.0)] * 3
    with torch.no_grad():
        assert torch.allclose(explorer.decoded, decoder(torch.zeros(1, 3))[0])
    draws = torch.stack([explorer.random_code() for _ in range(4000)])
    assert draws.mean(0).abs().max() < 0.1 and (draws.std(0) - 1).abs().max() < 0.05  # N(0, I)
    explorer.random.click()
    assert explorer.code.abs().max() <= 3.0 and explorer.code.abs().sum() > 0


def test_latent_explorer_digit_mean_and_random_button():
    torch.manual_seed(0)
    decoder = Decoder(2).eval()
    latent = torch.randn(400, 2)
    labels = torch.arange(400) % 10
    explorer = widgets.LatentExplorer(decoder, latent, labels, CPU, seed=0)
    explorer.start.value = 3
    target = latent[labels == 3].mean(0)
    assert explorer.code.tolist() == pytest.approx(target.tolist(), abs=0.01)  # inside the range: not clipped
    assert explorer.note.value == ""
    before = explorer.code.clone()
    explorer.random.click()
    assert not torch.equal(explorer.code, before)


def test_latent_explorer_says_when_it_clips_and_ignores_nan():
    """A NaN used to break the explorer for good; a far sample used to be clipped without a word."""
    torch.manual_seed(0)
    decoder = Decoder(2).eval()
    latent = torch.randn(400, 2)
    explorer = widgets.LatentExplorer(decoder, latent, torch.arange(400) % 10, CPU, seed=0)
    explorer.set_code(torch.tensor([50.0, 0.5]))
    assert explorer.code[0].item() == pytest.approx(explorer.sliders[0].max, abs=1e-6)
    assert "z0 = 50.00 clipped to" in explorer.note.value
    before = explorer.code.clone()
    explorer.set_code(torch.tensor([float("nan"), 0.25]))
    assert explorer.code[0] == before[0] and explorer.code[1].item() == pytest.approx(0.25, abs=0.01)
    assert "z0 = nan ignored" in explorer.note.value
    explorer.sliders[1].value = float("nan")  # what typing "nan" into the slider's box does
    assert torch.isfinite(explorer.code).all() and torch.isfinite(explorer.decoded).all()
    assert "not a number was ignored" in explorer.note.value  # the docstring promises a note
    explorer.sliders[1].value = 0.0  # and it keeps working
    with torch.no_grad():
        assert torch.allclose(explorer.decoded, decoder(explorer.code.unsqueeze(0))[0])


@pytest.mark.parametrize("code", [torch.tensor([9.0, 9.0]), torch.tensor([0.1, 0.2, 0.3, 0.4]),
                                  torch.zeros(1, 3), "0.1 0.2 0.3"])
def test_latent_explorer_refuses_a_code_of_the_wrong_length_before_moving_anything(code):
    torch.manual_seed(0)
    explorer = widgets.LatentExplorer(Decoder(3).eval(), torch.randn(300, 3), torch.arange(300) % 10, CPU, seed=0)
    explorer.set_code(torch.tensor([0.5, -0.5, 0.25]))
    before, picture = explorer.code.clone(), explorer.decoded.clone()
    with pytest.raises(ValueError, match=r"one code of 3 numbers.*Nothing was changed"):
        explorer.set_code(code)
    assert torch.equal(explorer.code, before) and torch.equal(explorer.decoded, picture)


def test_latent_explorer_walk_nearest_image_and_map_marker():
    torch.manual_seed(0)
    decoder = Decoder(3).eval()
    latent = torch.randn(300, 3)
    labels = torch.arange(300) % 10
    images = torch.rand(300, 1, 28, 28)
    explorer = widgets.LatentExplorer(decoder, latent, labels, CPU, images=images, seed=0)
    means = generation.class_means(latent, labels)
    explorer.walk_from.value, explorer.walk_to.value = 2, 5
    explorer.walk.value = 0.5
    assert explorer.code.tolist() == pytest.approx(((means[2] + means[5]) / 2).tolist(), abs=0.01)
    distances = torch.cdist(explorer.code.unsqueeze(0).double(), latent.double())[0]
    assert explorer.nearest_index == int(distances.argmin())
    assert explorer.nearest_distance == pytest.approx(float(distances.min()), abs=1e-6)
    marker_x, marker_y = explorer._marker.get_data()
    assert [marker_x[0], marker_y[0]] == pytest.approx(explorer._pca.transform(explorer.code.double()[None].numpy())[0])


@pytest.mark.parametrize("factor", [float("nan"), -0.1, "lots"])
def test_noise_explorer_refuses_a_bad_noise_factor_at_once(digits, factor):
    with pytest.raises(ValueError, match="noise_factor must be"):
        widgets.NoiseExplorer(*digits, noise_factor=factor)


def test_noise_explorer_offers_only_the_digits_it_has(digits):
    images, labels = digits
    explorer = widgets.NoiseExplorer(images[labels < 3], labels[labels < 3])
    assert [value for _, value in explorer.digit.options] == [-1, 0, 1, 2]
    explorer.digit.value = 2
    assert int(explorer.labels[explorer._candidates()[explorer.index.value]]) == 2
    with pytest.raises(ValueError, match="one label per image"):
        widgets.NoiseExplorer(images, labels[:5])


def test_noise_explorer_ignores_nan_and_keeps_working(digits):
    images, labels = digits
    explorer = widgets.NoiseExplorer(images, labels, noise_factor=0.3, seed=5)
    explorer.noise_factor.value = float("nan")
    assert explorer.noise_factor.value == pytest.approx(0.3)
    explorer.noise_factor.value = 0.6
    assert torch.equal(explorer.noisy, add_noise(images[0], 0.6, generator=torch.Generator().manual_seed(5)))


def test_explorers_carry_a_picture_for_viewers_without_a_kernel(digits):
    """GitHub and nbviewer cannot run widgets; they show the PNG that rides along in the display data."""
    import base64

    images, labels = digits
    explorer = widgets.NoiseExplorer(images, labels, seed=0)
    bundle = explorer._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]) == explorer.image.value
    assert bundle["image/png"] and "text/plain" in bundle
    latent_explorer = widgets.LatentExplorer(Decoder(2).eval(), torch.randn(100, 2), torch.arange(100) % 10, CPU)
    assert base64.b64decode(latent_explorer._repr_mimebundle_()["image/png"]) == latent_explorer.image.value


def test_nearest_codes_match_brute_force():
    torch.manual_seed(0)
    reference, queries = torch.randn(500, 4), torch.randn(20, 4)
    distances, indices = generation.nearest_codes(reference, queries)
    brute = torch.cdist(queries.double(), reference.double())
    assert indices.tolist() == brute.argmin(dim=1).tolist()
    assert distances == pytest.approx(brute.min(dim=1).values.numpy())


def test_share_by_parts_sorts_by_score_and_counts_flags_per_part():
    score = torch.tensor([5.0, 1.0, 4.0, 2.0, 3.0, 6.0])  # sorted: 1 2 | 3 4 | 5 6
    flags = torch.tensor([True, False, True, False, False, True])
    medians, shares = generation.share_by_parts(score, flags, parts=3)
    assert medians == [1.5, 3.5, 5.5]
    assert shares == [0.0, 0.5, 1.0]
    medians, shares = generation.share_by_parts(np.arange(10.0), np.arange(10) >= 7, parts=2)  # 5 and 5
    assert (medians, shares) == ([2.0, 7.0], [0.0, 0.6])
    with pytest.raises(ValueError, match="one flag per sample"):
        generation.share_by_parts(score, flags[:5])
    with pytest.raises(ValueError, match="parts must be between 1 and the number of samples"):
        generation.share_by_parts(score, flags, parts=7)


def test_kmeans_restarts_returns_every_run_and_best_is_their_minimum():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(c, 0.3, (50, 2)) for c in [(0, 0), (3, 0), (0, 3), (3, 3)]])
    runs = clustering.kmeans_restarts(points, n_clusters=4, random_states=[0, 1, 2], n_init=1, progress=False)
    assert len(runs) == 3 and {km.random_state for km in runs} == {0, 1, 2}
    best = clustering.best_kmeans(points, n_clusters=4, random_states=[0, 1, 2], n_init=1, progress=False)
    assert best.inertia_ == pytest.approx(min(km.inertia_ for km in runs))


def _blobs(seed=0, per=60):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 8, (10, 5))
    points = np.concatenate([rng.normal(c, 0.5, (per, 5)) for c in centres])
    return points, np.repeat(np.arange(10), per)


def test_gaussian_mixture_recovers_separated_clusters():
    points, labels = _blobs()
    found = clustering.gaussian_mixture(points, random_state=0, n_init=3)
    assert clustering.cluster_scores(found, labels)["accuracy_hungarian"] == 1.0


def test_umap_embedding_keeps_separated_clusters_apart():
    points, labels = _blobs(per=40)
    embedding = clustering.umap_embedding(points, random_state=0)
    assert embedding.shape == (400, 2)
    found = KMeans(10, n_init=10, random_state=0).fit_predict(embedding)
    assert clustering.cluster_scores(found, labels)["accuracy_hungarian"] == 1.0
    # Seeded, it repeats exactly.
    assert np.array_equal(embedding, clustering.umap_embedding(points, random_state=0))


def test_denoising_scores_by_hand():
    from dae_utils.training import denoise, denoising_scores

    torch.manual_seed(0)
    encoder, decoder = Encoder(4), Decoder(4)
    clean = torch.rand(20, 1, 28, 28)
    noisy = (clean + 0.3 * torch.randn_like(clean)).clamp(0, 1)
    scores = denoising_scores(encoder, decoder, clean, noisy, CPU)
    for key, inputs in (("denoised_mse", noisy), ("bottleneck_mse", clean)):
        by_hand = torch.mean((denoise(encoder, decoder, inputs, CPU) - clean) ** 2).item()
        assert scores[key] == pytest.approx(by_hand)


def two_clusters(n: int = 4000, seed: int = 0) -> torch.Tensor:
    """Codes from a known mixture: 30 % around (-4, 0), 70 % around (+4, 0), unit covariance, in 2-D."""
    generator = torch.Generator().manual_seed(seed)
    left = torch.rand(n, generator=generator) < 0.3
    centre = torch.where(left.unsqueeze(1), torch.tensor([-4.0, 0.0]), torch.tensor([4.0, 0.0]))
    return centre + torch.randn(n, 2, generator=generator)


def test_a_mixture_fitted_after_training_recovers_a_known_mixture_and_samples_it():
    mixture = generation.LatentMixture.fit(two_clusters(), 2, seed=0)
    order = mixture.means[:, 0].argsort()
    assert mixture.weights[order].tolist() == pytest.approx([0.3, 0.7], abs=0.03)
    assert torch.allclose(mixture.means[order], torch.tensor([[-4.0, 0.0], [4.0, 0.0]], dtype=torch.float64), atol=0.1)
    assert torch.allclose(mixture.covariances, torch.eye(2, dtype=torch.float64).expand(2, 2, 2), atol=0.1)
    drawn = mixture.sample(20_000, generator=torch.Generator().manual_seed(1))
    assert float((drawn[:, 0] < 0).float().mean()) == pytest.approx(0.3, abs=0.015)
    assert torch.equal(drawn, mixture.sample(20_000, generator=torch.Generator().manual_seed(1)))
    one = generation.LatentMixture.fit(two_clusters(), 1)
    assert mixture.log_likelihood(two_clusters(seed=5)) > one.log_likelihood(two_clusters(seed=5)) + 0.5


def test_held_out_codes_choose_the_number_of_components():
    best, scores = generation.choose_components(two_clusters(), candidates=(1, 2, 20), seed=0)
    assert best == 2  # the true number of clusters; 20 overfits the held-out codes (seeded: this choice repeats)
    assert scores[20]["held_out_log_likelihood"] < scores[2]["held_out_log_likelihood"]
    assert scores[2]["held_out_log_likelihood"] > scores[1]["held_out_log_likelihood"]
    assert scores[2]["bic"] < scores[1]["bic"] and scores[2]["bic"] < scores[20]["bic"]
    with pytest.raises(ValueError, match="components must be a whole number"):
        generation.LatentMixture.fit(two_clusters(), 0)
