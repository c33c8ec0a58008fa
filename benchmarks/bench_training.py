"""Time one training epoch, and the data pipeline against torchvision's per-image loader.

    python benchmarks/bench_training.py                       # data as load_mnist("auto") finds it
    python benchmarks/bench_training.py --data-dir PATH       # full MNIST from a folder
    python benchmarks/bench_training.py --source sample

Prints figures and ratios; it asserts nothing. Numbers depend on the machine: say
which one when you quote them (the course's reference machine has 2 CPU cores).
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from dae_utils import data, runtime, training


def time_call(function, repeats: int = 1) -> float:
    """Return the best wall time in seconds of ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def iterate(loader) -> int:
    count = 0
    for images, _ in loader:
        count += len(images)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="auto", choices=data.SOURCES)
    parser.add_argument("--data-dir")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=2, help="timed training epochs (the best is reported)")
    args = parser.parse_args()

    mnist = data.load_mnist(args.source, args.data_dir)
    device = runtime.get_device()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    # 1. The data pipeline alone: slicing in-memory tensors vs torchvision's per-image loader.
    sliced = time_call(lambda: iterate(mnist.train_loader(args.batch_size)), repeats=3)
    n = len(mnist.train_labels)
    print(f"\nin-memory loader: {sliced:.3f} s per epoch of batches ({n / sliced:,.0f} images/s)")
    if mnist.is_full:
        from torchvision import datasets, transforms

        root = mnist.location if mnist.source == "torchvision" else None
        if root is None:  # the folder's files were unpacked into the cache
            root = next((data.cache_dir() / "unpacked").glob("*/MNIST")).parent
        per_image = datasets.MNIST(str(root), train=True, transform=transforms.ToTensor())
        loader = torch.utils.data.DataLoader(per_image, batch_size=args.batch_size, shuffle=True)
        naive = time_call(lambda: iterate(loader))
        print(f"torchvision MNIST + ToTensor DataLoader: {naive:.3f} s ({n / naive:,.0f} images/s)")
        print(f"ratio: the in-memory loader is {naive / sliced:.0f}x faster")

    # 2. One training epoch: forward, backward and Adam step on every batch, plus the test pass.
    config = training.TrainConfig(num_epochs=1, batch_size=args.batch_size)
    encoder, decoder, optimizer = training.build_models(config, device)
    train_loader, test_loader = mnist.train_loader(args.batch_size), mnist.test_loader(args.batch_size)
    loss_fn = nn.MSELoss()
    train_s = time_call(
        lambda: training.train_epoch(encoder, decoder, device, train_loader, loss_fn, optimizer), args.epochs
    )
    test_s = time_call(lambda: training.test_epoch(encoder, decoder, device, test_loader, loss_fn), args.epochs)
    print(f"\ntraining epoch ({n:,} images, batch {args.batch_size}): {train_s:.2f} s ({n / train_s:,.0f} images/s)")
    print(f"test pass ({len(mnist.test_labels):,} images): {test_s:.2f} s")
    print(f"30 epochs, as in notebook 3: about {30 * (train_s + test_s) / 60:.1f} min")
    print(f"data pipeline share of a training epoch: {sliced / train_s:.1%}")


if __name__ == "__main__":
    main()
