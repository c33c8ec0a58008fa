"""The variational autoencoder (notebook 7): its KL term, the reparameterisation, training and checkpoints."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dae_utils import checkpoint as ckpt
from dae_utils import vae
from dae_utils.model import Decoder, Encoder, layer_table
from dae_utils.training import TrainConfig, checkpoint_path, train_or_load

CPU = torch.device("cpu")
CONFIG = vae.VAEConfig(num_epochs=3, batch_size=64, seed=0)


def test_kl_equals_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    mean = torch.randn(32, 4, generator=generator, dtype=torch.float64) * 2
    logvar = torch.randn(32, 4, generator=generator, dtype=torch.float64) * 1.5
    expected = kl_divergence(Normal(mean, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(dim=1)
    assert torch.allclose(vae.kl_to_standard_normal(mean, logvar), expected, rtol=1e-12, atol=1e-12)


def test_kl_is_zero_only_at_the_standard_normal():
    zeros = torch.zeros(5, 4)
    assert torch.equal(vae.kl_to_standard_normal(zeros, zeros), torch.zeros(5))
    assert (vae.kl_to_standard_normal(zeros + 0.1, zeros) > 0).all()
    assert (vae.kl_to_standard_normal(zeros, zeros - 0.1) > 0).all()


def test_reparameterised_samples_have_the_intended_mean_and_variance():
    mean = torch.tensor([[-1.0, 0.0, 2.0, 0.5]]).expand(200_000, 4)
    logvar = torch.tensor([[-2.0, 0.0, 1.0, 0.3]]).expand(200_000, 4)
    z = vae.reparameterize(mean, logvar, torch.Generator().manual_seed(1))
    assert torch.allclose(z.mean(0), mean[0], atol=0.02)
    assert torch.allclose(z.var(0), logvar[0].exp(), rtol=0.02)


def test_gradients_reach_the_mean_and_the_log_variance():
    mean = torch.randn(8, 4, requires_grad=True)
    logvar = torch.randn(8, 4, requires_grad=True)
    z = vae.reparameterize(mean, logvar, torch.Generator().manual_seed(2))
    z.sum().backward()
    assert torch.equal(mean.grad, torch.ones(8, 4))  # dz/dmean = 1
    # dz/dlogvar = eps * exp(logvar / 2) / 2 = (z - mean) / 2
    assert torch.allclose(logvar.grad, (z - mean).detach() / 2, atol=1e-6)


def test_the_same_generator_repeats_a_sample():
    mean, logvar = torch.zeros(3, 4), torch.zeros(3, 4)
    first = vae.reparameterize(mean, logvar, torch.Generator().manual_seed(5))
    again = vae.reparameterize(mean, logvar, torch.Generator().manual_seed(5))
    other = vae.reparameterize(mean, logvar, torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_elbo_loss_is_bce_summed_over_pixels_plus_beta_kl_per_image():
    generator = torch.Generator().manual_seed(3)
    recon = torch.rand(6, 1, 28, 28, generator=generator).clamp(0.01, 0.99)
    target = torch.rand(6, 1, 28, 28, generator=generator)
    mean, logvar = torch.randn(6, 4, generator=generator), torch.randn(6, 4, generator=generator)
    terms = vae.elbo_loss(recon, target, mean, logvar, beta=2.5)
    by_hand = -(target * recon.log() + (1 - target) * (1 - recon).log()).sum() / 6
    assert terms.reconstruction.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert terms.kl.item() == pytest.approx(vae.kl_to_standard_normal(mean, logvar).mean().item(), rel=1e-6)
    assert terms.loss.item() == pytest.approx(terms.reconstruction.item() + 2.5 * terms.kl.item(), rel=1e-6)


def test_the_variational_encoder_is_the_course_encoder_with_a_wider_last_layer():
    plain, variational = Encoder(4), vae.VariationalEncoder(4)
    rows_plain = layer_table(plain, (1, 1, 28, 28))
    rows_vae = layer_table(variational, (1, 1, 28, 28))
    assert [r.output_shape for r in rows_vae[:-1]] == [r.output_shape for r in rows_plain[:-1]]
    assert rows_plain[-1].output_shape == (1, 4) and rows_vae[-1].output_shape == (1, 8)
    assert rows_vae[-1].num_params == 128 * 8 + 8
    images = torch.rand(5, 1, 28, 28)
    variational.eval()
    mean, logvar = variational.posterior(images)
    assert mean.shape == logvar.shape == (5, 4)
    assert torch.equal(variational(images), mean)  # calling it gives the code: the mean
    assert variational.latent_dim == 4


def test_vae_config_names_its_checkpoints_apart_and_refuses_a_bad_beta(tmp_path):
    dae_path = checkpoint_path(tmp_path, TrainConfig(), "k")
    vae_path = checkpoint_path(tmp_path, vae.VAEConfig(beta=0.5), "k")
    assert dae_path.name.startswith("dae_d4_noise0.3")
    assert vae_path.name.startswith("vae_d4_beta0.5_noise0.3") and vae_path != dae_path
    for bad in (-1.0, float("nan"), "1", True):
        with pytest.raises(ValueError, match="beta must be a number"):
            vae.VAEConfig(beta=bad)


def test_vae_training_lowers_both_the_elbo_and_the_test_mse(small):
    result = train_or_load(replace(CONFIG, num_epochs=4, batch_size=32), small, CPU, progress=False)
    train, test = result.history["train_loss"], result.history["test_loss"]
    assert isinstance(result.encoder, vae.VariationalEncoder)
    assert train[-1] < 0.8 * train[0]  # the negative ELBO per image
    assert test[-1] < test[0]  # the MSE per pixel of decoding the means of noisy test images
    # different units: the test MSE is per pixel of [0, 1] images; the training loss sums BCE over 784 pixels
    assert 0 < test[-1] < 1 and train[-1] > 100
    report = vae.elbo_report(result.encoder, result.decoder, small.test_images, CPU)
    assert len(report["kl_per_dim"]) == 4 and report["kl"] > 0
    assert report["negative_elbo"] == pytest.approx(report["reconstruction"] + report["kl"])


def test_beta_changes_the_trade_off(small):
    reports = {}
    for beta in (0.1, 10.0):
        result = train_or_load(replace(CONFIG, beta=beta), small, CPU, progress=False)
        reports[beta] = vae.elbo_report(result.encoder, result.decoder, small.test_images, CPU)
    assert reports[10.0]["kl"] < reports[0.1]["kl"]  # a heavier KL term keeps the codes closer to N(0, I)
    assert reports[10.0]["reconstruction"] > reports[0.1]["reconstruction"]  # and pays in reconstruction


def test_vae_checkpoint_round_trip_and_exact_resume(small, tmp_path, interrupt_in_epoch):
    uninterrupted = train_or_load(CONFIG, small, CPU, checkpoint_dir=None, progress=False)
    interrupt_in_epoch(CONFIG, small, tmp_path, epoch=3)
    path = checkpoint_path(tmp_path, CONFIG, small.key)
    state = ckpt.read_checkpoint(path)
    assert state["epoch"] == 2 and state["config"]["beta"] == 1.0

    resumed = train_or_load(CONFIG, small, CPU, checkpoint_dir=tmp_path, progress=False)
    assert resumed.epochs_trained_now == 1
    assert resumed.history == uninterrupted.history  # exactly, on the CPU
    for mine, theirs in ((resumed.encoder, uninterrupted.encoder), (resumed.decoder, uninterrupted.decoder)):
        for (name, a), (_, b) in zip(mine.state_dict().items(), theirs.state_dict().items(), strict=True):
            assert torch.equal(a, b), name

    encoder, decoder = vae.VariationalEncoder(4), Decoder(4)
    ckpt.load_checkpoint(path, encoder, decoder)
    encoder.eval()
    x = small.test_images[:16]
    with torch.no_grad():
        assert torch.equal(decoder.eval()(encoder(x)), resumed.decoder(resumed.encoder(x)))
    again = train_or_load(CONFIG, small, CPU, checkpoint_dir=tmp_path, progress=False)
    assert again.epochs_trained_now == 0


def test_a_vae_checkpoint_does_not_load_into_the_plain_encoder(small, tmp_path):
    result = train_or_load(replace(CONFIG, num_epochs=1), small, CPU, checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ckpt.CheckpointError, match="does not fit this model"):
        ckpt.load_checkpoint(result.checkpoint, Encoder(4), Decoder(4))


def test_index_information_by_hand_and_the_perfect_arrangement():
    generator = torch.Generator().manual_seed(0)
    # Eight images whose Gaussians lie far apart: a code tells its image exactly, log 8 nats; all alike: nothing.
    apart = torch.arange(8.0)[:, None].repeat(1, 4) * 100
    narrow = torch.full((8, 4), -4.0)
    information, error = vae.index_information(apart, narrow, 4000, generator)
    assert information == pytest.approx(np.log(8), abs=1e-9) and error < 1e-9
    same, _ = vae.index_information(torch.zeros(8, 4), torch.zeros(8, 4), 4000, generator)
    assert same == pytest.approx(0.0, abs=1e-9)
    # The perfect arrangement: variance exp(-2 I / d) each, means spread so that the codes are N(0, I) together.
    means, logvar = vae.well_arranged_posteriors(50_000, 4, 6.0, generator)
    assert torch.allclose(logvar, torch.full_like(logvar, -3.0))  # -2 * 6 / 4
    codes = vae.reparameterize(means, logvar, generator)
    assert codes.var(dim=0).tolist() == pytest.approx([1.0] * 4, abs=0.03)
    # More posteriors, a smaller floor: the estimate falls toward the population's 0.
    few = vae.aggregate_kl(*vae.well_arranged_posteriors(500, 4, 6.0, generator), 4000, generator)
    many = vae.aggregate_kl(*vae.well_arranged_posteriors(20_000, 4, 6.0, generator), 4000, generator)
    assert few > many > 0
    with pytest.raises(ValueError, match="information must be positive"):
        vae.well_arranged_posteriors(10, 4, 0.0)
