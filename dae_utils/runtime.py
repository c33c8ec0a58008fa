"""Pick the device, seed every random number generator, record key figures."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import torch

#: The MIME type under which ``record`` stores a value in a notebook's output.
RECORD_MIMETYPE = "application/vnd.dae-utils.record+json"


def check_int(name: str, value: object, minimum: int, hint: str = "") -> int:
    """Return ``value`` if it is an integer (not a bool) >= ``minimum``, else raise a ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}.{' ' + hint if hint else ''}")
    return value


def get_device(verbose: bool = True) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then the CPU."""
    if torch.cuda.is_available():
        device = torch.device("cuda")
        name = torch.cuda.get_device_name(device)
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
        name = "Apple MPS"
    else:
        device = torch.device("cpu")
        name = f"CPU, {torch.get_num_threads()} threads"
    if verbose:
        print(f"Device: {device} ({name})")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed ``random``, NumPy and torch so that a CPU run repeats exactly.

    Returns a ``torch.Generator`` seeded with the same value, for code that
    takes its randomness explicitly (shuffling, noise).
    """
    check_int("seed", seed, 0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def record(name: str, value: Any) -> None:
    """Display ``value`` under ``name`` so that the course runner can read it back.

    The output carries a plain-text line for the reader and a JSON copy under
    ``RECORD_MIMETYPE`` for ``python -m dae_utils.course``, which reads the
    executed notebook instead of recomputing anything.
    """
    from IPython.display import display

    json.dumps(value)  # fail here, with the name at hand, if it cannot be stored
    display(
        {RECORD_MIMETYPE: {name: value}, "text/plain": f"{name} = {value!r}"},
        raw=True,
    )
