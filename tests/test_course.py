"""The headless course runner: selection, parameters, summary, and failures."""

import ast
import datetime
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from dae_utils import course, editions, threads

ROOT = Path(__file__).resolve().parent.parent


def write_notebook(path: Path, sources: list[str], parameters: str = "value = 1") -> Path:
    params = new_code_cell(parameters)
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, *[new_code_cell(s) for s in sources]])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_find_notebooks_in_course_order_and_by_selection():
    names = [p.name for p in course.find_notebooks()]
    assert names == sorted(names) and names[0].startswith("01_") and len(names) == 7
    assert [p.name[:2] for p in course.find_notebooks(selection=["3", "01", "03"])] == ["01", "03"]
    with pytest.raises(course.CourseError, match="matches 0 notebooks; choose from"):
        course.find_notebooks(selection=["08"])
    with pytest.raises(course.CourseError, match="'²' matches 0 notebooks"):  # isdigit(), yet not a number
        course.find_notebooks(selection=["²"])


@pytest.mark.parametrize("text, default, value", [
    ("5", 3, 5), ("0.5", 0.3, 0.5), ("1e-3", 0.001, 0.001), ("2", 0.3, 2.0),
    ("true", False, True), ("False", True, False), ("YES", False, True), ("no", True, False),
    ("1", False, True), ("0", True, False),
    ("sample", "auto", "sample"), ("'a b'", "auto", "a b"), ("None", None, None), ("none", None, None),
])
def test_typed_value_follows_the_default(text, default, value):
    typed = course.typed_value("x", text, default)
    assert typed == value and type(typed) is type(value)


@pytest.mark.parametrize("text, default, hint", [
    ("false!", False, "true or false"), ("maybe", True, "true or false"), ("2", False, "true or false"),
    ("0.3,", 0.3, "finite number"), ("0,5", 0.3, "finite number"), ("nan", 0.3, "finite number"),
    ("five", 3, "whole number"), ("2.5", 3, "whole number"),
])
def test_typed_value_refuses_near_misses(text, default, hint):
    with pytest.raises(course.CourseError, match=hint):
        course.typed_value("x", text, default)


def test_relative_folders_are_taken_from_the_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert course.typed_value("checkpoint_dir", "relck", "../checkpoints") == str(tmp_path / "relck")
    assert course.typed_value("data_dir", "data/mnist", None) == str(tmp_path / "data" / "mnist")
    assert course.typed_value("data_source", "sample", "auto") == "sample"  # not a folder: as written


def test_a_folder_set_to_none_means_no_folder_and_an_empty_one_is_refused():
    assert course.typed_value("checkpoint_dir", "none", "../checkpoints") is None  # not a folder named none
    assert course.typed_value("checkpoint_dir", "None", "../checkpoints") is None
    for name, default in (("checkpoint_dir", "../checkpoints"), ("data_dir", None)):
        with pytest.raises(course.CourseError, match=f"-p {name} '': {name} is a folder; give its path, or none"):
            course.typed_value(name, "", default)


def test_every_notebook_declares_plain_literal_parameters():
    """Papermill must read every assignment of the parameters cell, and each value must be a literal."""
    for path in course.find_notebooks():
        nb = nbformat.read(path, as_version=4)
        cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1, path.name
        assigned = {}
        for node in ast.parse(cells[0].source).body:
            assert isinstance(node, ast.Assign), f"{path.name}: only plain assignments belong there"
            assigned[node.targets[0].id] = ast.literal_eval(node.value)  # raises if not a literal
        assert set(course.notebook_parameters(path)) == set(assigned), path.name
        assert {"seed", "data_source", "data_dir"} <= set(assigned), path.name


def untrained_kmeans_accuracy(images: torch.Tensor, labels: torch.Tensor) -> float:
    """Return the best mode accuracy of k-means (one start, as below) on untrained encoders' codes, seeds 0 to 2."""
    from dae_utils import clustering, generation
    from dae_utils.model import Encoder

    scores = []
    for seed in range(3):
        torch.manual_seed(seed)
        codes = generation.encode(Encoder(4).eval(), images, torch.device("cpu")).numpy()
        kmeans = clustering.best_kmeans(codes, random_states=range(1), progress=False)
        scores.append(clustering.cluster_scores(kmeans.labels_, labels.numpy())["accuracy_mode"])
    return max(scores)


def at_four_digits(value: float) -> str:
    return f"{value:.4g}"


def test_runner_runs_notebooks_and_summarises_what_this_run_measured(tmp_path):
    """The README's command on the offline sample, with the notebooks' own epochs (on 4,000 images one epoch leaves
    the model untrained: test MSE 0.245, digits kept 10 %), quick k-means. The figures must be a trained model's,
    beyond what an untrained one reaches, and this run's: none equals the committed full-MNIST run's."""
    from dae_utils import baselines
    from dae_utils.data import load_sample

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "dae_utils.course", "run", "--notebooks", "01", "03", "04", "05", "07",
           "--output-dir", str(out), "-p", "checkpoint_dir", str(tmp_path / "ckpt"),
           "-p", "kmeans_runs", "1", "-p", "n_init", "1"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    names = ["01_noise_and_data.ipynb", "03_training.ipynb", "04_generation.ipynb", "05_clustering.ipynb",
             "07_variational_autoencoder.ipynb"]
    assert sorted(p.name for p in out.iterdir()) == [*names, "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    sample = load_sample()
    black = baselines.mse(torch.zeros_like(sample.test_images), sample.test_images)  # an all-black output's MSE
    untrained = untrained_kmeans_accuracy(sample.train_images, sample.train_labels)  # about 0.27 to 0.34

    training = summary["03_training.ipynb"]
    # Denoises better than doing nothing (1 epoch: 0.245; 10 epochs: 0.074, against the noisy input's 0.046).
    assert 0 < training["final_test_loss"] < training["test_mse_noisy"] < black and training["psnr_gain_db"] > 0
    assert training["wall_time_s"] > 0
    # The digit judge's figures: its own accuracy bounds what any denoiser can keep.
    assert 0.9 < training["classifier_test_accuracy"] <= 1
    for kept in ("digits_kept_noisy", "digits_kept_median", "digits_kept_autoencoder"):
        assert 0 < training[kept] <= training["classifier_test_accuracy"] + 0.01, kept
    assert training["digits_kept_autoencoder"] > 0.5  # untrained: 0.10, a tenth, chance (10 epochs: 0.37)
    assert training["ssim_autoencoder"] > 0.3 and 0 < training["ssim_median"] < 1  # untrained: 0.005
    generation = summary["04_generation.ipynb"]
    # An untrained decoder draws the same grey blur for every code: nothing readable, Fréchet distance 1,606.
    assert generation["frechet_distance_mixture"] < 1000 and generation["readable_share_mixture"] > 0
    clustering = summary["05_clustering.ipynb"]
    assert clustering["accuracy_mode"] > untrained + 0.15
    assert abs(clustering["test_images_accuracy_mode"] - clustering["accuracy_mode"]) < 0.05
    vae = summary["07_variational_autoencoder.ipynb"]
    assert 0 < vae["vae_test_mse"] < black / 2  # untrained: 0.28; 10 epochs: 0.11
    assert vae["vae_kmeans_accuracy"] > untrained + 0.15

    # This run's figures, not the committed run's: the data differ (the sample against full MNIST), so no live
    # figure equals the committed one to four digits; a reference figure is the same file's, named and sourced.
    for name in names:
        committed = course.notebook_summary(course.NOTEBOOK_DIR / name)
        live = summary[name]
        assert live["data"] == "offline sample" and committed["data"] != "offline sample", name
        shared = [key for key, value in live.items() if isinstance(value, float) and key in committed]
        assert shared, name
        same = [key for key in shared if at_four_digits(live[key]) == at_four_digits(committed[key])]
        assert same == [], f"{name}: {same} equal the committed full-MNIST figures: a reference recorded as live?"
        assert live.get("reference", {}) == committed.get("reference", {}), name
    assert set(summary["07_variational_autoencoder.ipynb"]["reference"]) == {"vae_readable_share_mixture"}
    assert "vae_readable_share_mixture" not in summary["07_variational_autoencoder.ipynb"]
    assert "5 of 5 notebooks ran on the offline sample" in done.stdout
    assert "reference figures, not measured in this run" in done.stdout

    assert "[2/5] 03_training.ipynb checkpoint_dir=" in done.stdout
    assert "Summary" in done.stdout and "accuracy_mode" in done.stdout
    # Notebooks 4, 5 and 7 found notebook 3's checkpoint and digit judge instead of training again.
    assert sorted("_".join(p.name.split("_")[:2]) for p in (tmp_path / "ckpt").glob("*.pt")) == [
        "dae_d4", "digit_classifier", "digit_judge", "vae_d4"]
    for name in ("04_generation.ipynb", "05_clustering.ipynb", "07_variational_autoencoder.ipynb"):
        executed = nbformat.read(out / name, as_version=4)
        assert any("Loaded dae_d4" in o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    executed = nbformat.read(out / "04_generation.ipynb", as_version=4)
    assert any("Loaded digit_judge" in o.get("text", "") for c in executed.cells for o in c.get("outputs", []))


def test_failing_notebook_stops_the_run_and_keeps_what_was_written(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_notebook(nbs / "01_good.ipynb", ["from dae_utils import runtime\nruntime.record('answer', 42)"])
    write_notebook(nbs / "02_broken.ipynb", ["x = 1", "raise ValueError('deliberately broken')"])
    write_notebook(nbs / "03_never.ipynb", ["y = 2"])
    out = tmp_path / "run"
    code = course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert "02_broken.ipynb failed in cell 2" in err and "deliberately broken" in err
    assert str(out / "02_broken.ipynb") in err
    assert (out / "01_good.ipynb").exists() and not (out / "03_never.ipynb").exists()
    assert json.loads((out / "summary.json").read_text())["01_good.ipynb"]["answer"] == 42
    broken = nbformat.read(out / "02_broken.ipynb", as_version=4)
    assert any(o.get("output_type") == "error" for c in broken.cells for o in c.get("outputs", []))


def test_unknown_parameter_and_used_output_dir_are_refused(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_notebook(nbs / "01_a.ipynb", ["pass"], parameters="num_epochs = 3")
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(tmp_path / "r"),
                        "-p", "num_epoch", "5"]) == 1
    assert "Unknown parameter(s) ['num_epoch']; these notebooks take: num_epochs" in capsys.readouterr().err
    used = tmp_path / "used"
    used.mkdir()
    (used / "old.ipynb").write_text("{}")
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(used)]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert (used / "old.ipynb").read_text() == "{}"


def test_summary_text_keeps_keys_and_values_apart():
    text = course.format_summary({"05_x.ipynb": {"a_very_long_recorded_name_of_thirty": 0.123456, "n": 3}})
    assert "    a_very_long_recorded_name_of_thirty  0.1235" in text
    assert "    n                                    3" in text


def test_reference_figures_are_summarised_apart_with_their_source_and_a_sample_run_says_so(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_notebook(nbs / "01_ref.ipynb", [
        "from dae_utils import data, runtime\n"
        "print(data.load_sample().describe())\n"
        "runtime.record('readable_share', 0.0124)\n"
        "runtime.record_reference('readable_share', 0.8571, 'benchmarks/results/generation.json, 5 seeds')"])
    write_notebook(nbs / "02_full.ipynb", ["from dae_utils import runtime\nruntime.record('loss', 0.026)"])
    out = tmp_path / "out"
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert {k: v for k, v in summary["01_ref.ipynb"].items() if k != "wall_time_s"} == {
        "readable_share": 0.0124, "data": "offline sample",
        "reference": {"readable_share": {"value": 0.8571, "source": "benchmarks/results/generation.json, 5 seeds"}}}
    assert summary["02_full.ipynb"]["data"] != "offline sample" and "reference" not in summary["02_full.ipynb"]
    assert "1 of 2 notebooks ran on the offline sample" in printed
    live, reference = printed.index("    readable_share"), printed.index("reference figures, not measured in this run")
    assert live < reference and "0.8571  (benchmarks/results/generation.json, 5 seeds)" in printed[reference:]
    assert "0.8571" not in printed[:reference]


def test_a_reference_figure_needs_its_source_and_a_plain_name():
    from dae_utils import runtime

    with pytest.raises(ValueError, match="needs its source"):
        runtime.record_reference("share", 0.5, " ")
    with pytest.raises(ValueError, match=r"without the prefix: record_reference\('share'"):
        runtime.record_reference("reference_share", 0.5, "results.json")
    with pytest.raises(ValueError, match=r"names a reference figure: record it with record_reference\('share'"):
        runtime.record("reference_share", 0.5)


def run_main(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the course command in a fresh process, as a user would."""
    import os

    return subprocess.run([sys.executable, "-m", "dae_utils.course", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_typed_parameters_reach_the_notebook_and_relative_folders_the_shell_folder(tmp_path):
    """-p retrain false used to arrive as the truthy string 'false' and retrain; folders resolved in notebooks/."""
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_notebook(nbs / "01_p.ipynb", [
        "import os\nfrom dae_utils import runtime\n"
        "runtime.record('retrain', retrain)\nruntime.record('checkpoint_dir', checkpoint_dir)\n"
        "runtime.record('data_dir_env', os.environ['DAE_DATA_DIR'])"],
        parameters='retrain = False\ncheckpoint_dir = "../checkpoints"')
    done = run_main(["run", "--notebook-dir", str(nbs), "--output-dir", "out",
                     "-p", "retrain", "false", "-p", "checkpoint_dir", "relck"], tmp_path, {"DAE_DATA_DIR": "data/m"})
    assert done.returncode == 0, done.stderr
    values = json.loads((tmp_path / "out" / "summary.json").read_text())["01_p.ipynb"]
    assert values["retrain"] is False
    assert values["checkpoint_dir"] == str(tmp_path / "relck")
    assert values["data_dir_env"] == str(tmp_path / "data" / "m")
    # The kernel talks over IPC: no "running over TCP without encryption" warning in the output.
    assert "without encryption" not in done.stdout + done.stderr


def test_bad_value_and_unknown_kernel_are_refused_before_anything_is_written(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_notebook(nbs / "01_a.ipynb", ["pass"], parameters="noise_factor = 0.3\nretrain = False")
    out = tmp_path / "out"
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(out), "-p", "noise_factor", "0,5"]) == 1
    assert "-p noise_factor '0,5': noise_factor is a finite number, e.g. -p noise_factor 0.3" in capsys.readouterr().err
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(out), "-p", "retrain", "nope"]) == 1
    assert "true or false" in capsys.readouterr().err
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(out), "--kernel", "python9"]) == 1
    err = capsys.readouterr().err
    assert "--kernel 'python9': no such Jupyter kernel. Installed kernels:" in err and "python3" in err
    assert not out.exists()


@pytest.mark.parametrize("name, value, message", [
    ("num_epochs", "0", "num_epochs must be a positive integer, got 0"),
    ("latent_dim", "0", "latent_dim must be a positive integer, got 0"),
    ("noise_factor", "-0.5", "noise_factor must be a finite number >= 0, got -0.5"),
    ("noise_factor", "-1e-3", "noise_factor must be a finite number >= 0, got -0.001"),  # argparse read an option
    ("noise_factor", "-inf", "-p noise_factor '-inf': noise_factor is a finite number"),
    ("lr", "1e-400", "lr must be greater than 0, got 0.0"),  # too small for a float: read as 0
])
def test_out_of_range_values_are_refused_before_any_kernel_starts(tmp_path, capsys, name, value, message):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    declared = "num_epochs = 30\nlatent_dim = 4\nnoise_factor = 0.3\nlr = 0.001"
    write_notebook(nbs / "01_a.ipynb", ["pass"], parameters=declared)
    out = tmp_path / "out"
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(out), "-p", name, value]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()  # refused before the run folder, let alone a kernel


def test_a_huge_value_is_not_echoed_in_full(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_notebook(nbs / "01_a.ipynb", ["pass"], parameters="num_epochs = 30")
    huge = "9" * 5000
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(tmp_path / "out"),
                        "-p", "num_epochs", huge + "x"]) == 1
    err = capsys.readouterr().err
    assert "is a whole number" in err and "(5001 characters)" in err and len(err) < 300


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    class Frozen(course.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 11, 27, 12, 0, 0)

    monkeypatch.setattr(course, "RUNS_DIR", tmp_path / "runs")
    monkeypatch.setattr(course, "datetime", Frozen)
    first, second, third = (course.claim_run_dir(None) for _ in range(3))
    assert [first.name, second.name, third.name] == ["20261127-120000", "20261127-120000-2", "20261127-120000-3"]
    assert all(json.loads((d / "summary.json").read_text()) == {} for d in (first, second, third))
    # An explicit folder is owned by the first run that claims it.
    shared = tmp_path / "shared-out"
    course.claim_run_dir(shared)
    with pytest.raises(course.CourseError, match="not empty"):
        course.claim_run_dir(shared)


def test_output_dir_that_is_a_file_or_cannot_be_written(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_notebook(nbs / "01_a.ipynb", ["pass"])
    a_file = tmp_path / "file"
    a_file.write_text("keep me")
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(a_file)]) == 1
    assert "is a file" in capsys.readouterr().err
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(a_file / "sub")]) == 1
    assert "Cannot write the run folder" in capsys.readouterr().err
    assert a_file.read_text() == "keep me"


def test_a_dying_kernel_ends_the_run_with_a_message_and_a_summary(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_notebook(nbs / "01_good.ipynb", ["from dae_utils import runtime\nruntime.record('answer', 42)"])
    write_notebook(nbs / "02_dies.ipynb", ["import os\nos._exit(1)"])
    out = tmp_path / "run"
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "02_dies.ipynb stopped: DeadKernelError" in err and "summary.json" in err
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary) == ["01_good.ipynb"] and summary["01_good.ipynb"]["answer"] == 42


def test_ctrl_c_ends_the_run_with_a_message_saying_how_to_resume(tmp_path, capsys, monkeypatch):
    import papermill

    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for name in ("01_a", "02_b", "03_c"):
        write_notebook(nbs / f"{name}.ipynb", ["pass"])
    real = papermill.execute_notebook

    def interrupted_in_02(path, *args, **kwargs):
        if "02_b" in str(path):
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", interrupted_in_02)
    out = tmp_path / "run"
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(out), "-p", "value", "2"]) == 1
    err = capsys.readouterr().err
    assert "Interrupted during 02_b.ipynb" in err and "--notebooks 02 03 with the same -p values" in err
    assert list(json.loads((out / "summary.json").read_text())) == ["01_a.ipynb"]


def test_sigterm_ends_the_run_like_ctrl_c(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_notebook(nbs / "01_a.ipynb", ["pass"])
    write_notebook(nbs / "02_b.ipynb", ["import pathlib, time", "pathlib.Path('started').touch()\ntime.sleep(120)"])
    out = tmp_path / "run"
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    runner = subprocess.Popen([sys.executable, "-m", "dae_utils.course", "run", "--notebook-dir", str(nbs),
                               "--output-dir", str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env={**os.environ, "TMPDIR": str(temporary)})
    for _ in range(600):  # until the second notebook's kernel is busy sleeping
        if (nbs / "started").exists() or runner.poll() is not None:
            break
        time.sleep(0.1)
    runner.send_signal(signal.SIGTERM)
    stdout, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 1, (stdout, stderr)
    assert "Interrupted during 02_b.ipynb" in stderr and "--notebooks 02" in stderr
    assert list(json.loads((out / "summary.json").read_text())) == ["01_a.ipynb"]
    assert "Traceback" not in stderr, stderr
    assert list(temporary.iterdir()) == []  # the killed kernel's socket folder is removed too


def test_two_runs_started_together_both_work_from_a_read_only_folder_and_leave_nothing(tmp_path):
    """Two runners whose kernels are alive at the same time (each waits in a cell until the other's has started).

    They used to share fixed IPC socket names in notebooks/ and one of them failed. Their kernels also inherit
    the course's thread settings (dae_utils.threads) from the runner.
    """
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    meet = tmp_path / "meet"
    meet.mkdir()
    write_notebook(nbs / "01_a.ipynb", [
        "import os, pathlib, time\n"
        "meet = pathlib.Path(os.environ['MEET'])\n"
        "(meet / os.environ['WHO']).touch()\n"
        "deadline = time.monotonic() + 120\n"
        "while len(list(meet.iterdir())) < 2 and time.monotonic() < deadline:\n"
        "    time.sleep(0.05)\n"
        "assert len(list(meet.iterdir())) == 2, 'the other run never started its kernel'",
        "print('threads', os.environ.get('OMP_NUM_THREADS'), os.environ.get('DAE_CHOSEN_OMP_NUM_THREADS'))",
    ])
    write_notebook(nbs / "02_b.ipynb", ["print(value * 2)"])
    nbs.chmod(0o555)  # read-only (root may still write: the listing below is checked too)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in nbs.iterdir())
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_") and k not in ("DAE_THREADS",
                                                                                      "DAE_NUM_THREADS")}
    env.update(MEET=str(meet), TMPDIR=str(temporary))
    try:
        runners = [subprocess.Popen([sys.executable, "-m", "dae_utils.course", "run", "--notebook-dir", str(nbs),
                                     "--output-dir", str(tmp_path / who)], cwd=ROOT, env={**env, "WHO": who},
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for who in ("first", "second")]
        finished = [runner.communicate(timeout=600) for runner in runners]
    finally:
        nbs.chmod(0o755)
    for runner, (stdout, stderr) in zip(runners, finished, strict=True):
        assert runner.returncode == 0, (stdout, stderr)
    for who in ("first", "second"):
        executed = nbformat.read(tmp_path / who / "01_a.ipynb", as_version=4)
        printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
        assert f"threads {threads.usable_cpus()} {threads.usable_cpus()}" in printed  # the course's choice
        assert sorted(json.loads((tmp_path / who / "summary.json").read_text())) == ["01_a.ipynb", "02_b.ipynb"]
    assert sorted((p.name, p.stat().st_mtime_ns) for p in nbs.iterdir()) == before
    assert list(temporary.iterdir()) == []  # the kernels' private socket folders are gone


def test_every_notebook_checks_all_its_parameters_in_the_first_cell_after_them():
    """A bad -p value must get the package's clear error at once, not deep inside a plot."""
    for path in course.find_notebooks():
        nb = nbformat.read(path, as_version=4)
        index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        first = next(c for c in nb.cells[index + 1 :] if c.cell_type == "code")
        calls = [node for node in ast.walk(ast.parse(first.source)) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute) and node.func.attr == "check_parameters"]
        assert len(calls) == 1, f"{path.name}: the first cell after the parameters must call check_parameters"
        checked = {keyword.arg for keyword in calls[0].keywords}
        assert checked == set(course.notebook_parameters(path)), path.name
        assert first.source.index("check_parameters") < min(
            (first.source.index(s) for s in ("seed_everything", "load_mnist") if s in first.source), default=10**9)


def test_a_bad_parameter_fails_in_the_first_cell_with_the_clear_error(tmp_path):
    """-p noise_factor 0,5 used to fail deep inside a plotting cell of notebook 1."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = course.find_notebooks(selection=["01"])[0]
    with pytest.raises(PapermillExecutionError) as caught:
        papermill.execute_notebook(str(path), str(tmp_path / "out.ipynb"), parameters={"noise_factor": "0,5"},
                                   cwd=str(path.parent), progress_bar=False)
    assert caught.value.ename == "ParameterError" and "noise_factor must be a finite number" in caught.value.evalue
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    failed = next(i for i, c in enumerate(executed.cells) if any(o.get("output_type") == "error"
                                                                for o in c.get("outputs", [])))
    assert "check_parameters" in executed.cells[failed].source
    # The student sees the message alone, not a traceback through the package (dae_utils.errors).
    error = next(o for o in executed.cells[failed].outputs if o.output_type == "error")
    assert error.traceback == [f"\u2717 ParameterError: {caught.value.evalue}"]


def _solution_lines(source: str) -> list[str]:
    """Return the stripped, non-empty lines between BEGIN SOLUTION and END SOLUTION markers."""
    lines, inside = [], False
    for line in source.splitlines():
        if "BEGIN SOLUTION" in line:
            inside = True
        elif "END SOLUTION" in line:
            inside = False
        elif inside and line.strip():
            lines.append(line.strip())
    return lines


def test_every_notebook_has_checked_exercises_with_nbgrader_metadata():
    for path in course.find_notebooks():
        nb = nbformat.read(path, as_version=4)
        solutions = [c for c in nb.cells if editions.SOLUTION_MARKER in c.source]
        assert solutions, f"{path.name} has no write-it-yourself exercise"
        for cell in solutions:
            assert cell.metadata["nbgrader"]["solution"] is True and _solution_lines(cell.source)
            following = nb.cells[nb.cells.index(cell) + 1]
            assert following.metadata["nbgrader"]["grade"] is True and following.metadata["nbgrader"]["locked"]
            # The grade cell reloads the checks, so that rebinding one in an unlocked cell cannot pass it.
            # (every module the check uses: the shared helpers, then the notebook's own checks).
            assert "importlib.reload(dae_utils.exercises.common)\n" in following.source, path.name
            assert f"importlib.reload(dae_utils.exercises.nb{path.name[:2]}).check_" in following.source, path.name
        grade_ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
        assert len(grade_ids) == len(set(grade_ids)), path.name


def test_the_automatic_points_weigh_the_assignment_first():
    """At least 70 % of the points nbgrader gives automatically grade the assignment's own parts (a, d and e)."""
    points = {}
    for path in course.find_notebooks():
        for cell in nbformat.read(path, as_version=4).cells:
            grading = cell.metadata.get("nbgrader", {})
            if grading.get("grade") and cell.cell_type == "code":
                points[grading["grade_id"]] = grading["points"]
    assert set(editions.ASSIGNMENT_CHECKS) <= set(points)  # every part has its check
    assert {part[0] for part in editions.ASSIGNMENT_CHECKS.values()} == {"a", "d", "e"}
    assignment = sum(points[grade_id] for grade_id in editions.ASSIGNMENT_CHECKS)
    assert assignment / sum(points.values()) >= editions.ASSIGNMENT_SHARE, (assignment, sum(points.values()))


#: The opening's estimate: "**Time:** core about 95 minutes (50 to read and run, 45 for the exercises); going further
#: about 40 minutes (25 to read and run, 15 for its exercises)." A notebook with nothing marked going further says so;
#: one that is going further as a whole (its title says so) says "**Time:** going further, all of it: about 90 minutes
#: (55 to read and run, 35 for its exercises)."
TIME_ESTIMATE = re.compile(
    r"\*\*Time:\*\* (?:core about (?P<core>\d+) minutes \((?P<core_read>\d+) to read and run, (?P<core_ex>\d+) "
    r"for the exercises\); |going further, all of it: )(?:(?:going further )?about (?P<more>\d+) minutes "
    r"\((?P<more_read>\d+) to read and run, (?P<more_ex>\d+) for its exercises\)|nothing is marked going further)\.")
#: An exercise states its own minutes after its title: "1. **Salt and pepper.** *(15 minutes)* Replace ...".
EXERCISE = re.compile(r"^\d+\. \*\*(?P<title>.+?)\*\*(?: \*\((?P<minutes>\d+) minutes\)\*)?", re.MULTILINE)
#: The method, as book/about.md states it: technical prose at 150 words a minute, 5 seconds a line of code and 2 a
#: line of printed output, a minute a figure, and the computing time the committed run measured (each cell's
#: execution, on 2 cores with the shared checkpoints); each exercise takes the 10 to 15 minutes it states.
WORDS_PER_MINUTE = 150
SECONDS_PER_CODE_LINE = 5
SECONDS_PER_PRINTED_LINE = 2
MINUTES_PER_FIGURE = 1
EXERCISE_MINUTES = (10, 15)
#: Rounding room: a stated time is at least the count, and less than this many minutes above it.
ROUNDING_MINUTES = 10


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """Return how long a code cell took in the committed run (its execution metadata), or 0 if unrecorded."""
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not start or not end:
        return 0.0
    parse = lambda stamp: datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))  # noqa: E731
    return max(0.0, (parse(end) - parse(start)).total_seconds())


def counted_minutes(notebook: nbformat.NotebookNode) -> dict[str, float]:
    """Return the method's minutes: to read and run the core and the going-further sections, and their exercises.

    A section is going further when its heading says so, up to the next heading of its level or above; an exercise
    is when its title starts with "Going further"; everything is when the notebook's title says so. The exercises
    and their reference results are counted by the minutes each exercise states, not by their words.
    """
    minutes = {"core_read": 0.0, "more_read": 0.0, "core_ex": 0.0, "more_ex": 0.0}
    skipped_level = None  # the level of the going-further heading being skipped, if any
    in_exercises = False
    whole = bool(re.match(r"# .*going further", notebook.cells[0].source, re.I))  # the title says so
    for cell in notebook.cells:
        heading = re.match(r"(#+) (.*)", cell.source) if cell.cell_type == "markdown" else None
        if heading:
            level, title = len(heading.group(1)), heading.group(2)
            if level <= 2:
                in_exercises = title.startswith(("Exercises", "Reference results for the exercises"))
            if skipped_level is not None and level <= skipped_level:
                skipped_level = None
            if skipped_level is None and "going further" in title.lower():
                skipped_level = level
        if in_exercises:
            for exercise in EXERCISE.finditer(cell.source if cell.cell_type == "markdown" else ""):
                stated = int(exercise["minutes"] or 0)
                key = "more_ex" if exercise["title"].lower().startswith("going further") or whole else "core_ex"
                minutes[key] += stated
            continue
        key = "more_read" if skipped_level is not None or whole else "core_read"
        if cell.cell_type == "markdown":
            minutes[key] += len(cell.source.split()) / WORDS_PER_MINUTE
            continue
        seconds = len(cell.source.splitlines()) * SECONDS_PER_CODE_LINE + cell_seconds(cell)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                seconds += 60 * MINUTES_PER_FIGURE
            else:
                printed = output.get("text", "") + data.get("text/plain", "")
                seconds += len(printed.splitlines()) * SECONDS_PER_PRINTED_LINE
        minutes[key] += seconds / 60
    return minutes


def test_counted_minutes_counts_what_it_says():
    notebook = new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\n\n" + "word " * 298),  # 300 words: 2 minutes
        new_code_cell("a = 1\nb = 2\nc = 3"),  # 3 lines: 15 s; 15 printed: 30 s; a figure: 1 minute; ran 45 s
        nbformat.v4.new_markdown_cell("## 1.1 Going further: counted apart\n\n" + "word " * 144),  # 150 words
        new_code_cell("more()"),  # 5 s
        nbformat.v4.new_markdown_cell("### 1.1.1 Still going further"),  # 5 words
        nbformat.v4.new_markdown_cell("## 1.2 Core again"),  # 4 words
        nbformat.v4.new_markdown_cell("## Exercises\n\n" + "word " * 600 + "\n\n"
                                      "1. **Write it.** *(15 minutes)* Do.\n2. **Think.** *(10 minutes)* Why?\n"
                                      "3. **Going further: more.** *(15 minutes)* Go."),
        nbformat.v4.new_markdown_cell("## Reference results for the exercises"),
        new_code_cell("print(reference)"),
    ])
    notebook.cells[1].outputs = [nbformat.v4.new_output("stream", text="x\n" * 15),
                                 nbformat.v4.new_output("display_data", data={"image/png": "", "text/plain": "<Fig>"})]
    notebook.cells[1].metadata["execution"] = {"iopub.execute_input": "2026-12-01T10:00:00.000000Z",
                                               "shell.execute_reply": "2026-12-01T10:00:45.000000Z"}
    assert counted_minutes(notebook) == pytest.approx({
        "core_read": 2 + (15 + 30 + 45) / 60 + 1 + 4 / 150, "more_read": 1 + 5 / 60 + 5 / 150,
        "core_ex": 25, "more_ex": 15})


def test_a_notebook_titled_going_further_counts_as_going_further_throughout():
    notebook = new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 6. Going further: beyond\n\n" + "word " * 295),  # 300 words: 2 minutes
        nbformat.v4.new_markdown_cell("## 6.1 A section\n\n" + "word " * 146),  # 150 words: 1 minute
        nbformat.v4.new_markdown_cell("## Exercises\n\n1. **Write it.** *(15 minutes)* Do."),
    ])
    assert counted_minutes(notebook) == pytest.approx({"core_read": 0, "more_read": 3, "core_ex": 0, "more_ex": 15})
    notebook.cells[0].source += ("\n\n**Time:** going further, all of it: about 20 minutes (5 to read and run, 15 for "
                                 "its exercises).")
    assert stated_minutes(notebook) == {"core": 0, "core_read": 0, "core_ex": 0, "more": 20, "more_read": 5,
                                        "more_ex": 15}


def stated_minutes(notebook: nbformat.NotebookNode) -> dict[str, int]:
    match = TIME_ESTIMATE.search(notebook.cells[0].source)
    assert match, "the first cell gives no time estimate in the stated form"
    return {key: int(value or 0) for key, value in match.groupdict().items()}


def test_every_notebook_opens_with_an_honest_time_estimate():
    """Each stated time is at least the method's count (and within rounding of it); the exercises add up."""
    for path in course.find_notebooks():
        notebook = nbformat.read(path, as_version=4)
        stated, counted = stated_minutes(notebook), counted_minutes(notebook)
        assert stated["core"] == stated["core_read"] + stated["core_ex"], path.name
        assert stated["more"] == stated["more_read"] + stated["more_ex"], path.name
        for key in ("core_ex", "more_ex"):
            assert stated[key] == counted[key], f"{path.name}: {key} {stated[key]} stated, {counted[key]} counted"
        for key in ("core_read", "more_read"):
            assert counted[key] <= stated[key] < counted[key] + ROUNDING_MINUTES, \
                f"{path.name}: {key} {stated[key]} minutes stated, {counted[key]:.1f} counted"


#: "About 5 hours", the core path's stated length, as the method counts it: 4.5 to 5.5 hours.
CORE_PATH_MINUTES = (270, 330)


def test_the_core_path_comes_first_holds_the_assignment_and_takes_about_five_hours():
    """In notebooks 1-5 nothing core follows going further; every assignment check is core; 6 and 7 are all extra."""
    core_minutes = 0.0
    for path in course.find_notebooks():
        notebook = nbformat.read(path, as_version=4)
        title = notebook.cells[0].source.splitlines()[0]
        if path.name[:2] not in editions.CORE_NOTEBOOKS:
            assert "going further" in title.lower(), path.name
            continue
        assert "going further" not in title.lower() and "**The assignment.**" in notebook.cells[0].source
        sections = [line for cell in notebook.cells if cell.cell_type == "markdown"
                    for line in cell.source.splitlines() if re.match(r"##+ \d+\.\d+ ", line)]
        extra = ["going further" in line.lower() for line in sections]
        assert extra == sorted(extra), f"{path.name}: a core section follows a going-further one: {sections}"
        titles = [e["title"] for c in notebook.cells if c.cell_type == "markdown" for e in EXERCISE.finditer(c.source)]
        extra = [t.lower().startswith("going further") for t in titles]
        assert extra == sorted(extra), f"{path.name}: a core exercise follows a going-further one: {titles}"
        core = editions.core_path(nbformat.read(path, as_version=4), path.name)
        core_ids = {c.metadata.get("nbgrader", {}).get("grade_id") for c in core.cells}
        checks = {grade_id for grade_id in editions.ASSIGNMENT_CHECKS if grade_id.startswith(f"nb{path.name[:2]}")}
        assert checks and checks <= core_ids, f"{path.name}: an assignment check is not on the core path"
        counted = counted_minutes(notebook)
        core_minutes += counted["core_read"] + counted["core_ex"]
    assert CORE_PATH_MINUTES[0] <= core_minutes <= CORE_PATH_MINUTES[1], core_minutes


def test_the_core_edition_holds_the_core_path_and_nothing_marked_going_further(tmp_path, capsys):
    out = tmp_path / "core"
    assert course.main(["student", "--output-dir", str(out), "--core"]) == 0
    written = sorted(p.name for p in out.glob("*.ipynb"))
    assert written == [p.name for p in course.find_notebooks() if p.name[:2] in editions.CORE_NOTEBOOKS]
    grade_ids = set()
    for name in written:
        teacher = nbformat.read(course.NOTEBOOK_DIR / name, as_version=4)
        student = nbformat.read(out / name, as_version=4)
        text = "\n".join(c.source for c in student.cells)
        assert not re.search(r"^#+ .*going further", text, re.I | re.M), name
        assert not re.search(r"^\d+\. \*\*going further", text, re.I | re.M), name
        assert "SOLUTION" not in text and len(student.cells) < len(teacher.cells)
        numbers = [int(n) for n in re.findall(r"^(\d+)\. \*\*", next(
            c.source for c in student.cells if c.source.startswith("## Exercises")), re.M)]
        assert numbers == list(range(1, len(numbers) + 1)), name  # the core exercises keep their numbers
        grade_ids |= {c.metadata["nbgrader"]["grade_id"] for c in student.cells if "nbgrader" in c.metadata}
    assert set(editions.ASSIGNMENT_CHECKS) <= grade_ids
    capsys.readouterr()
    assert course.main(["student", "--output-dir", str(tmp_path / "none"), "--core", "--notebooks", "06"]) == 1
    assert "None of these notebooks is on the core path" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_a_going_further_heading_inside_a_cell_is_refused_by_the_core_edition():
    notebook = new_notebook(cells=[nbformat.v4.new_markdown_cell("Some text.\n\n## 1.4 Going further: more")])
    with pytest.raises(course.CourseError, match="does not start its cell"):
        editions.core_path(notebook, "01_x.ipynb")


def test_every_exercise_states_its_minutes():
    for path in course.find_notebooks():
        notebook = nbformat.read(path, as_version=4)
        start = next(i for i, c in enumerate(notebook.cells) if c.source.startswith("## Exercises"))
        exercises = [e for c in notebook.cells[start:] if c.cell_type == "markdown"
                     for e in EXERCISE.finditer(c.source)]
        assert exercises, path.name
        for exercise in exercises:
            assert exercise["minutes"] and EXERCISE_MINUTES[0] <= int(exercise["minutes"]) <= EXERCISE_MINUTES[1], \
                f"{path.name}: {exercise['title']!r} states no minutes, or more or fewer than the method allows"


def test_the_readme_and_the_site_state_the_course_total():
    """The README and the site's index give the core path's total and the going-further time, in hours."""
    totals = {"core": 0, "more": 0}
    for path in course.find_notebooks():
        stated = stated_minutes(nbformat.read(path, as_version=4))
        totals["core"] += stated["core"]
        totals["more"] += stated["more"]
    for page in (ROOT / "README.md", ROOT / "book" / "index.md"):
        text = " ".join(page.read_text().split())
        match = re.search(r"core path, through notebooks 1 to 5, takes about (\d+(?:\.5)?) hours[^.]*?; going "
                          r"further adds about (\d+(?:\.5)?) hours", text)
        assert match, f"{page.name} does not state the course's total time"
        for key, hours in zip(("core", "more"), match.groups(), strict=True):
            assert abs(float(hours) - totals[key] / 60) <= 0.25, f"{page.name}: {key} {hours} h, {totals[key]} min"


def test_a_dangling_link_as_output_dir_is_called_what_it_is(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_notebook(nbs / "01_a.ipynb", ["pass"], parameters="x = 1")
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "gone")
    assert course.main(["run", "--notebook-dir", str(nbs), "--output-dir", str(link)]) == 1
    err = capsys.readouterr().err
    assert "is a link to" in err and "which does not exist" in err and "in use by another run" not in err


def test_output_folders_inside_the_notebook_folder_are_refused(tmp_path, capsys):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    write_notebook(nbs / "01_a.ipynb", ["pass"], parameters="x = 1")
    for command in (["student"], ["run"]):
        for inside in (nbs / "student", nbs):
            assert course.main([*command, "--notebook-dir", str(nbs), "--output-dir", str(inside)]) == 1
            assert "is inside the notebook folder" in capsys.readouterr().err
    assert sorted(p.name for p in nbs.iterdir()) == ["01_a.ipynb"]  # nothing written


def test_nbval_collects_no_notebook_from_a_folder_below_notebooks(tmp_path):
    """The project's conftest.py and pytest settings, copied beside a notebooks/ folder of the test's own (nothing is
    written into the repository): nbval collects the course's notebooks, not a copy in a folder below them."""
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "notebooks" / "student").mkdir(parents=True)
    for path in (tmp_path / "notebooks" / "01_course.ipynb", tmp_path / "notebooks" / "student" / "01_copy.ipynb"):
        nbformat.write(nbformat.v4.new_notebook(cells=[new_code_cell("raise NotImplementedError()")]), path)
    result = subprocess.run([sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "--collect-only",
                             "-q", "-p", "no:cacheprovider", "notebooks"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert "01_course.ipynb" in result.stdout and "01_copy.ipynb" not in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("existing", [True, False])
def test_student_edition_that_cannot_be_written_leaves_nothing_and_can_be_rerun(tmp_path, capsys, monkeypatch,
                                                                                 existing):
    out = tmp_path / "student"
    if existing:
        out.mkdir()  # an empty folder given on purpose stays; one the command made goes
    real = editions.write_text_atomically
    calls = []

    def disk_fills_up(path, text):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, text)

    monkeypatch.setattr(editions, "write_text_atomically", disk_fills_up)
    assert course.main(["student", "--output-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "Cannot write the student edition" in err and "No space left on device" in err and "Nothing was left" in err
    assert (out.exists() and not any(out.iterdir())) if existing else not out.exists()
    monkeypatch.setattr(editions, "write_text_atomically", real)
    assert course.main(["student", "--output-dir", str(out)]) == 0  # the same command now simply works
    assert len(list(out.glob("*.ipynb"))) == len(course.find_notebooks())
    assert not list(out.glob(".*.tmp"))


def test_student_edition_holds_no_solution_code(tmp_path, capsys):
    out = tmp_path / "student"
    assert course.main(["student", "--output-dir", str(out)]) == 0
    assert "The student edition is in" in capsys.readouterr().out
    for path in course.find_notebooks():
        teacher = nbformat.read(path, as_version=4)
        student = nbformat.read(out / path.name, as_version=4)
        assert len(student.cells) == len(teacher.cells)
        assert not any("SOLUTION" in c.source for c in student.cells)
        # The lesson itself may show the mechanism (section 1.2 writes add_noise out); what must go
        # is every line of the solutions from the exercise cells.
        exercise_code = "\n".join(student.cells[i].source for i in editions.exercise_cells(student))
        for cell in teacher.cells:
            for line in _solution_lines(cell.source):
                assert line not in exercise_code, f"{path.name}: {line!r} survived"
        for index in editions.exercise_cells(student):
            assert student.cells[index].outputs == [], path.name
            if "nbgrader" in student.cells[index].metadata and student.cells[index].metadata["nbgrader"]["solution"]:
                assert "raise NotImplementedError()" in student.cells[index].source
                assert "# Write:" in student.cells[index].source  # the comment that says what to write stays
        # Everything outside the exercises is unchanged, outputs included.
        others = [i for i in range(len(teacher.cells)) if i not in editions.exercise_cells(teacher)]
        assert all(student.cells[i] == teacher.cells[i] for i in others), path.name
    assert course.main(["student", "--output-dir", str(out)]) == 1  # never overwrites an edition
    assert "not an empty folder" in capsys.readouterr().err


@pytest.mark.slow
def test_the_core_path_runs_on_its_own_and_every_check_passes(tmp_path):
    """The core edition with its solutions, run headless: no cell needs one marked going further."""
    from nbclient import NotebookClient
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    quick = {"num_epochs": 1, "budget_epochs": 1, "kmeans_runs": 1, "n_init": 1,
             "checkpoint_dir": str(tmp_path / "ckpt")}
    for path in course.find_notebooks(selection=list(editions.CORE_NOTEBOOKS)):
        nb = editions.core_path(load_notebook_node(str(path)), path.name)
        declared = course.notebook_parameters(path)
        nb = parameterize_notebook(nb, {k: v for k, v in quick.items() if k in declared})
        NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(course.NOTEBOOK_DIR)}},
                       kernel_name="python3").execute()  # raises on the first failing cell
        checks = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade") and c.cell_type == "code"]
        assert checks, path.name
        for cell in checks:
            printed = "".join(o.get("text", "") for o in cell.outputs)
            assert "✓" in printed and "Not yet" not in printed, f"{path.name}: {printed}"


@pytest.mark.slow
def test_student_edition_fails_only_in_exercise_cells_with_not_implemented(tmp_path):
    """Run headless, every cell but the exercises runs; the exercises stop at their stubs."""
    from nbclient import NotebookClient
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    out = tmp_path / "student"
    editions.make_student_edition(course.find_notebooks(), out)
    quick = {"num_epochs": 1, "budget_epochs": 1, "bn_steps": 5, "kmeans_runs": 1, "n_init": 1,
             "sweep_epochs": 1, "seeds_compared": 1, "max_latent_dim": 4, "umap_points": 500, "dae_epochs": 1,
             "checkpoint_dir": str(tmp_path / "ckpt")}
    for path in sorted(out.glob("*.ipynb")):
        nb = load_notebook_node(str(path))  # papermill's reader: gives every cell the tags it expects
        declared = course.notebook_parameters(course.NOTEBOOK_DIR / path.name)
        nb = parameterize_notebook(nb, {k: v for k, v in quick.items() if k in declared})
        NotebookClient(nb, allow_errors=True, timeout=600, resources={"metadata": {"path": str(course.NOTEBOOK_DIR)}},
                       kernel_name="python3").execute()
        failed = {i: o for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if o.output_type == "error"}
        exercise = set(editions.exercise_cells(nb))
        assert failed, f"{path.name}: the stubs should stop the exercises"
        for index, error in failed.items():
            assert index in exercise, f"{path.name}: cell {index} failed outside the exercises: {error.ename}"
            assert error.ename == "NotImplementedError", f"{path.name}: cell {index}: {error.ename}: {error.evalue}"


def test_every_committed_output_belongs_to_a_run_cell():
    """nbval fails a cell that has outputs but no execution count ("Unrun reference cell has outputs"): an output
    pasted into a cell by hand must come with the count of a run."""
    for path in course.find_notebooks():
        notebook = nbformat.read(path, as_version=4)
        unrun = [i for i, cell in enumerate(notebook.cells)
                 if cell.cell_type == "code" and cell.outputs and cell.execution_count is None]
        assert not unrun, f"{path.name}: cells {unrun} have outputs but no execution count"
