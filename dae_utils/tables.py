"""What each notebook shows from its results files: one function per section's table (printed) or figure.

A notebook loads its results file (``results.load``) and calls the function named
for what it shows; the verdicts come from ``evidence`` and are worded by it, each
judged within the family of comparisons that answers one question (``evidence.Family``,
Holm's rule). The
notebooks keep the lesson's own comparisons (notebook 5's interval by hand, a
student's run against the reference) and leave the bookkeeping here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from scipy import stats

from . import evidence, results
from .batchnorm import last_crossing
from .results import Reference


def _header(reference: Reference) -> None:
    print(reference)


# Notebook 1 -------------------------------------------------------------------------------------------------

def noise_exercises(black: float) -> None:
    """Notebook 1's exercises: the clamped noise's MSE by hand, salt and pepper, and the formula's error.

    ``black`` is the share of exactly black pixels in section 1.2's test images.
    """
    from .noise import expected_clamped

    reference = results.load("exercises")
    _header(reference)
    pepper = reference.value("01")
    print(f"exercise 2: {black:.3f} x s^2 / 2 + {1 - black:.3f} x s^2 at s = 0.3: "
          f"{black * 0.3**2 / 2 + (1 - black) * 0.3**2:.4f}")
    print(f"exercise 5: MSE of 10 % salt and pepper {pepper['salt_and_pepper_mse']:.4f}, the same as Gaussian noise "
          f"at {pepper['matching_gaussian_factor']:.3f} (at 0.3: {pepper['gaussian_0.3_mse']:.4f}); after the median "
          f"filter: {pepper['median_on_salt_and_pepper']:.4f} and {pepper['median_on_matching_gaussian']:.4f}")
    factors = np.linspace(0.01, 1.0, 100)
    off = np.array([f / (2 * np.pi) ** 0.5 - expected_clamped(0.0, f) for f in factors])  # formula - exact
    print(f"exercise 3: the formula is off by more than 0.01 from f = {factors[np.argmax(off > 0.01)]:.2f} "
          f"(too high); at f = 1 by {off[-1]:.3f}")


# Notebook 2 -------------------------------------------------------------------------------------------------

def _affine_family(reference: Reference) -> evidence.Family:
    """Gamma and beta against none, by test MSE, at each training budget: one family."""
    family = evidence.Family("test MSE with gamma and beta against without, at each budget")
    for budget in reference.settings["budgets"]:
        family.add(f"   {budget:>2} epochs", reference.compare(results.WITH_AFFINE, results.WITHOUT_AFFINE,
                                                                  "test_loss", num_epochs=budget))
    return family


def affine(reference: Reference) -> None:
    """Section 2.5: test MSE with and without gamma and beta at each budget, the ReLU's cut, and the verdicts."""
    _header(reference)
    arms = (results.WITH_AFFINE, results.WITHOUT_AFFINE)
    for budget in reference.settings["budgets"]:
        with_ab, without = (reference.spread(arm, "test_loss", num_epochs=budget) for arm in arms)
        print(f"{budget} epochs: test MSE with gamma and beta {with_ab:.4f}, without {without:.4f}")
        cut = [reference.spread(arm, "relu_cut_share", num_epochs=budget) for arm in arms]
        print(f"   cut off by the ReLU after batch norm: with gamma and beta {cut[0]:.0%}, without {cut[1]:.0%}")
    print(_affine_family(reference))
    for budget in reference.settings["budgets"]:  # the direction, assuming nothing of the differences' shape
        with_ab, without = (reference.per_seed(arm, "test_loss", num_epochs=budget) for arm in arms)
        lower = sum(a < b for a, b in zip(with_ab, without, strict=True))
        print(f"   {budget:>2} epochs: with gamma and beta lower in {lower} of {len(with_ab)} seeds; exact sign-flip "
              f"test, p = {evidence.sign_flip_test(with_ab, without):.3f}")


def batchnorm_runs(reference: Reference) -> None:
    """Section 2.8: test MSE with and without batch norm at each learning rate, crossings and input drift."""
    arms = (results.WITH_BN, results.WITHOUT_BN)
    print(f"Reference over seeds {reference.seeds}, {reference.settings['steps']} steps each: "
          "test MSE, mean (lowest to highest)")
    family = evidence.Family("test MSE with batch norm against without, at each learning rate")
    for lr in reference.settings["lrs"]:
        with_bn, without = (reference.per_seed(arm, "test_loss", lr=lr) for arm in arms)
        print(f"lr {lr:g}: with batch norm {evidence.spread(with_bn):.4f}, without {evidence.spread(without):.4f}; "
              f"{1 - np.mean(with_bn) / np.mean(without):.0%} lower on average")
        family.add(f"   lr {lr:g}", evidence.compare(with_bn, without))
        crossings = [last_crossing(a, b) for a, b in zip(*(reference.per_seed(arm, "loss", lr=lr) for arm in arms),
                                                         strict=True)]
        print(f"   with batch norm below without from step: {crossings} (None: not at the end)")
    print(family)
    print("How far the watched layer's input moved, first 20 steps to last 20 (range over channels and seeds):")
    for arm in arms:
        for lr in reference.settings["lrs"]:
            shift = [v for seed in reference.per_seed(arm, "mean_shift", lr=lr) for v in seed]
            ratio = [v for seed in reference.per_seed(arm, "variance_ratio", lr=lr) for v in seed]
            print(f"   {arm:<20} lr {lr:<6g} mean moved {min(shift):.2f} to {max(shift):.2f}, "
                  f"variance x {min(ratio):.1f} to x {max(ratio):.1f}")


def failed_runs(reference: Reference, blank: float, average: float) -> None:
    """Section 2.8: each seed's test MSE at the large learning rate, the failed runs (paired: McNemar), and the
    direction by tests that assume no normality (a sign-flip permutation test, Wilcoxon).

    A run fails when it does no better than ``average``, the test MSE of the mean training image;
    ``blank`` is that of an all-black output, for scale.
    """
    large = max(reference.settings["lrs"])
    arms = (results.WITH_BN, results.WITHOUT_BN)
    print(f"lr {large:g}, test MSE per seed {reference.seeds} (an all-black output scores {blank:.4f}, "
          f"the mean training image {average:.4f}):")
    for arm in arms:
        print(f"   {arm:<19}" + " ".join(f"{v:.4f}" for v in reference.per_seed(arm, "test_loss", lr=large)))
    with_bn, without = (reference.per_seed(arm, "test_loss", lr=large) for arm in arms)
    failed_with, failed_without = ([v >= average for v in runs] for runs in (with_bn, without))
    only_without = sum(b and not a for a, b in zip(failed_with, failed_without, strict=True))
    only_with = sum(a and not b for a, b in zip(failed_with, failed_without, strict=True))
    n = len(reference.seeds)
    print(f"runs no better than the mean training image: {sum(failed_with)} of {n} with batch norm, "
          f"{sum(failed_without)} of {n} without; paired by seed, failed in one arm only: {only_without} seeds "
          f"without batch norm, {only_with} with; exact McNemar test (two-sided) "
          f"p = {evidence.mcnemar_exact(only_without, only_with):.2f}")
    closest = min((v - average for v, failed in zip(without + with_bn, failed_without + failed_with, strict=True)
                   if failed), default=None)
    if closest is not None:
        print(f"the failed run nearest the threshold lies {closest:.4f} above it")
    lower = sum(a < b for a, b in zip(with_bn, without, strict=True))
    print(f"the paired differences, assuming nothing of their shape: batch norm lower in {lower} of {n} seeds; "
          f"exact sign-flip test of their mean over all {2 ** n:,} sign patterns, p = "
          f"{evidence.sign_flip_test(with_bn, without):.3f}; Wilcoxon signed-rank test, p = "
          f"{stats.wilcoxon(with_bn, without).pvalue:.3f}")


def batchnorm_exercises(affine_reference: Reference, bn_reference: Reference) -> None:
    """Notebook 2's exercises 4, 7 and 8: parameter counts, gamma and beta at 10 epochs, injected shift."""
    exercise_reference = results.load("exercises")
    _header(exercise_reference)
    counts = exercise_reference.value("02")
    print(f"exercise 4: encoder +{counts['encoder_gain']:,}, decoder +{counts['decoder_gain']:,}, "
          f"in all +{counts['encoder_gain'] + counts['decoder_gain']:,}: "
          f"{counts['parameters_course']:,} -> {counts['parameters_padding_1']:,} parameters")
    with_ab, without = (affine_reference.per_seed(arm, "test_loss", num_epochs=10)
                        for arm in (results.WITH_AFFINE, results.WITHOUT_AFFINE))
    print(f"exercise 7 (seeds {affine_reference.seeds}, 10 epochs): with gamma and beta "
          + ", ".join(f"{v:.4f}" for v in with_ab) + "; without " + ", ".join(f"{v:.4f}" for v in without))
    print("   " + next(line.strip() for line in str(_affine_family(affine_reference)).splitlines()
                       if line.strip().startswith("10 epochs")))  # section 2.5's family, its 10-epoch verdict
    print(f"exercise 8 (seeds {bn_reference.seeds}, {bn_reference.settings['steps']} steps): test MSE")
    order = (results.WITH_BN, results.SHIFT_AFTER_IT, results.SHIFT_AFTER_EACH, results.SMALL_SHIFT_AFTER_EACH,
             results.WITHOUT_BN)
    family = evidence.Family("   exercise 8's comparisons, both learning rates")
    for lr in bn_reference.settings["lrs"]:
        by_variant = {v: bn_reference.per_seed(v, "test_loss", lr=lr) for v in order}
        print(f"   lr {lr:g}: " + "; ".join(f"{v} {evidence.spread(losses):.4f}" for v, losses in by_variant.items()))
        for shifted, label in ((results.SHIFT_AFTER_IT, "the encoder's layer"),
                               (results.SHIFT_AFTER_EACH, "all three layers")):
            family.add(f"   lr {lr:<5g} shift after {label:<19} vs batch norm alone",
                       evidence.compare(by_variant[shifted], by_variant[results.WITH_BN]))
            family.add(f"   lr {lr:<5g} shift after {label:<19} vs no batch norm   ",
                       evidence.compare(by_variant[shifted], by_variant[results.WITHOUT_BN]))
        family.add(f"   lr {lr:<5g} training MSE of the last 50 steps (the shift on), all three layers vs batch norm "
                   "alone", bn_reference.compare(results.SHIFT_AFTER_EACH, results.WITH_BN, "last_50_mean", lr=lr))
        small = by_variant[results.SMALL_SHIFT_AFTER_EACH]
        family.add(f"   lr {lr:<5g} a tenth of the dose after all three layers vs batch norm alone",
                   evidence.compare(small, by_variant[results.WITH_BN]))
        family.add(f"   lr {lr:<5g} a tenth of the dose after all three layers vs the full dose   ",
                   evidence.compare(small, by_variant[results.SHIFT_AFTER_EACH]))
    print(family)


# Notebook 3 -------------------------------------------------------------------------------------------------

def first_epoch_by_seed(reference: Reference, this_run: float) -> None:
    """Section 3.3: each seed's losses after the first epoch and its final test MSE, beside this run's."""
    _header(reference)
    print(f"{'seed':>5}{'epoch 1: train (train mode)':>29}{'train (eval mode)':>19}{'test':>8}{'epoch 30: test':>16}")
    for seed, first, final in zip(reference.seeds, reference.per_seed(None, "epoch_1"),
                                  reference.per_seed(None, "test_loss"), strict=True):
        print(f"{seed:>5}{first['train_loss']:>29.4f}{first['train_eval_loss']:>19.4f}{first['test_loss']:>8.4f}"
              f"{final:>16.4f}")
    print(f"final test MSE over these seeds: {reference.spread(None, 'test_loss'):.4f}; "
          f"this notebook's run: {this_run:.4f}")


#: ``judge.readings``'s four shares, and the heading each has in a table.
READINGS = {"right and readable": "readable", "right, below the threshold": "right, unsure",
            "another digit": "another digit", "not a digit": "not a digit"}


def _readings_table(rows: dict[str, dict[str, float]], label: str = "", label_width: int = 30) -> str:
    """One line a set of right digits, its four ``READINGS`` side by side."""
    lines = [f"{label:<{label_width}}" + "".join(f"{heading:>15}" for heading in READINGS.values())]
    lines += [f"{name:<{label_width}}" + "".join(f"{split[key]:>15.1%}" for key in READINGS)
              for name, split in rows.items()]
    return "\n".join(lines)


def judge_probe(reference: Reference) -> None:
    """Section 3.5: what the judge makes of right digits drawn unusually, beside one trained on written digits only;
    its threshold's check on stratified and on ordered halves; P(digit)'s calibration; a family of negatives held
    out, beside the decoded midpoints."""
    _header(reference)
    judges = {"the course's judge, trained on varied digits": reference.fixed["course judge"],
              "trained on written digits only": reference.fixed["written digits only"]}
    for name, found in judges.items():
        print(f"\n{name} (threshold {found['threshold']:.3f}): right digits, read four ways (readable: the right "
              "digit at the threshold or above; unsure: the right digit, below it)")
        print(_readings_table({"clean test digits": found["clean test digits"], **found["unusual digits"],
                               **{f"reconstructions, {model}": split
                                  for model, split in found["reconstructions"].items()}}))
        print("hard negatives read as a digit: " + ", ".join(f"{kind} {share:.1%}"
                                                             for kind, share in found["hard negatives pass"].items()))
    course = reference.fixed["course judge"]
    check = course["threshold check"]

    def share(entry: dict) -> str:
        return f"{entry['share']:.1%} (95 % interval {entry['low']:.1%} to {entry['high']:.1%})"

    print(f"\nthe course's threshold {course['threshold']:.3f}, clean test digits passed: the stratified half that "
          f"chose it {share(check['stratified half (chooses)'])}, the other {share(check['stratified half (checks)'])}"
          f"; the ordered test set's first half {share(check['first half'])}, its second "
          f"{share(check['second half'])}")
    for name, found in judges.items():
        calibration = found["calibration"]
        brier, nll = calibration["brier"], calibration["nll"]
        print(f"P(digit), {name}, on {calibration['images']['digits']:,} test digits and "
              f"{calibration['images']['negatives']:,} blends, halves and strokes: Brier score {brier['value']:.4f} "
              f"(95 % bootstrap interval {brier['low']:.4f} to {brier['high']:.4f}), negative log-likelihood "
              f"{nll['value']:.4f} ({nll['low']:.4f} to {nll['high']:.4f})")
        bins = calibration["reliability"]
        print("   ten equal-mass bins, predicted -> observed: " + ", ".join(
            f"{p:.3f} -> {o:.3f}" for p, o in zip(bins["predicted"], bins["observed"], strict=True)))
    unseen = reference.fixed["without strokes"]["hard negatives pass"]
    print(f"\na judge trained without strokes among its negatives reads {unseen['strokes']:.1%} of the strokes as a "
          f"digit (the course's judge: {course['hard negatives pass']['strokes']:.1%}); the decoded midpoints, a "
          f"family no judge trains on: {unseen['decoded midpoints']:.1%} to it, "
          f"{course['hard negatives pass']['decoded midpoints']:.1%} to the course's judge, "
          f"{judges['trained on written digits only']['hard negatives pass']['decoded midpoints']:.1%} to the one "
          "trained on written digits")


def reconstruction_readings(reference: Reference) -> None:
    """Section 7.4: seed 0's reconstructions read four ways by the course's judge and by one trained on written
    digits only (notebook 3's probe)."""
    _header(reference)
    print(_readings_table({f"{model}, {name}": split
                           for name, key in (("the course's judge", "course judge"),
                                             ("written digits only", "written digits only"))
                           for model, split in reference.fixed[key]["reconstructions"].items()},
                          "reconstructions of the test images", 44))


def median_filter_mse(reference: Reference, level: float = 0.3) -> float:
    """The 3 x 3 median filter's test MSE at noise ``level``, from the course's results (it has no seed)."""
    return reference.fixed["median_mse"][reference.settings["noise_levels"].index(level)]


def denoising_against_median(course_reference: Reference, judge_reference: Reference) -> None:
    """Section 3.6: the autoencoder, its bottleneck and the median filter by MSE, digits kept and SSIM."""
    median = median_filter_mse(course_reference)
    autoencoder = course_reference.per_seed(None, "denoised_mse")
    bottleneck = course_reference.per_seed(None, "bottleneck_mse")
    print(f"MSE over seeds {course_reference.seeds} (test noise 0.3): autoencoder {evidence.spread(autoencoder):.4f}, "
          f"bottleneck {evidence.spread(bottleneck):.4f}, 3 x 3 median filter {median:.4f} (no seed)")
    family = evidence.Family("the autoencoder against the median filter, by MSE, digits kept and SSIM")
    family.add("  MSE", evidence.compare(autoencoder, median))
    print("the bottleneck's share of the autoencoder's error: "
          f"{evidence.spread([b / a for a, b in zip(autoencoder, bottleneck, strict=True)]):.0%}")
    print("\n" + str(judge_reference))
    for key, fmt in (("digits_kept", ".1%"), ("ssim", ".3f")):
        autoencoder_at = judge_reference.per_seed(None, f"autoencoder.{key}")
        median_at, noisy_at = judge_reference.fixed["median"][key], judge_reference.fixed["noisy"][key]
        print(f"{key.replace('_', ' ')} over seeds {judge_reference.seeds}: autoencoder "
              f"{format(evidence.spread(autoencoder_at), fmt)}, bottleneck "
              f"{format(judge_reference.spread(None, f'bottleneck.{key}'), fmt)}, median filter "
              f"{median_at:{fmt}}, noisy input {noisy_at:{fmt}}")
        family.add(f"  {key.replace('_', ' ')}", evidence.compare(autoencoder_at, median_at), fmt)
    print("test images whose digit the autoencoder changes: "
          f"{judge_reference.spread(None, 'changed_share'):.1%}; of them, changed with the clean image as "
          f"input too: {judge_reference.spread(None, 'changed_also_by_bottleneck'):.0%}")
    print(family)


def median_over_images(reference: Reference) -> None:
    """Section 3.6: the autoencoder against the median filter over the seeds *and* the test images (MSE, digits
    kept, SSIM)."""
    _header(reference)
    images, seeds = reference.fixed["images"], len(reference.seeds)
    family = evidence.Family(f"the autoencoder against the median filter, over {seeds} seeds and {images:,} test "
                             "images")
    for key, name, fmt in (("mse", "MSE", ".4f"), ("digits_kept", "digits kept", ".1%"), ("ssim", "SSIM", ".3f")):
        by_seed, image_sd = reference.per_seed(None, f"{key}_difference"), reference.fixed[f"{key}_image_sd"]
        seeds_alone, both = evidence.compare(by_seed, 0.0), evidence.over_seeds_and_images(by_seed, image_sd, images)
        from_seeds = np.std(by_seed, ddof=1) / seeds**0.5
        print(f"{name}: standard error of the mean difference from the seeds {from_seeds:.6f}, from the "
              f"images {image_sd / images**0.5:.6f} (their per-image differences spread with sd {image_sd:.4f}); "
              f"the interval's half-width {(seeds_alone.high - seeds_alone.low) / 2:.5f} over the seeds alone, "
              f"{(both.high - both.low) / 2:.5f} over both")
        family.add(f"  {name}", both, fmt)
    print(family)


def levels_over_images(reference: Reference) -> None:
    """Section 3.7: the autoencoder against the median filter at each noise level, over the seeds *and* all the
    test images (MSE, digits kept, SSIM; each image paired)."""
    _header(reference)
    images, seeds = reference.fixed["images"], len(reference.seeds)
    family = evidence.Family(f"the autoencoder against the median filter at each noise level, over {seeds} seeds and "
                             f"{images:,} test images")
    levels = reference.settings["noise_levels"]
    mse = [reference.per_seed(None, ("by_level", i, "mse_difference")) for i in range(len(levels))]
    print("MSE, standard error of the mean difference at each noise level, from the seeds / from the images: "
          + ", ".join(
              f"{level:g}: {np.std(by_seed, ddof=1) / seeds**0.5:.5f} / {fixed['mse_image_sd'] / images**0.5:.5f}"
              for level, by_seed, fixed in zip(levels, mse, reference.fixed["by_level"], strict=True)))
    for i, level in enumerate(levels):
        fixed = reference.fixed["by_level"][i]
        for key, name, fmt in (("mse", "MSE", ".5f"), ("digits_kept", "digits kept", ".1%"), ("ssim", "SSIM", ".3f")):
            by_seed = reference.per_seed(None, ("by_level", i, f"{key}_difference"))
            family.add(f"{level:>4.1f} {name:<11}: median {fixed['median'][key]:{fmt}}",
                       evidence.over_seeds_and_images(by_seed, fixed[f"{key}_image_sd"], images), fmt)
    print(family)


def noise_levels(course_reference: Reference, judge_reference: Reference) -> None:
    """Section 3.7: the autoencoder against the median filter at each noise level, by MSE, digits kept, SSIM."""
    median_curve = course_reference.fixed["median_mse"]
    print(f"Over seeds {course_reference.seeds}: the autoencoder's test MSE at each noise level, against the median "
          "filter (a fixed number: no seed), 95% confidence intervals")
    by_level = np.array(course_reference.per_seed(None, "denoised_mse_by_level"))  # (seeds, levels)
    family = evidence.Family("the autoencoder against the median filter at each noise level, by MSE, digits kept "
                             "and SSIM")
    for i, level in enumerate(course_reference.settings["noise_levels"]):
        family.add(f"{level:>4.1f} MSE        : autoencoder {evidence.spread(by_level[:, i]):.4f}, median "
                   f"{median_curve[i]:.4f}", evidence.compare(by_level[:, i], median_curve[i]), ".5f")
    judged_images = judge_reference.settings["images_per_level"]
    print(f"Over seeds {judge_reference.seeds}: digits kept (first {judged_images:,} test images) and SSIM at each "
          "noise level, the autoencoder against the median filter")
    for i, level in enumerate(judge_reference.settings["noise_levels"]):
        for key in ("digits_kept", "ssim"):
            autoencoder_at = judge_reference.per_seed(None, ("autoencoder_by_level", i, key))
            median_at = judge_reference.fixed["median_by_level"][i][key]
            family.add(f"{level:>4.1f} {key.replace('_', ' '):<11}: autoencoder {evidence.spread(autoencoder_at):.3f}, "
                       f"median {median_at:.3f}", evidence.compare(autoencoder_at, median_at), ".3f")
    print(family)
    share = stats.binomtest(int(0.9 * judged_images), judged_images).proportion_ci(0.95)  # Clopper-Pearson
    print(f"\na share of 0.9 measured on {judged_images:,} images: 95% interval {share.low:.3f} to {share.high:.3f}, "
          f"a half-width of {(share.high - share.low) / 2:.1%}")


def training_exercises() -> None:
    """Notebook 3's exercises 3 and 4: a plain autoencoder against the denoiser, and the code size."""
    exercise_reference = results.load("exercises")
    _header(exercise_reference)
    plain, denoiser = exercise_reference.value("03", "plain"), exercise_reference.value("03", "denoiser")
    print(f"exercise 3 (seed 0, 30 epochs): on noisy inputs plain {plain['denoised_mse']:.4f}, denoiser "
          f"{denoiser['denoised_mse']:.4f}, the noisy input itself "
          f"{exercise_reference.value('03', 'noisy_input_mse'):.4f}; "
          f"on clean inputs plain {plain['bottleneck_mse']:.4f}, denoiser {denoiser['bottleneck_mse']:.4f}")
    sweep_reference = results.load("sweep")
    _header(sweep_reference)
    print(f"exercise 4 ({sweep_reference.settings['num_epochs']} epochs), test MSE at noise 0.3, "
          "mean (lowest to highest):")
    for d in (2, 4, 16):
        print(f"   d = {d:>2}: {sweep_reference.spread(results.DENOISING, 'denoised_mse', latent_dim=d):.4f}")
    print(f"   3 x 3 median filter: {median_filter_mse(results.load('course')):.4f}")


# Notebook 4 -------------------------------------------------------------------------------------------------

def samplers_by_distance(reference: Reference) -> None:
    """Section 4.2: where each sampler's codes lie, over seeds: distance, share beyond 'far', digit mix."""
    _header(reference)
    measures = {"median distance": "median_distance", "beyond far": "far_share", "TV to real": "total_variation"}
    print(reference.table(("N(0, I)", "fitted Gaussian", "real test codes"), measures, label_width=17,
                          width=(26, 24, 24), formats={"median_distance": ".3f", "far_share": ".0%",
                                                       "total_variation": ".2f"}))
    family = evidence.Family("the fitted Gaussian against N(0, I), where its codes lie")
    for key in ("far_share", "total_variation"):
        family.add(f"{key}", reference.compare("fitted Gaussian", "N(0, I)", key), ".3f")
    print(family)


def samplers_readable(reference: Reference) -> None:
    """Section 4.2: the autoencoder's samplers read by the judge, over seeds."""
    _header(reference)
    print("\n".join(_short_table(reference, ("N(0, I)", "fitted Gaussian", "decoded test codes"),
                                 {"readable": "readable_share", "TV to real": "total_variation"},
                                 {"total_variation": ".2f"}, 24)))
    family = evidence.Family("the fitted Gaussian against N(0, I), by the judge")
    family.add("readable", reference.compare("autoencoder: fitted Gaussian", "autoencoder: N(0, I)",
                                             "readable_share"), ".1%")
    print(family)


def _short_table(reference: Reference, names: Sequence[str], measures: dict[str, str], formats: dict[str, str],
                 width: int) -> list[str]:
    """A table of the autoencoder's samplers, each line named without the model's prefix."""
    lines = [f"{'mean (lowest to highest)':<20}" + "".join(f"{label:>{width}}" for label in measures)]
    for name in names:
        spreads = [(reference.spread(f"autoencoder: {name}", key), formats.get(key) or results.number_format(key))
                   for key in measures.values()]
        lines.append(f"{name:<20}" + "".join(f"{format(spread, fmt):>{width}}" for spread, fmt in spreads))
    return lines


def mixture_samplers(reference: Reference) -> None:
    """Section 4.4: every sampler of the autoencoder by six measures, the floor of real images, and verdicts."""
    _header(reference)
    measures = {"readable": "readable_share", "Fréchet distance": "frechet_distance", "precision": "precision",
                "recall": "recall", "coverage": "coverage", "TV to real": "total_variation"}
    formats = {"precision": ".2f"}
    lines = _short_table(reference, ("N(0, I)", "fitted Gaussian", "mixture of 10", "mixture, chosen",
                                     "decoded test codes"), measures, formats, 25)
    floor = reference.fixed["floors"]["real test images"]
    lines.append(f"{'real test images':<20}" + "".join(
        f"{format(floor[key], formats.get(key) or results.number_format(key)):>25}" for key in measures.values()))
    print("\n".join(lines))
    print("components chosen, by seed:", reference.per_seed(None, "autoencoder.components"))
    print(f"decoded midpoints between the codes of two different test digits, read as a digit: "
          f"{reference.spread(None, 'autoencoder.decoded_midpoints_pass'):.1%}")
    reconstructions_read(reference)
    chosen, fitted, decoded = ("autoencoder: mixture, chosen", "autoencoder: fitted Gaussian",
                               "autoencoder: decoded test codes")
    family = evidence.Family("\nthe chosen mixture against the fitted Gaussian and the decoded test codes")
    family.add("readable, the chosen mixture against the fitted Gaussian",
               reference.compare(chosen, fitted, "readable_share"), ".1%")
    family.add("readable, the chosen mixture against the decoded test codes",
               reference.compare(chosen, decoded, "readable_share"), ".1%")
    family.add("Fréchet distance, the chosen mixture against the decoded test codes",
               reference.compare(chosen, decoded, "frechet_distance"), ".2f")
    print(family)
    sweep = evidence.Family("\nreadable, the chosen mixture against the fitted Gaussian, at each threshold of the "
                            "sweep")
    for t in reference.settings["thresholds"]:
        sweep.add(f"  {t:<5g}", reference.compare(chosen, fitted, ("readable_by_threshold", f"{t:g}")), ".1%")
    print(sweep)


#: How a verdict names a record's key.
SAID = {"density": "density", "frechet_distance": "Fréchet distance", "readable_share": "readable",
        "digits_kept": "digits kept"}


def samplers_against_reconstructions(reference: Reference, model: str = "autoencoder") -> None:
    """Sections 4.4 and 7.4: every prior of ``model`` against the model's own reconstructions, in the judge's
    features, beside the floor of one half of the reconstructions against the other; verdicts against the floor."""
    priors = [*PRIORS, *(("own posteriors",) if model == "vae" else ())]
    measures = {"coverage": "coverage", "density": "density", "precision": "precision", "recall": "recall",
                "Fréchet distance": "frechet_distance"}
    print(f"the {model}'s samplers against half of its own reconstructions (decoded test codes), in the judge's "
          f"features, {reference.settings['prdc_images']:,} images a sampler; mean (lowest to highest)")

    def arm(sampler: str) -> str:
        return results.against_reconstructions(model, sampler)

    print(reference.table([arm(name) for name in (*priors, results.RECONSTRUCTION_FLOOR)], measures, label="",
                          label_width=74, width=(21, 21, 23, 23, 23)))
    floor = arm(results.RECONSTRUCTION_FLOOR)
    family = evidence.Family("\neach prior against the reconstructions' floor, by coverage")
    for name in priors:
        family.add(f"coverage, {name} against the floor", reference.compare(arm(name), floor, "coverage"), ".3f")
    print(family)
    chosen = evidence.Family("the chosen mixture against the reconstructions' floor, by density and Fréchet distance")
    for measure in ("density", "frechet_distance"):
        chosen.add(f"{SAID[measure]}, the chosen mixture against the floor",
                   reference.compare(arm("mixture, chosen"), floor, measure), ".3f" if measure == "density" else ".2f")
    print(chosen)


def reconstructions_read(reference: Reference, models: Sequence[str] = ("autoencoder",)) -> None:
    """The decoded test codes (and a VAE's own posteriors) read four ways, and their digits kept: mean of the
    seeds."""
    rows = {}
    for model in models:
        for sampler in ("decoded test codes", "own posteriors"):
            name = f"{model}: {sampler}"
            if name in reference.arms:
                rows[f"{name} ({reference.spread(name, 'digits_kept').mean:.1%} kept)"] = {
                    key: reference.spread(name, ("readings", key)).mean for key in READINGS}
    print(_readings_table(rows, "mean of the seeds (digits kept)", 48))


#: The priors a model's samplers draw from, and the two references beside them in its latent space.
PRIORS = ("N(0, I)", "fitted Gaussian", "mixture of 10", "mixture, chosen")
REAL_CODES, COPIED_CODES = "test codes, other half", "training codes"


def samplers_in_latent_space(reference: Reference, model: str = "autoencoder") -> None:
    """Sections 4.4 and 7.4: each prior of ``model`` measured in its own latent space against held-out test codes.

    No decoder and no judge: precision, recall, density and coverage against one half
    of the test codes, novelty and copies against the training codes, beside the floor
    (the other half of the test codes, real codes measured the same way) and a prior
    that copies training codes; the verdicts against the floor; and the held-out
    likelihood of mixtures larger than the course's candidates.
    """
    _header(reference)
    priors = [*PRIORS, *(("own posteriors",) if model == "vae" else ())]
    measures = {"coverage": "coverage", "density": "density", "precision": "precision", "recall": "recall",
                "novelty": "novelty", "copies": "copy_share"}
    print(f"the {model}'s codes, {reference.settings['codes_per_sampler']:,} a sampler, against as many held-out "
          "test codes; mean (lowest to highest)")
    print(reference.table([f"{model}: {name}" for name in (*priors, REAL_CODES, COPIED_CODES)], measures,
                          label="", label_width=37, width=(21, 21, 23, 23, 21, 27)))
    floor = f"{model}: {REAL_CODES}"
    family = evidence.Family("\neach prior against real codes (the floor), by coverage")
    for name in priors:
        family.add(f"coverage, {name} against real codes", reference.compare(f"{model}: {name}", floor, "coverage"),
                   ".3f")
    print(family)
    chosen = evidence.Family("the chosen mixture against real codes, by density and novelty")
    for measure in ("density", "novelty"):
        chosen.add(f"{measure}, the chosen mixture against real codes",
                   reference.compare(f"{model}: mixture, chosen", floor, measure), ".3f")
    print(chosen)
    candidates = [*reference.settings["mixture_candidates"][-3:], *reference.settings["larger_mixtures"]]
    likelihood = {k: reference.per_seed(None, f"{model}.component_scores.{k}.held_out_log_likelihood")
                  for k in candidates}
    best = [max(candidates, key=lambda k, i=i: likelihood[k][i]) for i in range(len(reference.seeds))]
    print("\nheld-out log-likelihood (nats per code) by number of components, mean of the seeds: "
          + ", ".join(f"{k}: {np.mean(v):.3f}" for k, v in likelihood.items())
          + f"; the best, by seed: {best}")


# Notebook 5 -------------------------------------------------------------------------------------------------

def clustering_by_seed(reference: Reference, this_run: float) -> None:
    """Section 5.2: each seed's test MSE and k-means scores, their spread, and the restarts' spread."""
    _header(reference)
    print(f"{'seed':>4}{'test MSE':>10}{'mode acc.':>11}{'Hungarian':>11}{'NMI':>7}{'ARI':>7}")
    kmeans = "k-means on the codes"
    for seed, loss, k in zip(reference.seeds, reference.per_seed(None, "test_loss"),
                             reference.rows(kmeans), strict=True):
        print(f"{seed:>4}{loss:>10.4f}{k['accuracy_mode']:>11.1%}{k['accuracy_hungarian']:>11.1%}"
              f"{k['nmi']:>7.3f}{k['ari']:>7.3f}")
    spreads = {key: reference.spread(kmeans, key) for key in ("accuracy_mode", "accuracy_hungarian", "nmi", "ari")}
    print(f"mean (lowest to highest): test MSE {reference.spread(None, 'test_loss'):.4f}, "
          f"mode {spreads['accuracy_mode']:.1%}, Hungarian {spreads['accuracy_hungarian']:.1%}, "
          f"NMI {spreads['nmi']:.3f}, ARI {spreads['ari']:.3f}")
    restarts = reference.per_seed(None, "restart_accuracy_mode")
    print(f"k-means restarts of one model, over all these models: each model's restarts span at most "
          f"{max(max(r) - min(r) for r in restarts):.1%}")
    print(f"this notebook's run: mode {this_run:.1%}; reference seed 0: "
          f"{reference.per_seed(kmeans, 'accuracy_mode')[0]:.1%}")


def clustering_exercises(course_reference: Reference) -> None:
    """Notebook 5's exercises 2, 3 and 5: the best restart, 15 clusters and a Gaussian mixture."""
    exercise_reference = results.load("exercises")
    _header(exercise_reference)
    kmeans = {key: course_reference.per_seed("k-means on the codes", key)[0]
              for key in ("accuracy_mode", "accuracy_hungarian")}
    print(f"exercise 2 (seed 0): the best restart "
          f"{max(course_reference.per_seed(None, 'restart_accuracy_mode')[0]):.1%}, the one chosen by inertia "
          f"{kmeans['accuracy_mode']:.1%}")
    print(f"exercise 3 (seed 0): 15 clusters {exercise_reference.value('05', 'accuracy_mode_15_clusters'):.1%} (mode)")
    mixture = exercise_reference.value("05", "gaussian_mixture")
    print(f"exercise 5 (seed 0): Gaussian mixture {mixture['accuracy_mode']:.1%} mode, "
          f"{mixture['accuracy_hungarian']:.1%} Hungarian; k-means {kmeans['accuracy_mode']:.1%} "
          f"and {kmeans['accuracy_hungarian']:.1%}")
    print(f"   with 5 mixture starts instead of 3 (notebook 6's setting, course reference seed 0): "
          f"{course_reference.per_seed('Gaussian mixture on the codes', 'accuracy_hungarian')[0]:.1%} Hungarian")


# Notebook 6 -------------------------------------------------------------------------------------------------

def noise_against_plain(reference: Reference) -> None:
    """Section 6.1: the denoising model against the plain one (d = 4), over seeds."""
    _header(reference)
    measures = {"noisy in": "denoised_mse", "clean in": "bottleneck_mse", "Hungarian": "accuracy_hungarian"}
    print(reference.table((results.DENOISING, results.PLAIN), measures, label_width=24, width=(26, 26, 24),
                          latent_dim=4))
    family = evidence.Family("denoising against plain training, by three measures")
    for measure in measures.values():
        family.add(f"{measure:<19} denoising against plain",
                   reference.compare(results.DENOISING, results.PLAIN, measure, latent_dim=4),
                   results.number_format(measure))
    print(family)


def latent_sizes(sweep_reference: Reference, judge_reference: Reference, median_mse: float,
                 training_noise: float) -> None:
    """Section 6.2: the code size's sweep over seeds, neighbouring sizes compared, and the median filter."""
    where = {"training_noise": training_noise}
    dims, hungarian = sweep_reference.by("latent_dim", "accuracy_hungarian", **where)  # (seeds, d)
    print(f"Reference over seeds {sweep_reference.seeds}, mean (lowest to highest):")
    measures = {"bottleneck": "bottleneck_mse", "denoising": "denoised_mse", "mode acc.": "accuracy_mode",
                "Hungarian": "accuracy_hungarian"}
    print(sweep_reference.table(dims, measures, by="latent_dim", label="d", label_width=3, label_align=">",
                                width=(26, 26, 24, 24), **where))
    neighbours = evidence.Family("Hungarian accuracy, each code size against the next")
    for k, (smaller, larger) in enumerate(itertools.pairwise(dims)):
        neighbours.add(f"d = {smaller} against d = {larger}", evidence.compare(hungarian[:, k], hungarian[:, k + 1]),
                       ".1%")
    print(neighbours)
    against_median = evidence.Family("each code size against the median filter, by MSE, digits kept and SSIM")
    for d in dims:
        against_median.add(f"denoising MSE at d = {d:>2} against the median filter ({median_mse:.4f})",
                           sweep_reference.compare(None, median_mse, "denoised_mse", latent_dim=d, **where))
    print(f"\nThe digit judge's reference over seeds {judge_reference.seeds} "
          f"({judge_reference.settings['sweep_epochs']} epochs each), mean (lowest to highest):")
    print(judge_reference.table(dims, {"digits kept": "digits_kept", "SSIM": "ssim"}, by="latent_dim",
                                label="d", label_width=3, label_align=">", width=26, part="sweep"))
    for measure in ("digits_kept", "ssim"):
        fixed = judge_reference.fixed["median"][measure]
        for d in dims:
            against_median.add(f"{measure.replace('_', ' ')} at d = {d:>2} against the median filter ({fixed:.3f})",
                               judge_reference.compare(None, fixed, measure, part="sweep", latent_dim=d), ".3f")
    print(against_median)


def clustering_methods(reference: Reference) -> None:
    """Section 6.3: k-means, a Gaussian mixture and UMAP first on the course model's codes, over seeds."""
    _header(reference)
    print(reference.table(results.CLUSTERINGS, {"Hungarian: mean (lowest to highest)": "accuracy_hungarian"},
                          label="the course model (d = 4, 30 epochs), each seed", label_width=50, width=38))
    kmeans, mixture, umap_first = results.CLUSTERINGS
    gain = np.subtract(*(reference.per_seed(arm, "accuracy_hungarian") for arm in (umap_first, kmeans)))
    print(f"UMAP first against k-means, gain by seed: {evidence.spread(gain):.1%}")
    family = evidence.Family("the other two pipelines against k-means, by Hungarian accuracy")
    family.add("mixture against k-means", reference.compare(mixture, kmeans, "accuracy_hungarian"), ".1%")
    family.add("UMAP first against k-means", reference.compare(umap_first, kmeans, "accuracy_hungarian"), ".1%")
    print(family)
    starts = results.load("exercises").value("05", "gaussian_mixture", "accuracy_hungarian")
    print(f"the mixture's starts matter: on seed 0's codes, best of 3 starts (notebook 5, exercise 5) {starts:.1%}, "
          f"best of 5 (here) {reference.per_seed(mixture, 'accuracy_hungarian')[0]:.1%}")


def moonshot(reference: Reference) -> tuple[np.ndarray, str]:
    """Section 6.4: the d = 16 pipeline by training seed and UMAP state, and its worst run's mixed clusters.

    Returns the worst run's ``counts[digit, cluster]`` and a caption naming the run, for the figure.
    """
    from .clustering import mixed_clusters, split_digits

    _header(reference)
    print("d = 16 codes, UMAP, Gaussian mixture: Hungarian accuracy by training seed and UMAP random state")
    print(f"{'seed':>4}" + "".join(f"{f'UMAP state {s}':>15}" for s in reference.settings["umap_states"]))
    for seed in reference.seeds:
        print(f"{seed:>4}" + "".join(f"{a:>15.1%}" for a in reference.per_seed(None, "accuracy_hungarian", seed=seed)))
    accuracy = reference.per_seed(None, "accuracy_hungarian")
    print(f"all {len(accuracy)} runs: {evidence.spread(accuracy):.1%}; 95% or more in "
          f"{sum(a >= 0.95 for a in accuracy)} of {len(accuracy)}, below 90% in {sum(a < 0.9 for a in accuracy)}")
    worst = reference.rows()[int(np.argmin(accuracy))]
    counts = np.array(worst["counts"])  # counts[digit, cluster] over the training images
    for cluster, held in mixed_clusters(counts).items():
        print(f"the worst run (seed {worst['seed']}, UMAP state {worst['umap_state']}, {min(accuracy):.1%}): cluster "
              f"{cluster} holds " + " and ".join(f"{share:.0%} of the {digit}s" for digit, share in held.items()))
    print("digits split over two clusters: " + (", ".join(map(str, split_digits(counts))) or "none"))
    return counts, f"seed {worst['seed']}, UMAP state {worst['umap_state']}: images of each digit in each cluster"


def beyond_exercises(sweep_reference: Reference) -> None:
    """Notebook 6's exercises 2 and 3: UMAP's random state, and a 10-D embedding."""
    exercise_reference = results.load("exercises")
    _header(exercise_reference)
    states = exercise_reference.value("06", "umap_random_state_hungarian")
    print("exercise 2 (seed 0 model): UMAP random state " + ", ".join(f"{s}: {a:.1%}" for s, a in states.items())
          + " (Hungarian, after the mixture)")
    widest = max(sweep_reference.settings["latent_dims"])
    two_d = sweep_reference.per_seed(results.DENOISING, "umap_gmm.accuracy_hungarian", latent_dim=widest)[0]
    print(f"exercise 3: 10-D embedding of the d = 16 codes "
          f"{exercise_reference.value('06', 'umap_10d_wide_hungarian'):.1%}; the 2-D one {two_d:.1%}")


# Notebook 7 -------------------------------------------------------------------------------------------------

BETA_0, BETA_1 = results.vae_arm(0), results.vae_arm(1)


def judge_of(reference: Reference) -> str:
    """Which judge read a results file's samples: notebook 3's (trained on varied digits), or, in a file made
    before it was, the judge trained on written digits only (section 3.5 of notebook 3 compares the two)."""
    if reference.settings.get("judge_digits", "written digits only") == "varied":
        return "notebook 3's judge"
    return "the judge trained on written digits only (notebook 3, section 3.5)"


def vae_samples(reference: Reference) -> None:
    """Section 7.4: the autoencoder and the VAE at beta 0 and 1, by their samples from N(0, I) and from a Gaussian
    fitted to each model's training codes, and by their reconstructions, over seeds."""
    _header(reference)
    print(f"readable: named a digit by {judge_of(reference)} with a confidence of at least "
          f"{reference.settings['judge_threshold']:.3f}")
    arms = (results.AUTOENCODER, BETA_0, BETA_1)
    print(reference.table(arms, {"N(0, I): readable": "readable", "TV to real": "TV to real",
                                 "distance / real": "distance / real"}))
    print(reference.table(arms, {"fitted Gaussian: readable": "readable, fitted Gaussian",
                                 "TV to real": "TV to real, fitted Gaussian",
                                 "distance / real": "distance / real, fitted Gaussian"}))
    print(reference.table(arms, {"reconstructions: readable": "readable, reconstructions",
                                 "digits kept": "digits kept, reconstructions"}))
    against_both = [(BETA_1, "VAE (beta 1)", other) for other in (results.AUTOENCODER, BETA_0)]
    print(_paired_family(reference, "the VAE (beta 1) against the autoencoder and its control, by N(0, I) samples",
                         ("readable", "TV to real"), against_both))
    # A question of its own: the decoders compared where each model's codes are, whatever their scale.
    print(_paired_family(reference, "\nthe same, by samples from a Gaussian fitted to each model's training codes",
                         ("readable, fitted Gaussian", "TV to real, fitted Gaussian"), against_both))
    print(_paired_family(reference, "\nthe reconstructions: the control against the autoencoder, beta 1 against the "
                         "control", ("readable, reconstructions", "digits kept, reconstructions"),
                         [(BETA_0, BETA_0, results.AUTOENCODER), (BETA_1, BETA_1, BETA_0)]))


def _paired_family(reference: Reference, question: str, measures: Sequence[str],
                   pairs: Sequence[tuple[str, str, str]]) -> evidence.Family:
    """One family of paired comparisons: each measure for each (arm, the words for it, the arm it is compared with)."""
    family = evidence.Family(question)
    for measure in measures:
        for arm, said, other in pairs:
            family.add(f"{measure}, {said} against {other}", reference.compare(arm, other, measure),
                       results.number_format(measure))
    return family


def vae_samplers(reference: Reference) -> float:
    """Section 7.4: every sampler of both models by six measures, three verdicts, and the threshold sweep.

    Returns the VAE mixture's mean readable share (the run's summary lists it as a reference figure).
    """
    _header(reference)
    print(f"readable: named a digit by notebook 3's judge with a confidence of at least "
          f"{reference.fixed['judge']['threshold']:.3f}")
    measures = {"readable": "readable_share", "Fréchet distance": "frechet_distance", "precision": "precision",
                "recall": "recall", "coverage": "coverage", "TV to real": "total_variation"}
    samplers = [arm for arm in reference.arms if arm.split(":")[0] in ("autoencoder", "vae")]
    print(reference.table(samplers, measures, label_width=32, width=25))
    said = {"vae: mixture, chosen": "the VAE's mixture", "vae: N(0, I)": "the VAE's N(0, I)",
            "autoencoder: mixture, chosen": "the autoencoder's mixture",
            "autoencoder: N(0, I)": "the autoencoder's N(0, I)"}
    family = evidence.Family("\nreadable: the VAE's mixture against its N(0, I), and each VAE sampler against the "
                             "autoencoder's")
    for arm, other in (("vae: mixture, chosen", "vae: N(0, I)"),
                       ("vae: mixture, chosen", "autoencoder: mixture, chosen"),
                       ("vae: N(0, I)", "autoencoder: N(0, I)")):
        family.add(f"readable, {said[arm]} against {said[other]}", reference.compare(arm, other, "readable_share"),
                   ".1%")
    print(family)
    print()
    reconstructions_read(reference, ("autoencoder", "vae"))
    kept = evidence.Family("the VAE's reconstructions against the autoencoder's, by readable and digits kept")
    for measure in ("readable_share", "digits_kept"):
        kept.add(f"{SAID[measure]}, the VAE's reconstructions against the "
                 "autoencoder's", reference.compare("vae: decoded test codes", "autoencoder: decoded test codes",
                                                    measure), ".1%")
    print(kept)
    thresholds = reference.settings["thresholds"]
    print("\nreadable at each threshold of the sweep, mean of the seeds:")
    print(f"{'threshold':<32}" + "".join(f"{t:>7g}" for t in thresholds))
    for arm in ("vae: N(0, I)", "vae: mixture, chosen", "vae: decoded test codes", "autoencoder: mixture, chosen"):
        print(f"{arm:<32}" + "".join(f"{reference.spread(arm, ('readable_by_threshold', f'{t:g}')).mean:>7.1%}"
                                     for t in thresholds))
    return reference.spread("vae: mixture, chosen", "readable_share").mean


def beta_family(reference: Reference) -> evidence.Family:
    """Section 7.5's family: what the KL term costs (its control against the autoencoder, beta 1 against the
    control, by three measures) and each other beta against beta 1 (readable, denoising MSE)."""
    formats = {measure: ".5f" if measure == "denoising MSE" else results.number_format(measure)  # MSE: one more digit
               for measure in ("readable", "denoising MSE", "k-means accuracy", "silhouette")}
    family = evidence.Family("what the KL term costs (the control against the autoencoder, beta 1 against the "
                             "control) and each beta against beta 1")
    for measure in ("denoising MSE", "k-means accuracy", "silhouette"):
        for name, other in ((BETA_0, results.AUTOENCODER), (BETA_1, BETA_0)):
            family.add(f"{measure}, {name} against {other}", reference.compare(name, other, measure), formats[measure])
    for name in (results.vae_arm(beta) for beta in (0.25, 0.5, 2, 4)):
        for measure in ("readable", "denoising MSE"):
            family.add(f"{measure}, {name} against beta 1", reference.compare(name, BETA_1, measure), formats[measure])
    return family


def beta_sweep(reference: Reference) -> None:
    """Section 7.5: every beta and the autoencoder by eight measures, and the verdicts between them."""
    betas = [results.vae_arm(beta) for beta in reference.settings["betas"]]
    print(f"readable: named a digit by {judge_of(reference)} with a confidence of at least "
          f"{reference.settings['judge_threshold']:.3f}")
    for measures in (("readable", "readable, reconstructions", "denoising MSE", "k-means accuracy"),
                     ("silhouette", "KL (nats)", "KL(q || N(0, I))", "information, direct")):
        print(reference.table((results.AUTOENCODER, *betas), measures))
    print(beta_family(reference))
    swept = [beta for beta in reference.settings["betas"] if beta > 0]  # log2(beta): beta = 0 is off the axis
    mse = reference.matrix([results.vae_arm(beta) for beta in swept], "denoising MSE")  # (seeds, betas)
    slopes = [float(np.polyfit(np.log2(swept), seed, 1)[0]) for seed in mse]
    print(f"denoising MSE per doubling of beta ({swept[0]:g} to {swept[-1]:g}), one least-squares slope per seed: "
          + ", ".join(f"{slope:.5f}" for slope in slopes))
    slope = evidence.Family("   the slope against 0")
    slope.add("   the slope against 0", evidence.compare(slopes, 0.0), ".5f")
    print(slope)


def beta_tradeoff_figure(reference: Reference):
    """Section 7.5's figure: what each beta reads, how its KL splits, and where its samples fail."""
    from .plotting import beta_tradeoff

    betas = [results.vae_arm(beta) for beta in reference.settings["betas"]]
    return beta_tradeoff(
        reference.settings["betas"],
        {"VAE, N(0, I)": reference.matrix(betas, "readable"),
         "VAE, reconstructions": reference.matrix(betas, "readable, reconstructions")},
        ("denoising AE, N(0, I)", reference.spread(results.AUTOENCODER, "readable").mean),
        reference.means(betas, "information"), reference.means(betas, "KL(q || N(0, I))"),
        np.array([np.mean(reference.per_seed(name, "readable by density"), axis=0) for name in betas]),
        cap=np.log(10_000))


def vae_exercises(reference: Reference) -> None:
    """Notebook 7's exercises 4 and 5: prediction intervals for one more seed, and readable by density."""
    _header(reference)
    print(f"readable shares read by {judge_of(reference)}, threshold {reference.settings['judge_threshold']:.3f}")
    for name in (results.vae_arm(beta) for beta in (0.25, 1, 4)):
        readable, mse = reference.per_seed(name, "readable"), reference.per_seed(name, "denoising MSE")
        (low, high), (mse_low, mse_high) = evidence.prediction_interval(readable), evidence.prediction_interval(mse)
        print(f"exercise 4, {name.removeprefix('VAE, '):<9}: readable {evidence.spread(readable):.1%}, one more seed "
              f"{low:.1%} to {high:.1%}; denoising MSE {evidence.spread(mse):.4f}, one more seed {mse_low:.4f} to "
              f"{mse_high:.4f} (95 % prediction intervals)")
    tenths = reference.per_seed(BETA_1, "readable by density")
    print(f"exercise 5, beta 1: readable {evidence.spread([t[0] for t in tenths]):.1%} in the least probable tenth of "
          f"the N(0, I) samples, {evidence.spread([t[-1] for t in tenths]):.1%} in the most probable")


def latent_sweep_figure(sweep_reference: Reference, judge_reference: Reference, this_run: list[dict],
                        latent_dims: Sequence[int], noise_factor: float, median: dict[str, float]):
    """Section 6.2's figure: this run's sweep over d (``this_run``, one record a size) on the reference seeds'.

    The reference holds the default noise only: at another ``noise_factor`` this run is drawn alone.
    ``median`` holds the median filter's ``mse`` and ``digits_kept``, drawn as dotted levels.
    """
    from .plotting import latent_sweep

    where = {"training_noise": noise_factor}
    dims, _ = sweep_reference.by("latent_dim", "denoised_mse", **where)
    kept = f"digits kept (noise {noise_factor:g})"
    panels = {"test MSE per pixel": {"bottleneck (clean in)": "bottleneck_mse",
                                     f"denoising (noise {noise_factor:g})": "denoised_mse"},
              "k-means accuracy": {"mode": "accuracy_mode", "Hungarian": "accuracy_hungarian"},
              kept: {"autoencoder": "digits_kept"}}
    runs = {ylabel: {name: [row[measure] for row in this_run] for name, measure in lines.items()}
            for ylabel, lines in panels.items()}
    reference = None
    if dims:
        reference = {ylabel: {name: sweep_reference.by("latent_dim", measure, **where)[1]
                              for name, measure in lines.items()} for ylabel, lines in panels.items() if ylabel != kept}
        judged_dims, judged = judge_reference.by("latent_dim", "digits_kept", part="sweep")
        reference[kept] = {"autoencoder": judged[:, [d in dims for d in judged_dims]]}
    return latent_sweep(latent_dims, runs, reference, dims, logy=["test MSE per pixel"],
                        levels={"test MSE per pixel": ("3 x 3 median filter", median["mse"]),
                                kept: ("3 x 3 median filter", median["digits_kept"])})
