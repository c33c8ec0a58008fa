import numpy as np
import pytest
import torch

from dae_utils import baselines
from dae_utils.noise import add_noise


def test_median_filter_by_hand_and_per_image():
    images = torch.zeros(2, 1, 5, 5)
    images[0, 0, 2, 2] = 1.0  # a lone speckle: the median of its 3x3 window is 0
    images[1, 0, 1:4, 1:4] = 1.0  # a solid 3x3 block keeps its centre
    filtered = baselines.median_filter(images)
    assert filtered[0].sum() == 0
    assert filtered[1, 0, 2, 2] == 1.0
    # The window never reaches into the neighbouring image of the batch.
    assert torch.equal(baselines.median_filter(images[1:]), filtered[1:])


def test_gaussian_blur_keeps_the_mean_and_smooths():
    torch.manual_seed(0)
    images = torch.rand(3, 1, 28, 28)
    blurred = baselines.gaussian_blur(images, 1.0)
    assert blurred.mean().item() == pytest.approx(images.mean().item(), abs=1e-4)
    assert blurred.std() < images.std()
    assert torch.equal(baselines.gaussian_blur(images, 0.0), images)


def test_fitted_sigma_minimises_the_mse():
    from dae_utils.data import load_sample

    clean = load_sample().train_images[:300]
    noisy = add_noise(clean, 0.3, generator=torch.Generator().manual_seed(0))
    sigma = baselines.fit_blur_sigma(clean, noisy)
    best = baselines.mse(baselines.gaussian_blur(noisy, sigma), clean)
    for other in np.linspace(0.2, 2.5, 12):
        assert best <= baselines.mse(baselines.gaussian_blur(noisy, float(other)), clean) + 1e-6
    # Both filters beat the noisy input itself at noise 0.3.
    assert best < baselines.mse(noisy, clean)
    assert baselines.mse(baselines.median_filter(noisy), clean) < baselines.mse(noisy, clean)


def test_filters_refuse_other_shapes():
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        baselines.median_filter(torch.zeros(28, 28))
