"""Every exercise check accepts each honest right answer and turns each wrong or unusual one into a hint.

The table below holds right answers written the ways students write them (other
dtypes, NumPy or torch scalars, dicts for mappings) and typical wrong ones, each
with the hint it must get. A check must never crash on an answer: it passes it or
raises ``NotYet`` with a hint.
"""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from dae_utils import exercises
from dae_utils.batchnorm import batch_norm_2d
from dae_utils.clustering import hungarian_mapping, mode_mapping
from dae_utils.generation import decode
from dae_utils.model import Decoder
from dae_utils.noise import add_noise

CPU = torch.device("cpu")
RIGHT = None  # the expected outcome of a right answer: the check passes

# --- Notebook 1: the expected squared value of a black pixel -------------------------------------------------

BLACK_PIXEL = {
    "s^2 / 2": (lambda s: s**2 / 2, RIGHT),
    "0.5 s s": (lambda s: 0.5 * s * s, RIGHT),
    "float32 NumPy scalar": (lambda s: np.float32(s**2 / 2), RIGHT),
    "0-d tensor": (lambda s: torch.tensor(s**2 / 2), RIGHT),
    "exact integral": (exercises._black_pixel_mse, RIGHT),
    "no clamp": (lambda s: s**2, "without the clamp"),
    "mean, not mean square": (lambda s: s / math.sqrt(2 * math.pi), "not the mean of its square"),
    "s / 2": (lambda s: s / 2, "Split the expectation"),
    "None": (lambda s: None, "returned None"),
    "array of one": (lambda s: np.array([s**2 / 2]), r"one number, not an array or tensor of shape \(1,\)"),
    "list": (lambda s: [s**2 / 2], "not a list"),
    "string": (lambda s: "0.045", "not a str"),
    "bool": (lambda s: True, "not a bool"),
    "NaN": (lambda s: math.nan, "not a finite number"),
}

# --- Notebook 1: add_noise ------------------------------------------------------------------------------------


def _noisy(images, f, g):
    return images + f * torch.randn(images.shape, generator=g)


def _add_in_place(images, f, g):
    images += f * torch.randn(images.shape, generator=g)
    return images.clamp_(0, 1)


ADD_NOISE = {
    "the course's": (lambda images, f, g: add_noise(images, f, generator=g), RIGHT),
    "clamp(0, 1)": (lambda images, f, g: _noisy(images, f, g).clamp(0, 1), RIGHT),
    "clamp(min=, max=)": (lambda images, f, g: torch.clamp(_noisy(images, f, g), min=0.0, max=1.0), RIGHT),
    "randn(*shape)": (lambda images, f, g: (images + f * torch.randn(*images.shape, generator=g)).clamp(0, 1),
                      RIGHT),
    "float64 result": (lambda images, f, g: _noisy(images, f, g).clamp(0, 1).double(), RIGHT),
    "half result": (lambda images, f, g: _noisy(images, f, g).clamp(0, 1).half(), RIGHT),
    "no clamp": (_noisy, "clamped back"),
    "clamp below only": (lambda images, f, g: _noisy(images, f, g).clamp(min=0), "outside \\[0, 1\\]"),
    "squared factor": (lambda images, f, g: (images + f**2 * torch.randn(images.shape, generator=g)).clamp(0, 1),
                       "squared"),
    "global generator": (lambda images, f, g: (images + f * torch.randn(images.shape)).clamp(0, 1),
                         "generator you were given"),
    "one noise image for all": (lambda images, f, g: (images + f * torch.randn(28, 28, generator=g)).clamp(0, 1),
                                "one value per pixel"),
    "rounded": (lambda images, f, g: _noisy(images, f, g).clamp(0, 1).round(), "rounded"),
    "zeros": (lambda images, f, g: torch.zeros_like(images), "noise_factor 0"),
    "in place": (_add_in_place, "changed its input `images` in place"),
    "None": (lambda images, f, g: None, "returned None"),
    "NumPy array": (lambda images, f, g: _noisy(images, f, g).clamp(0, 1).numpy(), "not a ndarray"),
    "channel dropped": (lambda images, f, g: _noisy(images, f, g).clamp(0, 1)[:, 0], r"shape \(16, 1, 28, 28\)"),
    "integers": (lambda images, f, g: _noisy(images, f, g).clamp(0, 1).long(), "floating-point"),
}

# --- Notebook 2: batch norm's forward pass -------------------------------------------------------------------


def _stats(x, unbiased=False, dims=(0, 2, 3)):
    return x.mean(dim=dims, keepdim=True), x.var(dim=dims, unbiased=unbiased, keepdim=True)


def _bn(x, gamma, beta, eps, *, unbiased=False, dims=(0, 2, 3), divide=None, scale=True, shift=True, swap=False):
    mean, var = _stats(x, unbiased, dims)
    g, b = gamma.view(1, -1, 1, 1), beta.view(1, -1, 1, 1)
    if swap:
        g, b = b, g
    normed = (x - mean) / (divide(var, eps) if divide else torch.sqrt(var + eps))
    return (g * normed if scale else normed) + (b if shift else 0)


def _bn_in_place(x, gamma, beta, eps):
    mean, var = _stats(x)
    x.sub_(mean).div_(torch.sqrt(var + eps))
    return x * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


BATCH_NORM = {
    "the course's": (batch_norm_2d, RIGHT),
    "by hand": (_bn, RIGHT),
    "torch.var_mean": (lambda x, g, b, eps: g.view(1, -1, 1, 1) * (x - torch.var_mean(x, (0, 2, 3), correction=0,
                       keepdim=True)[1]) / torch.sqrt(torch.var_mean(x, (0, 2, 3), correction=0, keepdim=True)[0]
                       + eps) + b.view(1, -1, 1, 1), RIGHT),
    "float64 result": (lambda x, g, b, eps: _bn(x.double(), g.double(), b.double(), eps), RIGHT),
    "by the variance": (lambda x, g, b, eps: _bn(x, g, b, eps, divide=lambda v, e: v + e), "standard deviation"),
    "unbiased": (lambda x, g, b, eps: _bn(x, g, b, eps, unbiased=True), "unbiased"),
    "eps outside the root": (lambda x, g, b, eps: _bn(x, g, b, eps, divide=lambda v, e: torch.sqrt(v) + e),
                             "inside the square root"),
    "gamma and beta swapped": (lambda x, g, b, eps: _bn(x, g, b, eps, swap=True), "swapped"),
    "neither gamma nor beta": (lambda x, g, b, eps: _bn(x, g, b, eps, scale=False, shift=False),
                               "Neither gamma nor beta"),
    "beta missing": (lambda x, g, b, eps: _bn(x, g, b, eps, shift=False), "beta is missing"),
    "gamma missing": (lambda x, g, b, eps: _bn(x, g, b, eps, scale=False), "gamma is missing"),
    "per image": (lambda x, g, b, eps: _bn(x, g, b, eps, dims=(2, 3)), "per image"),
    "over all channels": (lambda x, g, b, eps: _bn(x, g, b, eps, dims=(0, 1, 2, 3)), "all channels together"),
    "over the batch only": (lambda x, g, b, eps: _bn(x, g, b, eps, dims=(0,)), "one value per channel"),
    "in place": (_bn_in_place, "changed its input `x` in place"),
    "None": (lambda x, g, b, eps: None, "returned None"),
    "squeezed": (lambda x, g, b, eps: _bn(x, g, b, eps)[:, :, 0], r"shape \(8, 4, 5, 5\)"),
    "NumPy array": (lambda x, g, b, eps: _bn(x, g, b, eps).numpy(), "not a ndarray"),
}

# --- Notebook 3: one training step ---------------------------------------------------------------------------


def _step(encoder, decoder, optimizer, clean, noise_factor, *, model_input="noisy", target="clean",
          zero_grad=True, step=True, loss="mse", eval_mode=False, result=lambda loss: loss.item()):
    if eval_mode:
        encoder.eval()
        decoder.eval()
    noisy = add_noise(clean, noise_factor)
    output = decoder(encoder(noisy if model_input == "noisy" else clean))
    reference = clean if target == "clean" else noisy
    value = {"mse": nn.functional.mse_loss, "l1": nn.functional.l1_loss,
             "sum": lambda a, b: nn.functional.mse_loss(a, b, reduction="sum")}[loss](output, reference)
    if zero_grad:
        optimizer.zero_grad()
    value.backward()
    if step:
        optimizer.step()
    return result(value)


def _step_noising_in_place(encoder, decoder, optimizer, clean, noise_factor):
    clean.add_(noise_factor * torch.randn(clean.shape)).clamp_(0, 1)
    return _step(encoder, decoder, optimizer, clean, 0.0)


TRAIN_STEP = {
    "the reference": (_step, RIGHT),
    "float(loss)": (lambda *a: _step(*a, result=lambda loss: float(loss.detach())), RIGHT),
    "float32 NumPy scalar": (lambda *a: _step(*a, result=lambda loss: np.float32(loss.item())), RIGHT),
    "zero_grad(set_to_none=True) first": (lambda e, d, o, c, f: (o.zero_grad(set_to_none=True),
                                                                 _step(e, d, o, c, f))[1], RIGHT),
    "target noisy": (lambda *a: _step(*a, target="noisy"), "noisy input"),
    "clean input": (lambda *a: _step(*a, model_input="clean"), "given the clean images"),
    "eval mode": (lambda *a: _step(*a, eval_mode=True), "evaluation mode"),
    "no zero_grad": (lambda *a: _step(*a, zero_grad=False), "old gradients cleared"),
    "no optimizer step": (lambda *a: _step(*a, step=False), "optimizer take its step"),
    "L1 loss": (lambda *a: _step(*a, loss="l1"), "The loss differs"),
    "summed squared error": (lambda *a: _step(*a, loss="sum"), "The loss differs"),
    "tensor returned": (lambda *a: _step(*a, result=lambda loss: loss), "not a tensor"),
    "None": (lambda *a: _step(*a, result=lambda loss: None), "returned None"),
    "string": (lambda *a: _step(*a, result=lambda loss: f"{loss.item():.4f}"), "not a str"),
    "noise added in place": (_step_noising_in_place, "changed its input `clean` in place"),
}

# --- Notebook 4: decoding a 3 x 3 grid -----------------------------------------------------------------------


def _decoded(decoder, latent, device, *, mode="eval", grad=False):
    decoder.eval() if mode == "eval" else decoder.train()
    with torch.set_grad_enabled(grad):
        return decoder(latent.to(device)).cpu()


DECODE = {
    "eval + no_grad": (_decoded, RIGHT),
    "the course's decode": (decode, RIGHT),
    "inference_mode": (lambda d, z, dev: (d.eval(), torch.inference_mode()(lambda: d(z).clone())())[1], RIGHT),
    "float64 result": (lambda d, z, dev: _decoded(d, z, dev).double(), RIGHT),
    "half result": (lambda d, z, dev: _decoded(d, z, dev).half(), RIGHT),
    "training mode": (lambda d, z, dev: _decoded(d, z, dev, mode="train"), "training mode"),
    "gradient kept": (lambda d, z, dev: _decoded(d, z, dev, grad=True), "gradient graph"),
    "other codes": (lambda d, z, dev: _decoded(d, torch.randn(9, 4), dev), "Decode the codes you were given"),
    "channel dropped": (lambda d, z, dev: _decoded(d, z, dev)[:, 0], r"shape \(9, 1, 28, 28\)"),
    "None": (lambda d, z, dev: None, "returned None"),
    "NumPy array": (lambda d, z, dev: _decoded(d, z, dev).numpy(), "not a ndarray"),
    "codes changed in place": (lambda d, z, dev: _decoded(d, z.mul_(2), dev), "changed its input `latent` in place"),
}

# --- Notebook 5: the mode mapping and its accuracy -----------------------------------------------------------


def _mode(clusters, labels, accuracy=lambda m, c, y: float(np.mean(m[c] == y))):
    mapping = mode_mapping(clusters, labels)
    return mapping, accuracy(mapping, clusters, labels)


def _sorting_labels(clusters, labels):
    labels.sort()
    return _mode(clusters, labels)


MODE_MAPPING = {
    "the course's": (_mode, RIGHT),
    "float32 accuracy": (lambda c, y: _mode(c, y, lambda m, c, y: np.float32(np.mean(m[c] == y))), RIGHT),
    "0-d float32 tensor": (lambda c, y: _mode(c, y, lambda m, c, y: (torch.from_numpy(m[c]) == torch.from_numpy(y))
                                              .float().mean()), RIGHT),
    "bincount by hand": (lambda c, y: (np.array([np.bincount(y[c == k]).argmax() for k in range(10)]),
                                       _mode(c, y)[1]), RIGHT),
    "dict mapping": (lambda c, y: (dict(enumerate(mode_mapping(c, y).tolist())), _mode(c, y)[1]), RIGHT),
    "list mapping": (lambda c, y: (mode_mapping(c, y).tolist(), _mode(c, y)[1]), RIGHT),
    "int32 mapping": (lambda c, y: (mode_mapping(c, y).astype(np.int32), _mode(c, y)[1]), RIGHT),
    "cluster numbers as digits": (lambda c, y: _mode(c, y, lambda m, c, y: float(np.mean(c == y))),
                                  "compares cluster numbers"),
    "one-to-one mapping": (lambda c, y: (hungarian_mapping(c, y), _mode(c, y)[1]), "claim the same digit"),
    "least common label": (lambda c, y: (np.array([np.bincount(y[c == k], minlength=10).argmin()
                                                   for k in range(10)]), 0.1), "wrong digit"),
    "percentage": (lambda c, y: _mode(c, y, lambda m, c, y: 100 * float(np.mean(m[c] == y))), "percentage"),
    "bare mapping": (lambda c, y: mode_mapping(c, y), r"as a pair \(mapping, accuracy\)"),
    "None": (lambda c, y: None, "as a pair"),
    "mapping None": (lambda c, y: (None, 0.5), "mapping is None"),
    "accuracy None": (lambda c, y: (mode_mapping(c, y), None), "returned None"),
    "accuracy of shape (1,)": (lambda c, y: _mode(c, y, lambda m, c, y: np.array([np.mean(m[c] == y)])),
                               "one number"),
    "dict missing a cluster": (lambda c, y: ({k: 0 for k in range(9)}, 0.5), "no entry for cluster 9"),
    "nine clusters": (lambda c, y: (mode_mapping(c, y)[:9], _mode(c, y)[1]), "10 in all"),
    "labels sorted in place": (_sorting_labels, "changed its input `labels` in place"),
}

# --- Notebook 6: the one-to-one (Hungarian) accuracy ---------------------------------------------------------


def _hungarian(clusters, labels):
    counts = np.zeros((10, 10), dtype=np.int64)
    np.add.at(counts, (labels, clusters), 1)
    digits, chosen = linear_sum_assignment(counts, maximize=True)
    return counts[digits, chosen].sum() / len(labels)


def _best_cluster_per_digit(clusters, labels):
    counts = np.zeros((10, 10), dtype=np.int64)
    np.add.at(counts, (labels, clusters), 1)
    return counts.max(axis=1).sum() / len(labels)


def _hungarian_in_place(clusters, labels):
    clusters[:] = hungarian_mapping(clusters, labels)[clusters]
    return float(np.mean(clusters == labels))


HUNGARIAN = {
    "linear_sum_assignment": (_hungarian, RIGHT),
    "the course's mapping": (lambda c, y: float(np.mean(hungarian_mapping(c, y)[c] == y)), RIGHT),
    "float32": (lambda c, y: np.float32(_hungarian(c, y)), RIGHT),
    "0-d tensor": (lambda c, y: torch.tensor(_hungarian(c, y), dtype=torch.float32), RIGHT),
    "mode mapping instead": (lambda c, y: _mode(c, y)[1], "assignment problem"),
    "best cluster per digit": (_best_cluster_per_digit, "one-to-one"),
    "cluster numbers as digits": (lambda c, y: float(np.mean(c == y)), "Count how many images"),
    "percentage": (lambda c, y: 100 * _hungarian(c, y), "percentage"),
    "None": (lambda c, y: None, "returned None"),
    "array of one": (lambda c, y: np.array([_hungarian(c, y)]), "one number"),
    "string": (lambda c, y: f"{_hungarian(c, y):.3f}", "not a str"),
    "clusters relabelled in place": (_hungarian_in_place, "changed its input `clusters` in place"),
}


def _decoder():
    torch.manual_seed(0)
    return Decoder(4)


TABLE = [
    *[(exercises.check_black_pixel_mse, name, answer, outcome, ()) for name, (answer, outcome) in BLACK_PIXEL.items()],
    *[(exercises.check_add_noise, name, answer, outcome, ()) for name, (answer, outcome) in ADD_NOISE.items()],
    *[(exercises.check_batch_norm, name, answer, outcome, ()) for name, (answer, outcome) in BATCH_NORM.items()],
    *[(exercises.check_train_step, name, answer, outcome, ()) for name, (answer, outcome) in TRAIN_STEP.items()],
    *[(exercises.check_decode_grid, name, answer, outcome, ("decoder",)) for name, (answer, outcome) in DECODE.items()],
    *[(exercises.check_mode_mapping, name, answer, outcome, ()) for name, (answer, outcome) in MODE_MAPPING.items()],
    *[(exercises.check_hungarian_accuracy, name, answer, outcome, ()) for name, (answer, outcome) in HUNGARIAN.items()],
]


@pytest.mark.parametrize("check, answer, outcome, extra",
                         [pytest.param(check, answer, outcome, extra, id=f"{check.__name__[6:]}: {name}")
                          for check, name, answer, outcome, extra in TABLE])
def test_each_answer_gets_the_verdict_it_deserves(check, answer, outcome, extra, capsys):
    args = (_decoder(), CPU) if extra else ()
    if outcome is RIGHT:
        check(answer, *args)
        assert capsys.readouterr().out.startswith("\u2713 Right")
        return
    with pytest.raises(exercises.NotYet, match=outcome) as caught:
        check(answer, *args)
    assert caught.value._render_traceback_()[0].startswith("\u2717 Not yet.")


def test_the_table_is_long_and_every_check_has_right_and_wrong_answers():
    assert len(TABLE) >= 100
    for table in (BLACK_PIXEL, ADD_NOISE, BATCH_NORM, TRAIN_STEP, DECODE, MODE_MAPPING, HUNGARIAN):
        outcomes = [outcome for _, outcome in table.values()]
        assert RIGHT in outcomes and sum(o is not RIGHT for o in outcomes) >= 5


#: What a hint must never contain: the line that solves the exercise.
SOLUTION_LINES = ["torch.randn(images.shape, generator=generator)", "bincount(", "argmax()",
                  "linear_sum_assignment(", "maximize=True", "optimizer.zero_grad()", "loss.backward()",
                  "mse_loss(denoised, clean)", "dims (0, 2, 3)", "dim=(0, 2, 3)", "torch.no_grad()"]


def test_no_hint_gives_the_solution_line_away():
    source = exercises.__loader__.get_source(exercises.__name__)
    hints = [line for line in source.splitlines() if "NotYet(" in line or line.strip().startswith('"')]
    for forbidden in SOLUTION_LINES:
        assert not [h for h in hints if forbidden in h], forbidden


def test_unfinished_answers_raise_not_implemented():
    def stub(*args):
        raise NotImplementedError

    for check in (exercises.check_add_noise, exercises.check_batch_norm, exercises.check_black_pixel_mse,
                  exercises.check_train_step, exercises.check_mode_mapping, exercises.check_hungarian_accuracy):
        with pytest.raises(NotImplementedError):
            check(stub)
    with pytest.raises(NotImplementedError):
        exercises.check_decode_grid(stub, Decoder(4), CPU)


def test_decode_check_leaves_the_model_unchanged():
    torch.manual_seed(0)
    decoder = Decoder(4).eval()
    before = {k: v.clone() for k, v in decoder.state_dict().items()}

    def train_mode(decoder, latent, device):
        decoder.train()
        with torch.no_grad():
            return decoder(latent.to(device)).cpu()

    with pytest.raises(exercises.NotYet):
        exercises.check_decode_grid(train_mode, decoder, CPU)
    assert not decoder.training
    assert all(torch.equal(before[k], v) for k, v in decoder.state_dict().items())


def test_a_grade_cell_is_not_fooled_by_a_check_rebound_in_another_cell():
    """What nbgrader runs: an unlocked cell rebinds the check, then the locked grade cell runs."""
    import nbformat

    from dae_utils import course

    namespace = {}
    exec("import dae_utils.exercises\ndae_utils.exercises.check_add_noise = print\n"  # the student's cell
         "dae_utils.exercises.NotYet = type('NotYet', (Exception,), {})\n"
         "def my_add_noise(images, noise_factor, generator=None):\n    return images\n", namespace)
    notebook = next(p for p in course.find_notebooks() if p.name.startswith("01_"))
    grade_cell = next(c.source for c in nbformat.read(notebook, as_version=4).cells
                      if c.metadata.get("nbgrader", {}).get("grade_id") == "nb01-add-noise-check")
    try:
        with pytest.raises(AssertionError, match="values differ"):
            exec(grade_cell, namespace)
    finally:
        import importlib

        importlib.reload(exercises)  # the real checks for the tests that follow
    assert exercises.check_add_noise is not print
