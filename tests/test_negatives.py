"""The hard negatives the digit judge must reject: each kind is what its name says, and a seed repeats it."""

import pytest
import torch

from dae_utils import negatives
from dae_utils.data import load_sample


@pytest.fixture(scope="module")
def sample():
    return load_sample()


def test_blends_mix_two_different_digits_by_the_given_weight(sample):
    images, labels = sample.test_images, sample.test_labels
    first, second = negatives.different_pairs(labels, 500, torch.Generator().manual_seed(0))
    assert (labels[first] != labels[second]).all()
    made = negatives.blends(images, labels, 500, torch.Generator().manual_seed(0))
    assert torch.allclose(made, 0.5 * images[first] + 0.5 * images[second])
    weighted = negatives.blends(images, labels, 200, torch.Generator().manual_seed(1), weight=(0.3, 0.7))
    assert weighted.shape == (200, 1, 28, 28) and 0 <= weighted.min() and weighted.max() <= 1


def test_a_seed_repeats_the_negatives_and_another_seed_does_not(sample):
    for kind in negatives.KINDS:
        one = negatives.make(kind, sample.test_images, sample.test_labels, 30, torch.Generator().manual_seed(3))
        again = negatives.make(kind, sample.test_images, sample.test_labels, 30, torch.Generator().manual_seed(3))
        other = negatives.make(kind, sample.test_images, sample.test_labels, 30, torch.Generator().manual_seed(4))
        assert one.shape == (30, 1, 28, 28) and torch.equal(one, again)
        assert not torch.equal(one, other)
        assert 0 <= one.min() and one.max() <= 1


def test_halves_erase_one_half_and_keep_the_other(sample):
    images = sample.test_images[:1].expand(400, 1, 28, 28)
    cut = negatives.halves(images, 400, torch.Generator().manual_seed(0))
    original = images[0, 0]
    parts = {"top": (slice(0, 14), slice(None)), "bottom": (slice(14, 28), slice(None)),
             "left": (slice(None), slice(0, 14)), "right": (slice(None), slice(14, 28))}
    seen = set()
    for image in cut[:, 0]:
        erased = [name for name, where in parts.items() if (image[where] == 0).all() and original[where].any()]
        assert erased, "no half was erased"
        name = erased[0]
        keep = image.clone()
        keep[parts[name]] = original[parts[name]]
        assert torch.equal(keep, original)  # only that half changed
        seen.add(name)
    assert seen == set(parts)


def test_strokes_have_ink_of_a_digit_s_range_and_width():
    made = negatives.strokes(300, torch.Generator().manual_seed(0))
    ink = (made > 0.5).flatten(1).sum(dim=1).float()
    assert (made.amax(dim=(1, 2, 3)) == 1).all()
    # MNIST digits have about 100-200 pixels above 0.5; a scribble of one to three strokes has tens to hundreds
    assert 20 < ink.median() < 250 and (ink > 0).all()


def test_noise_and_flat_images():
    generator = torch.Generator().manual_seed(0)
    flat = negatives.flat(9, generator)
    assert (flat.flatten(1).std(dim=1) == 0).all() and (flat[::3] == 0).all()
    noisy = negatives.noise(10, generator)
    assert (noisy.flatten(1).std(dim=1) > 0.1).all()


def test_mixed_gives_the_count_in_the_shares(sample):
    made = negatives.mixed(sample.train_images, sample.train_labels, 101, torch.Generator().manual_seed(0))
    assert made.shape == (101, 1, 28, 28)
    flat = (made.flatten(1).std(dim=1) == 0).sum()
    assert flat == round(0.1 * 101)


@pytest.mark.parametrize("call, message", [
    (lambda s: negatives.make("smudges", s.test_images, s.test_labels, 3, torch.Generator()), "Unknown kind.*pixel"),
    (lambda s: negatives.halves(s.test_images, 0, torch.Generator()), "at least 1"),
    (lambda s: negatives.blends(s.test_images[:5], torch.zeros(5, dtype=torch.long), 3, torch.Generator()),
     "two different digits"),
])
def test_bad_requests_are_refused_with_what_to_do(sample, call, message):
    with pytest.raises(ValueError, match=message):
        call(sample)


def test_unusual_digits_are_right_digits_drawn_unusually(sample):
    from torchvision.transforms.functional import gaussian_blur

    images, labels = sample.test_images, sample.test_labels
    made = negatives.unusual_digits(images, labels, 200, seed=7)
    assert list(made) == list(negatives.UNUSUAL_KINDS)
    again = negatives.unusual_digits(images, labels, 200, seed=7)
    for kind, (pictures, kind_labels) in made.items():
        assert pictures.shape == (200, 1, 28, 28) and kind_labels.shape == (200,)
        assert torch.equal(pictures, again[kind][0]) and pictures.min() >= 0 and pictures.max() <= 1
    # Each kind, by hand: find the source image of every picture and redo the change.
    shifted, shifted_labels = made["shifted 3 pixels diagonally"]
    ink = shifted.sum(dim=(1, 2, 3))
    for picture, label in zip(shifted[:20], shifted_labels[:20], strict=True):
        source = images[(images[:, :, :-3, :-3] - picture[None, :, 3:, 3:]).abs().amax(dim=(1, 2, 3)) == 0]
        assert len(source) >= 1 and labels[(images == source[0]).all(dim=(1, 2, 3))][0] == label
        assert torch.equal(picture[:, :3].sum() + picture[:, :, :3].sum(), torch.tensor(0.0))  # a blank band
    assert (ink > 0).all()
    blurred, blurred_labels = made["blurred, sigma 1.5"]
    redone = gaussian_blur(images, kernel_size=7, sigma=1.5)
    for picture, label in zip(blurred[:20], blurred_labels[:20], strict=True):
        match = (redone - picture).abs().amax(dim=(1, 2, 3)) < 1e-6
        assert match.any() and (labels[match] == label).all()
    first, second = negatives.same_digit_pairs(labels, 500, torch.Generator().manual_seed(0))
    assert torch.equal(labels[first], labels[second]) and (first != second).all()
    means, mean_labels = made["two of the same digit"]
    assert (mean_labels >= 0).all() and means.max() <= 1
    with pytest.raises(ValueError, match="Unknown kind of unusual digit"):
        negatives.unusual("rotated", images, labels, 5, torch.Generator())
