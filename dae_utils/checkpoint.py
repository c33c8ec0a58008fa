"""Every model the course saves: found locally or in the shared folder, written atomically, read safely.

The autoencoder's and the VAE's checkpoints (``save_checkpoint``, ``load_checkpoint``)
describe themselves: their settings, epoch, history and data. The digit reader and
judge are saved as tagged weights (``save_model``, ``read_model``). Every file is
written atomically (``write_atomically``, the course's one writer, also for the
student edition and the results files), loaded with ``weights_only=True``, and found
in its own folder first, then in the read-only shared folder (``find_saved``).
"""

from __future__ import annotations

import errno
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import torch
from torch import nn

from .errors import CourseValueError

#: Bumped when the layout of a checkpoint changes. Format 2 added per-epoch snapshots
#: and the training loss measured in eval mode.
FORMAT_VERSION = 2
_REQUIRED_KEYS = ("format_version", "encoder", "decoder", "config", "epoch", "history", "data_key")
#: Optimizer settings that say how an update runs on a device, not what it computes.
IMPLEMENTATION_FLAGS = ("fused", "foreach", "capturable")


#: A folder of finished checkpoints that the course reads and never writes: trained once by an instructor
#: (``make checkpoints DIR=...``) and shared by a whole class, or by nbgrader's autograding of every submission.
SHARED_CHECKPOINTS_ENV = "DAE_SHARED_CHECKPOINTS"


class CheckpointError(CourseValueError):
    """A checkpoint file that cannot be used: corrupt, or made for another model."""


def shared_folder() -> Path | None:
    """Return the folder ``$DAE_SHARED_CHECKPOINTS`` names, or None when unset; refuse one that is not a folder."""
    folder = os.environ.get(SHARED_CHECKPOINTS_ENV, "").strip()
    if not folder:
        return None
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise CheckpointError(
            f"{SHARED_CHECKPOINTS_ENV} is {folder!r}, which is not a folder. Set it to the folder that "
            "`make checkpoints DIR=...` filled, or unset it to train here."
        )
    return path


def save_checkpoint(
    path: str | os.PathLike,
    encoder: nn.Module,
    decoder: nn.Module,
    *,
    config: dict[str, Any],
    epoch: int,
    history: dict[str, list[float]],
    data_key: str,
    optimizer: torch.optim.Optimizer | None = None,
    snapshots: torch.Tensor | None = None,
) -> Path:
    """Write a checkpoint that describes itself, atomically.

    The file is written to a temporary name in the same folder, flushed to disk,
    then renamed over ``path``, so an interruption leaves either the old
    checkpoint or the new one, never half of one.

    Args:
        config: the run's settings, at least ``latent_dim`` and ``noise_factor``.
        epoch: the number of completed epochs.
        history: per-epoch losses, ``{"train_loss": [...], "test_loss": [...]}``.
        data_key: ``MNISTData.key`` of the data the model was trained on.
        snapshots: optional tensor of images kept along the way, e.g. (epochs, 8, 1, 28, 28).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "format_version": FORMAT_VERSION,
        "encoder": encoder.state_dict(),
        "decoder": decoder.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "config": dict(config),
        "epoch": int(epoch),
        "history": {name: [float(v) for v in values] for name, values in history.items()},
        "data_key": data_key,
        "snapshots": snapshots.detach().cpu() if snapshots is not None else None,
    }
    return save_atomically(path, state)


def find_saved(name: str, folder: str | Path | None) -> Path | None:
    """Return the file ``name`` in ``folder``, else in the shared folder (``$DAE_SHARED_CHECKPOINTS``); None if neither.

    The course's one way to find a saved model of any kind: its own folder first,
    then the read-only folder an instructor filled for the class.
    """
    for base in (folder, shared_folder()):
        if base is not None and (Path(base) / name).is_file():
            return Path(base) / name
    return None


#: The version of the files ``save_model`` writes (a model's weights and what it was trained on).
MODEL_FORMAT_VERSION = 1


def save_model(path: str | os.PathLike, model: nn.Module, file_format: str, **about: Any) -> Path:
    """Save ``model``'s weights atomically under the tag ``file_format``, with ``about`` (data key, steps, seed)."""
    return save_atomically(path, {"format": file_format, "format_version": MODEL_FORMAT_VERSION,
                                  "model": model.state_dict(), **about})


def read_model(path: str | Path, make: Callable[[], nn.Module], file_format: str, what: str,
               data_key: str | None = None) -> nn.Module:
    """Read a model ``save_model`` wrote, with ``weights_only=True``, into ``make()``, in eval mode.

    A file that is damaged, of another kind (``file_format``) or version, trained on
    other data than ``data_key``, or holding weights of another shape is refused with a
    ``CheckpointError`` that names ``what`` it should have been and says what to do.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip, pickle and EOF errors mean the same thing here
        raise CheckpointError(
            f"Cannot read {path}: it is corrupt or not a {what} of this course ({type(error).__name__}). "
            "Delete it; the next use trains a new one."
        ) from None
    if not isinstance(state, dict) or state.get("format") != file_format \
            or state.get("format_version") != MODEL_FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a {what} of this version of the course. Delete it; "
                              "the next use trains a new one.")
    if data_key is not None and state.get("data_key") != data_key:
        raise CheckpointError(f"{path} was trained on {state.get('data_key')}, not on {data_key}. Delete it.")
    model = make()
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, KeyError) as error:
        raise CheckpointError(f"{path} holds weights of another shape: {str(error).splitlines()[0]}. "
                              "Delete it; the next use trains a new one.") from None
    return model.eval()


def load_or_train(name: str, folder: str | Path | None, read: Callable[[Path], nn.Module],
                  train: Callable[[], nn.Module], save: Callable[[Path, nn.Module], object]) -> nn.Module:
    """Read the model saved as ``name`` (``find_saved``), or ``train`` it and ``save`` it in ``folder`` (if any)."""
    found = find_saved(name, folder)
    if found is not None:
        model = read(found)
        print(f"Loaded {found.name} from {found.parent}.")
        return model
    model = train()
    if folder is not None:
        path = Path(folder) / name
        save(path, model)
        print(f"Saved {path.name} in {path.parent}.")
    return model


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Write a file through ``write(file)`` atomically: the whole new file or the old one, never half.

    The course's one atomic writer (checkpoints, the student edition, results files).
    ``write`` fills a temporary file in the same folder, which is flushed to disk and
    renamed over ``path``; if anything goes wrong (a full disk, an interrupt) the
    temporary file is removed and the error raised.
    """
    path = Path(path)
    # Not tempfile.mkstemp: it creates files with mode 0600, and a file in a shared course
    # folder must follow the umask like every other file (usually 0644).
    tmp_name = str(path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp")
    handle = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, with ``write_atomically``."""
    return write_atomically(path, lambda file: file.write(text.encode("utf-8")))


def save_atomically(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` with ``torch.save`` to ``path`` atomically: the whole new file or the old one, never half.

    The file is written to a temporary name in the same folder, flushed to disk and
    renamed over ``path`` (``write_atomically``). A full disk raises
    ``CheckpointSaveError``, which says so and whether an older file is kept.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    try:
        write_atomically(path, lambda file: torch.save(state, file))
    except (OSError, RuntimeError) as error:
        if not _disk_full(error):
            raise
        kept = f"The last complete checkpoint, {path.name}, is kept" if path.exists() else "No checkpoint is kept yet"
        raise CheckpointSaveError(
            f"Could not save the checkpoint {path.name}: the disk holding {path.parent} is full "
            f"({shutil.disk_usage(path.parent).free / 2**20:.1f} MiB free). {kept}. Free some space, or set "
            "checkpoint_dir to a folder on another disk, and run again to resume."
        ) from error
    return path


class CheckpointSaveError(OSError):
    """A checkpoint that could not be written: the message says why and what is kept."""


#: What torch.save's zip writer says when the disk fills up under it.
_TORCH_SHORT_WRITE = ("unexpected pos", "file write failed", "PytorchStreamWriter failed writing")
#: A temporary file older than this belongs to a save that was killed, not to one in progress.
STALE_SECONDS = 600


def _disk_full(error: BaseException) -> bool:
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    return any(words in str(error) for words in _TORCH_SHORT_WRITE)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files that killed saves of ``path`` left behind, and return them.

    A save writes ``.<name>.<random>.tmp`` and renames it; a process killed in
    between (``kill -9``) leaves it. Only files older than ``STALE_SECONDS`` go, so a
    save in progress elsewhere is never touched.
    """
    removed = []
    now = time.time()
    for leftover in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - leftover.stat().st_mtime > STALE_SECONDS:
                leftover.unlink()
                removed.append(leftover)
        except FileNotFoundError:  # another save removed or renamed it meanwhile
            continue
    return removed


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint's contents with ``weights_only=True``; raise ``CheckpointError`` if unusable."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # pickle, zip and EOF errors all mean the same thing here
        # PyTorch's own message suggests weights_only=False, which would run any code the
        # file carries. A course checkpoint never needs that, so its text is not passed on.
        raise CheckpointError(
            f"Cannot read {path}: it is corrupt or not a checkpoint of this course ({type(error).__name__}). "
            "Do not load it by other means unless you trust where it came from: a file that needs more "
            "than weights_only=True can run arbitrary code. Delete it and train again."
        ) from None
    if not isinstance(state, dict) or any(key not in state for key in _REQUIRED_KEYS):
        raise CheckpointError(
            f"{path} is not a checkpoint of this course: it lacks the keys "
            f"{[k for k in _REQUIRED_KEYS if not isinstance(state, dict) or k not in state]}. "
            "Delete it and train again."
        )
    version = state["format_version"]
    if type(version) is not int or version != FORMAT_VERSION:
        shown = f"{version!r} (a {type(version).__name__}, not a whole number)" if type(version) is not int else version
        raise CheckpointError(
            f"{path} has checkpoint format {shown}, this version of the course reads "
            f"format {FORMAT_VERSION}. Train again with retrain=True (-p retrain true), or delete the file."
        )
    problem = _layout_problem(state)
    if problem:
        raise CheckpointError(f"{path} is damaged or was not written by the course: {problem}. "
                              "Delete it and train again.")
    return state


def _layout_problem(state: dict[str, Any]) -> str | None:
    """Say what in a checkpoint's contents has the wrong type or does not add up, or return None."""
    expected = {"encoder": dict, "decoder": dict, "config": dict, "history": dict, "data_key": str}
    for key, kind in expected.items():
        if not isinstance(state[key], kind):
            return f"its {key} is a {type(state[key]).__name__}, not a {kind.__name__}"
    if type(state["epoch"]) is not int or state["epoch"] < 0:
        return f"its epoch is {state['epoch']!r}, not a whole number of epochs"
    for name, values in state["history"].items():
        if not isinstance(values, list) or not all(isinstance(v, float) for v in values):
            return f"its history[{name!r}] is not a list of numbers"
    done = len(state["history"].get("train_loss", []))
    if done != state["epoch"]:
        return f"its history holds {done} epochs, but it says {state['epoch']} are done"
    planned = state["config"].get("num_epochs")
    if isinstance(planned, int) and done > planned:
        return f"its history holds {done} epochs, more than the {planned} its settings plan"
    optimizer = state.get("optimizer")
    if optimizer is not None and not (isinstance(optimizer, dict) and {"state", "param_groups"} <= set(optimizer)):
        return "its optimizer state lacks the state and param_groups that torch.optim saves"
    snapshots = state.get("snapshots")
    if snapshots is not None and not isinstance(snapshots, torch.Tensor):
        return f"its snapshots are a {type(snapshots).__name__}, not a tensor"
    return None


def load_checkpoint(
    path: str | os.PathLike,
    encoder: nn.Module,
    decoder: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any]:
    """Load a checkpoint into ``encoder`` and ``decoder`` (and ``optimizer``) and return it.

    Raises:
        CheckpointError: the file is corrupt, or its latent size ``d`` differs from the models'.
    """
    state = read_checkpoint(path)
    saved_dim = state["config"].get("latent_dim")
    for model in (encoder, decoder):
        model_dim = getattr(model, "latent_dim", saved_dim)
        if saved_dim != model_dim:
            raise CheckpointError(
                f"{path} holds a model with latent_dim d={saved_dim}, but the {type(model).__name__} "
                f"has d={model_dim}. Build the model with latent_dim={saved_dim}, or train a new one."
            )
    try:
        encoder.load_state_dict(state["encoder"])
        decoder.load_state_dict(state["decoder"])
    except RuntimeError as error:
        raise CheckpointError(f"{path} does not fit this model: {str(error).splitlines()[0]}") from error
    if optimizer is not None and state.get("optimizer") is not None:
        saved = state["optimizer"]
        # How the update runs (fused, foreach, capturable) belongs to the device the optimizer
        # runs on now, not to the one that saved it: a checkpoint saved on a GPU resumes on a CPU.
        # (A different number of groups is left to load_state_dict, which says so.)
        for saved_group, group in zip(saved["param_groups"], optimizer.param_groups, strict=False):
            saved_group.update({key: group[key] for key in IMPLEMENTATION_FLAGS if key in group})
        optimizer.load_state_dict(saved)
    return state
