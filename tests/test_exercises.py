"""Every exercise check accepts a right answer and rejects plausible wrong ones with a hint."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from dae_utils import exercises
from dae_utils.batchnorm import batch_norm_2d
from dae_utils.clustering import mode_mapping
from dae_utils.model import Decoder
from dae_utils.noise import add_noise

CPU = torch.device("cpu")


def rejects(check, answer, hint, *args):
    with pytest.raises(exercises.NotYet, match=hint) as caught:
        check(answer, *args)
    assert caught.value._render_traceback_()[0].startswith("\u2717 Not yet.")


def test_black_pixel_mse(capsys):
    exercises.check_black_pixel_mse(lambda s: s**2 / 2)
    assert "\u2713 Right" in capsys.readouterr().out
    rejects(exercises.check_black_pixel_mse, lambda s: s**2, "without the clamp")
    rejects(exercises.check_black_pixel_mse, lambda s: s / math.sqrt(2 * math.pi), "not the mean of its square")
    rejects(exercises.check_black_pixel_mse, lambda s: s / 2, "Split the expectation")


def test_add_noise(capsys):
    exercises.check_add_noise(lambda images, f, g: add_noise(images, f, generator=g))
    assert "\u2713 Right" in capsys.readouterr().out

    def no_clamp(images, f, g):
        return images + f * torch.randn(images.shape, generator=g)

    def squared(images, f, g):
        return (images + f**2 * torch.randn(images.shape, generator=g)).clamp(0, 1)

    def own_noise(images, f, g):
        return (images + f * torch.randn(images.shape)).clamp(0, 1)

    rejects(exercises.check_add_noise, no_clamp, "clamped back")
    rejects(exercises.check_add_noise, squared, "squared")
    rejects(exercises.check_add_noise, own_noise, "generator=generator")


def test_batch_norm(capsys):
    exercises.check_batch_norm(batch_norm_2d)
    assert "\u2713 Right" in capsys.readouterr().out

    def by_variance(x, gamma, beta, eps):
        mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        return gamma.view(1, -1, 1, 1) * (x - mean) / (var + eps) + beta.view(1, -1, 1, 1)

    def unbiased(x, gamma, beta, eps):
        mean, var = x.mean(dim=(0, 2, 3), keepdim=True), x.var(dim=(0, 2, 3), unbiased=True, keepdim=True)
        return gamma.view(1, -1, 1, 1) * (x - mean) / torch.sqrt(var + eps) + beta.view(1, -1, 1, 1)

    rejects(exercises.check_batch_norm, by_variance, "standard deviation")
    rejects(exercises.check_batch_norm, unbiased, "unbiased")
    rejects(exercises.check_batch_norm, lambda x, g, b, eps: batch_norm_2d(x, eps=eps), "gamma and beta")


def _step(encoder, decoder, optimizer, clean, noise_factor, target="clean", zero_grad=True):
    noisy = add_noise(clean, noise_factor)
    loss = nn.functional.mse_loss(decoder(encoder(noisy)), clean if target == "clean" else noisy)
    if zero_grad:
        optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def test_train_step(capsys):
    exercises.check_train_step(_step)
    assert "\u2713 Right" in capsys.readouterr().out
    rejects(exercises.check_train_step, lambda *a: _step(*a, target="noisy"), "noisy input")
    rejects(exercises.check_train_step, lambda *a: _step(*a, zero_grad=False), "zero_grad")


def test_decode_grid(capsys):
    torch.manual_seed(0)
    decoder = Decoder(4)

    def right(decoder, latent, device):
        decoder.eval()
        with torch.no_grad():
            return decoder(latent.to(device)).cpu()

    def train_mode(decoder, latent, device):
        with torch.no_grad():
            return decoder(latent.to(device)).cpu()

    exercises.check_decode_grid(right, decoder, CPU)
    assert "\u2713 Right" in capsys.readouterr().out
    rejects(exercises.check_decode_grid, train_mode, "training mode", decoder, CPU)
    rejects(exercises.check_decode_grid, lambda d, z, dev: right(d, z, dev)[:, 0], r"\(9, 1, 28, 28\)", decoder, CPU)


def test_mode_mapping(capsys):
    def right(clusters, labels):
        mapping = mode_mapping(clusters, labels)
        return mapping, float(np.mean(mapping[clusters] == labels))

    exercises.check_mode_mapping(right)
    assert "\u2713 Right" in capsys.readouterr().out
    rejects(exercises.check_mode_mapping, lambda c, y: (right(c, y)[0], float(np.mean(c == y))), "cluster numbers")

    def one_to_one(clusters, labels):
        from dae_utils.clustering import hungarian_mapping

        mapping = hungarian_mapping(clusters, labels)
        return mapping, float(np.mean(mapping[clusters] == labels))

    rejects(exercises.check_mode_mapping, one_to_one, "claim the same digit")


def test_unfinished_answers_raise_not_implemented():
    def stub(*args):
        raise NotImplementedError

    for check in (exercises.check_add_noise, exercises.check_batch_norm, exercises.check_black_pixel_mse,
                  exercises.check_train_step, exercises.check_mode_mapping):
        with pytest.raises(NotImplementedError):
            check(stub)
    with pytest.raises(NotImplementedError):
        exercises.check_decode_grid(stub, Decoder(4), CPU)


def test_decode_check_leaves_the_model_unchanged():
    torch.manual_seed(0)
    decoder = Decoder(4).eval()
    before = {k: v.clone() for k, v in decoder.state_dict().items()}

    def train_mode(decoder, latent, device):
        decoder.train()
        with torch.no_grad():
            return decoder(latent.to(device)).cpu()

    with pytest.raises(exercises.NotYet):
        exercises.check_decode_grid(train_mode, decoder, CPU)
    assert not decoder.training
    assert all(torch.equal(before[k], v) for k, v in decoder.state_dict().items())


def test_hungarian_accuracy(capsys):
    from scipy.optimize import linear_sum_assignment

    def right(clusters, labels):
        counts = np.zeros((10, 10), dtype=np.int64)
        np.add.at(counts, (labels, clusters), 1)
        digits, chosen = linear_sum_assignment(counts, maximize=True)
        return counts[digits, chosen].sum() / len(labels)

    def mode_instead(clusters, labels):
        mapping = mode_mapping(clusters, labels)
        return float(np.mean(mapping[clusters] == labels))

    exercises.check_hungarian_accuracy(right)
    assert "\u2713 Right" in capsys.readouterr().out
    rejects(exercises.check_hungarian_accuracy, mode_instead, "linear_sum_assignment")
    rejects(exercises.check_hungarian_accuracy, lambda c, y: float(np.mean(c == y)), "counts")
