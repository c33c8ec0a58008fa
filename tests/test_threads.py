"""The CPU threads the course trains with: quota parsing, overrides, the order of imports, adapting to the load."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dae_utils import threads

ROOT = Path(__file__).resolve().parent.parent


def cgroup(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("files, quota", [
    ({"cpu.max": "max 100000\n"}, None),  # cgroup v2, no limit
    ({"cpu.max": "150000 100000\n"}, 1.5),  # 1.5 CPUs
    ({"cpu.max": "200000 100000\n"}, 2.0),
    ({"cpu.max": "50000 100000\n"}, 0.5),
    ({"cpu.max": "garbage\n"}, None),  # unreadable: no quota, never a crash
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # cgroup v1, no limit
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3.0),
    ({"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 0.5),
    ({}, None),  # no cgroup files at all (macOS, or an unusual mount)
])
def test_cgroup_quota_is_read_from_v2_and_v1_files(tmp_path, files, quota):
    assert threads.cpu_quota(cgroup(tmp_path, files)) == quota


@pytest.mark.parametrize("affinity, files, expected", [
    (8, {"cpu.max": "150000 100000\n"}, 2),  # a quota of 1.5 CPUs on an 8-CPU node: 2 threads
    (8, {"cpu.max": "50000 100000\n"}, 1),
    (8, {"cpu.max": "max 100000\n"}, 8),
    (2, {"cpu.max": "400000 100000\n"}, 2),  # the affinity is the tighter limit
])
def test_usable_cpus_is_the_tighter_of_affinity_and_quota(tmp_path, monkeypatch, affinity, files, expected):
    monkeypatch.setattr(threads, "affinity_cpus", lambda: affinity)
    assert threads.usable_cpus(cgroup(tmp_path, files)) == expected
    assert threads.chosen_threads({}, tmp_path)[0] == expected


def test_overrides_win_and_bad_ones_are_named(tmp_path):
    assert threads.chosen_threads({"DAE_NUM_THREADS": "3", "OMP_NUM_THREADS": "5"}, tmp_path) == (3, "DAE_NUM_THREADS")
    assert threads.chosen_threads({"OMP_NUM_THREADS": "5"}, tmp_path) == (5, "OMP_NUM_THREADS")
    for bad in ("0", "two", "-1"):
        with pytest.raises(ValueError, match=f"DAE_NUM_THREADS is '{bad}'; it must be a whole number >= 1"):
            threads.chosen_threads({"DAE_NUM_THREADS": bad}, tmp_path)


def test_a_count_the_course_set_is_chosen_again_not_taken_as_the_users(tmp_path, monkeypatch):
    """A kernel inherits OMP_NUM_THREADS from the runner; it is still the course's choice, to adapt."""
    monkeypatch.setattr(threads, "affinity_cpus", lambda: 4)
    root = cgroup(tmp_path, {"cpu.max": "200000 100000\n"})
    count, reason = threads.chosen_threads({"OMP_NUM_THREADS": "7", threads.CHOSEN_ENV: "7"}, root)
    assert count == 2 and "cgroup quota 2" in reason
    assert threads.chosen_threads({"OMP_NUM_THREADS": "3", threads.CHOSEN_ENV: "7"}, root) == (3, "OMP_NUM_THREADS")


def test_apply_sets_the_count_adapts_only_its_own_and_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setattr(threads, "CHOICE", {})
    root = cgroup(tmp_path, {"cpu.max": "100000 100000\n"})
    environ = {}
    chose = threads.apply(environ, root)
    assert environ == {"OMP_NUM_THREADS": "1", threads.CHOSEN_ENV: "1"} and chose["adaptive"] == "yes"
    assert "fewer while other processes keep these CPUs busy" in threads.describe()
    users = {"OMP_NUM_THREADS": "3"}
    assert threads.apply(users, root)["adaptive"] == "no" and users == {"OMP_NUM_THREADS": "3"}
    assert threads.describe() == "threads: 3 (OMP_NUM_THREADS); fixed, as set"
    untouched = {"DAE_THREADS": "default"}
    assert threads.apply(untouched)["adaptive"] == "no" and untouched == {"DAE_THREADS": "default"}


class FakeCPUs:
    """A clock and CPU-time counters that a test moves by hand."""

    def __init__(self):
        self.wall = self.busy = self.own = 0.0

    def run(self, seconds: float, own: float, others: float) -> None:
        self.wall += seconds
        self.own += own * seconds
        self.busy += (own + others) * seconds


@pytest.mark.parametrize("cpus, own, others, suggested", [
    (2, 2.0, 0.0, 2),  # alone: all of them
    (2, 1.0, 1.0, 1),  # another training on one CPU
    (2, 0.7, 1.3, 1),  # another one spinning on both: it gets most of the time
    (2, 1.9, 0.1, 2),  # a notebook server's crumbs do not count
    (8, 4.0, 2.6, 5),
    (4, 1.0, 3.0, 1),  # never fewer than one
])
def test_load_watcher_suggests_the_cpus_others_leave_free(cpus, own, others, suggested):
    fake = FakeCPUs()
    watcher = threads.LoadWatcher(cpus, busy=lambda: fake.busy, own=lambda: fake.own, clock=lambda: fake.wall)
    fake.run(0.5, own, others)
    assert watcher.suggest() is None  # not a whole interval yet
    fake.run(0.7, own, others)
    assert watcher.suggest() == suggested
    assert watcher.others() is None  # no time has passed since: no window to measure
    fake.run(1.0, own, 0.0)
    assert watcher.suggest() == cpus  # the others are gone: all CPUs again


def test_load_watcher_says_nothing_when_it_cannot_read_the_load():
    clock = iter(range(100))
    watcher = threads.LoadWatcher(2, busy=lambda: None, own=lambda: 0.0, clock=lambda: next(clock))
    assert watcher.suggest() is None


@pytest.mark.parametrize("files, seconds", [
    ({"cpu.max": "100000 100000\n", "cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"},
     2.5),
    ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n", "cpuacct/cpuacct.usage": "1500000000\n"},
     1.5),
])
def test_under_a_quota_the_cgroup_s_own_cpu_time_is_watched(tmp_path, files, seconds):
    watcher = threads.LoadWatcher(1, root=cgroup(tmp_path, files))
    assert watcher.busy() == seconds


def test_without_a_quota_the_busy_time_of_the_cpus_in_the_affinity_is_read(tmp_path, monkeypatch):
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {1}, raising=False)
    stat = tmp_path / "stat"
    stat.write_text("cpu  500 0 50 900 0 0 0 0 0 0\n"
                    "cpu0 400 0 40 100 0 0 0 0 0 0\n"
                    "cpu1 100 10 10 800 5 3 2 7 0 0\n"  # user nice system idle iowait irq softirq steal
                    "intr 1 2 3\n")
    watcher = threads.LoadWatcher(1, root=tmp_path, proc_stat=stat)
    assert watcher.busy() == pytest.approx((100 + 10 + 10 + 3 + 2) / threads.os.sysconf("SC_CLK_TCK"))


SPIN = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end:\n    pass\n"


@pytest.fixture
def fake_load(monkeypatch):
    """Make the course adapt its threads to fake CPU counters on 4 CPUs; restore torch's count afterwards."""
    import torch

    fake = FakeCPUs()
    monkeypatch.setattr(threads, "CHOICE", {"adaptive": "yes", "cpus": "4"})
    monkeypatch.setattr(threads, "_watcher", threads.LoadWatcher(4, busy=lambda: fake.busy, own=lambda: fake.own,
                                                                 clock=lambda: fake.wall))
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield fake
    torch.set_num_threads(before)


def test_training_steps_give_cpus_to_busy_neighbours_and_take_them_back(fake_load):
    """The adaptation itself, on counters the test moves: each training step asks the watcher, and sets the count."""
    import torch

    from dae_utils import training

    config = training.TrainConfig(seed=0)
    encoder, decoder, optimizer = training.build_models(config, torch.device("cpu"))
    images, loss = torch.rand(8, 1, 28, 28), torch.nn.MSELoss()
    seen = []
    for own, others in ((4.0, 0.0), (2.0, 2.0), (1.0, 3.0), (4.0, 0.0)):  # alone, one neighbour, more, alone again
        fake_load.run(1.2, own, others)
        training.training_step(encoder, decoder, loss, optimizer, 0.3, images)
        seen.append(torch.get_num_threads())
    assert seen == [4, 2, 1, 4]


def test_a_count_the_user_set_is_never_adapted(fake_load, monkeypatch):
    import torch

    monkeypatch.setattr(threads, "CHOICE", {"adaptive": "no", "cpus": "4"})
    fake_load.run(1.2, 1.0, 3.0)
    threads.adapt()
    assert torch.get_num_threads() == 4


@pytest.mark.cpu_load
@pytest.mark.skipif(threads.usable_cpus() < 2, reason="needs at least 2 usable CPUs")
def test_on_real_cpus_training_gives_way_to_a_busy_neighbour_and_recovers():
    """Real CPUs (run alone: pytest -m cpu_load): a spinning process takes one CPU; the course's training steps use
    fewer threads while it spins and more again once it stops. Relative, since anything else running moves counts."""
    code = ("import dae_utils, json, subprocess, sys, time, torch\n"
            "from dae_utils import training\n"
            "enc, dec, opt = training.build_models(training.TrainConfig(seed=0), torch.device('cpu'))\n"
            "images, loss = torch.rand(64, 1, 28, 28), torch.nn.MSELoss()\n"
            "def train(seconds):\n"
            "    end = time.monotonic() + seconds\n"
            "    while time.monotonic() < end:\n"
            "        training.training_step(enc, dec, loss, opt, 0.3, images)\n"
            "    return torch.get_num_threads()\n"
            "alone = train(2.5)\n"
            f"spinner = subprocess.Popen([sys.executable, '-c', {SPIN!r}])\n"
            "shared = train(3.5)\n"
            "spinner.kill(); spinner.wait()\n"
            "again = train(3.5)\n"
            "print(json.dumps([alone, shared, again]))")
    alone, shared, again = fresh_python(code)
    assert shared < alone and again > shared


def fresh_python(code: str, **env: str):
    """Run ``code`` in a new interpreter (no torch loaded yet) and return the JSON it prints."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMP_") and not k.startswith("DAE_THREADS")
             and k not in ("DAE_NUM_THREADS", threads.CHOSEN_ENV)}
    done = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


REPORT = ("import json, os, torch\n"
          "from dae_utils import threads\n"
          "print(json.dumps({'threads': torch.get_num_threads(), 'env_threads': os.environ.get('OMP_NUM_THREADS'),"
          " 'describe': threads.describe()}))")


def test_importing_dae_utils_before_torch_starts_torch_with_the_usable_cpus():
    seen = fresh_python("import dae_utils\n" + REPORT)
    assert seen["threads"] == threads.usable_cpus() and seen["env_threads"] == str(threads.usable_cpus())
    assert "fewer while other processes keep these CPUs busy" in seen["describe"]
    fixed = fresh_python("import dae_utils\n" + REPORT, DAE_NUM_THREADS="1")
    assert fixed["threads"] == 1 and fixed["describe"] == "threads: 1 (DAE_NUM_THREADS); fixed, as set"


def test_importing_torch_first_still_sets_the_thread_count():
    seen = fresh_python("import torch\ntorch.set_num_threads(5)\nimport dae_utils\n" + REPORT, DAE_NUM_THREADS="1")
    assert seen["threads"] == 1


def test_the_switch_leaves_pytorch_alone():
    seen = fresh_python("import torch\nbefore = torch.get_num_threads()\nimport dae_utils\n" + REPORT,
                        DAE_THREADS="default")
    assert seen["env_threads"] is None and seen["describe"].startswith("threads: PyTorch's default")


def test_the_shell_line_for_make_lab():
    def line(**env):
        clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", threads.CHOSEN_ENV,
                                                                   "DAE_NUM_THREADS", "DAE_THREADS")}
        return subprocess.run([sys.executable, "-c", "import dae_utils.threads as t; t.main()"], cwd=ROOT,
                              capture_output=True, text=True, check=True, env={**clean, **env}).stdout.split()

    cpus = threads.usable_cpus()
    assert line() == [f"OMP_NUM_THREADS={cpus}", f"{threads.CHOSEN_ENV}={cpus}"]
    assert line(DAE_NUM_THREADS="3") == []  # the kernels inherit DAE_NUM_THREADS itself


def test_every_notebook_imports_dae_utils_before_torch():
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        first = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code").source
        assert first.splitlines()[0].startswith("import dae_utils"), f"{path.name}: import dae_utils before torch"


def test_make_lab_starts_jupyter_with_the_course_settings():
    printed = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "env $(.venv/bin/python -c 'import dae_utils.threads as t; t.main()') .venv/bin/jupyter lab" in printed


def test_a_fixed_count_holds_inside_and_is_given_back_even_after_an_error(monkeypatch):
    import torch

    monkeypatch.setattr(threads, "CHOICE", {"adaptive": "yes", "cpus": "2"})
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="inside"), threads.fixed(1):
        assert torch.get_num_threads() == 1 and threads.CHOICE["adaptive"] == "no"
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before and threads.CHOICE == {"adaptive": "yes", "cpus": "2"}
