"""Profile one training step of the course's model and time the candidate speed-ups, in one run.

    python benchmarks/profile_step.py               # on the device runtime.get_device picks
    python benchmarks/profile_step.py --compile     # also torch.compile (slow to compile)

1. **Where the time goes**: PyTorch's profiler over ``--steps`` steps (batch 256),
   grouped into the parts of a step: each convolution and transposed convolution,
   forward and backward, batch norm, Adam, the noise, and the rest.
2. **What each change gives**: the same step in several variants (the course's
   own, Adam fused or not, ``channels_last`` for the whole model or only around the
   transposed convolutions, one thread, cuDNN's autotuner), alternated and timed
   over ``--repeats`` rounds, median ms per step and the speed-up over the
   course's step.

The images are random and the step is the course's own ``training.training_step``:
noise, forward, MSE, backward, Adam. Prints figures and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from dae_utils import runtime, training

BATCH_SIZE = 256
Step = Callable[[], object]


class ChannelsLastAround(nn.Module):
    """Run ``layer`` in the channels-last memory layout and hand back the usual layout."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.contiguous(memory_format=torch.channels_last)).contiguous()


def make_step(device: torch.device, images: torch.Tensor, *, fused: bool | None = None, layout: str = "default",
              compiled: bool = False) -> Step:
    """Build the course's model and return ``training.training_step`` on ``images`` as a function."""
    encoder, decoder, optimizer = training.build_models(training.TrainConfig(batch_size=BATCH_SIZE), device)
    if fused is not None:  # replace the course's choice
        params = [*encoder.parameters(), *decoder.parameters()]
        optimizer = torch.optim.Adam(params, lr=1e-3, fused=fused or None)
    if layout == "channels_last":
        encoder, decoder = (m.to(memory_format=torch.channels_last) for m in (encoder, decoder))
        images = images.contiguous(memory_format=torch.channels_last)
    elif layout == "transposed_only":
        for i, layer in enumerate(decoder.deconv):
            if isinstance(layer, nn.ConvTranspose2d):
                decoder.deconv[i] = ChannelsLastAround(layer)
    encoder.train()
    decoder.train()
    if compiled:
        encoder, decoder = torch.compile(encoder), torch.compile(decoder)
    loss_fn = nn.MSELoss()
    return partial(training.training_step, encoder, decoder, loss_fn, optimizer, 0.3, images)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def ms_per_step(step: Step, device: torch.device, steps: int) -> float:
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps * 1e3


def layer_names(device: torch.device) -> dict[tuple, str]:
    """Map (input shape, weight shape) of every convolution in the model to its name, e.g. 'decoder.deconv.6'."""
    encoder, decoder, _ = training.build_models(training.TrainConfig(), device)
    names: dict[tuple, str] = {}
    for prefix, model in (("encoder", encoder), ("decoder", decoder)):
        for name, module in model.named_modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                kind = "transposed conv" if isinstance(module, nn.ConvTranspose2d) else "conv"

                def hook(module, inputs, output, label=f"{prefix}.{name} ({kind})"):
                    names[(tuple(inputs[0].shape), tuple(module.weight.shape))] = label

                module.register_forward_hook(hook)
        model(torch.zeros(BATCH_SIZE, 1, 28, 28, device=device) if prefix == "encoder"
              else torch.zeros(BATCH_SIZE, model.latent_dim, device=device))
    return names


CONVOLUTION_OPS = {  # operator -> (direction, position of the input and of the weight among its inputs)
    "aten::_convolution": ("forward", 0, 1),
    "aten::mkldnn_convolution": ("forward", 0, 1),
    "aten::convolution_backward": ("backward", 1, 2),
}


def part_of_step(name: str, shapes: list, layers: dict[tuple, str]) -> str:
    """Name the part of a training step that a profiled operator belongs to."""
    if name in CONVOLUTION_OPS:
        direction, image, weight = CONVOLUTION_OPS[name]
        layer = layers.get((tuple(shapes[image]), tuple(shapes[weight])), "other convolution")
        return f"{layer} {direction}"
    if "batch_norm" in name:
        return "batch norm (forward and backward)"
    if name.startswith(("Optimizer.", "aten::_foreach", "aten::_fused_adam", "aten::addcdiv", "aten::lerp",
                        "aten::sqrt")):
        return "Adam (step and zero_grad)"
    if name in ("aten::normal_", "aten::clamp"):
        return "noise (randn, clamp)"
    if name in ("aten::addmm", "aten::mm"):
        return "linear layers (forward and backward)"
    return "everything else (ReLU, sigmoid, loss, autograd, copies)"


def profile_parts(step: Step, device: torch.device, steps: int) -> dict[str, float]:
    """Return the CPU ms per step that each part of the step spends in its own operators (self time)."""
    layers = layer_names(device)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(steps):
            step()
    totals: dict[str, float] = defaultdict(float)
    for row in prof.key_averages(group_by_input_shape=True):
        totals[part_of_step(row.key, row.input_shapes, layers)] += row.self_cpu_time_total / 1e3 / steps
    return dict(totals)


def gpu_busy(step: Step, device: torch.device, steps: int) -> tuple[float, float]:
    """Return (GPU kernel ms, wall ms) per step: how much of a step the GPU actually works."""
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        wall = ms_per_step(step, device, steps)
    kernels = sum(row.self_device_time_total for row in prof.key_averages()) / 1e3 / steps
    return kernels, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds; the median is reported")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (compiles first)")
    args = parser.parse_args()

    device = runtime.get_device(verbose=False)
    print(f"torch {torch.__version__}, device {device} ({runtime.device_name(device)}), "
          f"batch {BATCH_SIZE}, {args.steps} steps per timing")
    torch.manual_seed(0)
    images = torch.rand(BATCH_SIZE, 1, 28, 28, device=device)

    course = make_step(device, images)
    for _ in range(10):
        course()
    if device.type == "cuda":
        kernels, wall = gpu_busy(course, device, args.steps)
        print(f"\nGPU kernels run {kernels:.2f} ms of a {wall:.2f} ms step ({kernels / wall:.0%} busy, profiler on): "
              "the rest is the CPU launching them")
    else:
        parts = profile_parts(course, device, args.steps)
        total = sum(parts.values())
        print(f"\nWhere a step's time goes (CPU self time, profiler on: {total:.2f} ms per step)")
        for part, ms in sorted(parts.items(), key=lambda item: -item[1]):
            print(f"  {part:<52}{ms:>7.2f} ms {ms / total:>6.1%}")

    variants: dict[str, Callable[[], Step]] = {"the course's step": lambda: make_step(device, images)}
    if device.type == "cpu":
        variants["Adam fused"] = lambda: make_step(device, images, fused=True)
        variants["channels_last, whole model"] = lambda: make_step(device, images, layout="channels_last")
        variants["channels_last, transposed convs only"] = lambda: make_step(device, images, layout="transposed_only")
        variants["channels_last + Adam fused"] = lambda: make_step(device, images, fused=True, layout="channels_last")
    else:
        variants["Adam foreach (not fused)"] = lambda: make_step(device, images, fused=False)
        variants["channels_last, whole model"] = lambda: make_step(device, images, layout="channels_last")
    if args.compile:
        variants["torch.compile"] = lambda: make_step(device, images, compiled=True)
    steps = {label: build() for label, build in variants.items()}
    for step in steps.values():  # warm up: kernels chosen, compiled, caches filled
        for _ in range(10):
            step()
    threads = torch.get_num_threads()
    timings: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.repeats):
        for label, step in steps.items():
            timings[label].append(ms_per_step(step, device, args.steps))
        if device.type == "cpu" and threads > 1:
            torch.set_num_threads(1)
            timings["one thread"].append(ms_per_step(steps["the course's step"], device, args.steps))
            torch.set_num_threads(threads)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            timings["cuDNN autotuner (cudnn.benchmark)"].append(ms_per_step(steps["the course's step"], device,
                                                                             args.steps))
            torch.backends.cudnn.benchmark = False
    base = statistics.median(timings["the course's step"])
    print(f"\nVariants, median of {args.repeats} alternating rounds")
    for label, values in timings.items():
        median = statistics.median(values)
        spread = f"{min(values):.2f}-{max(values):.2f}"
        print(f"  {label:<40}{median:>7.2f} ms per step ({spread})   ratio {base / median:.2f}x")


if __name__ == "__main__":
    main()
