"""Pick the device, seed every random number generator, record key figures."""

from __future__ import annotations

import json
import platform
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .parameters import PARAMETER_CHECKS, check_bool, check_int, check_parameters  # noqa: F401 (the notebooks' names)

#: The MIME type under which ``record`` stores a value in a notebook's output.
RECORD_MIMETYPE = "application/vnd.dae-utils.record+json"




def get_device(verbose: bool = True) -> torch.device:
    """Return the best available device: CUDA, then Apple MPS, then the CPU."""
    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    if verbose:
        print(f"Device: {device} ({device_name(device)})")
    return device


def device_name(device: torch.device) -> str:
    """Name the hardware behind ``device``: the GPU's model, or the CPU's and its thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    model = platform.processor()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():  # Linux names the model there; platform.processor() is often empty
        lines = [line for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = lines[0].split(":", 1)[1].strip() if lines else model
    from .threads import CHOICE

    adapting = " (fewer while other programs keep these CPUs busy)" if CHOICE.get("adaptive") == "yes" else ""
    return f"CPU{', ' + model if model else ''}, {torch.get_num_threads()} threads{adapting}"


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
    """Display ``value``, measured in this run from this run's data, under ``name`` for the course runner.

    The output carries a plain-text line for the reader and a JSON copy under
    ``RECORD_MIMETYPE`` for ``python -m dae_utils.course``, which reads the
    executed notebook instead of recomputing anything. A figure this run did not
    measure goes through ``record_reference`` instead.
    """
    if name.startswith(REFERENCE_PREFIX):
        raise ValueError(f"{name!r} names a reference figure: record it with record_reference("
                         f"{name[len(REFERENCE_PREFIX):]!r}, value, source).")
    _display_record(name, value)


def _display_record(name: str, value: Any) -> None:
    from IPython.display import display

    json.dumps(value)  # fail here, with the name at hand, if it cannot be stored
    display(
        {RECORD_MIMETYPE: {name: value}, "text/plain": f"{name} = {value!r}"},
        raw=True,
    )


#: A recorded name with this prefix holds a reference figure (from ``benchmarks/results``), not this run's.
REFERENCE_PREFIX = "reference_"


def record_reference(name: str, value: Any, source: str) -> None:
    """Record a figure that this run did not measure (a reference mean, say) as ``reference_<name>``, with its source.

    ``record`` is for what the notebook measured in this run, from this run's data; the
    runner's summary prints reference figures apart, each with where it comes from.
    """
    if name.startswith(REFERENCE_PREFIX):
        raise ValueError(f"Give the name without the prefix: record_reference({name[len(REFERENCE_PREFIX):]!r}, ...).")
    if not source.strip():
        raise ValueError("A reference figure needs its source, e.g. 'benchmarks/results/generation.json, 5 seeds'.")
    _display_record(f"{REFERENCE_PREFIX}{name}", {"value": value, "source": source})


