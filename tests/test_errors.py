"""One error style for students: what a student or instructor can get wrong shows its message, not a traceback."""

import ast
import re
from pathlib import Path

import pytest
import torch

from dae_utils import checkpoint, data, errors, model, noise, parameters, runtime

PACKAGE = Path(__file__).resolve().parent.parent / "dae_utils"


def package_imports(module: str) -> set[str]:
    """Return the package's modules that ``module`` imports, at the top or inside a function."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names |= {node.module} if node.module else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("dae_utils.")}
    return names


def test_the_parameter_checks_and_the_errors_are_leaf_modules():
    assert package_imports("errors") == set()
    assert package_imports("parameters") == {"errors"}
    assert "runtime" not in package_imports("data")  # the cycle between data and runtime is gone
    assert "data" not in package_imports("runtime")


@pytest.mark.parametrize("cause, kind, message", [
    (lambda: runtime.check_parameters(noise_factor=-1), errors.ParameterError, "noise_factor must be a finite number"),
    (lambda: runtime.check_parameters(num_epochs=0), errors.ParameterError, "num_epochs must be a positive integer"),
    (lambda: runtime.check_parameters(data_source="mnist"), errors.ParameterError, "data_source must be one of"),
    (lambda: runtime.check_parameters(epochs=3), errors.ParameterError, "epochs is not a parameter of this course"),
    (lambda: noise.add_noise(torch.zeros(1, 1, 28, 28), "x"), errors.ParameterError, "noise_factor must be a number"),
    (lambda: model.Encoder(0), errors.ParameterError, "latent_dim must be a positive integer"),
    (lambda: data.load_mnist("mnist"), errors.DataError, "source must be one of"),
    (lambda: data.load_mnist("folder"), errors.DataError, 'source="folder" needs data_dir'),
])
def test_a_mistake_a_student_can_make_is_a_value_error_shown_without_a_traceback(cause, kind, message, monkeypatch):
    monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
    with pytest.raises(ValueError, match=message) as caught:  # code that catches a ValueError keeps working
        cause()
    assert type(caught.value) is kind
    shown = caught.value._render_traceback_()  # what IPython prints instead of the traceback
    assert shown == [f"\u2717 {kind.__name__}: {caught.value}"]


def test_a_checkpoint_that_cannot_be_used_is_shown_without_a_traceback(tmp_path):
    damaged = tmp_path / "model.pt"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError) as caught:
        checkpoint.read_checkpoint(damaged)
    assert isinstance(caught.value, ValueError)
    assert caught.value._render_traceback_()[0].startswith("\u2717 CheckpointError: ")
    assert str(damaged) in caught.value._render_traceback_()[0]


def test_the_old_names_still_work():
    """Notebooks and instructors' scripts call these through runtime and noise, as before."""
    assert runtime.check_parameters is parameters.check_parameters
    assert runtime.check_int is parameters.check_int and noise.check_noise_factor is parameters.check_noise_factor
    assert data.SOURCES is parameters.SOURCES


def test_the_package_map_names_every_module():
    import dae_utils

    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"} | {"exercises"}
    named = set(re.findall(r"^- ``(\w+)``", dae_utils.__doc__, re.M))
    assert modules == named, (modules - named, named - modules)


def test_the_package_has_no_import_cycle():
    """Each module's package imports, at the top or inside a function, form no cycle: every module is a layer."""
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {module: package_imports(module) & modules for module in modules}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in graph[module]:
            visit(imported, (*path, module))
        done.add(module)

    for module in sorted(modules):
        visit(module, ())
    assert {"results", "tables", "editions"} <= done
