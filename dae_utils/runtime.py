"""Pick the device, seed every random number generator, record key figures."""

from __future__ import annotations

import json
import math
import os
import platform
import random
import uuid
from pathlib import Path
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


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename: no reader sees half a file.

    The temporary file follows the umask, like the file it replaces, and is removed
    if anything goes wrong (a full disk, an interrupt).
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


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


def _check_number(name: str, value: object, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    if positive and value <= 0:
        raise ValueError(f"{name} must be greater than 0, got {value!r}.")
    return value


def _check_weight(name: str, value: object) -> float:
    if _check_number(name, value) < 0:
        raise ValueError(f"{name} must be 0 or more, got {value!r}.")
    return value


def _check_folder(name: str, value: object) -> object:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{name} must be a folder (a string) or None, got {value!r}.")
    return value


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is True or False, else raise a ``ValueError`` naming it."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}.")
    return value


def _check_source(name: str, value: object) -> str:
    from .data import SOURCES

    if value not in SOURCES:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, SOURCES))}, got {value!r}.")
    return value  # type: ignore[return-value]


def _check_noise(name: str, value: object) -> float:
    from .noise import check_noise_factor

    return check_noise_factor(_check_number(name, value))


#: How each notebook parameter of the course is checked: name -> function(name, value).
PARAMETER_CHECKS = {
    "data_source": _check_source,
    "data_dir": _check_folder,
    "checkpoint_dir": _check_folder,
    "noise_factor": _check_noise,
    "lr": lambda name, value: _check_number(name, value, positive=True),
    "large_lr": lambda name, value: _check_number(name, value, positive=True),
    "retrain": check_bool,
    "seed": lambda name, value: check_int(name, value, 0),
    "interpolation_steps": lambda name, value: check_int(name, value, 2),
    "max_latent_dim": lambda name, value: check_int(name, value, 2),
    "beta": lambda name, value: _check_weight(name, value),
    **{
        name: lambda name, value: check_int(name, value, 1)
        for name in ("num_epochs", "latent_dim", "batch_size", "budget_epochs", "bn_steps", "kmeans_runs",
                     "n_init", "sweep_epochs", "seeds_compared", "umap_points", "dae_epochs")
    },
}


def check_parameters(**parameters: Any) -> None:
    """Check a notebook's parameters right after its ``parameters`` cell, with a clear error for a bad one.

    A value set from the command line (``-p noise_factor 0,5``) would otherwise
    fail cells later, deep inside a plot. Call it with every parameter by name:
    ``runtime.check_parameters(noise_factor=noise_factor, seed=seed)``.
    """
    for name, value in parameters.items():
        if name not in PARAMETER_CHECKS:
            raise ValueError(f"{name} is not a parameter of this course; known: {', '.join(sorted(PARAMETER_CHECKS))}.")
        PARAMETER_CHECKS[name](name, value)
