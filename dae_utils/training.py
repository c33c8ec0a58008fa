"""Train and test the denoising autoencoder: one epoch at a time, ``fit``, and resuming.

The train and test functions take everything they use as arguments (models,
device, loader, loss, optimizer), like pytorch/examples' ``mnist/main.py``.
Losses are exact per-pixel means over the whole data set: each batch's mean is
weighted by its size, so a short last batch counts no more than it should.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from . import threads
from .data import MNISTData, make_loader
from .generation import decode, encode
from .model import Decoder, Encoder
from .noise import DEFAULT_NOISE_FACTOR, add_noise, mse
from .parameters import check_bool, check_parameters
from .runtime import seed_everything

#: The test images get the same noise every epoch, so test losses are comparable.
TEST_NOISE_SEED = 12345
#: Training images scored like the test set (eval mode, fixed noise) after every epoch.
TRAIN_EVAL_SIZE = 10_000
#: Test images whose denoised versions are kept after every epoch, to show training progress.
SNAPSHOT_IMAGES = 8
#: The progress bar shows the epoch's running training loss every this many batches. Reading a
#: loss waits for the GPU to finish its queue, so it is not done at every batch.
LOSS_DISPLAY_EVERY = 50

History = dict[str, list[float]]


@dataclass(frozen=True)
class TrainConfig:
    """The settings of a training run; a checkpoint stores them and is matched on them."""

    num_epochs: int = 30  # the assignment's 30 epochs
    noise_factor: float = DEFAULT_NOISE_FACTOR
    latent_dim: int = 4  # the assignment's d = 4
    lr: float = 1e-3  # Adam's learning rate in the assignment
    batch_size: int = 256
    seed: int = 0
    batchnorm_affine: bool = True  # False: batch norm without its learnable gamma and beta
    batchnorm: bool = True  # False: no batch norm at all (notebook 2's experiment)

    def __post_init__(self) -> None:
        # The same checks as the notebooks' parameters of the same names, with the same messages.
        check_parameters(num_epochs=self.num_epochs, latent_dim=self.latent_dim, batch_size=self.batch_size,
                         lr=self.lr, noise_factor=self.noise_factor, seed=self.seed)
        check_bool("batchnorm_affine", self.batchnorm_affine)
        check_bool("batchnorm", self.batchnorm)

    #: The first word of a checkpoint's file name: which kind of model it holds.
    kind: ClassVar[str] = "dae"

    def name_parts(self) -> list[str]:
        """Return the parts of a checkpoint's file name that say how the model was trained."""
        return [
            f"d{self.latent_dim}",
            f"noise{self.noise_factor:g}",
            f"ep{self.num_epochs}",
            f"lr{self.lr:g}",
            f"bs{self.batch_size}",
            f"seed{self.seed}",
            "" if self.batchnorm_affine else "noaffine",
            "" if self.batchnorm else "nobn",
        ]

    def make_encoder(self) -> Encoder:
        """Build the encoder these settings train (a variational one in ``vae.VAEConfig``)."""
        return Encoder(self.latent_dim, self.batchnorm_affine, self.batchnorm)

    def training_step(self) -> Step:
        """Return the function that does one optimisation step for these settings."""
        return training_step


#: One optimisation step: (encoder, decoder, loss_fn, optimizer, noise_factor, clean) -> the batch's loss.
Step = Callable[[nn.Module, nn.Module, nn.Module, torch.optim.Optimizer, float, torch.Tensor], torch.Tensor]


def training_step(
    encoder: nn.Module,
    decoder: nn.Module,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    noise_factor: float,
    clean: torch.Tensor,
) -> torch.Tensor:
    """Do one optimisation step on a batch of clean images; return its loss, detached and not yet read."""
    threads.adapt()  # on a CPU shared with other trainings: use the CPUs they leave free (once a second at most)
    noisy = add_noise(clean, noise_factor)
    denoised = decoder(encoder(noisy))
    loss = loss_fn(denoised, clean)  # compare with the *clean* images
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach()


def train_epoch(
    encoder: nn.Module,
    decoder: nn.Module,
    device: torch.device,
    dataloader: DataLoader,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    noise_factor: float = DEFAULT_NOISE_FACTOR,
    progress: tqdm | None = None,
    step: Step = training_step,
) -> float:
    """Train for one epoch on noisy inputs and clean targets; return the mean loss per pixel.

    ``step`` does each batch's optimisation step (``training_step`` by default; a
    variational autoencoder passes its own, whose loss is per image, see ``vae.ELBOStep``).

    The loss is summed where the model runs and read once at the end: on a GPU,
    reading it at every batch (``loss.item()``) would make the CPU wait for the
    GPU each time. The sum is the same as ``loss.item() * len(clean)`` added up
    in Python, bit for bit.
    """
    encoder.train()
    decoder.train()
    total_loss, num_images = loss_accumulator(device), 0
    for batch, (images, _) in enumerate(dataloader, start=1):  # the labels are not needed to denoise
        clean = images.to(device)
        loss = step(encoder, decoder, loss_fn, optimizer, noise_factor, clean)
        total_loss += loss.to(total_loss.dtype) * len(clean)
        num_images += len(clean)
        if progress is not None:
            progress.update(1)
            if batch % LOSS_DISPLAY_EVERY == 0:
                progress.set_postfix(train_loss=f"{total_loss.item() / num_images:.4f}", refresh=False)
    return total_loss.item() / num_images


def test_epoch(
    encoder: nn.Module,
    decoder: nn.Module,
    device: torch.device,
    dataloader: DataLoader,
    loss_fn: nn.Module,
    noise_factor: float = DEFAULT_NOISE_FACTOR,
) -> float:
    """Return the mean loss per pixel of denoising the test set, with the same noise every call."""
    encoder.eval()  # batch norm uses its running statistics, not the batch's
    decoder.eval()
    generator = torch.Generator().manual_seed(TEST_NOISE_SEED)  # on the CPU: the same noise on every device
    total_loss, num_images = loss_accumulator(device), 0
    with torch.no_grad():  # no graph: faster, less memory
        for images, _ in dataloader:
            clean = images.to(device)
            noisy = add_noise(clean, noise_factor, generator=generator)
            denoised = decoder(encoder(noisy))
            total_loss += loss_fn(denoised, clean).to(total_loss.dtype) * len(clean)
            num_images += len(clean)
    return total_loss.item() / num_images


def loss_accumulator(device: torch.device) -> torch.Tensor:
    """Return a zero on ``device`` to sum losses in: float64 like a Python float (float32 on Apple MPS)."""
    return torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)


def fit(
    encoder: nn.Module,
    decoder: nn.Module,
    device: torch.device,
    train_loader: DataLoader,
    test_loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    num_epochs: int,
    noise_factor: float = DEFAULT_NOISE_FACTOR,
    *,
    seed: int = 0,
    loss_fn: nn.Module | None = None,
    history: History | None = None,
    on_epoch_end: Callable[[int, History], None] | None = None,
    progress: bool = True,
    train_eval_loader: DataLoader | None = None,
    step: Step = training_step,
) -> History:
    """Train until ``num_epochs`` epochs are done and return the per-epoch losses.

    Args:
        seed: each epoch reseeds torch with ``seed + epoch``, so an epoch's shuffle
            and noise depend only on the seed and the epoch: a resumed run repeats
            an uninterrupted one exactly.
        history: losses of epochs already done (when resuming); training starts
            after them.
        on_epoch_end: called with (epochs done, history) after each epoch, for
            example to save a checkpoint.
        progress: show a tqdm progress bar over all batches.
        train_eval_loader: training images to score like the test set after each
            epoch (eval mode, fixed noise), as ``history["train_eval_loss"]``: the
            training loss measured the way the test loss is.
        step: one optimisation step (``training_step``, or a VAE's ``vae.ELBOStep``);
            ``loss_fn`` always scores the test pass.
    """
    loss_fn = loss_fn if loss_fn is not None else nn.MSELoss()
    history = {"train_loss": [], "test_loss": []} if history is None else history
    if train_eval_loader is not None:
        history.setdefault("train_eval_loss", [])
    start_epoch = len(history["train_loss"])
    bar = tqdm(
        total=(num_epochs - start_epoch) * len(train_loader),
        desc="training",
        unit="batch",
        disable=not progress,
    )
    epoch = start_epoch
    try:
        for epoch in range(start_epoch, num_epochs):
            bar.set_description(f"epoch {epoch + 1}/{num_epochs}")
            torch.manual_seed(seed + epoch)
            train_loss = train_epoch(encoder, decoder, device, train_loader, loss_fn, optimizer, noise_factor, bar,
                                     step)
            test_loss = test_epoch(encoder, decoder, device, test_loader, loss_fn, noise_factor)
            history["train_loss"].append(train_loss)
            history["test_loss"].append(test_loss)
            if train_eval_loader is not None:
                train_eval = test_epoch(encoder, decoder, device, train_eval_loader, loss_fn, noise_factor)
                history["train_eval_loss"].append(train_eval)
            bar.set_postfix(train_loss=f"{train_loss:.4f}", test_loss=f"{test_loss:.4f}")
            if on_epoch_end is not None:
                on_epoch_end(epoch + 1, history)
    except KeyboardInterrupt:
        print(f"Interrupted during epoch {epoch + 1}; {len(history['train_loss'])} completed epochs are kept.")
        raise
    finally:
        bar.close()
    return history


def shared_checkpoint(config: TrainConfig, data_key: str) -> Path | None:
    """Return the checkpoint for ``config`` in ``$DAE_SHARED_CHECKPOINTS``, or None if unset or not there."""
    return ckpt.find_saved(checkpoint_path(".", config, data_key).name, None)


def checkpoint_path(folder: str | Path, config: TrainConfig, data_key: str) -> Path:
    """Return the checkpoint file for ``config`` on the data ``data_key``: one file per setting."""
    parts = [*config.name_parts(), data_key]
    name = f"{config.kind}_" + "_".join(p for p in parts if p)
    return Path(folder) / (re.sub(r"[^A-Za-z0-9_.-]", "-", name) + ".pt")


@dataclass
class TrainedModel:
    """What ``train_or_load`` returns: the models in eval mode and their loss history."""

    encoder: Encoder
    decoder: Decoder
    history: History
    checkpoint: Path | None
    epochs_trained_now: int
    #: Denoised versions of the first ``SNAPSHOT_IMAGES`` noisy test images after each epoch,
    #: (epochs, SNAPSHOT_IMAGES, 1, 28, 28); the inputs are ``snapshot_inputs(data, config)``.
    snapshots: torch.Tensor | None = None


def build_models(config: TrainConfig, device: torch.device) -> tuple[Encoder, Decoder, torch.optim.Optimizer]:
    """Seed, build the encoder and decoder on ``device``, and one Adam optimizer over both."""
    seed_everything(config.seed)  # the initial weights depend on the seed alone
    encoder = config.make_encoder().to(device)
    decoder = Decoder(config.latent_dim, config.batchnorm_affine, config.batchnorm).to(device)
    params = [{"params": encoder.parameters()}, {"params": decoder.parameters()}]
    optimizer = torch.optim.Adam(params, lr=config.lr, fused=adam_fused(device))
    return encoder, decoder, optimizer


def adam_fused(device: torch.device) -> bool | None:
    """Return Adam's ``fused`` setting for ``device``: one fused update on a CUDA GPU, the default elsewhere.

    On a GPU the fused update launches a couple of kernels instead of dozens. On
    the CPU it is 3-5 % faster per step (benchmarks/profile_step.py) but rounds
    differently, and the course's recorded results come from the default update.
    """
    return True if device.type == "cuda" else None


def train_or_load(
    config: TrainConfig,
    data: MNISTData,
    device: torch.device,
    checkpoint_dir: str | Path | None = None,
    retrain: bool = False,
    progress: bool = True,
) -> TrainedModel:
    """Load the checkpoint that matches ``config`` and ``data``, resume it, or train from scratch.

    A checkpoint is saved after every epoch, so an interrupted run keeps its last
    completed epoch and the next call resumes from there. ``retrain=True``
    ignores an existing checkpoint and overwrites it. ``checkpoint_dir=None``
    trains without saving. When ``$DAE_SHARED_CHECKPOINTS`` names a folder that holds
    the matching checkpoint and ``checkpoint_dir`` does not, that one is loaded
    instead (and never written: unfinished, it is trained on into ``checkpoint_dir``).

    Besides the losses, every epoch scores ``TRAIN_EVAL_SIZE`` training images the
    way the test set is scored (``history["train_eval_loss"]``) and keeps the
    denoised ``snapshot_inputs`` (``TrainedModel.snapshots``), so the course can
    show how training went without training again.
    """
    check_bool("retrain", retrain)
    encoder, decoder, optimizer = build_models(config, device)
    path = checkpoint_path(checkpoint_dir, config, data.key) if checkpoint_dir is not None else None
    history: History = {"train_loss": [], "test_loss": [], "train_eval_loss": []}
    snapshots: list[torch.Tensor] = []
    local = path is not None and path.exists() and not retrain
    source = path if local else (None if retrain else shared_checkpoint(config, data.key))
    if source is not None:
        state = ckpt.load_checkpoint(source, encoder, decoder, optimizer)
        if state["config"] != asdict(config) or state["data_key"] != data.key:
            raise ckpt.CheckpointError(
                f"{source} was saved for other settings ({state['config']}, {state['data_key']}); "
                "delete it or pass retrain=True."
            )
        history = state["history"]
        snapshots = list(state["snapshots"]) if state.get("snapshots") is not None else []
        where = "" if local else f" from the shared checkpoints in {source.parent}"
        print(f"Loaded {source.name}{where}: {state['epoch']} of {config.num_epochs} epochs done.")
    done = len(history["train_loss"])
    probe = snapshot_inputs(data, config)

    def end_epoch(epoch: int, history: History) -> None:
        snapshots.append(denoise(encoder, decoder, probe, device))  # eval mode; the next epoch sets train()
        if path is not None:
            ckpt.save_checkpoint(
                path, encoder, decoder, config=asdict(config), epoch=epoch, history=history,
                data_key=data.key, optimizer=optimizer, snapshots=torch.stack(snapshots),
            )

    if done < config.num_epochs:
        fit(
            encoder, decoder, device,
            data.train_loader(config.batch_size, device=device), data.test_loader(config.batch_size, device=device),
            optimizer, config.num_epochs, config.noise_factor,
            seed=config.seed, history=history, on_epoch_end=end_epoch, progress=progress, step=config.training_step(),
            train_eval_loader=make_loader(
                data.train_images[:TRAIN_EVAL_SIZE], data.train_labels[:TRAIN_EVAL_SIZE], config.batch_size,
                device=device,
            ),
        )
    encoder.eval()
    decoder.eval()
    return TrainedModel(
        encoder, decoder, history, path, config.num_epochs - done,
        torch.stack(snapshots) if snapshots else None,
    )


def snapshot_inputs(data: MNISTData, config: TrainConfig) -> torch.Tensor:
    """Return the noisy test images (``SNAPSHOT_IMAGES``, 1, 28, 28) whose denoising is kept after each epoch."""
    generator = torch.Generator().manual_seed(TEST_NOISE_SEED)
    return add_noise(data.test_images[:SNAPSHOT_IMAGES], config.noise_factor, generator=generator)


def denoise(encoder: nn.Module, decoder: nn.Module, noisy: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Return the denoised images (N, 1, 28, 28) for ``noisy``, in eval mode, on the CPU."""
    return decode(decoder, encode(encoder, noisy, device), device)


def denoising_scores(
    encoder: nn.Module, decoder: nn.Module, clean: torch.Tensor, noisy: torch.Tensor, device: torch.device
) -> dict[str, float]:
    """Return the MSE per pixel of denoising ``noisy`` and of passing ``clean`` through the bottleneck.

    ``denoised_mse`` scores the model on noisy inputs; ``bottleneck_mse`` on clean
    ones, which is what the code's size alone costs.
    """
    denoised = denoise(encoder, decoder, noisy, device)
    through = denoise(encoder, decoder, clean, device)
    return {
        "denoised_mse": mse(denoised, clean),
        "bottleneck_mse": mse(through, clean),
    }
