"""Train the course's model with several seeds and print how far its key figures move.

    python benchmarks/seed_spread.py --data-dir ../shared/data/mnist --seeds 0 1 2 3 4

One run is never *the* result: training and k-means start from random draws, and
a CPU run repeats exactly only on the same machine and library build. This script
trains the assignment's model (30 epochs, noise 0.3, d = 4, Adam 1e-3) once per
seed, reusing matching checkpoints, clusters its training codes as notebook 5 does
(k-means, 10 clusters, the lowest inertia of 10 random states), and prints one
row per seed and the spread. Notebook 5 quotes its output.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

import torch

from dae_utils import clustering, data, generation, runtime, training

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="folder with MNIST/raw (default: what load_mnist finds)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--num-epochs", type=int, default=30)
    parser.add_argument("--checkpoint-dir", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()

    device = runtime.get_device()
    mnist = data.load_mnist(data_dir=args.data_dir)
    print(f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads")
    rows = []
    for seed in args.seeds:
        config = training.TrainConfig(num_epochs=args.num_epochs, seed=seed)
        result = training.train_or_load(config, mnist, device, checkpoint_dir=args.checkpoint_dir)
        latent = generation.encode(result.encoder, mnist.train_images, device).numpy()
        labels = mnist.train_labels.numpy()
        kmeans = clustering.best_kmeans(latent, random_states=range(10), n_init=10, progress=False)
        scores = clustering.cluster_scores(kmeans.labels_, labels)
        rows.append({"seed": seed, "test_mse": result.history["test_loss"][-1], **scores})
        print(f"seed {seed}: test MSE {rows[-1]['test_mse']:.4f}, mode {scores['accuracy_mode']:.3f}, "
              f"Hungarian {scores['accuracy_hungarian']:.3f}, NMI {scores['nmi']:.3f}", flush=True)

    print(f"\n{'':<8}{'test MSE':>10}{'mode acc.':>11}{'Hungarian':>11}{'NMI':>8}")
    for key, fmt in (("mean", "{:.4f}"), ("min", "{:.4f}"), ("max", "{:.4f}")):
        reduce = {"mean": statistics.mean, "min": min, "max": max}[key]
        values = [reduce(row[name] for row in rows) for name in ("test_mse", "accuracy_mode",
                                                                   "accuracy_hungarian", "nmi")]
        print(f"{key:<8}" + "".join(f"{fmt.format(v):>{w}}" for v, w in zip(values, (10, 11, 11, 8), strict=True)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
