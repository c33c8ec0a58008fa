"""Notebook 3's checks: the assignment's train and test functions, one training step on the L1 loss."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from .. import threads
from ..noise import add_noise
from .common import CHECK_SEED, NotYet, _calls_checked, _images, _kept, _number, _passed, _unchanged

#: The noise factor of the training-step check: strong, so that a step fed the clean images stands out.
STEP_NOISE = 0.8


def check_train_step_l1(train_step_mine: Callable[..., float]) -> None:
    """Check ``train_step_mine(encoder, decoder, optimizer, clean, noise_factor)``: one step on the L1 loss.

    Your step must add noise with ``noise.add_noise`` (torch's global generator),
    encode, decode, take the mean absolute error against the *clean* images, clear
    old gradients, backpropagate and step the optimizer, and return the loss as a float.
    """
    with threads.fixed(1):  # the course's steps and the answer's, bit for bit under any load
        _check_train_step_l1(train_step_mine)


def _check_train_step_l1(train_step_mine: Callable[..., float]) -> None:
    from .. import training
    from ..model import Decoder, Encoder

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
    from .. import training
    from ..model import Decoder, Encoder

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
    from .. import training

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
