import math

import pytest
import torch

from dae_utils import noise
from dae_utils.noise import DEFAULT_NOISE_FACTOR, add_noise, psnr


def test_noise_has_the_requested_standard_deviation_before_clamping():
    # Mid-grey images: with noise_factor 0.1, clamping at 0 and 1 (5 sigma away) almost never acts.
    images = torch.full((64, 1, 28, 28), 0.5)
    noisy = add_noise(images, 0.1, generator=torch.Generator().manual_seed(0))
    diff = noisy - images
    assert abs(diff.mean().item()) < 0.002
    assert diff.std().item() == pytest.approx(0.1, rel=0.01)


def test_noise_equals_the_formula_with_the_same_generator():
    images = torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    noisy = add_noise(images, 0.3, generator=torch.Generator().manual_seed(2))
    expected = (images + 0.3 * torch.randn(images.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    assert torch.equal(noisy, expected)


def test_noise_is_clamped_to_pixel_range():
    images = torch.cat([torch.zeros(16, 1, 28, 28), torch.ones(16, 1, 28, 28)])
    noisy = add_noise(images, 1.0, generator=torch.Generator().manual_seed(0))
    assert noisy.min().item() == 0.0 and noisy.max().item() == 1.0
    # About half the pixels of a black image get negative noise and are clamped to exactly 0.
    assert (noisy[:16] == 0).float().mean().item() == pytest.approx(0.5, abs=0.02)


def test_zero_noise_returns_the_images():
    images = torch.rand(4, 1, 28, 28)
    assert torch.equal(add_noise(images, 0.0), images)


def test_default_noise_factor_is_the_tutorials():
    assert DEFAULT_NOISE_FACTOR == 0.3


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, "a lot", None])
def test_bad_noise_factor_raises_a_clear_error(bad):
    with pytest.raises(ValueError, match="noise_factor"):
        add_noise(torch.zeros(1, 1, 28, 28), bad)


def test_integer_images_are_refused():
    with pytest.raises(ValueError, match="float"):
        add_noise(torch.zeros(1, 1, 28, 28, dtype=torch.uint8), 0.3)


def test_psnr_matches_hand_computation():
    target = torch.zeros(1, 1, 2, 2)
    estimate = torch.tensor([[[[0.1, 0.1], [0.1, 0.1]]]])
    assert psnr(estimate, target) == pytest.approx(10 * math.log10(1 / 0.01))
    assert psnr(target, target) == math.inf


@pytest.mark.parametrize("x", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("factor", [0.1, 0.3, 0.8])
def test_expected_clamped_matches_a_monte_carlo_estimate(x, factor):
    from dae_utils.noise import expected_clamped

    draws = add_noise(torch.full((2_000_000,), x), factor, generator=torch.Generator().manual_seed(0))
    assert expected_clamped(x, factor) == pytest.approx(draws.double().mean().item(), abs=1e-3)


def test_clamp_bias_of_black_and_white_pixels_is_f_over_sqrt_2pi():
    import math

    from dae_utils.noise import expected_clamped

    bias = 0.3 / math.sqrt(2 * math.pi)
    assert expected_clamped(0.0, 0.3) == pytest.approx(bias, abs=1e-4)  # the clamp at 1, 3.3 sigma away, adds 3e-5
    assert 1.0 - expected_clamped(1.0, 0.3) == pytest.approx(bias, abs=1e-4)
    assert expected_clamped(0.5, 0.0) == 0.5


def test_the_course_has_one_mse_and_psnr_is_it_on_a_log_scale():
    from dae_utils import baselines

    estimate = torch.tensor([[0.0, 0.5], [1.0, 0.25]])
    target = torch.tensor([[0.0, 1.0], [0.0, 0.25]])
    assert noise.mse(estimate, target) == pytest.approx((0.25 + 1.0) / 4)  # by hand: (0.5^2 + 1^2) over 4 pixels
    assert noise.mse(estimate.double(), target.half()) == pytest.approx(0.3125)  # any float dtypes
    assert baselines.mse is noise.mse
    assert noise.psnr(estimate, target) == pytest.approx(10 * math.log10(1 / 0.3125))
