"""Train the course's model two ways in one run, side by side, and print images/s and their ratio.

    python benchmarks/train_throughput.py --data-dir ../shared/data/mnist
    python benchmarks/train_throughput.py                 # the offline sample

1. **The assignment's loop**: ``torchvision.datasets.MNIST`` with ``ToTensor()``
   through a shuffling ``DataLoader`` (batch 256), ``add_noise`` per batch, Adam and
   MSE, then a test pass over a test ``DataLoader``, as the assignment's code does.
2. **The course's ``fit``**, exactly as notebook 3 runs it: ``training.train_or_load``
   with a progress bar, the test pass, the eval-mode scoring of 10,000 training
   images, the snapshots and a checkpoint after the epoch.

Each measured run is one epoch over the same training images (the same number of
steps of 256 images), test pass included. The script warms up first, alternates
the two ways, and reports medians over ``--repeats`` runs. It also prints the
model's FLOPs per training image, the achieved GFLOP/s, and the peak memory.
``--full-run 30`` then times a whole 30-epoch run of the course's way, as notebook
3 does it, and sets it against 30 times the assignment loop's median epoch.

It runs on the device ``runtime.get_device`` picks: a CUDA GPU where there is one.
"""

from __future__ import annotations

import argparse
import gzip
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dae_utils import data, runtime, training
from dae_utils.model import Decoder, Encoder
from dae_utils.noise import add_noise

BATCH_SIZE = 256


def assignment_loop(root: Path, device: torch.device, seed: int) -> float:
    """Train one epoch and run one test pass the assignment's way; return the seconds it took."""
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    train_set = datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor())
    test_set = datasets.MNIST(str(root), train=False, download=False, transform=transforms.ToTensor())
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=BATCH_SIZE, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=BATCH_SIZE)
    encoder, decoder = Encoder().to(device), Decoder().to(device)
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
    loss_fn = nn.MSELoss()
    start = time.perf_counter()
    encoder.train()
    decoder.train()
    for images, _ in train_loader:
        images = images.to(device)
        loss = loss_fn(decoder(encoder(add_noise(images, 0.3))), images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    encoder.eval()
    decoder.eval()
    with torch.no_grad():
        for images, _ in test_loader:
            images = images.to(device)
            loss_fn(decoder(encoder(add_noise(images, 0.3))), images).item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def course_fit(mnist: data.MNISTData, device: torch.device, seed: int, num_epochs: int = 1) -> float:
    """Train exactly as notebook 3 does (train_or_load, checkpoints included); return seconds."""
    config = training.TrainConfig(num_epochs=num_epochs, batch_size=BATCH_SIZE, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        training.train_or_load(config, mnist, device, checkpoint_dir=folder, progress=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start


def write_idx_folder(mnist: data.MNISTData, root: Path) -> None:
    """Write in-memory MNIST as the four .gz IDX files torchvision reads, for the sample."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)

    def write(name: str, array: np.ndarray) -> None:
        magic = (0x0803 if array.ndim == 3 else 0x0801).to_bytes(4, "big")
        header = magic + b"".join(n.to_bytes(4, "big") for n in array.shape)
        payload = header + array.astype(np.uint8).tobytes()
        (raw / name).write_bytes(payload)
        (raw / f"{name}.gz").write_bytes(gzip.compress(payload))

    for split, images, labels in (("train", mnist.train_images, mnist.train_labels),
                                  ("t10k", mnist.test_images, mnist.test_labels)):
        write(f"{split}-images-idx3-ubyte", (images[:, 0] * 255).round().numpy())
        write(f"{split}-labels-idx1-ubyte", labels.numpy())


def flops_per_image(device: torch.device) -> float:
    """Count the FLOPs of one training step (forward and backward) per image with PyTorch's counter."""
    from torch.utils.flop_counter import FlopCounterMode

    encoder, decoder = Encoder().to(device), Decoder().to(device)
    images = torch.rand(BATCH_SIZE, 1, 28, 28, device=device)
    with FlopCounterMode(display=False) as counter:
        nn.functional.mse_loss(decoder(encoder(images)), images).backward()
    return counter.get_total_flops() / BATCH_SIZE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="folder with MNIST/raw (default: the offline sample)")
    parser.add_argument("--repeats", type=int, default=3, help="measured runs of each way (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--full-run", type=int, default=0, metavar="EPOCHS",
                        help="also time one whole run of this many epochs the course's way (notebook 3: 30)")
    args = parser.parse_args()

    device = runtime.get_device(verbose=False)
    mnist = data.load_mnist("folder" if args.data_dir else "sample", data_dir=args.data_dir)
    n_train, n_test = len(mnist.train_labels), len(mnist.test_labels)
    print(f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads, "
          f"device {device} ({runtime.device_name(device)})")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(args.data_dir) if args.data_dir else Path(folder)
        if not args.data_dir:
            write_idx_folder(mnist, root)
        elif not (root / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            root = Path(folder)  # torchvision needs the unpacked files; write them from what we loaded
            write_idx_folder(mnist, root)
        print("warming up both ways ...", flush=True)
        assignment_loop(root, device, args.seed)
        course_fit(mnist, device, args.seed)
        times: dict[str, list[float]] = {"assignment loop": [], "course fit": []}
        for repeat in range(args.repeats):  # alternate, so a slow moment hurts both alike
            times["assignment loop"].append(assignment_loop(root, device, args.seed + repeat))
            times["course fit"].append(course_fit(mnist, device, args.seed + repeat))
    flops = flops_per_image(device)
    print(f"\none epoch of {n_train:,} training images (batch {BATCH_SIZE}) plus a test pass over {n_test:,}; "
          f"median of {args.repeats}")
    rates = {}
    for name, seconds in times.items():
        median = statistics.median(seconds)
        rates[name] = n_train / median
        print(f"{name:<16}{median:>8.2f} s {rates[name]:>10,.0f} training images/s "
              f"{flops * rates[name] / 1e9:>8.2f} GFLOP/s   (runs: {', '.join(f'{s:.2f}' for s in seconds)})")
    print(f"ratio course fit / assignment loop: {rates['course fit'] / rates['assignment loop']:.2f}x")
    if args.full_run:
        seconds = course_fit(mnist, device, args.seed, num_epochs=args.full_run)
        loop = args.full_run * statistics.median(times["assignment loop"])
        print(f"{args.full_run} epochs the course's way (as notebook 3 runs them): {seconds:.1f} s; "
              f"the assignment loop, {args.full_run} x its median epoch: {loop:.1f} s; ratio {loop / seconds:.2f}x")
    print(f"model FLOPs per training image (forward + backward): {flops / 1e6:.2f} MFLOP")
    if device.type == "cuda":
        print(f"peak CUDA memory allocated: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    else:
        print(f"peak memory (RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()
