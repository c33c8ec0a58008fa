"""Run the course's comparisons over several seeds and write the results files the notebooks show.

    python benchmarks/seed_spread.py all --data-dir ../shared/data/mnist
    python benchmarks/seed_spread.py course batchnorm --data-dir ../shared/data/mnist
    python benchmarks/seed_spread.py sweep --add-seeds 3 4 --data-dir ../shared/data/mnist

One run is never *the* result: training and k-means start from random draws, and
a CPU run repeats exactly only on the same machine and library build. Where a
notebook draws a conclusion from a comparison that is too slow to repeat in the
notebook, this script runs it for several training seeds and writes
``benchmarks/results/<experiment>.json``, which says which command, machine and
commit made it. The notebook trains one seed live and shows the file beside it.

Experiments (each reuses matching checkpoints in ``--checkpoint-dir``):

- ``course``: the assignment's model (30 epochs, noise 0.3, d = 4) for seeds 0-4:
  test loss, denoising at noise 0.1-0.8 (notebook 3), where N(0, I) samples land
  (notebook 4), k-means on training and held-out codes (notebook 5), UMAP then a
  Gaussian mixture (notebook 6).
- ``batchnorm``: notebook 2's 300-step runs with and without batch norm, and with
  shift injected after it (at full dose and at a tenth), at two learning rates, seeds 0-4
  (the committed file adds seeds 5-9).
- ``affine``: notebook 2's runs with and without gamma and beta, 3 and 10 epochs, seeds 0-4.
- ``sweep``: notebook 6's latent sizes d = 2-16 and the plain autoencoder, 10 epochs, seeds 0-4.
- ``judge``: the digit judge's measures (notebooks 3 and 6): digits kept and SSIM of the
  course model (seeds 0-4) against the noisy input and the median filter at noise 0.1-0.8,
  readable shares of decoded samples, and digits kept and SSIM across the latent sweep.
- ``vae``: notebook 7's variational autoencoder against the course's model, seeds 0-4, at six
  weights beta of the KL term (beta = 0, the same loss without it, is the control): readable
  N(0, I) samples by the calibrated judge and their mix of digits, where they land (and the same of a
  Gaussian fitted to each model's codes, which reads every model at its own latent scale), denoising
  MSE, k-means on the codes (the means) and the digits' separation (silhouette); and, to say why
  samples fall short, how readable each model's reconstructions are (read four ways, and their
  digits kept), the VAE's decoded posterior
  samples, KL(aggregate posterior || N(0, I)) by Monte Carlo, and readability against the
  aggregate posterior's log-density.
- ``moonshot``: notebook 6's d = 16 codes, UMAP and a Gaussian mixture, seeds 0-4, each with UMAP
  random states 0, 1 and 2, with the count matrix of every run.
- ``generation``: the calibrated digit judge (notebook 3) and every sampler of the course's model and
  of the VAE at beta = 1 (notebooks 4 and 7), seeds 0-4: readable share and its threshold sweep, the
  mix of digits, Fréchet distance, precision, recall, density, coverage and novelty, with mixtures
  fitted to the codes after training (their number of components chosen on held-out codes); the
  reconstructions read four ways and by digits kept; and every sampler against the model's own
  reconstructions in the judge's features, with the floor of one half of them against the other.
- ``latent``: the same samplers in the latent space itself, seeds 0-4, against held-out test codes
  (no judge): precision, recall, density, coverage, Fréchet distance and novelty against the
  training codes, with the floor of real codes (one half of the test codes against the other)
  and a prior that copies training codes; and the held-out likelihood of mixtures larger than
  the course's candidates.
- ``images``: notebook 3's autoencoder (seeds 0-4) against the median filter image by image (MSE,
  digits kept and SSIM), so that a verdict against the filter can cover new test images as well as new seeds.
- ``exercises``: the expected results the exercises quote (seed 0, the reference run).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import silhouette_score
from sklearn.mixture import GaussianMixture
from torch import nn

from dae_utils import (
    baselines,
    batchnorm,
    clustering,
    data,
    generation,
    judge,
    metrics,
    model,
    negatives,
    noise,
    results,
    runtime,
    training,
    vae,
)

ROOT = Path(__file__).resolve().parent.parent
#: The noise of every evaluation: the notebooks' default, drawn with the notebooks' default seed.
NOISE_FACTOR = 0.3
EVAL_SEED = 0
NOISE_LEVELS = [round(0.1 * i, 1) for i in range(1, 9)]
SAMPLES = 10_000  # codes drawn per sampler, as in notebook 4
JUDGED_LEVEL_IMAGES = 2_000  # test images judged per noise level, as in notebook 3's sweep


def rounded(value: Any, digits: int = 6) -> Any:
    """Round floats (also inside lists and dicts) to ``digits`` significant digits, to keep the files readable."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(v, digits) for v in value]
    return value


class Runner:
    """What every experiment shares: the data, the device, the checkpoints and the fixed test noise."""

    def __init__(self, data_dir: str | None, checkpoint_dir: Path) -> None:
        self.device = runtime.get_device()
        self.mnist = data.load_mnist(data_dir=data_dir)
        self.checkpoint_dir = checkpoint_dir
        self.test_clean = self.mnist.test_images
        self.test_noisy = self.noisy(NOISE_FACTOR)
        self.train_labels = self.mnist.train_labels.numpy()
        self.test_labels = self.mnist.test_labels.numpy()
        kind = "full MNIST" if self.mnist.is_full else f"MNIST ({self.mnist.key})"
        self.data_line = (f"{kind}, {len(self.mnist.train_images):,} training and "
                          f"{len(self.mnist.test_images):,} test images")

    def noisy(self, level: float) -> torch.Tensor:
        return noise.add_noise(self.test_clean, level, generator=torch.Generator().manual_seed(EVAL_SEED))

    def train(self, **settings: Any) -> training.TrainedModel:
        config = training.TrainConfig(**settings)
        return training.train_or_load(config, self.mnist, self.device, checkpoint_dir=self.checkpoint_dir,
                                      progress=False)

    def codes(self, trained: training.TrainedModel, images: torch.Tensor) -> torch.Tensor:
        return generation.encode(trained.encoder, images, self.device)

    def denoising(self, trained: training.TrainedModel) -> dict[str, float]:
        return training.denoising_scores(trained.encoder, trained.decoder, self.test_clean, self.test_noisy,
                                         self.device)


def course(run: Runner, seeds: list[int]) -> dict[str, Any]:
    """The assignment's model over training seeds: the figures notebooks 3 to 6 draw conclusions from."""
    fixed = {
        "noisy_mse": [baselines.mse(run.noisy(level), run.test_clean) for level in NOISE_LEVELS],
        "median_mse": [baselines.mse(baselines.median_filter(run.noisy(level)), run.test_clean)
                       for level in NOISE_LEVELS],
    }
    rows = []
    for seed in seeds:
        start = time.perf_counter()
        trained = run.train(seed=seed)
        history = trained.history
        row: dict[str, Any] = {"seed": seed, "test_loss": history["test_loss"][-1],
                               "train_eval_loss": history["train_eval_loss"][-1], **run.denoising(trained),
                               "epoch_1": {key: values[0] for key, values in history.items()}}
        row["denoised_mse_by_level"] = [
            baselines.mse(training.denoise(trained.encoder, trained.decoder, run.noisy(level), run.device),
                          run.test_clean) for level in NOISE_LEVELS]
        # Notebook 4: where samples from N(0, I) and from a fitted Gaussian land among the training codes.
        train_latent, test_latent = run.codes(trained, run.mnist.train_images), run.codes(trained, run.test_clean)
        gaussian = generation.LatentGaussian.fit(train_latent)
        samples = {"N(0, I)": torch.randn(SAMPLES, train_latent.shape[1],
                                          generator=torch.Generator().manual_seed(EVAL_SEED)),
                   "fitted Gaussian": gaussian.sample(SAMPLES, generator=torch.Generator().manual_seed(EVAL_SEED))}
        report, _ = generation.sampler_report(train_latent, run.mnist.train_labels, test_latent,
                                              run.mnist.test_labels, samples)
        row["samplers"] = {name: {k: v for k, v in values.items() if isinstance(v, float)}
                           for name, values in report.items()}
        # Notebook 5: k-means as the notebook runs it, on the training codes and on held-out codes.
        runs = clustering.kmeans_restarts(train_latent.numpy(), random_states=range(10), n_init=10, progress=False)
        kmeans = min(runs, key=lambda km: km.inertia_)
        row["train_clustering"] = clustering.cluster_scores(kmeans.labels_, run.train_labels)
        row["restart_accuracy_mode"] = sorted(
            clustering.cluster_scores(km.labels_, run.train_labels)["accuracy_mode"] for km in runs)
        row["test_clustering"] = clustering.held_out_scores(kmeans, kmeans.labels_, run.train_labels,
                                                            test_latent.numpy(), run.test_labels)
        # Notebook 6, section 6.3: a Gaussian mixture on the same codes; UMAP, then a mixture (best of 5 starts).
        row["gmm"] = clustering.cluster_scores(
            clustering.gaussian_mixture(train_latent.numpy(), random_state=EVAL_SEED, n_init=5), run.train_labels)
        code_map = clustering.umap_embedding(train_latent.numpy(), random_state=EVAL_SEED)
        row["umap_gmm"] = clustering.cluster_scores(
            clustering.gaussian_mixture(code_map, random_state=EVAL_SEED, n_init=5), run.train_labels)
        rows.append(row)
        print(f"seed {seed}: test loss {row['test_loss']:.4f}, k-means mode "
              f"{row['train_clustering']['accuracy_mode']:.3f} "
              f"(held out {row['test_clustering']['accuracy_mode']:.3f}),"
              f" UMAP {row['umap_gmm']['accuracy_hungarian']:.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
    return {"settings": {"num_epochs": 30, "noise_factor": NOISE_FACTOR, "latent_dim": 4, "lr": 1e-3,
                         "batch_size": 256, "noise_levels": NOISE_LEVELS, "samples": SAMPLES},
            "fixed": fixed, "rows": rows}


def batchnorm_runs(run: Runner, seeds: list[int], steps: int = 300, lrs: tuple[float, ...] = (0.001, 0.01)
                   ) -> dict[str, Any]:
    """Notebook 2's 300-step runs: with batch norm, without it, and with shift injected after it.

    The shift goes after the encoder's batch norm alone (the layer section 2.8 watches),
    or after each of the model's three batch-norm layers, as in Santurkar et al.'s test,
    at full dose and at a tenth of it (shift up to 0.1 instead of 1, factor up to
    2 ** 0.1 instead of 2).
    """
    doses = {"injected_shift": {"max_shift": 1.0, "max_scale": 2.0},
             "small_injected_shift": {"max_shift": 0.1, "max_scale": 2.0 ** 0.1}}
    rows = []
    for seed in seeds:
        for lr in lrs:
            for variant, (with_batchnorm, dose, every_norm) in results.BATCHNORM_VARIANTS.items():
                config = training.TrainConfig(lr=lr, seed=seed, batchnorm=with_batchnorm)
                hook = batchnorm.InjectedShift(seed, **doses[dose]) if dose else None
                _, _, log = batchnorm.train_steps(config, run.mnist, run.device, steps, progress=False, after_norm=hook,
                                                 every_norm=every_norm)
                drift = log.drift()
                rows.append({"seed": seed, "lr": lr, "variant": variant, "test_loss": log.test_loss,
                             "last_50_mean": float(np.mean(log.loss[-50:])), "loss": log.loss,
                             "mean_shift": drift["mean_shift"], "variance_ratio": drift["variance_ratio"]})
        print(f"seed {seed}: " + ", ".join(f"{r['lr']:g} {r['variant']}: {r['test_loss']:.4f}"
                                           for r in rows if r["seed"] == seed), flush=True)
    return {"settings": {"steps": steps, "batch_size": 256, "noise_factor": NOISE_FACTOR, "lrs": list(lrs), **doses},
            "rows": rows}


def relu_cut_share(trained: training.TrainedModel, images: torch.Tensor) -> float:
    """Return the share of the encoder's batch-norm outputs that its next ReLU sets to zero (eval mode)."""
    encoder = trained.encoder.eval()
    with torch.no_grad():
        after_norm = encoder.conv[:4](images)  # conv1 -> ReLU -> conv2 -> batch norm
    return float((after_norm <= 0).float().mean())


def affine(run: Runner, seeds: list[int], budgets: tuple[int, ...] = (3, 10)) -> dict[str, Any]:
    """Notebook 2's runs with and without batch norm's gamma and beta."""
    rows = []
    for seed in seeds:
        for num_epochs in budgets:
            for with_affine in (True, False):
                trained = run.train(num_epochs=num_epochs, seed=seed, batchnorm_affine=with_affine)
                rows.append({"seed": seed, "num_epochs": num_epochs, "affine": with_affine,
                             "test_loss": trained.history["test_loss"][-1],
                             "relu_cut_share": relu_cut_share(trained, run.test_clean[:256])})
        print(f"seed {seed}: " + ", ".join(f"{r['num_epochs']} epochs affine={r['affine']}: {r['test_loss']:.4f}"
                                           for r in rows if r["seed"] == seed), flush=True)
    return {"settings": {"budgets": list(budgets), "noise_factor": NOISE_FACTOR, "batch_size": 256},
            "rows": rows}


def sweep(run: Runner, seeds: list[int], latent_dims: tuple[int, ...] = (2, 4, 8, 16), num_epochs: int = 10
          ) -> dict[str, Any]:
    """Notebook 6: the latent-size sweep, and the plain autoencoder against the denoising one, over seeds."""
    rows = []
    for seed in seeds:
        for latent_dim in latent_dims:
            trained = run.train(num_epochs=num_epochs, latent_dim=latent_dim, seed=seed)
            row = {"seed": seed, "latent_dim": latent_dim, "training_noise": NOISE_FACTOR, **run.denoising(trained),
                   **clustering.kmeans_scores(run.codes(trained, run.mnist.train_images).numpy(),
                                                run.train_labels)}
            if latent_dim == max(latent_dims):  # the moonshot: UMAP of the widest codes, then a mixture
                codes = run.codes(trained, run.mnist.train_images).numpy()
                found = clustering.gaussian_mixture(clustering.umap_embedding(codes, random_state=EVAL_SEED),
                                                    random_state=EVAL_SEED, n_init=5)
                row["umap_gmm"] = clustering.cluster_scores(found, run.train_labels)
            rows.append(row)
        plain = run.train(num_epochs=num_epochs, noise_factor=0.0, seed=seed)
        rows.append({"seed": seed, "latent_dim": 4, "training_noise": 0.0, **run.denoising(plain),
                     **clustering.kmeans_scores(run.codes(plain, run.mnist.train_images).numpy(), run.train_labels)})
        print(f"seed {seed}: " + ", ".join(f"d={r['latent_dim']} noise {r['training_noise']:g}: "
                                           f"{r['denoised_mse']:.4f} / {r['accuracy_hungarian']:.3f}"
                                           for r in rows if r["seed"] == seed), flush=True)
    return {"settings": {"num_epochs": num_epochs, "latent_dims": list(latent_dims), "noise_factor": NOISE_FACTOR,
                         "kmeans": "best inertia of random states 0-2, n_init 10",
                         "umap_gmm": "2-D UMAP (random state 0), Gaussian mixture, best of 5 starts"}, "rows": rows}


#: UMAP's random states the moonshot is repeated with (section 6.3's exercise 2 found one state in three merging).
MOONSHOT_UMAP_STATES = (0, 1, 2)


def moonshot(run: Runner, seeds: list[int], latent_dim: int = 16, num_epochs: int = 10) -> dict[str, Any]:
    """Notebook 6's moonshot over training seeds *and* UMAP's random states: d = 16 codes, UMAP, a mixture.

    Each row also keeps the count matrix (digit x cluster), so that a run that merges
    two digits' islands shows which two.
    """
    rows = []
    for seed in seeds:
        trained = run.train(num_epochs=num_epochs, latent_dim=latent_dim, seed=seed)
        codes = run.codes(trained, run.mnist.train_images).numpy()
        for state in MOONSHOT_UMAP_STATES:
            start = time.perf_counter()
            found = clustering.gaussian_mixture(clustering.umap_embedding(codes, random_state=state),
                                                random_state=EVAL_SEED, n_init=5)
            rows.append({"seed": seed, "umap_state": state, **clustering.cluster_scores(found, run.train_labels),
                         "counts": clustering.digit_cluster_counts(found, run.train_labels).tolist()})
            print(f"seed {seed}, UMAP state {state}: Hungarian {rows[-1]['accuracy_hungarian']:.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    return {"settings": {"latent_dim": latent_dim, "num_epochs": num_epochs, "noise_factor": NOISE_FACTOR,
                         "umap_states": list(MOONSHOT_UMAP_STATES),
                         "clustering": "2-D UMAP (n_neighbors 15, min_dist 0), Gaussian mixture, best of 5 starts",
                         "counts": "counts[digit][cluster] over the 60,000 training images"}, "rows": rows}


def padding_one_model(latent_dim: int = 4) -> tuple[nn.Module, nn.Module]:
    """Return the encoder and decoder with padding 1 on the third convolution, as notebook 2's exercise 2 asks."""
    encoder, decoder = model.Encoder(latent_dim), model.Decoder(latent_dim)
    encoder.conv[5] = nn.Conv2d(16, 32, 3, stride=2, padding=1)  # 7 -> 4
    encoder.fc[0] = nn.Linear(32 * 4 * 4, 128)
    decoder.fc[2] = nn.Linear(128, 32 * 4 * 4)
    decoder.unflatten = nn.Unflatten(1, (32, 4, 4))
    decoder.deconv[0] = nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1)  # 4 -> 7
    with torch.no_grad():
        out = decoder(encoder(torch.zeros(2, 1, 28, 28)))
    assert out.shape == (2, 1, 28, 28), out.shape
    return encoder, decoder


def matching_gaussian_factor(run: Runner, target_mse: float) -> float:
    """Return the Gaussian noise factor whose MSE on the test images equals ``target_mse`` (to 1e-4)."""
    from scipy.optimize import brentq

    return float(brentq(lambda f: baselines.mse(run.noisy(f), run.test_clean) - target_mse, 0.01, 2.0, xtol=1e-4))


def exercises(run: Runner, seeds: list[int]) -> dict[str, Any]:
    """The expected results the exercises quote, measured on the reference run (the first seed)."""
    seed = seeds[0]
    result: dict[str, Any] = {}
    # Notebook 1, exercise 3: 10 % salt and pepper against Gaussian noise of the same MSE, both median-filtered.
    pepper = noise.salt_and_pepper(run.test_clean, 0.1, generator=torch.Generator().manual_seed(EVAL_SEED))
    pepper_mse = baselines.mse(pepper, run.test_clean)
    factor = matching_gaussian_factor(run, pepper_mse)
    result["01"] = {
        "salt_and_pepper_mse": pepper_mse,
        "matching_gaussian_factor": factor,
        "gaussian_0.3_mse": baselines.mse(run.test_noisy, run.test_clean),
        "median_on_salt_and_pepper": baselines.mse(baselines.median_filter(pepper), run.test_clean),
        "median_on_matching_gaussian": baselines.mse(baselines.median_filter(run.noisy(factor)), run.test_clean),
    }
    # Notebook 2, exercise 2: the parameter count with padding 1 on the third convolution.
    encoder, decoder = padding_one_model()
    course_encoder, course_decoder = model.Encoder(4), model.Decoder(4)
    result["02"] = {
        "parameters_course": model.count_parameters(course_encoder) + model.count_parameters(course_decoder),
        "parameters_padding_1": model.count_parameters(encoder) + model.count_parameters(decoder),
        "encoder_gain": model.count_parameters(encoder) - model.count_parameters(course_encoder),
        "decoder_gain": model.count_parameters(decoder) - model.count_parameters(course_decoder),
    }
    # Notebook 3, exercise 2: a plain autoencoder (no training noise), 30 epochs, against the denoiser.
    plain, denoiser = run.train(noise_factor=0.0, seed=seed), run.train(seed=seed)
    result["03"] = {"plain": run.denoising(plain), "denoiser": run.denoising(denoiser),
                    "noisy_input_mse": baselines.mse(run.test_noisy, run.test_clean)}
    # Notebook 4, exercise 2: a Gaussian fitted to the 7s alone; the digit of each sample's nearest training code.
    train_latent = run.codes(denoiser, run.mnist.train_images)
    sevens = generation.LatentGaussian.fit(train_latent[run.mnist.train_labels == 7])
    _, index = generation.nearest_codes(train_latent, sevens.sample(SAMPLES, torch.Generator().manual_seed(seed)))
    result["04"] = {"samples": SAMPLES, "share_nearest_a_7": float(np.mean(run.train_labels[index] == 7))}
    # Notebook 5, exercises 3 and 5: 15 clusters; a Gaussian mixture instead of k-means.
    codes = train_latent.numpy()
    fifteen = clustering.best_kmeans(codes, n_clusters=15, random_states=range(10), n_init=10, progress=False)
    mixture = GaussianMixture(10, covariance_type="full", random_state=0, n_init=3).fit(codes).predict(codes)
    result["05"] = {"accuracy_mode_15_clusters": clustering.cluster_scores(fifteen.labels_, run.train_labels, 15)[
                        "accuracy_mode"],
                    "gaussian_mixture": clustering.cluster_scores(mixture, run.train_labels)}
    # Notebook 6, exercises 2 and 3: UMAP's random state; a 10-D embedding of the d = 16 codes.
    states = {}
    for state in (0, 1, 2):
        embedded = clustering.umap_embedding(codes, random_state=state)
        states[str(state)] = clustering.cluster_scores(
            clustering.gaussian_mixture(embedded, random_state=seed, n_init=5), run.train_labels)["accuracy_hungarian"]
    wide = run.codes(run.train(num_epochs=10, latent_dim=16, seed=seed), run.mnist.train_images).numpy()
    ten_d = clustering.umap_embedding(wide, n_components=10, n_neighbors=20, random_state=seed)
    result["06"] = {"umap_random_state_hungarian": states,
                    "umap_10d_wide_hungarian": clustering.cluster_scores(
                        clustering.gaussian_mixture(ten_d, random_state=seed, n_init=5),
                        run.train_labels)["accuracy_hungarian"]}
    print(result, flush=True)
    return result


def judge_runs(run: Runner, seeds: list[int], latent_dims: tuple[int, ...] = (2, 4, 8, 16)) -> dict[str, Any]:
    """Notebooks 3, 4 and 6 by the digit judge: digits kept, SSIM and readable shares, over training seeds."""
    classifier = judge.load_or_train_classifier(run.mnist, run.device, run.checkpoint_dir, progress=False)
    labels = run.mnist.test_labels
    few = slice(0, JUDGED_LEVEL_IMAGES)

    def scores(images: torch.Tensor, ssim_images: int | None = None) -> dict[str, float]:
        return metrics.image_scores(classifier, images, run.test_clean[: len(images)], labels[: len(images)],
                                  ssim_images)

    fixed: dict[str, Any] = {"classifier_test_accuracy": judge.digits_kept(classifier, run.test_clean, labels),
                             "noisy": scores(run.test_noisy), "median": scores(baselines.median_filter(run.test_noisy)),
                             "noisy_by_level": [], "median_by_level": []}
    for level in NOISE_LEVELS:
        noisy = run.noisy(level)[few]
        fixed["noisy_by_level"].append(scores(noisy))
        fixed["median_by_level"].append(scores(baselines.median_filter(noisy)))
    rows = []
    for seed in seeds:
        trained = run.train(seed=seed)
        denoised = training.denoise(trained.encoder, trained.decoder, run.test_noisy, run.device)
        through = training.denoise(trained.encoder, trained.decoder, run.test_clean, run.device)
        changed, _ = metrics.changed_digits(classifier, denoised, run.test_clean, labels)
        changed_through, _ = metrics.changed_digits(classifier, through, run.test_clean, labels)
        row: dict[str, Any] = {
            "seed": seed, "autoencoder": scores(denoised), "bottleneck": scores(through),
            "changed_share": len(changed) / len(labels),
            "changed_also_by_bottleneck": float(np.isin(changed.numpy(), changed_through.numpy()).mean())
            if len(changed) else 0.0,
            "autoencoder_by_level": [scores(training.denoise(trained.encoder, trained.decoder, run.noisy(level)[few],
                                                             run.device)) for level in NOISE_LEVELS],
        }
        train_latent = run.codes(trained, run.mnist.train_images)
        test_latent = run.codes(trained, run.test_clean)
        gaussian = generation.LatentGaussian.fit(train_latent)
        codes = {"N(0, I)": torch.randn(SAMPLES, train_latent.shape[1],
                                        generator=torch.Generator().manual_seed(EVAL_SEED)),
                 "fitted Gaussian": gaussian.sample(SAMPLES, generator=torch.Generator().manual_seed(EVAL_SEED)),
                 "real test codes": test_latent}
        row["generated"] = {name: metrics.generator_report(classifier, generation.decode(trained.decoder, z,
                                                                                         run.device), labels)
                            for name, z in codes.items()}
        rows.append(row)
        print(f"seed {seed}: kept {row['autoencoder']['digits_kept']:.3f} (median "
              f"{fixed['median']['digits_kept']:.3f}), SSIM {row['autoencoder']['ssim']:.3f}, readable N(0, I) "
              f"{row['generated']['N(0, I)']['readable_share']:.3f}", flush=True)
    sweep_rows = []
    for seed in seeds:
        for latent_dim in latent_dims:
            trained = run.train(num_epochs=10, latent_dim=latent_dim, seed=seed)
            denoised = training.denoise(trained.encoder, trained.decoder, run.test_noisy, run.device)
            sweep_rows.append({"seed": seed, "latent_dim": latent_dim, **scores(denoised)})
        print(f"sweep, seed {seed}: " + ", ".join(f"d={r['latent_dim']}: {r['digits_kept']:.3f} / {r['ssim']:.3f}"
                                                  for r in sweep_rows if r["seed"] == seed), flush=True)
    return {"settings": {"classifier_steps": judge.CLASSIFIER_STEPS, "classifier_seed": 0,
                         "readable_confidence": judge.READABLE_CONFIDENCE, "noise_factor": NOISE_FACTOR,
                         "noise_levels": NOISE_LEVELS, "images_per_level": JUDGED_LEVEL_IMAGES,
                         "samples": SAMPLES, "sweep_epochs": 10, "latent_dims": list(latent_dims)},
            "fixed": fixed, "rows": rows, "sweep": sweep_rows}


#: The weights of the KL term notebook 7 compares; 1 is the ELBO and the notebook's default.
#: beta = 0 is the control: the VAE's loss and noisy codes without the KL term.
VAE_BETAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
SILHOUETTE_IMAGES = 10_000  # training codes the clusters' separation is measured on
DENSITY_BINS = 10  # N(0, I) samples binned by their log-density under the aggregate posterior
VAE_EPOCHS = 30


def read_four_ways(classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict[str, Any]:
    """Images of known digits read four ways (``judge.readings``), and their digits kept: the right digit at any
    confidence, the first two readings together (one pass of the judge)."""
    readings = judge.readings(classifier, images, labels)
    return {"readings": readings,
            "digits_kept": readings["right and readable"] + readings["right, below the threshold"]}


def generative_row(run: Runner, trained: training.TrainedModel, classifier: nn.Module) -> dict[str, Any]:
    """What notebook 7 measures of a model, the course's or a VAE: as a denoiser, a generator and for k-means.

    ``classifier`` is the calibrated judge of notebook 3; each readable share is at its threshold.
    """
    train_latent, test_latent = run.codes(trained, run.mnist.train_images), run.codes(trained, run.test_clean)
    draw = torch.Generator().manual_seed(EVAL_SEED)
    standard = torch.randn(SAMPLES, train_latent.shape[1], generator=draw)
    # The moment-matched control: one Gaussian fitted to the training codes' mean and covariance. It reads
    # every model at its own latent scale, which N(0, I) does not for a model without a KL term.
    fitted = generation.LatentGaussian.fit(train_latent).sample(SAMPLES, generator=draw)
    report, _ = generation.sampler_report(train_latent, run.mnist.train_labels, test_latent, run.mnist.test_labels,
                                          {"N(0, I)": standard, "fitted Gaussian": fitted})
    runs = clustering.kmeans_restarts(train_latent.numpy(), random_states=range(10), n_init=10, progress=False)
    kmeans = min(runs, key=lambda km: km.inertia_)
    threshold = judge.threshold_of(classifier)
    verdict = judge.classify(classifier, generation.decode(trained.decoder, standard, run.device))
    row = {**run.denoising(trained),
           "generated": metrics.verdict_report(verdict, run.mnist.test_labels, threshold),
           "fitted_gaussian": metrics.verdict_report(
               judge.classify(classifier, generation.decode(trained.decoder, fitted, run.device)),
               run.mnist.test_labels, threshold),
           "median_distance": report["N(0, I)"]["median_distance"],
           "median_distance_fitted": report["fitted Gaussian"]["median_distance"],
           "median_distance_real": report["real test codes"]["median_distance"],
           "kmeans": clustering.cluster_scores(kmeans.labels_, run.train_labels),
           # How far apart the digits' codes sit: the silhouette of the true labels (scale-free, so it
           # compares models whose codes have different spreads; 1: tight and far apart, 0: overlapping).
           "silhouette": float(silhouette_score(train_latent.numpy(), run.train_labels,
                                                sample_size=SILHOUETTE_IMAGES, random_state=EVAL_SEED))}
    # A reference, not a ceiling: how readable the model's own reconstructions of clean test images are.
    reconstructed = training.denoise(trained.encoder, trained.decoder, run.test_clean, run.device)
    row["reconstructed"] = {**metrics.generator_report(classifier, reconstructed, run.mnist.test_labels),
                            **read_four_ways(classifier, reconstructed, run.mnist.test_labels)}
    if isinstance(trained.encoder, vae.VariationalEncoder):
        row["elbo"] = vae.elbo_report(trained.encoder, trained.decoder, run.test_clean, run.device, seed=EVAL_SEED)
        # Codes drawn from the test images' own Gaussians (the aggregate posterior), decoded: what the
        # decoder was trained on, against N(0, I), which it was only pulled toward.
        mean, logvar = vae.posterior(trained.encoder, run.test_clean, run.device)
        drawn = vae.reparameterize(mean, logvar, torch.Generator().manual_seed(EVAL_SEED))
        row["posterior_sampled"] = metrics.generator_report(
            classifier, generation.decode(trained.decoder, drawn, run.device), run.mnist.test_labels)
        # ELBO surgery: the mean KL is the information the code carries plus KL(aggregate posterior || N(0, I)).
        row["aggregate_kl"] = vae.aggregate_kl(mean, logvar, SAMPLES, torch.Generator().manual_seed(EVAL_SEED))
        row["mutual_information"] = row["elbo"]["kl"] - row["aggregate_kl"]
        # The same information estimated directly (float64, with its standard error): never above log n.
        row["index_information"], row["index_information_se"] = vae.index_information(
            mean, logvar, SAMPLES, torch.Generator().manual_seed(EVAL_SEED))
        # Which N(0, I) samples read as digits: by their log-density under the aggregate posterior, in deciles.
        density = vae.aggregate_log_density(standard, mean, logvar)
        medians, shares = generation.share_by_parts(density, verdict.readable(threshold), DENSITY_BINS)
        row["readable_by_density"] = [{"log_density": m, "readable_share": s}
                                      for m, s in zip(medians, shares, strict=True)]
    return row


def vae_runs(run: Runner, seeds: list[int]) -> dict[str, Any]:
    """Notebook 7: the VAE at several betas (0 the control) against the course's model, over training seeds."""
    the_judge = judge.load_or_train_judge(run.mnist, run.device, run.checkpoint_dir, progress=False)
    rows = []
    for seed in seeds:
        start = time.perf_counter()
        row: dict[str, Any] = {"seed": seed, "autoencoder": generative_row(run, run.train(seed=seed), the_judge),
                               "vae": {}}
        for beta in VAE_BETAS:
            config = vae.VAEConfig(num_epochs=VAE_EPOCHS, seed=seed, beta=beta)
            trained = training.train_or_load(config, run.mnist, run.device, checkpoint_dir=run.checkpoint_dir,
                                             progress=False)
            row["vae"][f"{beta:g}"] = {"train_loss": trained.history["train_loss"][-1],
                                       **generative_row(run, trained, the_judge)}
        rows.append(row)
        print(f"seed {seed}: readable N(0, I): autoencoder "
              f"{row['autoencoder']['generated']['readable_share']:.3f}, VAE " + ", ".join(
                  f"beta {beta}: {values['generated']['readable_share']:.3f} (MSE {values['denoised_mse']:.4f}, "
                  f"k-means {values['kmeans']['accuracy_mode']:.3f}, KL(q||p) {values['aggregate_kl']:.2f})"
                  for beta, values in row["vae"].items())
              + f" ({time.perf_counter() - start:.0f} s)", flush=True)
    return {"settings": {"num_epochs": VAE_EPOCHS, "betas": list(VAE_BETAS), "noise_factor": NOISE_FACTOR,
                         "latent_dim": 4, "lr": 1e-3, "batch_size": 256, "samples": SAMPLES,
                         "judge_steps": judge.judge_steps(run.mnist), "judge_threshold": float(the_judge.threshold),
                         "judge_digits": "varied",
                         "kmeans": "best inertia of 10 x n_init 10", "silhouette_images": SILHOUETTE_IMAGES,
                         "density_bins": DENSITY_BINS},
            "rows": rows}


def prior_codes(train_latent: torch.Tensor, mixture: generation.LatentMixture, count: int, draw: torch.Generator,
                seed: int) -> dict[str, torch.Tensor]:
    """``count`` codes from each prior of one model, drawn in this order from ``draw``: N(0, I), one Gaussian
    fitted to ``train_latent``, a mixture of 10 fitted to it, and ``mixture`` (the size held-out codes chose)."""
    return {"N(0, I)": torch.randn(count, train_latent.shape[1], generator=draw),
            "fitted Gaussian": generation.LatentGaussian.fit(train_latent).sample(count, generator=draw),
            "mixture of 10": generation.LatentMixture.fit(train_latent, 10, seed=seed).sample(count, draw),
            "mixture, chosen": mixture.sample(count, generator=draw)}


def course_models(run: Runner, seed: int) -> dict[str, training.TrainedModel]:
    """The two models notebooks 4 and 7 sample, for ``seed``: the course's autoencoder and the VAE at beta 1."""
    return {"autoencoder": run.train(seed=seed),
            "vae": training.train_or_load(vae.VAEConfig(num_epochs=VAE_EPOCHS, seed=seed), run.mnist, run.device,
                                          checkpoint_dir=run.checkpoint_dir, progress=False)}


def rows_of_both_models(run: Runner, seeds: list[int],
                        measure: Callable[[training.TrainedModel, int], dict[str, Any]],
                        summary: Callable[[dict[str, Any]], str]) -> list[dict[str, Any]]:
    """One row a seed: ``measure`` of each of the ``course_models``, with one line of progress (``summary`` of
    each sampler's figures)."""
    rows = []
    for seed in seeds:
        start = time.perf_counter()
        row = {"seed": seed, **{name: measure(trained, seed) for name, trained in course_models(run, seed).items()}}
        rows.append(row)
        print(f"seed {seed} ({time.perf_counter() - start:.0f} s): " + "; ".join(
            f"{model_name} {name}: {summary(values)}" for model_name in ("autoencoder", "vae")
            for name, values in row[model_name]["samplers"].items()), flush=True)
    return rows


def samplers_of(run: Runner, trained: training.TrainedModel, reference: metrics.Reference,
                seed: int) -> dict[str, Any]:
    """Notebooks 4 and 7: every sampler of one model, measured as the field measures a generator.

    N(0, I); one fitted Gaussian; mixtures fitted to the training codes after training
    (10 components, and the number held-out codes choose); the decoded test codes (the
    model's reconstructions); and, for a VAE, codes drawn from each test image's own
    posterior. Codes are the means for a VAE.
    """
    train_latent, test_latent = run.codes(trained, run.mnist.train_images), run.codes(trained, run.test_clean)
    draw = torch.Generator().manual_seed(EVAL_SEED)
    start = time.perf_counter()
    chosen, scores = generation.choose_components(train_latent, seed=seed)
    choose_s = time.perf_counter() - start
    start = time.perf_counter()
    mixture = generation.LatentMixture.fit(train_latent, chosen, seed=seed)
    fit_s = time.perf_counter() - start
    codes = {**prior_codes(train_latent, mixture, SAMPLES, draw, seed), "decoded test codes": test_latent}
    if isinstance(trained.encoder, vae.VariationalEncoder):
        mean, logvar = vae.posterior(trained.encoder, run.test_clean, run.device)
        codes["own posteriors"] = vae.reparameterize(mean, logvar, draw)
    decoded = {name: generation.decode(trained.decoder, z, run.device) for name, z in codes.items()}
    samplers = {name: reference.measure(images) for name, images in decoded.items()}
    labels = run.mnist.test_labels
    for name in LABELLED_SAMPLERS & decoded.keys():  # decoded from test images: their true digits are known
        samplers[name].update(read_four_ways(reference.classifier, decoded[name], labels))
    midpoints = negatives.decoded_midpoints(trained.encoder, trained.decoder, run.test_clean, run.mnist.test_labels,
                                            judge.TEST_NEGATIVES, torch.Generator().manual_seed(EVAL_SEED),
                                            run.device)
    return {"samplers": samplers,
            "against_reconstructions": against_reconstructions(reference.classifier, decoded, labels),
            "components": chosen,
            "component_scores": {f"{k}": v for k, v in scores.items()},
            "choose_seconds": choose_s, "fit_seconds": fit_s,
            "decoded_midpoints_pass": judge.readable_share(reference.classifier, midpoints)}


#: The samplers decoded from the test images themselves, whose true digits are known.
LABELLED_SAMPLERS = {"decoded test codes", "own posteriors"}
#: The seed of the split of the test images into the reconstructions that are the reference and those that floor it.
RECONSTRUCTION_SPLIT_SEED = 1


def against_reconstructions(classifier: nn.Module, decoded: dict[str, torch.Tensor],
                            labels: torch.Tensor) -> dict[str, dict[str, float]]:
    """Every sampler against the model's own reconstructions, in the judge's features: the prior isolated.

    The decoded test codes are split in two halves stratified by digit (``labels``); one
    half is the reference, and the other half's scores against it are the floor (what a
    prior that drew codes just like the real ones would score). Each sampler's first
    ``metrics.PRDC_IMAGES`` images are measured; those decoded from the test images
    themselves (``LABELLED_SAMPLERS``) only on the other half, so no image meets its twin.
    """
    other, kept = data.stratified_halves(labels, RECONSTRUCTION_SPLIT_SEED)
    reference = metrics.features(classifier, decoded["decoded test codes"][kept])[: metrics.PRDC_IMAGES]
    found = {}
    for name, images in decoded.items():
        chosen = images[other] if name in LABELLED_SAMPLERS else images
        key = results.RECONSTRUCTION_FLOOR if name == "decoded test codes" else name
        found[key] = metrics.feature_report(reference, metrics.features(classifier, chosen)[: metrics.PRDC_IMAGES])
    return found


def generation_runs(run: Runner, seeds: list[int]) -> dict[str, Any]:
    """Notebooks 3, 4 and 7: the calibrated judge, and every sampler of the autoencoder and the VAE, over seeds."""
    the_judge = judge.load_or_train_judge(run.mnist, run.device, run.checkpoint_dir, progress=False)
    labels = run.mnist.test_labels
    reference = metrics.Reference.make(the_judge, run.mnist.train_images, run.test_clean, labels)
    negative_sets = judge.hard_negatives(run.test_clean, labels)
    fixed: dict[str, Any] = {
        "judge": {"temperature": float(the_judge.temperature), "threshold": float(the_judge.threshold),
                  "digits_kept": judge.digits_kept(the_judge, run.test_clean, labels),
                  "pass": judge.pass_rates(the_judge, {"clean test digits": run.test_clean, **negative_sets})},
        "floors": {"real test images": reference.measure(run.test_clean)},
    }
    rows = rows_of_both_models(
        run, seeds, lambda trained, seed: samplers_of(run, trained, reference, seed),
        lambda values: (f"{values['readable_share']:.3f} readable, FD {values['frechet_distance']:.1f}, "
                        f"recall {values['recall']:.2f}"))
    return {"settings": {"judge_steps": judge.judge_steps(run.mnist), "judge_seed": 0,
                         "keep_clean_share": judge.KEEP_CLEAN_SHARE,
                         "test_negatives": judge.TEST_NEGATIVES, "test_negatives_seed": judge.TEST_NEGATIVES_SEED,
                         "samples": SAMPLES, "prdc_images": metrics.PRDC_IMAGES, "nearest_k": metrics.NEAREST_K,
                         "thresholds": list(metrics.THRESHOLDS),
                         "mixture_candidates": list(generation.MIXTURE_COMPONENTS),
                         "mixture_held_out": generation.MIXTURE_HELD_OUT, "autoencoder_epochs": 30,
                         "vae_epochs": VAE_EPOCHS, "vae_beta": 1.0, "latent_dim": 4, "noise_factor": NOISE_FACTOR},
            "fixed": fixed, "rows": rows}


def image_runs(run: Runner, seeds: list[int]) -> dict[str, Any]:
    """Notebook 3: the autoencoder against the median filter image by image, for the test images' part of the error.

    Each seed's model and the median filter denoise the same noisy test images; the
    per-image differences (autoencoder minus filter) of the MSE, of the digit kept (1 or
    0, by notebook 3's reader) and of SSIM give each seed's mean and, averaged over the
    seeds, their spread over the images: at the course's noise (section 3.6) and at each
    noise level of section 3.7 (all 10,000 test images at each).
    """
    from dae_utils.baselines import median_filter

    reader = judge.load_or_train_classifier(run.mnist, run.device, run.checkpoint_dir, progress=False)

    def per_image(images: torch.Tensor) -> dict[str, torch.Tensor]:  # each image's MSE, digit kept (1 or 0), SSIM
        return {"mse": ((images - run.test_clean) ** 2).mean(dim=(1, 2, 3)).double(),
                "digits_kept": (judge.classify(reader, images).digits == run.mnist.test_labels).double(),
                "ssim": torch.from_numpy(metrics.ssim_each(images, run.test_clean)).double()}

    # The course's noise is one of the levels (``run.test_noisy`` is ``run.noisy(NOISE_FACTOR)``): measured once.
    inputs = {level: run.noisy(level) for level in NOISE_LEVELS}
    filtered = {level: per_image(median_filter(noisy)) for level, noisy in inputs.items()}
    summed = {level: {key: torch.zeros(len(run.test_clean), dtype=torch.float64) for key in scores}
              for level, scores in filtered.items()}
    rows = []
    for seed in seeds:
        trained = run.train(seed=seed)
        row: dict[str, Any] = {"seed": seed, "by_level": []}
        for level, noisy in inputs.items():
            scores = per_image(training.denoise(trained.encoder, trained.decoder, noisy, run.device))
            differences = {key: values - filtered[level][key] for key, values in scores.items()}
            for key, values in differences.items():
                summed[level][key] += values
            found = {f"{key}_difference": float(values.mean()) for key, values in differences.items()} | {
                f"{key}_difference_sd": float(values.std()) for key, values in differences.items()}
            row["by_level"].append({"noise_level": level, **found})
            if level == NOISE_FACTOR:
                row.update(found)
        rows.append(row)
        print(f"seed {seed}: MSE difference {row['mse_difference']:.5f} (sd over images "
              f"{row['mse_difference_sd']:.5f}), SSIM {row['ssim_difference']:.4f}; at noise 0.8 MSE "
              f"{row['by_level'][-1]['mse_difference']:.5f}", flush=True)

    def spread_over_images(level: float) -> dict[str, float]:  # sd over images of the seed-averaged differences
        return {f"{key}_image_sd": float((values / len(seeds)).std()) for key, values in summed[level].items()}

    def median_means(level: float) -> dict[str, float]:
        return {key: float(values.mean()) for key, values in filtered[level].items()}

    return {"settings": {"noise_factor": NOISE_FACTOR, "noise_seed": EVAL_SEED, "autoencoder_epochs": 30,
                         "median_size": 3, "noise_levels": NOISE_LEVELS},
            "fixed": {"images": len(run.test_clean), "median": median_means(NOISE_FACTOR),
                      **spread_over_images(NOISE_FACTOR),
                      "by_level": [{"noise_level": level, "median": median_means(level), **spread_over_images(level)}
                                   for level in NOISE_LEVELS]},
            "rows": rows}


#: Candidates beyond the course's, to see where the held-out likelihood of a larger mixture stops rising.
LARGER_MIXTURES = (150, 200, 300)


def codes_of(run: Runner, trained: training.TrainedModel, seed: int) -> dict[str, Any]:
    """Notebooks 4 and 7: every sampler of one model measured in its latent space, against held-out test codes.

    The test codes are split at random into two halves: half B is the reference, half
    A is a sampler of real codes (the floor: what a perfect prior would score with this
    many codes). "training codes" is a prior that copies the training set (what
    novelty must catch). Each sampler gives as many codes as a half; the mixture's
    number of components is chosen as in ``generation`` (``choose_components``), and the
    held-out likelihood of larger mixtures is recorded beside it.
    """
    train_latent, test_latent = run.codes(trained, run.mnist.train_images), run.codes(trained, run.test_clean)
    order = torch.randperm(len(test_latent), generator=torch.Generator().manual_seed(EVAL_SEED))
    half = len(test_latent) // 2
    half_a, half_b = order[:half], order[half: 2 * half]
    draw = torch.Generator().manual_seed(EVAL_SEED)
    start = time.perf_counter()
    chosen, scores = generation.choose_components(train_latent, seed=seed)
    _, larger = generation.choose_components(train_latent, LARGER_MIXTURES, seed=seed)  # the same held-out split
    choose_s = time.perf_counter() - start
    mixture = generation.LatentMixture.fit(train_latent, chosen, seed=seed)
    codes = {**prior_codes(train_latent, mixture, half, draw, seed),
             "training codes": train_latent[torch.randperm(len(train_latent), generator=draw)[:half]],
             "test codes, other half": test_latent[half_a]}
    if isinstance(trained.encoder, vae.VariationalEncoder):
        mean, logvar = vae.posterior(trained.encoder, run.test_clean[half_a], run.device)
        codes["own posteriors"] = vae.reparameterize(mean, logvar, draw)
    return {"samplers": {name: metrics.code_report(z, test_latent[half_b], train_latent) for name, z in codes.items()},
            "components": chosen, "component_scores": {f"{k}": v for k, v in {**scores, **larger}.items()},
            "choose_seconds": choose_s}


def latent_runs(run: Runner, seeds: list[int]) -> dict[str, Any]:
    """Notebooks 4 and 7: the samplers of the autoencoder and the VAE (beta 1) in latent space, over seeds."""
    rows = rows_of_both_models(
        run, seeds, lambda trained, seed: codes_of(run, trained, seed),
        lambda values: (f"recall {values['recall']:.2f}, coverage {values['coverage']:.2f}, novelty "
                        f"{values['novelty']:.2f}"))
    return {"settings": {"codes_per_sampler": len(run.test_clean) // 2, "nearest_k": metrics.NEAREST_K,
                         "split_seed": EVAL_SEED, "mixture_candidates": list(generation.MIXTURE_COMPONENTS),
                         "larger_mixtures": list(LARGER_MIXTURES), "mixture_held_out": generation.MIXTURE_HELD_OUT,
                         "autoencoder_epochs": 30, "vae_epochs": VAE_EPOCHS, "vae_beta": 1.0, "latent_dim": 4,
                         "noise_factor": NOISE_FACTOR},
            "rows": rows}


EXPERIMENTS: dict[str, tuple[Callable[[Runner, list[int]], dict[str, Any]], list[int]]] = {
    "course": (course, [0, 1, 2, 3, 4]),
    "batchnorm": (batchnorm_runs, [0, 1, 2, 3, 4]),
    "affine": (affine, [0, 1, 2, 3, 4]),
    "sweep": (sweep, [0, 1, 2, 3, 4]),
    "judge": (judge_runs, [0, 1, 2, 3, 4]),
    "vae": (vae_runs, [0, 1, 2, 3, 4]),
    "moonshot": (moonshot, [0, 1, 2, 3, 4]),
    "generation": (generation_runs, [0, 1, 2, 3, 4]),
    "latent": (latent_runs, [0, 1, 2, 3, 4]),
    "images": (image_runs, [0, 1, 2, 3, 4]),
    "exercises": (exercises, [0]),
}


#: The lists of one entry per seed (and setting) that a results file can hold.
PER_SEED = ("rows", "sweep")


def add_seeds(earlier: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """Return the results file ``earlier`` with the seeds of ``later`` added: their rows, and who made them.

    The settings and the fixed figures (no seed: the noisy input, the median filter)
    must agree, or the seeds were not run the same way and are refused. The file keeps
    its first provenance; each addition records its own under ``added``.
    """
    for key in ("settings", "fixed"):
        if earlier.get(key) != later.get(key):
            raise SystemExit(f"the new seeds' {key} differ from those in {earlier['experiment']}.json, so they "
                             "were not run the same way; make the whole file again with --seeds instead.")
    merged = dict(earlier)
    merged["seeds"] = [*earlier["seeds"], *later["seeds"]]
    for key in PER_SEED:
        if key in earlier:
            merged[key] = [*earlier[key], *later[key]]
    merged["added"] = [*earlier.get("added", []), {"seeds": later["seeds"], "provenance": later["provenance"]}]
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="+", choices=[*EXPERIMENTS, "all"])
    parser.add_argument("--data-dir", help="folder with MNIST/raw (default: what load_mnist finds)")
    parser.add_argument("--seeds", type=int, nargs="+", help="training seeds (default: each experiment's own)")
    parser.add_argument("--checkpoint-dir", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--output-dir", type=Path, default=results.RESULTS_DIR,
                        help="where the results files go (default: benchmarks/results)")
    parser.add_argument("--add-seeds", type=int, nargs="+", metavar="SEED",
                        help="run only these seeds and add their rows to the results file already there")
    args = parser.parse_args()
    if args.add_seeds and args.seeds:
        parser.error("give either --seeds (a new file) or --add-seeds (more seeds for the file there), not both")
    names = list(EXPERIMENTS) if "all" in args.experiments else list(dict.fromkeys(args.experiments))
    run = Runner(args.data_dir, args.checkpoint_dir)
    # The code that runs is the code loaded now: record the commit and its state before the hour of work,
    # not after it, when the working tree may have moved on.
    made = results.provenance(results.command_line(), run.data_line)
    for name in names:
        function, default_seeds = EXPERIMENTS[name]
        seeds = args.add_seeds or args.seeds or default_seeds
        earlier = results.load_results(name, args.output_dir) if args.add_seeds else None
        if earlier is not None and set(seeds) & set(earlier["seeds"]):
            raise SystemExit(f"{name}.json already has seeds {sorted(set(seeds) & set(earlier['seeds']))}; "
                             "--add-seeds takes new seeds only.")
        start = time.perf_counter()
        print(f"== {name}, seeds {seeds}", flush=True)
        found = function(run, seeds)
        payload = {"experiment": name, "seeds": seeds, "provenance": made, **rounded(found)}
        if earlier is not None:
            payload = add_seeds(earlier, payload)
        path = results.write_results(name, payload, args.output_dir)
        print(f"== {name} done in {time.perf_counter() - start:.0f} s -> {path}", flush=True)


if __name__ == "__main__":
    main()
