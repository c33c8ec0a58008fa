"""The headless course runner: selection, parameters, summary, and failures."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from dae_utils import course

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
    assert names == sorted(names) and names[0].startswith("01_") and len(names) == 5
    assert [p.name[:2] for p in course.find_notebooks(selection=["3", "01", "03"])] == ["01", "03"]
    with pytest.raises(course.CourseError, match="matches 0 notebooks; choose from"):
        course.find_notebooks(selection=["07"])


@pytest.mark.parametrize("text, value", [("5", 5), ("0.5", 0.5), ("True", True), ("None", None),
                                         ("sample", "sample"), ("'a b'", "a b"), ("../x", "../x")])
def test_parse_value(text, value):
    assert course.parse_value(text) == value


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


def test_runner_runs_notebooks_and_summarises_recorded_values(tmp_path):
    """The README's command on a tiny parameter set: 1 epoch on the sample, quick k-means."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "dae_utils.course", "run", "--notebooks", "03", "05", "--output-dir", str(out),
           "-p", "num_epochs", "1", "-p", "checkpoint_dir", str(tmp_path / "ckpt"),
           "-p", "kmeans_runs", "1", "-p", "n_init", "1"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["03_training.ipynb", "05_clustering.ipynb", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    training = summary["03_training.ipynb"]
    assert 0 < training["final_test_loss"] < 0.3 and training["wall_time_s"] > 0
    assert training["test_mse_noisy"] > 0 and "psnr_gain_db" in training
    assert 0.1 < summary["05_clustering.ipynb"]["accuracy_mode"] <= 1
    assert "[1/2] 03_training.ipynb num_epochs=1" in done.stdout
    assert "Summary" in done.stdout and "accuracy_mode" in done.stdout
    # Notebook 5 found notebook 3's 1-epoch checkpoint instead of training again.
    assert len(list((tmp_path / "ckpt").glob("*.pt"))) == 1
    executed = nbformat.read(out / "05_clustering.ipynb", as_version=4)
    assert any("Loaded dae_d4" in o.get("text", "") for c in executed.cells for o in c.get("outputs", []))


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
