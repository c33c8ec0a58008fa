"""Notebook 2's checks: the assignment's encoder and decoder, batch norm in evaluation mode."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .common import CHECK_SEED, NotYet, _calls_checked, _close, _kept, _passed, _tensor, _unchanged


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
    from ..model import Decoder, Encoder, count_parameters

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
    from ..model import count_parameters

    norms = [m for m in reference.modules() if isinstance(m, nn.BatchNorm2d)]
    absent = sum(2 * m.num_features for m in norms[kept_norms:])
    sums = {0}
    for m in norms:
        sums |= {s + m.num_features for s in sums}  # a bias has one entry per channel, as batch norm has
    return {count_parameters(reference) - absent - dropped for dropped in sums}
