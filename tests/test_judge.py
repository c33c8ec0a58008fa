"""The digit judge: a classifier that reads denoised and generated digits, and SSIM from scikit-image."""

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from dae_utils import checkpoint as ckpt
from dae_utils import judge, metrics
from dae_utils.data import load_sample
from dae_utils.noise import add_noise

CPU = torch.device("cpu")
STEPS = 300  # a short training for the tests: 95.9 % on the sample's test images when written


@pytest.fixture(scope="module")
def sample():
    return load_sample()


@pytest.fixture(scope="module")
def classifier(sample):
    return judge.train_classifier(sample, CPU, steps=STEPS, progress=False)


def test_the_classifier_reads_clean_sample_digits(classifier, sample):
    """The stated accuracy on the offline sample's 1,000 test images (full MNIST: about 99 % at the full steps)."""
    assert judge.digits_kept(classifier, sample.test_images, sample.test_labels) >= 0.94


def test_noise_hides_digits_and_the_judge_says_so(classifier, sample):
    clean = judge.digits_kept(classifier, sample.test_images, sample.test_labels)
    noisy = add_noise(sample.test_images, 0.8, generator=torch.Generator().manual_seed(0))
    assert judge.digits_kept(classifier, noisy, sample.test_labels) < clean - 0.05


def test_verdicts_do_not_depend_on_batch_order_or_size(classifier, sample):
    images = sample.test_images[:300]
    whole = judge.classify(classifier, images)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    shuffled = judge.classify(classifier, images[order], batch_size=7)
    assert torch.equal(shuffled.digits, whole.digits[order])
    assert torch.allclose(shuffled.confidence, whole.confidence[order], atol=1e-6)
    assert torch.allclose(shuffled.entropy, whole.entropy[order], atol=1e-5)


def test_entropy_and_confidence_are_those_of_the_softmax(classifier, sample):
    images = sample.test_images[:20]
    with torch.no_grad():
        probabilities = classifier(images).softmax(dim=1)
    verdict = judge.classify(classifier, images)
    assert torch.allclose(verdict.confidence, probabilities.max(dim=1).values, atol=1e-6)
    expected = -(probabilities * probabilities.log()).sum(dim=1)
    assert torch.allclose(verdict.entropy, expected, atol=1e-5)
    assert ((verdict.entropy >= 0) & (verdict.entropy <= np.log(10) + 1e-6)).all()


def test_a_classifier_always_names_some_digit(classifier, sample):
    """Not a digit at all: the judge still answers, with less confidence, so 'readable' needs a threshold."""
    blank, grey = torch.zeros(4, 1, 28, 28), torch.full((4, 1, 28, 28), 0.5)
    noise = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    digits = judge.classify(classifier, sample.test_images[:200]).confidence.mean()
    for images in (blank, grey, noise):
        verdict = judge.classify(classifier, images)
        assert verdict.confidence.mean() < digits
        with torch.no_grad():
            probabilities = classifier(images).softmax(dim=1)
        assert torch.equal(verdict.digits, probabilities.argmax(dim=1))  # a digit for every image, none refused
        assert torch.allclose(verdict.confidence, probabilities.max(dim=1).values, atol=1e-6)
        for threshold in (0.5, 0.9):
            share = float((verdict.confidence >= threshold).float().mean())
            assert judge.readable_share(classifier, images, threshold=threshold) == pytest.approx(share)
    with pytest.raises(ValueError, match="probability between 0 and 1"):
        judge.readable_share(classifier, blank, threshold=90)


@pytest.mark.parametrize("images, message", [
    (torch.rand(3, 28, 28), r"shape \(N, 1, 28, 28\).*unsqueeze\(1\)"),
    (torch.rand(3, 3, 28, 28), r"shape \(N, 1, 28, 28\)"),
    (torch.rand(3, 1, 32, 32), r"shape \(N, 1, 28, 28\)"),
    (torch.randint(0, 255, (3, 1, 28, 28)), "float images in \\[0, 1\\].*divide 0-255 pixels by 255"),
    (np.zeros((3, 1, 28, 28)), "torch tensor"),
])
def test_wrong_inputs_are_refused_with_what_to_pass(classifier, images, message):
    with pytest.raises((ValueError, TypeError), match=message):
        judge.classify(classifier, images)


def test_labels_must_match_the_images(classifier, sample):
    with pytest.raises(ValueError, match="5 images but 4 labels"):
        judge.digits_kept(classifier, sample.test_images[:5], sample.test_labels[:4])


def test_a_cached_classifier_is_reused_not_retrained(sample, tmp_path, monkeypatch, capsys):
    first = judge.load_or_train_classifier(sample, CPU, tmp_path, steps=20, progress=False)
    path = judge.classifier_path(tmp_path, sample.key, steps=20)
    assert path.is_file() and "Saved" in capsys.readouterr().out
    monkeypatch.setattr(judge, "train_classifier", lambda *a, **k: pytest.fail("trained again"))
    again = judge.load_or_train_classifier(sample, CPU, tmp_path, steps=20, progress=False)
    assert "Loaded" in capsys.readouterr().out
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name])
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary left


def test_a_classifier_from_the_shared_folder_is_read_and_not_written(sample, tmp_path, monkeypatch, capsys):
    shared = tmp_path / "shared"
    judge.load_or_train_classifier(sample, CPU, shared, steps=20, progress=False)
    monkeypatch.setenv("DAE_SHARED_CHECKPOINTS", str(shared))
    monkeypatch.setattr(judge, "train_classifier", lambda *a, **k: pytest.fail("trained again"))
    judge.load_or_train_classifier(sample, CPU, tmp_path / "own", steps=20, progress=False)
    assert f"from {shared}" in capsys.readouterr().out and not (tmp_path / "own").exists()


def test_a_damaged_or_foreign_cache_file_is_refused_by_name(sample, tmp_path):
    path = judge.classifier_path(tmp_path, sample.key, steps=20)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="corrupt or not a digit classifier"):
        judge.load_or_train_classifier(sample, CPU, tmp_path, steps=20, progress=False)
    torch.save({"format": "something else"}, path)
    with pytest.raises(ckpt.CheckpointError, match="not a digit classifier of this version"):
        judge.read_classifier(path)
    torch.save({"format": "dae-digit-classifier", "format_version": 1, "model": {}, "data_key": "mnist-other"}, path)
    with pytest.raises(ckpt.CheckpointError, match="trained on mnist-other"):
        judge.read_classifier(path, sample.key)
    with pytest.raises(ckpt.CheckpointError, match="weights of another shape"):
        judge.read_classifier(path)


def test_ssim_is_scikit_image_s_averaged_over_the_images(sample):
    clean = sample.test_images[:12]
    noisy = add_noise(clean, 0.3, generator=torch.Generator().manual_seed(1))
    expected = [structural_similarity(a[0].double().numpy(), b[0].double().numpy(), data_range=1.0)
                for a, b in zip(noisy, clean, strict=True)]
    assert metrics.ssim_each(noisy, clean) == pytest.approx(expected)
    assert metrics.ssim(noisy, clean) == pytest.approx(np.mean(expected))
    assert metrics.ssim(clean, clean) == pytest.approx(1.0)
    assert metrics.ssim(noisy, clean) < metrics.ssim(add_noise(clean, 0.1, generator=torch.Generator()), clean) < 1
    with pytest.raises(ValueError, match=r"shapes .* differ"):
        metrics.ssim(noisy[:3], clean[:4])


def test_digit_counts_give_the_spread_of_a_generator():
    assert metrics.digit_counts(torch.tensor([0, 3, 3, 8])).tolist() == [1, 0, 0, 2, 0, 0, 0, 0, 1, 0]


def test_image_scores_are_the_four_measures_computed_separately(classifier, sample):
    clean, labels = sample.test_images[:200], sample.test_labels[:200]
    noisy = add_noise(clean, 0.5, generator=torch.Generator().manual_seed(2))
    scores = metrics.image_scores(classifier, noisy, clean, labels)
    assert scores["mse"] == pytest.approx(torch.mean((noisy - clean) ** 2).item())
    assert scores["psnr"] == pytest.approx(10 * np.log10(1 / scores["mse"]), rel=1e-5)
    assert scores["digits_kept"] == judge.digits_kept(classifier, noisy, labels)
    assert scores["ssim"] == pytest.approx(metrics.ssim(noisy, clean))
    # SSIM over the first images only, when asked: the other measures still use all of them.
    few = metrics.image_scores(classifier, noisy, clean, labels, ssim_images=50)
    assert few["ssim"] == pytest.approx(metrics.ssim(noisy[:50], clean[:50]))
    assert few["mse"] == scores["mse"] and few["digits_kept"] == scores["digits_kept"]
    with pytest.raises(ValueError, match="its own clean original"):
        metrics.image_scores(classifier, noisy[:10], clean, labels)


def test_changed_digits_are_those_read_right_before_and_wrong_after(classifier, sample):
    clean, labels = sample.test_images[:300], sample.test_labels[:300]
    damaged = clean.clone()
    damaged[:20] = clean[20:40]  # the first 20 now show other images' digits
    changed, read_as = metrics.changed_digits(classifier, damaged, clean, labels)
    before = judge.classify(classifier, clean).digits
    after = judge.classify(classifier, damaged).digits
    expected = [i for i in range(300) if before[i] == labels[i] and after[i] != labels[i]]
    assert changed.tolist() == expected
    assert read_as.tolist() == after[expected].tolist()
    assert len(expected) >= 10  # most swapped images show another digit
    assert set(expected) <= set(range(20))  # unchanged images cannot change
    assert metrics.changed_digits(classifier, clean, clean, labels)[0].numel() == 0
    with pytest.raises(ValueError, match="one of each"):
        metrics.changed_digits(classifier, clean[:5], clean, labels)


def test_generator_report_counts_only_confident_digits(classifier, sample):
    real = sample.test_images[:400]
    blank = torch.zeros(100, 1, 28, 28)
    report = metrics.generator_report(classifier, torch.cat([real, blank]), sample.test_labels)
    verdict = judge.classify(classifier, torch.cat([real, blank]))
    readable = verdict.readable()
    assert report["readable_share"] == pytest.approx(readable.float().mean().item())
    counts = np.bincount(verdict.digits[readable].numpy(), minlength=10)
    assert report["digit_share"] == pytest.approx((counts / counts.sum()).tolist())
    real_mix = np.bincount(sample.test_labels.numpy(), minlength=10) / len(sample.test_labels)
    assert report["total_variation"] == pytest.approx(0.5 * np.abs(counts / counts.sum() - real_mix).sum())
    assert report["fewest_digit"] == int(np.argmin(counts))
    # A generator that draws one digit only is as far from the real mix as its share of the others.
    ones = sample.test_images[sample.test_labels == 1][:50]
    only_ones = metrics.generator_report(classifier, ones, sample.test_labels)
    assert only_ones["digit_share"][1] == pytest.approx(1.0)
    assert only_ones["total_variation"] == pytest.approx(1 - real_mix[1])
    nothing = metrics.generator_report(classifier, torch.full((20, 1, 28, 28), 0.5), sample.test_labels,
                                       threshold=0.999)
    assert nothing["readable_share"] == 0 and nothing["total_variation"] == 1.0


# The blend-rejecting judge: eleven classes, a temperature and a threshold


def test_temperature_scaling_recovers_a_known_temperature():
    """Labels drawn from softmax(z); the model reports 3 z: the fitted temperature is 3, and no prediction changes."""
    generator = torch.Generator().manual_seed(0)
    true_logits = 2 * torch.randn(20_000, 11, generator=generator)
    labels = torch.multinomial(true_logits.softmax(dim=1), 1, generator=generator)[:, 0]
    temperature = judge.fit_temperature(3 * true_logits, labels)
    assert temperature == pytest.approx(3.0, rel=0.05)
    assert judge.calibration_error(3 * true_logits, labels, temperature) \
        < judge.calibration_error(3 * true_logits, labels) / 3
    with pytest.raises(ValueError, match="one label per row"):
        judge.fit_temperature(true_logits[:5], labels[:4])


def test_calibration_error_is_the_binned_gap_between_confidence_and_accuracy():
    """A hand computation with 10 bins: |confidence - accuracy| per bin, weighted by the bin's share."""
    probabilities = torch.tensor([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55], [0.65, 0.35]])
    logits = probabilities.log()
    labels = torch.tensor([0, 1, 0, 0, 0])
    # bin (0.9, 1.0]: confidences 0.95, 0.95, correct 1 of 2 -> |0.95 - 0.5| x 2/5
    # bin (0.5, 0.6]: 0.55 (right), 0.55 (wrong: says 1, is 0) -> |0.55 - 0.5| x 2/5
    # bin (0.6, 0.7]: 0.65, right -> |0.65 - 1| x 1/5
    expected = 0.45 * 2 / 5 + 0.05 * 2 / 5 + 0.35 / 5
    assert judge.calibration_error(logits, labels, bins=10) == pytest.approx(expected, abs=1e-6)


def test_the_threshold_rule_keeps_the_stated_share_and_no_more():
    scores = torch.rand(1000, generator=torch.Generator().manual_seed(0))
    threshold = judge.choose_threshold(scores, keep=0.95)
    assert (scores >= threshold).float().mean() >= 0.95
    assert (scores >= threshold + 1e-6).float().mean() < 0.95  # the highest such threshold
    with pytest.raises(ValueError, match="share between 0 and 1"):
        judge.choose_threshold(scores, keep=95)


def test_not_a_digit_is_never_readable():
    logits = torch.tensor([[0.0] * 10 + [9.0], [9.0] + [0.0] * 10])
    assert judge.readable_scores(logits)[0] == 0 and judge.readable_scores(logits)[1] > 0.99
    verdict = judge.Verdict(torch.tensor([10, 3]), torch.tensor([0.99, 0.99]), torch.zeros(2))
    assert verdict.readable(0.5).tolist() == [False, True]


@pytest.fixture(scope="module")
def short_judge(sample):
    return judge.train_judge(sample, CPU, steps=JUDGE_STEPS, progress=False)


JUDGE_STEPS = 400  # on the sample: clean pass and blend pass in the test below, measured when written


def test_a_short_trained_judge_rejects_blends_and_passes_the_chosen_share_of_digits(short_judge, sample):
    choose, _ = judge.threshold_split(sample.test_labels)
    choosing = sample.test_images[choose]
    threshold = float(short_judge.threshold)
    # the rule, on the half that set it (one image of slack: the rule is applied in double, the judge reads in float)
    assert judge.readable_share(short_judge, choosing) >= judge.KEEP_CLEAN_SHARE - 1.01 / len(choosing)
    assert judge.readable_share(short_judge, choosing, threshold + 1e-4) < judge.KEEP_CLEAN_SHARE
    rates = judge.pass_rates(short_judge, judge.hard_negatives(sample.test_images, sample.test_labels, count=500))
    assert rates["pixel blends"] < 0.25 and rates["flat"] == 0 and rates["noise"] < 0.05


def test_the_judge_keeps_the_temperature_that_fits_its_held_out_images_best(short_judge, sample):
    """The stored temperature minimises the cross-entropy on the held-out training images and their negatives."""
    from dae_utils import negatives

    held_out = min(judge.JUDGE_HELD_OUT, len(sample.train_images) // 5)
    images, labels = sample.train_images[-held_out:], sample.train_labels[-held_out:]
    fakes = negatives.mixed(images, labels, held_out, torch.Generator().manual_seed(1))
    logits = judge.logits_of(short_judge.classifier, torch.cat([images, fakes]))
    targets = torch.cat([labels, torch.full((held_out,), judge.NOT_A_DIGIT)])
    temperature = float(short_judge.temperature)

    def loss(t: float) -> float:
        return float(torch.nn.functional.cross_entropy(logits / t, targets))

    assert temperature == pytest.approx(judge.fit_temperature(logits, targets), rel=1e-6)
    assert loss(temperature) < min(loss(temperature * 1.2), loss(temperature / 1.2))


def test_a_cached_judge_keeps_its_temperature_and_threshold(sample, short_judge, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(judge, "train_judge", lambda *args, **kwargs: short_judge)
    first = judge.load_or_train_judge(sample, CPU, tmp_path, steps=JUDGE_STEPS, progress=False)
    assert judge.judge_path(tmp_path, sample.key, steps=JUDGE_STEPS).is_file()
    monkeypatch.setattr(judge, "train_judge", lambda *args, **kwargs: pytest.fail("trained again"))
    again = judge.load_or_train_judge(sample, CPU, tmp_path, steps=JUDGE_STEPS, progress=False)
    assert "Loaded" in capsys.readouterr().out
    assert float(again.temperature) == float(first.temperature) and float(again.threshold) == float(first.threshold)
    assert judge.readable_share(again, sample.test_images[:50]) == judge.readable_share(first, sample.test_images[:50])
    with pytest.raises(ckpt.CheckpointError, match="not a digit judge of this version"):
        judge.read_judge(_classifier_file(sample, tmp_path))  # a digit reader's file is not a judge's


def test_the_threshold_split_is_a_seeded_half_stratified_by_digit(sample):
    labels = sample.test_labels
    choose, check = judge.threshold_split(labels)
    assert len(choose) + len(check) == len(labels) and abs(len(choose) - len(check)) <= 1
    assert sorted(torch.cat([choose, check]).tolist()) == list(range(len(labels)))  # disjoint, and every image
    per_digit = torch.bincount(labels[choose], minlength=10) - torch.bincount(labels[check], minlength=10)
    assert per_digit.abs().max() <= 1  # each digit split evenly
    assert torch.equal(judge.threshold_split(labels)[0], choose)  # seeded
    assert not torch.equal(judge.threshold_split(labels, seed=1)[0], choose)
    assert not torch.equal(choose, torch.arange(len(labels) // 2))  # not the first half of the ordered test set
    with pytest.raises(ValueError, match="cannot be split"):
        judge.threshold_split(labels[:1])


def test_a_judge_too_short_trained_to_keep_the_digits_is_refused(sample):
    with pytest.raises(RuntimeError, match="train it for more steps"):
        judge.train_judge(sample, CPU, steps=5, progress=False)


def _classifier_file(sample, folder):
    judge.load_or_train_classifier(sample, CPU, folder, steps=5, progress=False)
    return judge.classifier_path(folder, sample.key, steps=5)


class _Fixed(torch.nn.Module):
    """A judge whose logits for image i are row i of a fixed table (the image's first pixel holds i)."""

    def __init__(self, logits: torch.Tensor, threshold: float) -> None:
        super().__init__()
        self.register_buffer("table", logits)
        self.register_buffer("threshold", torch.tensor(threshold))
        self.unused = torch.nn.Parameter(torch.zeros(1))  # where logits_of finds the device

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.table[images[:, 0, 0, 0].round().long()]


def test_readings_split_right_digits_four_ways_by_hand():
    big, small = 9.0, 1.5  # softmax over 11 classes: about 0.999 and about 0.31
    rows = [[big if c == 3 else 0.0 for c in range(11)],    # 3, sure: right and readable
            [small if c == 3 else 0.0 for c in range(11)],  # 3, unsure: right, below the threshold
            [big if c == 5 else 0.0 for c in range(11)],    # 5 for a 3: another digit
            [big if c == 10 else 0.0 for c in range(11)]]   # not a digit
    classifier = _Fixed(torch.tensor(rows), threshold=0.8)
    images = torch.zeros(4, 1, 28, 28)
    images[:, 0, 0, 0] = torch.arange(4).float()
    split = judge.readings(classifier, images, torch.tensor([3, 3, 3, 3]))
    assert split == {"right and readable": 0.25, "right, below the threshold": 0.25, "another digit": 0.25,
                     "not a digit": 0.25}
    with pytest.raises(ValueError, match="one label per image"):
        judge.readings(classifier, images, torch.tensor([3]))


def test_varied_digits_blur_shift_and_mix_same_digits(sample):
    images, labels = sample.train_images[:16], sample.train_labels[:16]
    out = judge.vary_digits(images, labels, sample.train_images, sample.train_labels, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and torch.equal(out[12:], images[12:])  # the last quarter as written
    assert (out[:4].amax(dim=(1, 2, 3)) < images[:4].amax(dim=(1, 2, 3))).all()  # blurred: the peaks come down
    for row in range(4, 8):  # shifted: some roll of up to 3 pixels each way reproduces it exactly
        assert any(torch.equal(out[row], torch.roll(images[row], (dy, dx), (-2, -1)))
                   for dy in range(-3, 4) for dx in range(-3, 4))
    for row in range(8, 12):  # mixed: w * image + (1 - w) * another image of the same digit, w in [0.3, 0.7]
        partners = sample.train_images[sample.train_labels == labels[row]]
        weights = torch.linspace(0.3, 0.7, 401)
        assert any(((out[row] - w * images[row]) / (1 - w) - partners).abs().amax(dim=(1, 2, 3)).min() < 2e-3
                   for w in weights), f"row {row} is no mix of its digit with another {int(labels[row])}"
