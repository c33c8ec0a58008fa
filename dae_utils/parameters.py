"""The checks of the course's parameters: each says which parameter is wrong, how, and what to use instead.

Every notebook calls ``runtime.check_parameters`` right after its parameters cell, and
the runner checks a value given on the command line before any notebook starts; the
package's functions check their own arguments with the same helpers. A bad value raises
``errors.ParameterError``, a ``ValueError`` that Jupyter shows without a traceback. This
module imports nothing else of the package but ``errors``, so every module can use it.
"""

from __future__ import annotations

import math
import os
from typing import Any

from .errors import ParameterError

#: Where MNIST comes from: a folder, torchvision's download, or the offline sample ("auto" tries them in turn).
SOURCES = ("auto", "folder", "torchvision", "sample")


def check_int(name: str, value: object, minimum: int, hint: str = "") -> int:
    """Return ``value`` if it is an integer (not a bool) >= ``minimum``, else raise a ``ParameterError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ParameterError(f"{name} must be {kind}, got {value!r}.{' ' + hint if hint else ''}")
    return value


def check_noise_factor(noise_factor: float) -> float:
    """Return ``noise_factor`` as a float, or raise a ``ParameterError`` if it is unusable."""
    try:
        value = float(noise_factor)
    except (TypeError, ValueError):
        shape = getattr(noise_factor, "shape", None)
        got = f"a {type(noise_factor).__name__} of shape {tuple(shape)}" if shape is not None else repr(noise_factor)
        raise ParameterError(f"noise_factor must be a number, got {got[:80]}. Use a value such as 0.3.") from None
    if not math.isfinite(value) or value < 0:
        raise ParameterError(
            f"noise_factor must be a finite number >= 0, got {noise_factor!r}. "
            "Use 0 for no noise and values up to about 1 for heavy noise."
        )
    return value


def _check_number(name: str, value: object, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, got {value!r}.")
    if positive and value <= 0:
        raise ParameterError(f"{name} must be greater than 0, got {value!r}.")
    return value


def _check_weight(name: str, value: object) -> float:
    if _check_number(name, value) < 0:
        raise ParameterError(f"{name} must be 0 or more, got {value!r}.")
    return value


def _check_folder(name: str, value: object) -> object:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise ParameterError(f"{name} must be a folder (a string) or None, got {value!r}.")
    return value


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is True or False, else raise a ``ParameterError`` naming it."""
    if not isinstance(value, bool):
        raise ParameterError(f"{name} must be True or False, got {value!r}.")
    return value


def _check_source(name: str, value: object) -> str:
    if value not in SOURCES:
        raise ParameterError(f"{name} must be one of {', '.join(map(repr, SOURCES))}, got {value!r}.")
    return value  # type: ignore[return-value]


def _check_noise(name: str, value: object) -> float:
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
            known = ", ".join(sorted(PARAMETER_CHECKS))
            raise ParameterError(f"{name} is not a parameter of this course; known: {known}.")
        PARAMETER_CHECKS[name](name, value)
