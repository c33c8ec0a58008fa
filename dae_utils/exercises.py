"""Checks for the notebooks' exercises: call one on your answer to see whether it is right.

Each ``check_*`` function runs your function on a few inputs and compares it with
the course's own implementation. If it agrees, the check prints a line that says
so. If not, it raises ``NotYet`` with a hint that points at the usual mistake
without giving the answer away; in a notebook you see the hint alone, without a
traceback. (``NotYet`` is an ``AssertionError``, so nbgrader scores a failed check
as a failed test.) A ``NotImplementedError`` from an unfinished answer is passed
on unchanged.

The checks are fair to every honest answer: a number may come as any real type
(float, NumPy or torch scalar, float32 included) and is compared at a tolerance that
fits the quantity; a tensor may have any floating dtype and is compared at that
dtype's precision; an unusual return (None, a dict, an array of one number) gets a
hint, never a crash inside the check; and an answer that changes its input in
place is refused, because in the notebook it would quietly change the student's
data. Hints name the mistake, not the line that fixes it.

Each write-it-yourself exercise asks for a variant that the notebook does not show
(noise of a different strength at every pixel, batch norm in evaluation mode, a step
on another loss, sampling a fitted Gaussian, mappings from a count matrix; notebook 7's
reparameterisation step and KL term are written from the formulas alone), so that
copying a cell from above does not answer it. Where calling the course's own code
(or torch's ready-made layer) would answer it without the idea, the check watches
the calls your function makes and refuses that one, however it was imported.

The notebooks' grade cells reload this module before they check
(``importlib.reload(dae_utils.exercises).check_...``), so rebinding a check in an
unlocked cell does not change what grades the answer.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
import numbers
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from . import threads
from .generation import decode
from .noise import add_noise

#: Seeds of the random inputs the checks use; fixed, so a check repeats exactly.
CHECK_SEED = 2024


class NotYet(AssertionError):
    """An answer that does not match yet; the message is a hint."""

    def _render_traceback_(self) -> list[str]:
        # IPython shows this instead of a traceback: the hint is what a student needs.
        return [f"\u2717 Not yet. {self}"]


def _passed(message: str) -> None:
    print(f"\u2713 Right: {message}")


def _images(n: int = 16, seed: int = CHECK_SEED) -> torch.Tensor:
    """Return image-like test inputs in [0, 1] with black background, grey and white pixels."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 28, 28, generator=generator)
    images[images < 0.6] = 0.0  # most pixels black, as in MNIST
    images[images > 0.95] = 1.0  # some exactly white
    return images


#: The noise factor of the training-step check: strong, so that a step fed the clean images stands out.
STEP_NOISE = 0.8
#: Accuracies are shares of a few hundred images: a float32 answer is within 1e-6 of the exact share.
ACCURACY_TOL = 1e-6


def _number(value: Any, what: str) -> float:
    """Return ``value`` as a float if it is one real number of any type; otherwise raise a hint."""
    if value is None:
        raise NotYet(f"Your function returned None instead of {what}. Is the `return` line missing?")
    if isinstance(value, (torch.Tensor, np.ndarray)):
        if value.shape != ():
            raise NotYet(f"Return {what} as one number, not an array or tensor of shape {tuple(value.shape)}.")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise NotYet(f"Return {what} as a number, not a {type(value).__name__}.")
    number = float(value)
    if not math.isfinite(number):
        raise NotYet(f"You returned {number} as {what}, not a finite number.")
    return number


def _tensor(value: Any, shape: tuple[int, ...], what: str) -> torch.Tensor:
    """Return ``value`` as float64 on the CPU if it is a floating tensor of ``shape``; otherwise raise a hint."""
    if value is None:
        raise NotYet(f"Your function returned None instead of {what}. Is the `return` line missing?")
    if not isinstance(value, torch.Tensor):
        raise NotYet(f"Return {what} as a torch tensor of shape {shape}, not a {type(value).__name__}.")
    if tuple(value.shape) != shape:
        raise NotYet(f"Return {what} as a tensor of shape {shape}; yours has shape {tuple(value.shape)}.")
    if not value.is_floating_point():
        raise NotYet(f"{what[0].upper() + what[1:]} must be floating-point values; yours are {value.dtype}.")
    return value.detach().cpu().double()


def _close(answer: torch.Tensor, dtype: torch.dtype, expected: torch.Tensor, atol: float) -> bool:
    """Compare at ``atol`` or at the precision of the answer's own dtype, whichever is coarser."""
    precision = 4 * torch.finfo(dtype).eps
    return torch.allclose(answer, expected.double(), atol=max(atol, precision), rtol=precision)


def _kept(inputs: dict[str, Any]) -> dict[str, Any]:
    """Copy the inputs an answer is given, to find out afterwards whether it changed them."""
    return {name: value.clone() if isinstance(value, torch.Tensor) else np.array(value, copy=True)
            for name, value in inputs.items()}


def _unchanged(inputs: dict[str, Any], kept: dict[str, Any]) -> None:
    """Refuse an answer that changed an input in place: in the notebook it would change the caller's data."""
    for name, value in inputs.items():
        same = torch.equal(value, kept[name]) if isinstance(value, torch.Tensor) else np.array_equal(value, kept[name])
        if not same:
            raise NotYet(f"Your function changed its input `{name}` in place, so it would also change the data "
                         "of whoever calls it. Leave the inputs as they are and build new tensors or arrays "
                         "(in-place operations such as +=, .add_() or .clamp_() change their input).")


def check_black_pixel_mse(formula: Callable[[float], float]) -> None:
    """Check a formula for the expected squared value of a black pixel after clamped noise of std s."""
    for s in (0.1, 0.2, 0.3):  # small enough that the clamp at 1 changes the answer by under 1 %
        exact = _black_pixel_mse(s)
        answer = _number(formula(s), "the expected squared value")
        if not math.isclose(answer, exact, rel_tol=0.01, abs_tol=1e-4):
            if math.isclose(answer, s**2, rel_tol=0.01):
                raise NotYet("That is the MSE without the clamp. Half the time the clamp sets the pixel to 0.")
            if math.isclose(answer, s / math.sqrt(2 * math.pi), rel_tol=0.01):
                raise NotYet("That is the mean of the clamped pixel, not the mean of its square.")
            raise NotYet(
                f"For s = {s} your formula gives {answer:.4f}. Split the expectation into the half where "
                "s*eps < 0 (the clamp gives 0) and the half where it is positive."
            )
    _passed("the formula matches the exact expectation to 1 % for s = 0.1, 0.2 and 0.3.")


def _black_pixel_mse(s: float) -> float:
    """E[clamp(s eps, 0, 1)^2], exactly, by numerical integration over eps ~ N(0, 1)."""
    from scipy import integrate, stats

    inside, _ = integrate.quad(lambda z: (s * z) ** 2 * stats.norm.pdf(z), 0, 1 / s)
    return inside + stats.norm.sf(1 / s)


def _compare_decoded(
    returned: Any, expected: torch.Tensor, decoder: nn.Module, latent: torch.Tensor, device: torch.device
) -> None:
    answer = _tensor(returned, (9, 1, 28, 28), "the 9 decoded images")
    if returned.requires_grad:
        raise NotYet("The images still carry a gradient graph, which keeps memory busy: decoding needs no "
                     "gradients.")
    if _close(answer, returned.dtype, expected, 1e-5):
        return
    with torch.no_grad():
        train_mode = decoder.train()(latent.to(device)).cpu()
    if _close(answer, returned.dtype, train_mode, 1e-5):
        raise NotYet("The decoder ran in training mode, so batch norm used the 9 codes' own statistics. "
                     "Call decoder.eval() first.")
    raise NotYet("The images differ from the decoder's output for these codes. Decode the codes you were given.")


def _codes_and_images(returned: Any, num_samples: int, latent_dim: int) -> tuple[torch.Tensor, Any]:
    """Return an answer's (codes, images) with the codes as a checked tensor, or raise a hint."""
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise NotYet("Return two things, the codes and their images, as a pair (codes, images).")
    codes, images = returned
    return _tensor(codes, (num_samples, latent_dim), f"the {num_samples} codes"), images


def _check_grid(run: Callable[[int], tuple[torch.Tensor, Any]], reference: nn.Module, device: torch.device) -> None:
    """Check a grid of 9 codes that ``run(seed)`` returns: the seed repeats it, and it decodes as ``reference`` does.

    The images must be the decoder's for these codes in evaluation mode, without a gradient graph.
    """
    codes, images = run(CHECK_SEED)
    again, _ = run(CHECK_SEED)
    if not torch.equal(codes, again):
        raise NotYet("The same generator gave different codes. Draw the random numbers from the generator you "
                     "were given, so that a seed repeats a grid.")
    _compare_decoded(images, decode(reference, codes.float(), device), reference, codes.float(), device)


def _calls_checked(forbidden: dict[str, Callable[..., Any]], function: Callable[..., Any], *args: Any) -> Any:
    """Run ``function(*args)``, refusing an answer that hands the exercise to the course's own code.

    ``forbidden`` names the functions that would do the whole exercise (the course's
    answer, or torch's ready-made layer). Every call made while the answer runs is
    watched (``sys.setprofile``), so the check sees such a call however the function
    was imported or renamed.
    """
    # A decorated function (torch.no_grad, say) runs its own code inside the decorator's, which many share.
    codes = {inspect.unwrap(f).__code__: name for name, f in forbidden.items() if hasattr(f, "__code__")}
    builtins = [(f, name) for name, f in forbidden.items() if not hasattr(f, "__code__")]
    called: list[str] = []

    def watch(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in codes:
            called.append(codes[frame.f_code])
        elif event == "c_call":
            called.extend(name for f, name in builtins if arg is f)

    previous = sys.getprofile()
    sys.setprofile(watch)
    try:
        result = function(*args)
    finally:
        sys.setprofile(previous)
    if called:
        raise NotYet(f"Your function calls `{called[0]}`, which does the whole exercise for you. The point is to "
                     "write those steps yourself, with tensor or array operations.")
    return result


def _noise_map(size: int = 28) -> torch.Tensor:
    """A (28, 28) map of noise strengths: 0.1 at the centre, rising to 0.6 in the corners, like a cheap sensor."""
    coords = torch.linspace(-1.0, 1.0, size)
    radius_squared = (coords[:, None] ** 2 + coords[None, :] ** 2) / 2
    return 0.1 + 0.5 * radius_squared


def check_add_noise_map(add_noise_mine: Callable[..., torch.Tensor]) -> None:
    """Check ``add_noise_mine(images, noise_std, generator)``: noise with its own strength at every pixel.

    ``noise_std`` is a (28, 28) tensor of standard deviations, one per pixel; the
    result is each image + noise_std x N(0, 1), pixel by pixel, clamped to [0, 1],
    with the noise drawn from ``generator`` (one value per pixel of every image).
    """
    images = _images()
    maps = {"a vignette (0.1 at the centre, 0.6 in the corners)": _noise_map(),
            "a uniform map of 0.3": torch.full((28, 28), 0.3), "a map of zeros": torch.zeros(28, 28)}
    for name, noise_std in maps.items():
        draws = torch.randn(images.shape, generator=torch.Generator().manual_seed(CHECK_SEED))
        expected = (images + noise_std * draws).clamp(0, 1)
        inputs = {"images": images, "noise_std": noise_std}
        kept = _kept(inputs)
        returned = add_noise_mine(images, noise_std, torch.Generator().manual_seed(CHECK_SEED))
        _unchanged(inputs, kept)
        answer = _tensor(returned, tuple(images.shape), "the noisy images")
        if _close(answer, returned.dtype, expected, 1e-6):
            continue
        if answer.min() < 0 or answer.max() > 1:
            raise NotYet("Some pixels lie outside [0, 1]: the noisy image must be clamped back into the pixel range.")
        wrong = {
            "noise_std holds standard deviations, but your noise is scaled by their squares (variances).":
                images + noise_std**2 * draws,
            "Your noise is scaled by the square root of noise_std, as if it held variances; it holds standard "
            "deviations already.": images + noise_std.sqrt() * draws,
            "Your noise has the same strength at every pixel. Each pixel's noise must be scaled by its own entry "
            "of noise_std.": images + noise_std.mean() * draws,
            "The noisy pixels are rounded to 0 or 1; keep them as fractions.": (images + noise_std * draws).round(),
        }
        for hint, candidate in wrong.items():
            if noise_std.std() > 0 or "same strength" not in hint:
                if _close(answer, returned.dtype, candidate.clamp(0, 1), 1e-6):
                    raise NotYet(hint)
        if not noise_std.any():
            raise NotYet("With a map of zeros the images must come back unchanged.")
        raise NotYet(
            f"For {name} the values differ from image + noise_std * N(0, 1), pixel by pixel, clamped. Is the noise "
            "drawn from the generator you were given, with one value per pixel of every image?"
        )
    _passed("the noise follows the map pixel by pixel: for a vignette, for a uniform map (the same as "
            "noise.add_noise at 0.3) and for a map of zeros.")


def check_batch_norm_eval(batch_norm_mine: Callable[..., torch.Tensor]) -> None:
    """Check ``batch_norm_mine(x, running_mean, running_var, gamma, beta, eps)`` against ``nn.BatchNorm2d.eval()``.

    In evaluation mode batch norm normalises with the running statistics it kept
    during training, not with the batch's own, so that one image's output does not
    depend on the other images of its batch.
    """
    generator = torch.Generator().manual_seed(CHECK_SEED)
    x = torch.randn(8, 4, 5, 5, generator=generator) * 3 + 1
    running_mean = torch.randn(4, generator=generator) * 2
    running_var = torch.rand(4, generator=generator) * 4 + 0.5
    running_var[3] = 2e-5  # a channel whose variance is near eps: where eps goes matters there
    gamma = torch.rand(4, generator=generator) + 0.5
    beta = torch.randn(4, generator=generator)
    layer = nn.BatchNorm2d(4).eval()
    with torch.no_grad():
        layer.weight.copy_(gamma)
        layer.bias.copy_(beta)
        layer.running_mean.copy_(running_mean)
        layer.running_var.copy_(running_var)
        expected = layer(x)
    eps = layer.eps
    inputs = {"x": x, "running_mean": running_mean, "running_var": running_var, "gamma": gamma, "beta": beta}
    kept = _kept(inputs)
    forbidden = {"torch.nn.functional.batch_norm": nn.functional.batch_norm, "torch.batch_norm": torch.batch_norm}
    returned = _calls_checked(forbidden, batch_norm_mine, x, running_mean, running_var, gamma, beta, eps)
    _unchanged(inputs, kept)
    answer = _tensor(returned, tuple(x.shape), "the normalised tensor")
    if _close(answer, returned.dtype, expected, 1e-4):
        _passed("your batch norm matches nn.BatchNorm2d in evaluation mode to within 1e-4.")
        return
    mean, var = running_mean.view(1, -1, 1, 1), running_var.view(1, -1, 1, 1)
    std = torch.sqrt(var + eps)
    g, b = gamma.view(1, -1, 1, 1), beta.view(1, -1, 1, 1)
    batch_mean = x.mean(dim=(0, 2, 3), keepdim=True)
    batch_var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    wrong = {
        "You normalise with the batch's own mean and variance, as in training. In evaluation mode batch norm "
        "uses the running statistics it kept during training.":
            g * (x - batch_mean) / torch.sqrt(batch_var + eps) + b,
        "You divide by the variance. Batch norm divides by the standard deviation, sqrt(var + eps).":
            g * (x - mean) / (var + eps) + b,
        "eps belongs inside the square root: sqrt(var + eps), not sqrt(var) + eps.":
            g * (x - mean) / (torch.sqrt(var) + eps) + b,
        "gamma and beta are swapped: gamma scales the normalised values, beta shifts them.":
            b * (x - mean) / std + g,
        "Neither gamma nor beta is applied: scale the normalised values by gamma, then shift them by beta.":
            (x - mean) / std,
        "beta is missing: after scaling by gamma, shift by beta.": g * (x - mean) / std,
        "gamma is missing: scale the normalised values by gamma before shifting by beta.": (x - mean) / std + b,
        "The running mean is not subtracted: normalising centres each channel on its running mean first.":
            g * x / std + b,
    }
    for hint, candidate in wrong.items():
        if _close(answer, returned.dtype, candidate, 1e-4):
            raise NotYet(hint)
    raise NotYet("The result differs from nn.BatchNorm2d in evaluation mode. Each channel c uses its own "
                 "running_mean[c] and running_var[c], for every image and every pixel of that channel.")


def check_train_step_l1(train_step_mine: Callable[..., float]) -> None:
    """Check ``train_step_mine(encoder, decoder, optimizer, clean, noise_factor)``: one step on the L1 loss.

    Your step must add noise with ``noise.add_noise`` (torch's global generator),
    encode, decode, take the mean absolute error against the *clean* images, clear
    old gradients, backpropagate and step the optimizer, and return the loss as a float.
    """
    with threads.fixed(1):  # the course's steps and the answer's, bit for bit under any load
        _check_train_step_l1(train_step_mine)


def _check_train_step_l1(train_step_mine: Callable[..., float]) -> None:
    from . import training
    from .model import Decoder, Encoder

    torch.manual_seed(CHECK_SEED)
    encoder, decoder = Encoder(4).train(), Decoder(4).train()
    clean = _images(32)

    def fresh() -> tuple[nn.Module, nn.Module, torch.optim.Optimizer]:
        enc, dec = copy.deepcopy(encoder), copy.deepcopy(decoder)
        optimizer = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
        # Stale gradients from an earlier step: a step that forgets zero_grad adds them in.
        for p in [*enc.parameters(), *dec.parameters()]:
            p.grad = torch.full_like(p, 0.1)
        return enc, dec, optimizer

    enc, dec, optimizer = fresh()
    torch.manual_seed(CHECK_SEED)  # the reference: the course's own train_epoch over this one batch, with L1
    expected_loss = training.train_epoch(enc, dec, torch.device("cpu"), [(clean, None)], nn.L1Loss(), optimizer,
                                         STEP_NOISE)
    expected_weights = torch.cat([p.detach().flatten() for p in [*enc.parameters(), *dec.parameters()]])

    enc, dec, optimizer = fresh()
    inputs = {"clean": clean}
    kept = _kept(inputs)
    torch.manual_seed(CHECK_SEED)
    forbidden = {"training.train_epoch": training.train_epoch, "training.training_step": training.training_step}
    returned = _calls_checked(forbidden, train_step_mine, enc, dec, optimizer, clean, STEP_NOISE)
    _unchanged(inputs, kept)
    weights = torch.cat([p.detach().flatten() for p in [*enc.parameters(), *dec.parameters()]])
    if isinstance(returned, torch.Tensor):
        raise NotYet("Return the loss as a Python float (loss.item()), not a tensor that keeps the graph alive.")
    answer = _number(returned, "the loss")
    if math.isclose(answer, expected_loss, rel_tol=1e-5) and torch.allclose(weights, expected_weights, atol=1e-6):
        _passed("one step gives the same loss and the same weights as the course's train_epoch with nn.L1Loss().")
        return
    torch.manual_seed(CHECK_SEED)
    noisy = add_noise(clean, STEP_NOISE)  # the same noise the step drew
    with torch.no_grad():
        train_out = copy.deepcopy(decoder)(copy.deepcopy(encoder)(noisy))
        clean_out = copy.deepcopy(decoder)(copy.deepcopy(encoder)(clean))
        eval_out = copy.deepcopy(decoder).eval()(copy.deepcopy(encoder).eval()(noisy))
        l1 = nn.functional.l1_loss
        candidates = {
            "The loss is the squared error. This step minimises the mean absolute error, |output - clean|.":
                nn.functional.mse_loss(train_out, clean).item(),
            "The loss is summed over the pixels. Take the mean absolute error, so that it does not grow with the "
            "batch size.": l1(train_out, clean, reduction="sum").item(),
            "The loss compares the output with the noisy input. Compare it with the clean images.":
                l1(train_out, noisy).item(),
            "The model was given the clean images. A denoising autoencoder gets the noisy ones as input and is "
            "scored against the clean ones.": l1(clean_out, clean).item(),
            "The models ran in evaluation mode, so batch norm used its running statistics instead of the batch's. "
            "A training step runs them in training mode.": l1(eval_out, clean).item(),
        }
    if math.isclose(answer, expected_loss, rel_tol=1e-5):
        raise NotYet("The loss is right but the weights are not. Are the old gradients cleared before "
                     "backpropagating, and does the optimizer take its step?")
    # An untrained model answers clean and noisy inputs nearly alike, so candidates are told apart at 1e-5.
    for hint, value in candidates.items():
        if math.isclose(answer, value, rel_tol=1e-5):
            raise NotYet(hint)
    raise NotYet("The loss differs. Check what goes into the model (the noisy images), what its output is compared "
                 "with (the clean ones) and how (the mean absolute error over all pixels).")


def _check_codes(latent_dim: int) -> torch.Tensor:
    """Codes (3,000, d) with an offset mean and strongly correlated dimensions, like an autoencoder's."""
    generator = torch.Generator().manual_seed(CHECK_SEED)
    mix = torch.randn(latent_dim, latent_dim, generator=generator)
    offset = torch.randn(latent_dim, generator=generator) * 2
    return torch.randn(3000, latent_dim, generator=generator) @ mix.T + offset


#: Codes drawn by the fitted-Gaussian check: enough that a right sampler's mean and covariance are close.
FIT_SAMPLES = 20_000


def check_fitted_samples(sample_mine: Callable[..., Any], decoder: nn.Module, device: torch.device) -> None:
    """Check ``sample_mine(decoder, train_latent, num_samples, device, generator)``, which returns (codes, images).

    It fits a Gaussian to ``train_latent`` (N, d): its mean and its full covariance;
    draws ``num_samples`` codes from it with ``generator``; and decodes them in eval
    mode into (num_samples, 1, 28, 28) images. The check works on a copy of
    ``decoder``, so your model comes out unchanged, and compares the codes'
    mean and covariance with the fitted ones over 20,000 draws.
    """
    from . import generation

    decoder = copy.deepcopy(decoder).train()  # a fair start: a right answer switches to eval mode itself
    reference = copy.deepcopy(decoder)
    latent_dim = decoder.latent_dim
    latent = _check_codes(latent_dim)
    mean, cov = latent.double().mean(dim=0), torch.cov(latent.double().T)
    forbidden = {"generation.LatentGaussian.fit": generation.LatentGaussian.fit.__func__,
                 "generation.LatentGaussian.sample": generation.LatentGaussian.sample}

    def run(num_samples: int, seed: int) -> tuple[torch.Tensor, Any]:
        inputs = {"train_latent": latent}
        kept = _kept(inputs)
        returned = _calls_checked(forbidden, sample_mine, decoder, latent, num_samples, device,
                                  torch.Generator().manual_seed(seed))
        _unchanged(inputs, kept)
        return _codes_and_images(returned, num_samples, latent_dim)

    _check_grid(lambda seed: run(9, seed), reference, device)
    many, _ = run(FIT_SAMPLES, CHECK_SEED + 1)
    got_mean, got_cov = many.mean(dim=0), torch.cov(many.T)
    standard_error = torch.sqrt(torch.diagonal(cov) / FIT_SAMPLES)

    def near(a: torch.Tensor, b: torch.Tensor) -> bool:
        return bool(torch.linalg.norm(a - b) <= 0.06 * torch.linalg.norm(b))

    right_mean = bool(((got_mean - mean).abs() <= 5 * standard_error).all())
    if right_mean and near(got_cov, cov):
        _passed("the codes have the fitted mean and covariance, repeat with the generator, and decode to the "
                "decoder's images in eval mode.")
        return
    chol = torch.linalg.cholesky(cov)
    centred_on_zero = bool((got_mean.abs() <= 5 / math.sqrt(FIT_SAMPLES)).all())
    if centred_on_zero and near(got_cov, torch.eye(latent_dim, dtype=torch.float64)):
        raise NotYet("These codes look like draws from N(0, I). Sample from the Gaussian fitted to train_latent: "
                     "its mean and its covariance.")
    if right_mean and near(got_cov, torch.diag(torch.diagonal(cov))):
        raise NotYet("The codes' dimensions come out uncorrelated, but the training codes' are not: use the full "
                     "covariance matrix, not only each dimension's variance.")
    if right_mean and near(got_cov, cov @ cov):
        raise NotYet("The codes' covariance is the square of the fitted one: the random draws were multiplied by "
                     "the covariance, which is a squared scale. Multiply by a square root of it instead.")
    if right_mean and near(got_cov, chol.T @ chol):
        raise NotYet("The codes' covariance is L^T L instead of L L^T: check which side of the draws the "
                     "matrix L multiplies, and whether it needs a transpose.")
    if not right_mean and near(got_cov, cov):
        raise NotYet("The codes' spread is right but they are not centred on the training codes' mean. Add the "
                     "fitted mean to every sample.")
    raise NotYet(f"Over {FIT_SAMPLES:,} draws your codes' mean or covariance differ from the Gaussian fitted to "
                 "train_latent. Fit its mean and full covariance, and make each sample mean + (a square root of "
                 "the covariance) x (standard normal draws).")


def _check_counts(n_clusters: int) -> np.ndarray:
    """A count matrix counts[k, digit] of ``n_clusters`` clusters: each has a clear majority, two share one."""
    rng = np.random.default_rng(CHECK_SEED + n_clusters)
    counts = rng.integers(0, 25, (n_clusters, 10))
    majority = np.resize(rng.permutation(10), n_clusters)
    majority[1] = majority[0]  # two clusters whose members are mostly the same digit, as 4s and 9s often are
    counts[np.arange(n_clusters), majority] += rng.integers(60, 120, n_clusters)
    return counts


def _matrix_forbidden() -> dict[str, Callable[..., Any]]:
    from . import clustering

    return {"clustering.mode_mapping": clustering.mode_mapping,
            "clustering.hungarian_mapping": clustering.hungarian_mapping,
            "clustering.digit_cluster_counts": clustering.digit_cluster_counts}


def check_mode_mapping_counts(mode_mapping_mine: Callable[..., tuple[Any, Any]]) -> None:
    """Check ``mode_mapping_mine(counts)``, which returns (mapping, accuracy) from a cluster-by-digit count matrix.

    ``counts[k, digit]`` is how many images of ``digit`` k-means put in cluster k; there
    may be more clusters than digits (here 12). ``mapping[k]`` is the digit cluster
    k stands for; the accuracy is the share of all images whose cluster's digit is
    their own.
    """
    counts = _check_counts(12)
    expected_mapping = counts.argmax(axis=1)
    expected_accuracy = float(counts[np.arange(len(counts)), expected_mapping].sum() / counts.sum())
    inputs = {"counts": counts}
    kept = _kept(inputs)
    returned = _calls_checked(_matrix_forbidden(), mode_mapping_mine, counts)
    _unchanged(inputs, kept)
    if not isinstance(returned, tuple) or len(returned) != 2:
        raise NotYet("Return two things, the mapping and the accuracy, as a pair (mapping, accuracy).")
    mapping, accuracy = returned
    if isinstance(mapping, dict):  # {cluster: digit} works as well as an array indexed by cluster
        missing = [k for k in range(len(counts)) if k not in mapping]
        if missing:
            raise NotYet(f"The mapping has no entry for cluster {missing[0]}: every cluster needs a digit.")
        mapping = [mapping[k] for k in range(len(counts))]
    if mapping is None:
        raise NotYet("The mapping is None. Is it filled in and returned?")
    mapping = np.asarray(mapping)
    if mapping.shape != (len(counts),):
        across = " The rows of counts are the clusters, the columns the digits." if mapping.shape == (10,) else ""
        raise NotYet(f"The mapping must hold one digit per cluster, {len(counts)} here: mapping[k] is the digit "
                     f"cluster k stands for. Yours has shape {mapping.shape}.{across}")
    accuracy = _number(accuracy, "the accuracy")
    right_mapping = np.array_equal(mapping, expected_mapping)
    if right_mapping and math.isclose(accuracy, expected_accuracy, abs_tol=ACCURACY_TOL):
        _passed(f"the mapping of 12 clusters and the accuracy ({expected_accuracy:.1%} on the check's counts) "
                "are right.")
        return
    if not right_mapping:
        raise NotYet("Some clusters map to the wrong digit. Each cluster stands for the digit most common among "
                     "its members: the largest count in its row.")
    if math.isclose(accuracy, 100 * expected_accuracy, abs_tol=100 * ACCURACY_TOL):
        raise NotYet("That is a percentage. Return the accuracy as a share between 0 and 1.")
    if math.isclose(accuracy, float(np.trace(counts[:10]) / counts.sum()), abs_tol=ACCURACY_TOL):
        raise NotYet("The accuracy counts the images whose cluster number equals their digit. Count those whose "
                     "cluster's mapped digit equals it.")
    kept_counts = counts[np.arange(len(counts)), expected_mapping]
    if math.isclose(accuracy, float(np.mean(kept_counts / counts.sum(axis=1))), abs_tol=ACCURACY_TOL):
        raise NotYet("That is the mean of the clusters' own accuracies, which weighs a small cluster like a large "
                     "one. Divide the images mapped right by all images.")
    raise NotYet("The mapping is right; the accuracy is the share of all images that sit in a cluster mapped to "
                 "their own digit.")


def check_hungarian_counts(hungarian_mine: Callable[..., Any]) -> None:
    """Check ``hungarian_mine(counts)``: the accuracy of the best one-to-one pairing of clusters and digits.

    ``counts[k, digit]`` as in notebook 5's exercise; with more clusters than digits
    (the second matrix here, 12 x 10), the clusters left without a digit count as wrong.
    """
    from scipy.optimize import linear_sum_assignment

    for n_clusters in (10, 12):
        counts = _check_counts(n_clusters)
        rows, cols = linear_sum_assignment(counts, maximize=True)
        expected = float(counts[rows, cols].sum() / counts.sum())
        inputs = {"counts": counts}
        kept = _kept(inputs)
        returned = _calls_checked(_matrix_forbidden(), hungarian_mine, counts)
        _unchanged(inputs, kept)
        answer = _number(returned, "the accuracy")
        if math.isclose(answer, expected, abs_tol=ACCURACY_TOL):
            continue
        total = counts.sum()
        worst_rows, worst_cols = linear_sum_assignment(counts)
        if math.isclose(answer, float(counts.max(axis=1).sum() / total), abs_tol=ACCURACY_TOL):
            raise NotYet("That is the mode mapping, where two clusters may claim one digit. Here each digit may be "
                         "used once: that makes it an assignment problem, which scipy.optimize can solve.")
        if math.isclose(answer, float(counts.max(axis=0).sum() / total), abs_tol=ACCURACY_TOL):
            raise NotYet("Each digit took its best cluster on its own, so two digits may share one. The pairing "
                         "must be one-to-one: one cluster per digit, one digit per cluster.")
        if math.isclose(answer, float(counts[worst_rows, worst_cols].sum() / total), abs_tol=ACCURACY_TOL):
            raise NotYet("That pairing keeps the fewest images right. The best pairing keeps the most.")
        if math.isclose(answer, 100 * expected, abs_tol=100 * ACCURACY_TOL):
            raise NotYet("That is a percentage. Return the accuracy as a share between 0 and 1.")
        if math.isclose(answer, float(np.trace(counts) / total), abs_tol=ACCURACY_TOL):
            raise NotYet("The accuracy pairs cluster k with digit k. Find the pairing that keeps the most images.")
        raise NotYet(f"For a {n_clusters} x 10 count matrix the accuracy differs. Choose the one-to-one pairing of "
                     "clusters and digits that keeps the most images, and divide by all the images.")
    _passed("the one-to-one accuracy is right for 10 clusters and for 12.")


#: Draws per row in the reparameterisation check: the sample variance is then within about 1 % of the true one.
REPARAM_SAMPLES = 40_000


def check_reparameterize(reparameterize_mine: Callable[..., torch.Tensor]) -> None:
    """Check ``reparameterize_mine(mean, logvar, generator)``: one differentiable draw from N(mean, exp(logvar)).

    ``mean`` and ``logvar`` are (B, d); the result is a (B, d) sample whose
    randomness comes from ``generator`` alone and through which gradients reach both
    ``mean`` and ``logvar``. The check compares the samples' mean and variance over
    many draws with ``mean`` and ``exp(logvar)``, and each gradient with the one the
    trick gives (1 for the mean; (z - mean) / 2 for the log-variance).
    """
    from . import vae

    forbidden = {"vae.reparameterize": vae.reparameterize}
    row_mean = torch.tensor([-1.0, 0.0, 2.0, 0.5])
    row_logvar = torch.tensor([-2.0, 0.0, 1.0, 0.3])  # variances 0.14, 1, 2.7, 1.35: a wrong power shows

    def run(rows: int, seed: int, grad: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
        mean = row_mean.repeat(rows, 1).requires_grad_(grad)
        logvar = row_logvar.repeat(rows, 1).requires_grad_(grad)
        inputs = {"mean": mean.detach(), "logvar": logvar.detach()}
        kept = _kept(inputs)
        returned = _calls_checked(forbidden, reparameterize_mine, mean, logvar, torch.Generator().manual_seed(seed))
        _unchanged(inputs, kept)
        return mean, logvar, returned, _tensor(returned, (rows, 4), f"the {rows} x 4 codes")

    _, _, _, first = run(8, CHECK_SEED)
    if torch.isnan(first).any():
        raise NotYet("Some codes are NaN. A log-variance can be negative: it is the logarithm of the variance, "
                     "not the variance itself, so undo the logarithm before taking a square root.")
    _, _, _, again = run(8, CHECK_SEED)
    _, _, _, other = run(8, CHECK_SEED + 1)
    if not torch.equal(first, again):
        raise NotYet("The same generator gave different codes. Draw the random numbers from the generator you "
                     "were given.")
    if torch.equal(first, other):
        raise NotYet("Two different generators gave the same codes: the codes are not random. A VAE decodes a "
                     "*draw* from the Gaussian, not its mean.")
    _, _, _, many = run(REPARAM_SAMPLES, CHECK_SEED + 2)
    got_mean, got_var = many.mean(dim=0), many.var(dim=0)
    var = row_logvar.double().exp()
    right_var = bool(((got_var / var - 1).abs() < 0.05).all())
    right_mean = bool(((got_mean - row_mean.double()).abs() < 5 * torch.sqrt(var / REPARAM_SAMPLES)).all())
    if not right_var:
        candidates = {
            "The samples' variance is exp(logvar) squared: exp(logvar) is the variance, so the draws must be "
            "scaled by its square root (the standard deviation).": var**2,
            "The samples' variance is the log-variance squared: logvar is the logarithm of the variance, not the "
            "standard deviation.": row_logvar.double() ** 2,
            "The samples' variance is 1 in every dimension: the draws are not scaled by the standard deviation.":
                torch.ones(4, dtype=torch.float64),
        }
        for hint, candidate in candidates.items():
            if ((got_var - candidate).abs() <= 0.05 * candidate + 1e-3).all():  # a candidate may be 0
                raise NotYet(hint)
        raise NotYet(f"Over {REPARAM_SAMPLES:,} draws the samples' variances are {got_var.numpy().round(3)}, but "
                     f"exp(logvar) is {var.numpy().round(3)}.")
    if not right_mean:
        raise NotYet(f"Over {REPARAM_SAMPLES:,} draws the samples' means are {got_mean.numpy().round(3)}, not the "
                     f"means {row_mean.numpy()} you were given: shift the scaled draws by the mean.")
    mean, logvar, returned, codes = run(16, CHECK_SEED + 3, grad=True)
    if not returned.requires_grad:
        raise NotYet("No gradient can flow from the codes back to the mean and the log-variance: the sample was "
                     "drawn outside the graph (.sample() or .detach() cut it). That is what the trick avoids: "
                     "draw the randomness alone, then build the code from it with differentiable operations.")
    returned.sum().backward()
    if mean.grad is None or logvar.grad is None:
        raise NotYet("The gradient reaches only one of the mean and the log-variance; the code must depend on "
                     "both through differentiable operations.")
    if not mean.grad.any() and not logvar.grad.any():
        raise NotYet("The codes have a grad_fn, but the gradients that reach the mean and the log-variance are all "
                     "zero: torch.normal(mean, std) draws this way (section 7.2 shows it), and so silently trains "
                     "nothing. Draw eps from the generator alone, then build mean + std * eps yourself.")
    if not torch.allclose(mean.grad, torch.ones_like(mean.grad), atol=1e-5) \
            or not torch.allclose(logvar.grad.double(), (codes - mean.detach().double()) / 2, atol=1e-4):
        raise NotYet("The samples have the right mean and variance, but the gradients are not the ones the trick "
                     "gives: d code / d mean should be 1 and d code / d logvar (code - mean) / 2.")
    _passed(f"over {REPARAM_SAMPLES:,} draws the codes have the given means and variances exp(logvar), repeat with "
            "the generator, and pass gradients to the mean (1) and the log-variance ((z - mean) / 2).")


def check_kl(kl_mine: Callable[..., Any]) -> None:
    """Check ``kl_mine(mean, logvar)``: KL(N(mean, diag(exp(logvar))) || N(0, I)), summed over d, averaged over B.

    The check compares it with ``torch.distributions.kl_divergence`` on batches of
    several sizes, and refuses a call to that function or to ``vae.kl_to_standard_normal``.
    """
    from torch.distributions import Normal, kl, kl_divergence

    from . import vae

    forbidden = {"vae.kl_to_standard_normal": vae.kl_to_standard_normal, "torch.distributions.kl_divergence":
                 kl_divergence, "torch.distributions.kl._kl_normal_normal": kl._kl_normal_normal}
    for batch, dim, seed in ((8, 4, CHECK_SEED), (5, 3, CHECK_SEED + 1), (1, 4, CHECK_SEED + 2)):
        generator = torch.Generator().manual_seed(seed)
        mean = torch.randn(batch, dim, generator=generator) * 1.5
        logvar = torch.randn(batch, dim, generator=generator) - 0.5
        per_image = kl_divergence(Normal(mean.double(), (0.5 * logvar.double()).exp()), Normal(0.0, 1.0)).sum(1)
        expected = float(per_image.mean())
        inputs = {"mean": mean, "logvar": logvar}
        kept = _kept(inputs)
        returned = _calls_checked(forbidden, kl_mine, mean, logvar)
        _unchanged(inputs, kept)
        if isinstance(returned, torch.Tensor) and returned.shape in ((batch,), (batch, 1)) and batch > 1:
            raise NotYet(f"Your function returns one value per image, shape {tuple(returned.shape)}. Return the "
                         "batch's average KL as one number.")
        if isinstance(returned, torch.Tensor) and returned.shape == (dim,) and batch > 1:
            raise NotYet("Your function returns one value per code dimension. Sum over the dimensions (the KL of "
                         "independent dimensions adds up), then average over the images.")
        size = returned.numel() if isinstance(returned, torch.Tensor) else np.size(returned)  # np.size misreads tensors
        if isinstance(returned, (numbers.Real, torch.Tensor, np.ndarray)) and size == 1 and math.isnan(float(returned)):
            raise NotYet("Your KL is NaN. Is a logarithm taken of something that can be negative? logvar is "
                         "already the logarithm of the variance; the variance itself is exp(logvar).")
        got = _number(returned, "the KL divergence")
        if math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6):
            continue
        mean64, logvar64 = mean.double(), logvar.double()
        wrong = {
            "Your KL is twice the right one: the closed form has a factor 1/2 in front.": 2 * expected,
            "Your KL is half the right one: the factor 1/2 is there twice.": expected / 2,
            f"Your KL is {batch} times the right one: it is summed over the batch instead of averaged, so it "
            "would grow with the batch size.": batch * expected,
            f"Your KL is 1/{dim} of the right one: it is averaged over the code's dimensions instead of summed.":
                expected / dim,
            "Your KL has the wrong sign: a KL divergence is never negative.": -expected,
            "The terms with the variance cancel in your formula: the variance is exp(logvar), and the log of "
            "the variance is logvar itself.": float((0.5 * (mean64**2 - 1)).sum(1).mean()),
            "The variance term uses the standard deviation exp(logvar / 2) where the variance exp(logvar) "
            "belongs.": float((0.5 * ((0.5 * logvar64).exp() + mean64**2 - 1 - logvar64)).sum(1).mean()),
        }
        for hint, value in wrong.items():
            if math.isfinite(value) and math.isclose(got, value, rel_tol=1e-4, abs_tol=1e-6):
                raise NotYet(hint)
        raise NotYet(f"For a batch of {batch} codes of size {dim} your KL is {got:.6g}; it should be "
                     f"{expected:.6g}. Derive it per dimension, then sum over the dimensions and average over the "
                     "images.")
    _passed("the KL term agrees with torch.distributions.kl_divergence, summed over the code's dimensions and "
            "averaged over the images, for batches of 8, 5 and 1.")


#: The ELBO check's batches: (images, code size, beta), so that a beta left out or misplaced shows.
ELBO_CASES = ((8, 4, 1.0), (5, 3, 4.0), (3, 4, 0.25))


def check_elbo_loss(elbo_loss_mine: Callable[..., Any]) -> None:
    """Check ``elbo_loss_mine(recon, target, mean, logvar, beta)``: the VAE's loss, one number for the batch.

    The loss per image is the binary cross-entropy of the decoded ``recon`` against the
    clean ``target``, summed over the pixels, plus ``beta`` times the KL term summed
    over the code's dimensions; the batch's loss is its average over the images. Honest
    variants pass: a hand-written cross-entropy (with or without clamping the
    logarithm), ``F.binary_cross_entropy``, the KL by its closed form or by
    ``torch.distributions``, and returning the two terms as well, as long as the loss
    comes first. It must be a tensor with a gradient, since training steps on it, and
    the check compares that gradient with the right one. ``vae.elbo_loss`` is refused.
    """
    import torch.nn.functional as F

    from . import vae

    for batch, dim, beta in ELBO_CASES:
        generator = torch.Generator().manual_seed(CHECK_SEED + batch)
        target = _images(batch, seed=CHECK_SEED + batch)
        # Decodes strictly inside (0, 1), as a sigmoid gives them, so clamping the logarithm changes nothing.
        recon = torch.sigmoid(torch.randn(batch, 1, 28, 28, generator=generator) * 2).clamp(0.01, 0.99)
        mean = torch.randn(batch, dim, generator=generator) * 1.5
        logvar = torch.randn(batch, dim, generator=generator) - 0.5
        leaves = {name: value.clone().requires_grad_(True) for name, value in
                  (("recon", recon), ("mean", mean), ("logvar", logvar))}
        # The answer gets what training gives it: tensors inside the autograd graph, not leaves.
        inputs = {"recon": leaves["recon"] * 1, "target": target.clone(), "mean": leaves["mean"] * 1,
                  "logvar": leaves["logvar"] * 1}
        kept = _kept({name: value.detach() for name, value in inputs.items()})
        returned = _calls_checked({"vae.elbo_loss": vae.elbo_loss}, elbo_loss_mine, inputs["recon"],
                                  inputs["target"], inputs["mean"], inputs["logvar"], beta)
        _unchanged({name: value.detach() for name, value in inputs.items()}, kept)
        if isinstance(returned, (tuple, list)) or hasattr(returned, "loss"):
            returned = returned.loss if hasattr(returned, "loss") else (returned[0] if len(returned) else None)
        recon64, target64 = recon.double(), target.double()
        # The reference: the course's own loss (tested against a hand computation), in float64.
        terms = vae.elbo_loss(recon64, target64, mean.double(), logvar.double(), beta)
        expected, reconstruction, kl_mean = float(terms.loss), float(terms.reconstruction), float(terms.kl)
        if isinstance(returned, torch.Tensor) and returned.numel() == batch and batch > 1:
            raise NotYet(f"Your function returns one loss per image, shape {tuple(returned.shape)}. Return the "
                         "batch's average as one number: the optimiser steps on one loss.")
        value = returned.detach() if isinstance(returned, torch.Tensor) else returned
        if isinstance(value, torch.Tensor) and value.numel() == 1 and math.isnan(float(value)):
            raise NotYet("Your loss is NaN: a logarithm of 0 or of a negative number? The cross-entropy takes the "
                         "log of the decoded pixels and of 1 minus them, never of the target.")
        got = _number(value, "the loss")
        if math.isclose(got, expected, rel_tol=1e-4):
            if not isinstance(returned, torch.Tensor) or returned.grad_fn is None:
                raise NotYet("Your loss has the right value but no gradient: it was turned into a plain number "
                             "(float(), .item(), NumPy) or computed from detached tensors. Training steps on its "
                             "gradient, so return the tensor itself.")
            returned.backward()
            # d loss / d mean = beta * mean / B: the KL's gradient, averaged over the batch.
            if leaves["mean"].grad is None or not torch.allclose(leaves["mean"].grad, beta * mean / batch,
                                                                 rtol=1e-3, atol=1e-6):
                raise NotYet("Your loss has the right value, but its gradient with respect to the mean is not "
                             "beta * mean / batch size. Is part of it computed from a detached copy?")
            continue
        wrong = {
            "Your reconstruction term is averaged over the pixels: sum it over each image's 784 pixels. The sum is "
            "the image's negative log-likelihood, and its scale is what the KL term is weighed against.":
                reconstruction / recon[0].numel() + beta * kl_mean,
            f"Your loss is {batch} times the right one: it is summed over the batch instead of averaged, so it "
            "would grow with the batch size.": batch * expected,
            "Your loss ignores beta: it multiplies the KL term, and this batch has beta = "
            f"{beta:g}.": reconstruction + kl_mean,
            "beta multiplies your reconstruction term; it weighs the KL term.": beta * reconstruction + kl_mean,
            "Your KL term is subtracted: the loss is the *negative* ELBO, reconstruction + beta * KL, and both "
            "terms are costs.": reconstruction - beta * kl_mean,
            "Your reconstruction term is the squared error. The VAE of this notebook reads each pixel as the "
            "probability of ink (section 7.3): use the binary cross-entropy, summed over the pixels.":
                float((recon64 - target64).pow(2).flatten(1).sum(1).mean() + beta * kl_mean),
            # PyTorch's cross-entropy clamps its logarithms at -100, so the swapped call stays finite.
            "Your cross-entropy has its arguments swapped: the decoded pixels are the probabilities inside the "
            "logarithm, the clean image is the target, and PyTorch's cross-entropy takes the prediction first.":
                float(F.binary_cross_entropy(target64, recon64, reduction="sum") / batch + beta * kl_mean),
        }
        for hint, wrong_value in wrong.items():
            if math.isfinite(wrong_value) and math.isclose(got, wrong_value, rel_tol=1e-4):
                raise NotYet(hint)
        raise NotYet(f"For a batch of {batch} images with beta = {beta:g} your loss is {got:.6g}; it should be "
                     f"{expected:.6g}. Per image: the cross-entropy summed over the pixels, plus beta times the KL "
                     "summed over the code's dimensions; then the average over the images.")
    _passed("the loss is the cross-entropy summed over the pixels plus beta times the KL, averaged over the images, "
            "for batches of 8, 5 and 3 at beta = 1, 4 and 0.25, and its gradient reaches the code.")


#: What the model check reads from a forward pass: each torch function's name and what the specification calls it.
_LAYER_KINDS = {"conv2d": "convolution", "conv_transpose2d": "transposed convolution", "linear": "linear layer",
                "batch_norm": "batch norm", "relu": "ReLU", "relu_": "ReLU", "sigmoid": "sigmoid",
                "tanh": "tanh", "leaky_relu": "leaky ReLU", "elu": "ELU", "gelu": "GELU", "silu": "SiLU",
                "softplus": "softplus", "hardtanh": "hardtanh", "clamp": "clamp", "dropout": "dropout"}
#: A step of a forward pass: what it computes and the shape it returns, without the batch axis.
_Step = tuple[str, tuple[int, ...]]


def _trace(module: nn.Module, inputs: torch.Tensor) -> list[_Step]:
    """Run ``module`` on ``inputs`` and list the layers it applies, in order, however they are written.

    A ``TorchFunctionMode`` sees every torch function the forward pass calls, so an ``nn.ReLU()``
    module, ``F.relu`` and ``torch.relu`` all read as a ReLU, and ``nn.Conv2d`` and ``F.conv2d`` as a
    convolution; reshaping (flatten, view, unflatten) is not a layer and is left out.
    """
    from torch.overrides import TorchFunctionMode

    steps: list[_Step] = []

    class Trace(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            output = func(*args, **(kwargs or {}))
            kind = _LAYER_KINDS.get(getattr(func, "__name__", ""))
            if kind is not None and isinstance(output, torch.Tensor):
                steps.append((kind, tuple(output.shape[1:])))
            return output

    with torch.no_grad(), Trace():
        module(inputs)
    return steps


def _variants(steps: list[_Step], optional: list[int], movable: list[int]) -> list[list[_Step]]:
    """Return ``steps`` and the layouts the specification also allows.

    ``optional``: indices of batch-norm steps that may be left out; ``movable``: indices of batch-norm
    steps that may come after the ReLU that follows them instead of before it.
    """
    layouts: list[list[_Step]] = [list(steps)]
    for index in sorted(set(optional) | set(movable), reverse=True):
        grown = []
        for layout in layouts:
            grown.append(layout)
            if index in movable:
                moved = list(layout)
                moved[index], moved[index + 1] = layout[index + 1], layout[index]
                grown.append(moved)
            if index in optional:
                grown.append(layout[:index] + layout[index + 1 :])
        layouts = grown
    return layouts


def _shape(shape: tuple[int, ...]) -> str:
    return "(B, " + ", ".join(map(str, shape)) + ")"


def _first_difference(mine: list[_Step], layouts: list[list[_Step]], part: str) -> str | None:
    """Return a hint naming the first layer where ``mine`` leaves every allowed layout, or None if one matches."""
    if mine in layouts:
        return None

    def agreed(layout: list[_Step]) -> int:
        pairs = zip(mine, layout, strict=False)  # the shorter decides; the rest is a difference too
        return next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(mine), len(layout)))

    best = max(layouts, key=agreed)
    at = agreed(best)
    if at == len(best):
        extra = mine[at]
        if part == "encoder" and extra[0] != "linear layer":
            return (f"Your encoder applies a {extra[0]} to the code; the last linear layer has no activation, so "
                    "that the codes may take any value, negative ones included.")
        return (f"Your {part} goes on after its last layer: step {at + 1} is a {extra[0]} with output "
                f"{_shape(extra[1])}, which the specification does not have.")
    wanted = best[at]
    if at == len(mine):
        if wanted[0] == "sigmoid":
            return (f"Your {part} ends without a sigmoid; it needs one last, so that its pixels lie in [0, 1] like "
                    "the clean images it is compared with.")
        return f"Your {part} stops after {at} steps; step {at + 1} should be a {wanted[0]} with output " \
               f"{_shape(wanted[1])}."
    got = mine[at]
    where = f"Step {at + 1} of your {part}"
    if got[0] == wanted[0]:
        hint = ""
        if got[0] == "convolution" and got[1][1:] == (4, 4) and wanted[1][1:] == (3, 3):
            hint = (" Padding 1 on the third convolution gives 4 x 4; the 3 x 3 x 32 output needs padding 0 "
                    "there (section 2.2).")
        elif got[0] in ("convolution", "transposed convolution") and got[1][0] != wanted[1][0]:
            hint = " Check its number of output channels."
        elif got[0] in ("convolution", "transposed convolution"):
            hint = " Check its kernel size, stride, padding (and output_padding for a transposed convolution)."
        return f"{where} is a {got[0]} with output {_shape(got[1])}; the specification's is {_shape(wanted[1])}.{hint}"
    if wanted[0] == "batch norm":
        return (f"{where} is a {got[0]}, where the specification has batch norm (over {wanted[1][0]} channels): "
                "the assignment puts batch norm between the second and the third convolution, and the decoder "
                "mirrors it.")
    if got[0] == "batch norm":
        return f"{where} is a batch norm that the specification does not have there."
    if wanted[0] == "ReLU":
        return f"{where} is a {got[0]}; the specification has a ReLU after the layer before it."
    if wanted[0] == "sigmoid":
        return (f"{where} is a {got[0]}; the decoder ends in a sigmoid, so that its pixels lie in [0, 1] like the "
                "clean images it is compared with.")
    return f"{where} is a {got[0]} with output {_shape(got[1])}; the specification has a {wanted[0]} with output " \
           f"{_shape(wanted[1])}."


def check_model(encoder_mine: Callable[[int], nn.Module], decoder_mine: Callable[[int], nn.Module]) -> None:
    """Check the encoder and decoder classes ``encoder_mine(latent_dim)`` and ``decoder_mine(latent_dim)``.

    The encoder: three 3 x 3 convolutions with stride 2 and 8, 16 and 32 channels, each followed by a ReLU,
    batch norm between the second and the third, then a linear layer to 128 (ReLU) and one to d with no
    activation; (B, 1, 28, 28) -> (B, d). The decoder mirrors it back to (B, 1, 28, 28), batch norm on its
    16-channel map (and, if you like, on its 8-channel one) and a sigmoid at the end. The check runs both,
    compares every layer's output shape, the activations, the place of batch norm and the parameter count
    with the specification, and names the first difference. Batch norm may come before or after its ReLU,
    and a convolution right before batch norm may drop its bias (batch norm cancels it, section 2.7).
    """
    from .model import Decoder, Encoder, count_parameters

    forbidden = {"model.Encoder": Encoder.__init__, "model.Decoder": Decoder.__init__,
                 "model.Encoder.forward": Encoder.forward, "model.Decoder.forward": Decoder.forward}
    parts = {"encoder": (encoder_mine, Encoder, lambda: torch.zeros(2, 1, 28, 28)),
             "decoder": (decoder_mine, Decoder, lambda latent_dim=4: torch.zeros(2, latent_dim))}
    for part, (mine, reference, inputs) in parts.items():
        module = _calls_checked(forbidden, mine, 4)
        if not isinstance(module, nn.Module):
            raise NotYet(f"Your {part} class should build an nn.Module; calling it with 4 gave a "
                         f"{type(module).__name__}. Subclass nn.Module and call super().__init__() first.")
        module.eval()
        steps = _calls_checked(forbidden, _trace, module, inputs())
        expected = _trace(reference(4).eval(), inputs())
        norms = [i for i, (kind, _) in enumerate(expected) if kind == "batch norm"]
        layouts = _variants(expected, optional=norms[1:], movable=norms)
        hint = _first_difference(steps, layouts, part)
        if hint:
            raise NotYet(hint)
        wide = _calls_checked(forbidden, mine, 2).eval()
        wanted = (2,) if part == "encoder" else (1, 28, 28)
        try:
            out = _calls_checked(forbidden, _trace, wide, inputs(2) if part == "decoder" else inputs())[-1][1]
        except RuntimeError as error:
            raise NotYet(f"Built with latent_dim = 2, your {part} fails ({str(error).splitlines()[0][:80]}): use "
                         "the latent_dim it is given, not a fixed 4.") from None
        if out != wanted:
            raise NotYet(f"With latent_dim = 2 your {part} returns {_shape(out)}, not {_shape(wanted)}: use the "
                         "latent_dim it is given, not a fixed 4.")
        norm_layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if any(not m.affine for m in norm_layers):
            raise NotYet(f"Your {part}'s batch norm has no gamma and beta (affine=False); the assignment's batch "
                         "norm learns them (section 2.5 shows why).")
        allowed = _parameter_counts(reference(4), kept_norms=sum(kind == "batch norm" for kind, _ in steps))
        count = count_parameters(module)
        if count not in allowed:
            raise NotYet(f"Your {part} has {count:,} trainable parameters; with these layers the specification "
                         f"gives {max(allowed):,}. Does every convolution and linear layer have its weights and "
                         "bias, and nothing more?")
    _passed("your encoder and decoder follow the specification layer by layer: every output shape, activation "
            "and batch norm in place, and the parameter count.")


def _parameter_counts(reference: nn.Module, kept_norms: int) -> set[int]:
    """Return the parameter counts the specification allows with ``kept_norms`` of the reference's batch norms.

    The reference's later batch norms are the optional ones; the bias of any convolution right before one of its
    batch norms may be dropped (batch norm cancels it).
    """
    from .model import count_parameters

    norms = [m for m in reference.modules() if isinstance(m, nn.BatchNorm2d)]
    absent = sum(2 * m.num_features for m in norms[kept_norms:])
    sums = {0}
    for m in norms:
        sums |= {s + m.num_features for s in sums}  # a bias has one entry per channel, as batch norm has
    return {count_parameters(reference) - absent - dropped for dropped in sums}


#: The train-and-test check's loader: three batches, the last one short, so that weighting by size shows.
_EPOCH_BATCHES = (16, 16, 8)


def _epoch_loader() -> list[tuple[torch.Tensor, torch.Tensor]]:
    images = _images(sum(_EPOCH_BATCHES))
    labels = torch.arange(len(images)) % 10
    bounds = np.cumsum((0, *_EPOCH_BATCHES))
    return [(images[a:b], labels[a:b]) for a, b in itertools.pairwise(bounds)]


def _weights(*modules: nn.Module) -> torch.Tensor:
    """Every parameter and buffer (batch norm's running statistics too), flattened into one tensor."""
    return torch.cat([t.detach().double().flatten() for m in modules
                      for t in [*m.parameters(), *(b for b in m.buffers() if b.is_floating_point())]])


def _train_variant(kind: str) -> Callable[..., float]:
    """Return a train function with one mistake, ``kind``, to recognise an answer that makes it."""

    def train(encoder: nn.Module, decoder: nn.Module, device: torch.device, dataloader: Any, loss_fn: nn.Module,
              optimizer: torch.optim.Optimizer, noise_factor: float) -> float:
        encoder.train(kind != "eval mode")
        decoder.train(kind != "eval mode")
        total, count, losses = 0.0, 0, []
        for images, _ in dataloader:
            clean = images.to(device)
            noisy = add_noise(clean, noise_factor)
            denoised = decoder(encoder(clean if kind == "clean input" else noisy))
            loss = loss_fn(denoised, noisy if kind == "noisy target" else clean)
            if kind != "no zero_grad":
                optimizer.zero_grad()
            loss.backward()
            if kind != "no step":
                optimizer.step()
            losses.append(loss.item())
            total += loss.item() * len(clean)
            count += len(clean)
        if kind == "mean of batch means":
            return sum(losses) / len(losses)
        if kind == "last batch":
            return losses[-1]
        if kind == "sum":
            return total
        return total / count

    return train


def check_train_epoch(train_mine: Callable[..., float]) -> None:
    """Check ``train_mine(encoder, decoder, device, dataloader, loss_fn, optimizer, noise_factor)``: one epoch.

    For each batch: noise (``noise.add_noise``, torch's own random state), encode, decode, the loss against the
    clean images, zero_grad, backward, step; it returns the mean loss per image over the epoch. Compared with
    ``training.train_epoch`` on the course's model over three batches (the last one short), from the same random
    state: the same loss and the same weights afterwards.
    """
    with threads.fixed(1):  # the course's steps and the answer's, bit for bit under any load
        _check_train_epoch(train_mine)


def check_test_epoch(test_mine: Callable[..., float]) -> None:
    """Check ``test_mine(encoder, decoder, device, dataloader, loss_fn, noise_factor, noise_seed)``: the test pass.

    It scores the loader in evaluation mode without gradients, with noise from a generator seeded with
    ``noise_seed``, changes nothing, and returns the mean loss per image, each batch weighted by its size.
    """
    with threads.fixed(1):  # the course's steps and the answer's, bit for bit under any load
        _check_test_epoch(test_mine)


def _test_models() -> tuple[nn.Module, nn.Module]:
    """A tiny encoder and decoder for the test-function check, whose loss depends on the noise and on the mode.

    Batch norm with running statistics far from a batch's own tells evaluation mode from training mode (and
    training mode would update them); a 1 x 1 convolution and a sigmoid pass the noisy pixels on, so the loss
    depends on which noise was drawn.
    """
    encoder = nn.Sequential(nn.BatchNorm2d(1))
    decoder = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Sigmoid())
    with torch.no_grad():
        encoder[0].running_mean.fill_(0.3)
        encoder[0].running_var.fill_(0.5)
        decoder[0].weight.fill_(3.0)
        decoder[0].bias.fill_(-1.5)
    return encoder, decoder


def _check_train_epoch(train_mine: Callable[..., float]) -> None:
    from . import training
    from .model import Decoder, Encoder

    torch.manual_seed(CHECK_SEED)
    encoder, decoder = Encoder(4).train(), Decoder(4).train()
    loader, cpu, loss_fn = _epoch_loader(), torch.device("cpu"), nn.MSELoss()
    forbidden = {"training.train_epoch": training.train_epoch, "training.training_step": training.training_step,
                 "training.fit": training.fit}

    def run_train(train: Callable[..., Any], watch: bool = False) -> tuple[Any, torch.Tensor]:
        enc, dec = copy.deepcopy(encoder), copy.deepcopy(decoder)
        optimizer = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
        for p in [*enc.parameters(), *dec.parameters()]:
            p.grad = torch.full_like(p, 0.1)  # stale gradients: an epoch that never clears them adds them in
        torch.manual_seed(CHECK_SEED)
        args = (enc, dec, cpu, loader, loss_fn, optimizer, STEP_NOISE)
        returned = _calls_checked(forbidden, train, *args) if watch else train(*args)
        return returned, _weights(enc, dec)

    expected_loss, expected_weights = run_train(training.train_epoch)
    inputs = {f"batch {i + 1}": images for i, (images, _) in enumerate(loader)}
    kept = _kept(inputs)
    returned, weights = run_train(train_mine, watch=True)
    _unchanged(inputs, kept)
    if isinstance(returned, torch.Tensor) and returned.requires_grad:
        raise NotYet("Return the epoch's loss as a Python float: add up loss.item() values, not the loss tensors, "
                     "which keep every batch's graph alive.")
    answer = _number(returned, "the epoch's mean loss")
    right_loss = math.isclose(answer, expected_loss, rel_tol=1e-5)
    if not (right_loss and torch.allclose(weights, expected_weights, atol=1e-6)):
        hints = {
            "no zero_grad": "The old gradients are never cleared before a backward pass, so each step adds the "
                            "new gradients to the old ones.",
            "no step": "The weights never change: the optimizer takes no step.",
            "mean of batch means": "You average the batches' losses as if every batch were as large; the last one is "
                                   "short. Weight each batch's loss by its number of images.",
            "last batch": "You return the last batch's loss; return the mean over the whole epoch.",
            "sum": "You return the sum of the batches' losses weighted by their sizes; divide by the number of "
                   "images.",
            "noisy target": "The loss compares the output with the noisy input. Compare it with the clean images.",
            "clean input": "The model was given the clean images. A denoising autoencoder gets the noisy ones as "
                           "input and is scored against the clean ones.",
            "eval mode": "The models ran in evaluation mode, so batch norm used its running statistics. Training "
                         "runs them in training mode (encoder.train(), decoder.train()).",
        }
        for kind, hint in hints.items():
            loss, variant_weights = run_train(_train_variant(kind))
            if math.isclose(answer, loss, rel_tol=1e-5) and torch.allclose(weights, variant_weights, atol=1e-6):
                raise NotYet(hint)
        if right_loss:
            raise NotYet("The loss is right but the weights are not. Is each batch's step zero_grad, backward, "
                         "then step, with one optimizer over both models?")
        raise NotYet("The epoch's loss differs. For each batch: add noise with noise.add_noise (torch's own random "
                     "state), encode, decode, the loss against the clean images; return the mean per image.")
    _passed("one epoch gives the course's loss and the same weights afterwards, over three batches, the last one "
            "short.")


def _check_test_epoch(test_mine: Callable[..., float]) -> None:
    from . import training

    loader, cpu, loss_fn = _epoch_loader(), torch.device("cpu"), nn.MSELoss()
    forbidden = {"training.test_epoch": training.test_epoch}

    def run_test(test: Callable[..., Any], watch: bool = False) -> tuple[Any, torch.Tensor, list[bool]]:
        enc, dec = (model.train() for model in _test_models())
        grad_enabled: list[bool] = []
        dec.register_forward_hook(lambda *_: grad_enabled.append(torch.is_grad_enabled()))
        args = (enc, dec, cpu, loader, loss_fn, STEP_NOISE, training.TEST_NOISE_SEED)
        returned = _calls_checked(forbidden, test, *args) if watch else test(*args)
        return returned, _weights(enc, dec), grad_enabled

    expected_test, untouched, _ = run_test(lambda *args: training.test_epoch(*args[:-1]))
    returned, after, grad_enabled = run_test(test_mine, watch=True)
    answer = _number(returned, "the test loss")
    if not torch.equal(after, untouched):
        raise NotYet("Testing changed the model: batch norm updated its running statistics because the models "
                     "ran in training mode. Call encoder.eval() and decoder.eval() first.")
    if any(grad_enabled):
        raise NotYet("The test pass records a graph for gradients it never uses: nothing in testing needs them.")
    if not math.isclose(answer, expected_test, rel_tol=1e-6):
        again, _, _ = run_test(test_mine)
        if not math.isclose(_number(again, "the test loss"), answer, rel_tol=1e-9):
            raise NotYet("Two calls give two different test losses: the noise is drawn afresh each time. The test "
                         "noise must repeat: draw it from a generator seeded with noise_seed at every call.")
        raise NotYet("The test loss differs. Score every batch of the loader (the noisy images in, the clean ones "
                     "as the target) and return the mean per image, each batch weighted by its size.")
    _passed("the test pass gives the course's loss, in evaluation mode, without gradients, the same noise at "
            "every call, changing nothing.")


#: Calls of the grid function over which the grid check measures the codes' distribution (9 codes each).
GRID_CALLS = 300


def check_random_grid(grid_mine: Callable[..., Any], decoder: nn.Module, device: torch.device) -> None:
    """Check ``grid_mine(decoder, latent_dim, device, generator)``, which returns (codes, images): part (e).

    It draws 9 codes from N(0, I) with ``generator`` and decodes them with the decoder in evaluation mode, without
    gradients, into (9, 1, 28, 28) images for a 3 x 3 grid. The check works on a copy of ``decoder``, so your model
    comes out unchanged; it asks for the same codes from the same seed, and measures the codes' mean and
    covariance over 300 calls.
    """
    from . import generation

    decoder = copy.deepcopy(decoder).train()  # a fair start: a right answer switches to eval mode itself
    reference = copy.deepcopy(decoder)
    latent_dim = decoder.latent_dim
    forbidden = {"generation.random_grid": generation.random_grid, "generation.decode": generation.decode,
                 "generation.apply_in_batches": generation.apply_in_batches}

    def run(seed: int, watch: bool = True) -> tuple[torch.Tensor, Any]:
        args = (decoder, latent_dim, device, torch.Generator().manual_seed(seed))
        returned = _calls_checked(forbidden, grid_mine, *args) if watch else grid_mine(*args)
        return _codes_and_images(returned, 9, latent_dim)

    _check_grid(run, reference, device)
    many = torch.cat([run(CHECK_SEED + 1 + call, watch=False)[0] for call in range(GRID_CALLS)])  # watched above
    count = len(many)
    mean, cov = many.mean(dim=0), torch.cov(many.T)
    identity = torch.eye(latent_dim, dtype=torch.float64)
    if (mean - 0.5).abs().max() < 0.05 and (torch.diagonal(cov) - 1 / 12).abs().max() < 0.02:
        raise NotYet("These codes are uniform on [0, 1), not standard normal: N(0, I) has mean 0 and variance 1 "
                     "in every dimension.")
    if (mean.abs() <= 5 / math.sqrt(count)).all() and torch.linalg.norm(cov - identity) <= 0.12 * math.sqrt(
            latent_dim):
        _passed(f"9 codes from N(0, I) (mean and spread measured over {GRID_CALLS} grids), repeated by the "
                "generator, decoded in evaluation mode without gradients: the assignment's 3 x 3 grid.")
        return
    raise NotYet(f"Over {count:,} codes yours have mean {mean.numpy().round(2).tolist()} and variances "
                 f"{torch.diagonal(cov).numpy().round(2).tolist()}; codes from N(0, I) have mean 0 and variance 1 "
                 "in every dimension, independent of each other.")


def check_add_noise(add_noise_mine: Callable[..., torch.Tensor]) -> None:
    """Check ``add_noise_mine(images, noise_factor, generator)``: the assignment's noise, part (a).

    The result is images + noise_factor x N(0, 1), one draw per pixel from ``generator``, clamped to [0, 1],
    as ``noise.add_noise`` computes it; checked at noise factors 0.3, 0.8 and 0.
    """
    from . import noise

    images = _images()
    for factor in (0.3, 0.8, 0.0):
        draws = torch.randn(images.shape, generator=torch.Generator().manual_seed(CHECK_SEED))
        expected = noise.add_noise(images, factor, generator=torch.Generator().manual_seed(CHECK_SEED))
        inputs = {"images": images}
        kept = _kept(inputs)
        returned = _calls_checked({"noise.add_noise": noise.add_noise}, add_noise_mine, images, factor,
                                  torch.Generator().manual_seed(CHECK_SEED))
        _unchanged(inputs, kept)
        answer = _tensor(returned, tuple(images.shape), "the noisy images")
        if _close(answer, returned.dtype, expected, 1e-6):
            continue
        if answer.min() < 0 or answer.max() > 1:
            raise NotYet("Some pixels lie outside [0, 1]: the noisy image must be clamped back into the pixel "
                         "range, at both ends.")
        uniform = torch.rand(images.shape, generator=torch.Generator().manual_seed(CHECK_SEED))
        wrong = {
            "The noise is not scaled by noise_factor: its standard deviation must be noise_factor.":
                images + draws,
            "The noise is scaled by noise_factor squared; noise_factor is the standard deviation, not the variance.":
                images + factor**2 * draws,
            "The noise is uniform (torch.rand); the assignment's noise is Gaussian, N(0, 1) times noise_factor.":
                images + factor * uniform,
            "The noise is drawn once and added to every image alike; draw one value per pixel of every image.":
                images + factor * draws[:1],
        }
        for hint, candidate in wrong.items():
            if factor > 0 and _close(answer, returned.dtype, candidate.clamp(0, 1), 1e-6):
                raise NotYet(hint)
        if factor == 0:
            raise NotYet("With noise_factor = 0 the images must come back unchanged.")
        again = add_noise_mine(images, factor, torch.Generator().manual_seed(CHECK_SEED))
        if not torch.equal(again, returned):
            raise NotYet("The same generator gave different noise: draw the noise from the generator you were "
                         "given, so that a seed repeats the noisy images.")
        raise NotYet(f"At noise_factor = {factor} the values differ from images + noise_factor * N(0, 1), clamped "
                     "to [0, 1]. Is the noise drawn from the generator you were given, with the images' shape?")
    _passed("your noise matches noise.add_noise at noise factors 0.3, 0.8 and 0, drawn from the generator you "
            "were given and clamped to [0, 1].")
