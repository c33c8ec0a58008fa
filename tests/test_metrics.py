"""The generator's measures: Fréchet distance against a hand computation, precision and recall, novelty."""

import numpy as np
import pytest
import scipy.linalg
import torch

from dae_utils import data, judge, metrics
from dae_utils.data import load_sample


def hand_frechet(a: np.ndarray, b: np.ndarray) -> float:
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_frechet_distance_is_the_formula():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(3000, 8, generator=generator)
    b = 1.5 * torch.randn(2000, 8, generator=generator) + 0.7
    assert metrics.frechet_distance(a, b) == pytest.approx(hand_frechet(a.double().numpy(), b.double().numpy()),
                                                          rel=1e-4)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # the population value for N(0, I) against N(0.7, 1.5^2 I) in 8 dimensions: 8 x 0.49 + 8 x (1 - 1.5)^2 = 5.92
    assert metrics.frechet_distance(a, b) == pytest.approx(5.92, rel=0.05)
    with pytest.raises(ValueError, match="one width"):
        metrics.frechet_distance(a, b[:, :4])


def test_precision_recall_density_coverage_at_the_extremes():
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(600, 4, generator=generator)
    same = metrics.precision_recall(real, real.clone())
    assert same["precision"] == 1 and same["recall"] == 1 and same["coverage"] == 1
    far = metrics.precision_recall(real, real + 100)
    assert far["precision"] == 0 and far["recall"] == 0 and far["coverage"] == 0 and far["density"] == 0
    # samples that cover only one half of the real cloud: look real (precision high) but miss half (recall low)
    half = real[real[:, 0] > 0.5]
    one_side = metrics.precision_recall(real, half)
    assert one_side["precision"] > 0.9 and one_side["recall"] < 0.6


def test_a_feature_report_is_prdc_and_the_frechet_distance_and_a_shifted_cloud_scores_worse_than_a_twin():
    generator = torch.Generator().manual_seed(3)
    real, twin = torch.randn(800, 5, generator=generator), torch.randn(800, 5, generator=generator)
    report = metrics.feature_report(real, twin)
    assert report == {**metrics.precision_recall(real, twin), "frechet_distance": metrics.frechet_distance(real, twin)}
    shifted = metrics.feature_report(real, twin + 1.0)
    assert shifted["frechet_distance"] > 4 * report["frechet_distance"]  # a mean moved by 1 in 5 dims: about 5
    assert shifted["coverage"] < report["coverage"] and shifted["precision"] < report["precision"]


def test_nearest_distances_are_the_brute_force_ones():
    generator = torch.Generator().manual_seed(1)
    reference, queries = torch.randn(500, 6, generator=generator), torch.randn(70, 6, generator=generator)
    brute = torch.tensor([min(float((q - r).norm()) for r in reference) for q in queries])
    assert torch.allclose(metrics.nearest_distances(reference, queries, chunk=16), brute, atol=1e-5)


def test_the_reference_scores_real_test_images_as_new_and_training_images_as_copies():
    sample = load_sample()
    reader = judge.train_classifier(sample, torch.device("cpu"), steps=100, progress=False)
    reference = metrics.Reference.make(reader, sample.train_images, sample.test_images, sample.test_labels,
                                       prdc_images=500)
    test = reference.measure(sample.test_images)
    assert test["novelty"] == pytest.approx(1.0) and test["copy_share"] <= 0.011
    copies = reference.measure(sample.train_images[:1000])
    assert copies["novelty"] < 1e-5 and copies["copy_share"] == 1  # distance 0, up to rounding in cdist
    assert set(test["readable_by_threshold"]) == {f"{t:g}" for t in metrics.THRESHOLDS}
    shares = list(test["readable_by_threshold"].values())
    assert shares == sorted(shares, reverse=True)  # a higher threshold never passes more
    blank = reference.measure(torch.zeros(600, 1, 28, 28))
    assert blank["frechet_distance"] > 10 * test["frechet_distance"] and blank["recall"] < 0.05


def test_code_report_catches_copies_a_narrow_cloud_and_a_wrong_width():
    g = torch.Generator().manual_seed(0)
    train, held_out = torch.randn(3000, 4, generator=g), torch.randn(1000, 4, generator=g)
    same = metrics.code_report(torch.randn(1000, 4, generator=g), held_out, train)
    copies = metrics.code_report(train[:1000], held_out, train)
    narrow = metrics.code_report(0.3 * torch.randn(1000, 4, generator=g) + 1.0, held_out, train)
    assert copies["novelty"] == 0 and copies["copy_share"] == 1  # a prior that copies: caught
    assert 0.9 < same["novelty"] < 1.1 and same["copy_share"] < 0.03 and same["coverage"] > 0.9
    assert narrow["coverage"] < 0.2 and narrow["recall"] < 0.1 and narrow["frechet_distance"] > 1
    by_hand = metrics.nearest_distances(train, held_out).median()
    assert same["novelty"] == pytest.approx(float(metrics.nearest_distances(train, torch.randn(
        1000, 4, generator=torch.Generator().manual_seed(5))).median() / by_hand), abs=0.1)
    with pytest.raises(ValueError, match="codes of one width"):
        metrics.code_report(torch.zeros(10, 3), held_out, train)


def test_samplers_are_measured_against_one_half_of_the_reconstructions_and_their_twins_against_the_other():
    import importlib.util
    from pathlib import Path

    from dae_utils import results

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "seed_spread.py"
    spec = importlib.util.spec_from_file_location("seed_spread_under_test", path)
    seed_spread = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(seed_spread)
    torch.manual_seed(0)
    classifier = judge.DigitClassifier(judge.NOT_A_DIGIT + 1).eval()  # untrained: any fixed features will do
    labels = torch.arange(10).repeat(30)
    g = torch.Generator().manual_seed(1)
    reconstructions = 0.3 * torch.rand(len(labels), 1, 28, 28, generator=g) + labels.view(-1, 1, 1, 1) / 20
    decoded = {"decoded test codes": reconstructions, "own posteriors": reconstructions.clone(),
               "N(0, I)": torch.rand(500, 1, 28, 28, generator=g)}
    found = seed_spread.against_reconstructions(classifier, decoded, labels)
    assert set(found) == {results.RECONSTRUCTION_FLOOR, "own posteriors", "N(0, I)"}
    # the images' own twins are measured on the half that is not the reference: exactly the floor's images
    assert found["own posteriors"] == found[results.RECONSTRUCTION_FLOOR]
    other, kept = data.stratified_halves(labels, seed_spread.RECONSTRUCTION_SPLIT_SEED)
    assert not set(other.tolist()) & set(kept.tolist())  # two disjoint halves, each digit split evenly
    assert torch.bincount(labels[other]).tolist() == torch.bincount(labels[kept]).tolist()
    floor = found[results.RECONSTRUCTION_FLOOR]
    assert floor == metrics.feature_report(metrics.features(classifier, reconstructions[kept]),
                                           metrics.features(classifier, reconstructions[other]))
    assert found["N(0, I)"]["coverage"] < floor["coverage"]
