"""What every exercise check shares: ``NotYet``, the way a check says right, and the helpers that read an answer."""

from __future__ import annotations

import inspect
import math
import numbers
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..generation import decode

#: Seeds of the random inputs the checks use; fixed, so a check repeats exactly.
CHECK_SEED = 2024


class NotYet(AssertionError):
    """An answer that does not match yet; the message is a hint."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the hint is what a student needs.
        return [f"\u2717 Not yet. {self}"]


def _passed(message: str) -> None:
    print(f"\u2713 Right: {message}")


def _images(n: int = 16, seed: int = CHECK_SEED) -> torch.Tensor:
    """Return image-like test inputs in [0, 1] with black background, grey and white pixels."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=generator)
    images[images < 0.6] = 0.0  # most pixels black, as in MNIST
    images[images > 0.95] = 1.0  # some exactly white
    return images


#: Accuracies are shares of a few hundred images: a float32 answer is within 1e-6 of the exact share.
ACCURACY_TOL = 1e-6


def _number(value: Any, what: str) -> float:
    """Return ``value`` as a float if it is one real number of any type; otherwise raise a hint."""
    if value is None:
        raise NotYet(f"Your function returned None instead of {what}. Is the `return` line missing?")
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.shape != ():
            raise NotYet(f"Return {what} as one number, not an array or tensor of shape {tuple(value.shape)}.")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise NotYet(f"Return {what} as a number, not a {type(value).__name__}.")
    number = float(value)
    if not math.isfinite(number):
        raise NotYet(f"You returned {number} as {what}, not a finite number.")
    return number


def _tensor(value: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """Return ``value`` as float64 on the CPU if it is a floating tensor of ``shape``; otherwise raise a hint."""
    if value is None:
        raise NotYet(f"Your function returned None instead of {what}. Is the `return` line missing?")
    if not isinstance(value, torch.Tensor):
        raise NotYet(f"Return {what} as a torch tensor of shape {shape}, not a {type(value).__name__}.")
    if tuple(value.shape) != shape:
        raise NotYet(f"Return {what} as a tensor of shape {shape}; yours has shape {tuple(value.shape)}.")
    if not value.is_floating_point():
        raise NotYet(f"{what[0].upper() + what[1:]} must be floating-point values; yours are {value.dtype}.")
    return value.detach().cpu().double()


def _close(answer: torch.Tensor, dtype: torch.dtype, expected: torch.Tensor, atol: float) -> bool:
    """Compare at ``atol`` or at the precision of the answer's own dtype, whichever is coarser."""
    precision = 4 * torch.finfo(dtype).eps
    return torch.allclose(answer, expected.double(), atol=max(atol, precision), rtol=precision)


def _kept(inputs: dict[str, Any]) -> dict[str, Any]:
    """Copy the inputs an answer is given, to find out afterwards whether it changed them."""
    return {name: value.clone() if isinstance(value, torch.Tensor) else np.array(value, copy=True)
            for name, value in inputs.items()}


def _unchanged(inputs: dict[str, Any], kept: dict[str, Any]) -> None:
    """Refuse an answer that changed an input in place: in the notebook it would change the caller's data."""
    for name, value in inputs.items():
        same = torch.equal(value, kept[name]) if isinstance(value, torch.Tensor) else np.array_equal(value, kept[name])
        if not same:
            raise NotYet(f"Your function changed its input `{name}` in place, so it would also change the data "
                         "of whoever calls it. Leave the inputs as they are and build new tensors or arrays "
                         "(in-place operations such as +=, .add_() or .clamp_() change their input).")


def _compare_decoded(
    returned: Any, expected: torch.Tensor, decoder: nn.Module, latent: torch.Tensor, device: torch.device
) -> None:
    answer = _tensor(returned, (9, 1, 28, 28), "the 9 decoded images")
    if returned.requires_grad:
        raise NotYet("The images still carry a gradient graph, which keeps memory busy: decoding needs no "
                     "gradients.")
    if _close(answer, returned.dtype, expected, 1e-5):
        return
    with torch.no_grad():
        train_mode = decoder.train()(latent.to(device)).cpu()
    if _close(answer, returned.dtype, train_mode, 1e-5):
        raise NotYet("The decoder ran in training mode, so batch norm used the 9 codes' own statistics. "
                     "Call decoder.eval() first.")
    raise NotYet("The images differ from the decoder's output for these codes. Decode the codes you were given.")


def _codes_and_images(returned: Any, num_samples: int, latent_dim: int) -> tuple[torch.Tensor, Any]:
    """Return an answer's (codes, images) with the codes as a checked tensor, or raise a hint."""
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise NotYet("Return two things, the codes and their images, as a pair (codes, images).")
    codes, images = returned
    return _tensor(codes, (num_samples, latent_dim), f"the {num_samples} codes"), images


def _check_grid(run: Callable[[int], tuple[torch.Tensor, Any]], reference: nn.Module, device: torch.device) -> None:
    """Check a grid of 9 codes that ``run(seed)`` returns: the seed repeats it, and it decodes as ``reference`` does.

    The images must be the decoder's for these codes in evaluation mode, without a gradient graph.
    """
    codes, images = run(CHECK_SEED)
    again, _ = run(CHECK_SEED)
    if not torch.equal(codes, again):
        raise NotYet("The same generator gave different codes. Draw the random numbers from the generator you "
                     "were given, so that a seed repeats a grid.")
    _compare_decoded(images, decode(reference, codes.float(), device), reference, codes.float(), device)


def _calls_checked(forbidden: dict[str, Callable[..., Any]], function: Callable[..., Any], *args: Any) -> Any:
    """Run ``function(*args)``, refusing an answer that hands the exercise to the course's own code.

    ``forbidden`` names the functions that would do the whole exercise (the course's
    answer, or torch's ready-made layer). Every call made while the answer runs is
    watched (``sys.setprofile``), so the check sees such a call however the function
    was imported or renamed.
    """
    # A decorated function (torch.no_grad, say) runs its own code inside the decorator's, which many share.
    codes = {inspect.unwrap(f).__code__: name for name, f in forbidden.items() if hasattr(f, "__code__")}
    builtins = [(f, name) for name, f in forbidden.items() if not hasattr(f, "__code__")]
    called: list[str] = []

    def watch(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in codes:
            called.append(codes[frame.f_code])
        elif event == "c_call":
            called.extend(name for f, name in builtins if arg is f)

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        result = function(*args)
    finally:
        sys.setprofile(previous)
    if called:
        raise NotYet(f"Your function calls `{called[0]}`, which does the whole exercise for you. The point is to "
                     "write those steps yourself, with tensor or array operations.")
    return result


def _check_counts(n_clusters: int) -> np.ndarray:
    """A count matrix counts[k, digit] of ``n_clusters`` clusters: each has a clear majority, two share one."""
    rng = np.random.default_rng(CHECK_SEED + n_clusters)
    counts = rng.integers(0, 25, (n_clusters, 10))
    majority = np.resize(rng.permutation(10), n_clusters)
    majority[1] = majority[0]  # two clusters whose members are mostly the same digit, as 4s and 9s often are
    counts[np.arange(n_clusters), majority] += rng.integers(60, 120, n_clusters)
    return counts


def _matrix_forbidden() -> dict[str, Callable[..., Any]]:
    from .. import clustering

    return {"clustering.mode_mapping": clustering.mode_mapping,
            "clustering.hungarian_mapping": clustering.hungarian_mapping,
            "clustering.digit_cluster_counts": clustering.digit_cluster_counts}
