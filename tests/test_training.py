import errno
import os
import subprocess
import time
from dataclasses import replace

import pytest
import torch

from dae_utils import checkpoint as ckpt
from dae_utils.model import Decoder, Encoder
from dae_utils.runtime import get_device, seed_everything
from dae_utils.training import TrainConfig, build_models, checkpoint_path, fit, train_or_load

CPU = torch.device("cpu")


CONFIG = TrainConfig(num_epochs=3, batch_size=64, seed=0)


def test_short_training_lowers_the_loss(small):
    config = replace(CONFIG, num_epochs=4, batch_size=32)
    result = train_or_load(config, small, CPU, checkpoint_dir=None, progress=False)
    train, test = result.history["train_loss"], result.history["test_loss"]
    assert len(train) == len(test) == 4
    assert train[-1] < 0.8 * train[0]
    assert test[-1] < 0.8 * test[0]
    assert not result.encoder.training and not result.decoder.training


def test_same_seed_gives_identical_history(small):
    first = train_or_load(CONFIG, small, CPU, progress=False).history
    second = train_or_load(CONFIG, small, CPU, progress=False).history
    other = train_or_load(replace(CONFIG, seed=1), small, CPU, progress=False).history
    assert first == second
    assert first != other


def test_losses_are_exact_means_over_the_data_set(small):
    """A test loss over batches of 100 (last one short) equals the loss over one batch of all."""
    from dae_utils.training import test_epoch

    encoder, decoder, _ = build_models(CONFIG, CPU)
    loss_fn = torch.nn.MSELoss()
    uneven = test_epoch(encoder, decoder, CPU, small.test_loader(100), loss_fn)
    whole = test_epoch(encoder, decoder, CPU, small.test_loader(256), loss_fn)
    assert uneven == pytest.approx(whole, rel=1e-5)


def test_checkpoint_round_trip_gives_identical_outputs(small, tmp_path):
    result = train_or_load(replace(CONFIG, num_epochs=1), small, CPU, checkpoint_dir=tmp_path, progress=False)
    path = result.checkpoint
    assert path.exists() and not list(tmp_path.glob("*.tmp"))
    encoder, decoder = Encoder(4), Decoder(4)
    state = ckpt.load_checkpoint(path, encoder, decoder)
    encoder.eval()
    decoder.eval()
    x = small.test_images[:16]
    with torch.no_grad():
        assert torch.equal(decoder(encoder(x)), result.decoder(result.encoder(x)))
    assert state["epoch"] == 1 and state["data_key"] == small.key
    assert state["config"]["latent_dim"] == 4 and state["config"]["noise_factor"] == 0.3
    assert state["history"] == result.history


def test_second_call_loads_instead_of_training(small, tmp_path, capsys):
    train_or_load(CONFIG, small, CPU, checkpoint_dir=tmp_path, progress=False)
    again = train_or_load(CONFIG, small, CPU, checkpoint_dir=tmp_path, progress=False)
    assert again.epochs_trained_now == 0
    assert "3 of 3 epochs done" in capsys.readouterr().out


def test_interrupted_run_resumes_and_matches_an_uninterrupted_one(small, tmp_path, interrupt_in_epoch):
    uninterrupted = train_or_load(CONFIG, small, CPU, checkpoint_dir=None, progress=False).history
    interrupt_in_epoch(CONFIG, small, tmp_path, epoch=3)
    assert ckpt.read_checkpoint(checkpoint_path(tmp_path, CONFIG, small.key))["epoch"] == 2

    resumed = train_or_load(CONFIG, small, CPU, checkpoint_dir=tmp_path, progress=False)
    assert resumed.epochs_trained_now == 1
    assert resumed.history == uninterrupted  # exactly, on the CPU


def test_corrupt_checkpoint_raises_a_clear_error(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match=r"corrupt.*Delete it"):
        ckpt.load_checkpoint(path, Encoder(4), Decoder(4))


def test_truncated_checkpoint_raises_a_clear_error(small, tmp_path):
    result = train_or_load(replace(CONFIG, num_epochs=1), small, CPU, checkpoint_dir=tmp_path, progress=False)
    data = result.checkpoint.read_bytes()
    result.checkpoint.write_bytes(data[: len(data) // 2])
    with pytest.raises(ckpt.CheckpointError, match="corrupt"):
        ckpt.load_checkpoint(result.checkpoint, Encoder(4), Decoder(4))


def test_checkpoint_with_another_latent_dim_is_refused(tmp_path):
    path = ckpt.save_checkpoint(
        tmp_path / "d8.pt", Encoder(8), Decoder(8), config={"latent_dim": 8, "noise_factor": 0.3},
        epoch=1, history={"train_loss": [0.1], "test_loss": [0.1]}, data_key="x",
    )
    with pytest.raises(ckpt.CheckpointError, match=r"d=8.*d=4"):
        ckpt.load_checkpoint(path, Encoder(4), Decoder(4))


def test_checkpoint_without_the_course_keys_is_refused(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(Encoder(4).state_dict(), path)
    with pytest.raises(ckpt.CheckpointError, match="not a checkpoint of this course"):
        ckpt.read_checkpoint(path)


def test_failed_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    history = {"train_loss": [0.1], "test_loss": [0.1]}
    path = ckpt.save_checkpoint(tmp_path / "c.pt", Encoder(4), Decoder(4), config={"latent_dim": 4},
                                epoch=1, history=history, data_key="x")
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space"):
        ckpt.save_checkpoint(path, Encoder(4), Decoder(4), config={"latent_dim": 4},
                             epoch=2, history=history, data_key="x")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


@pytest.mark.parametrize("failure", [
    OSError(errno.ENOSPC, "No space left on device"),
    RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1088 vs 982"),  # torch's zip writer
])
def test_a_full_disk_says_so_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, failure):
    history = {"train_loss": [0.1], "test_loss": [0.1]}
    path = ckpt.save_checkpoint(tmp_path / "c.pt", Encoder(4), Decoder(4), config={"latent_dim": 4},
                                epoch=1, history=history, data_key="x")
    before = path.read_bytes()

    def disk_full(state, file):
        file.write(b"half a checkpoint")
        raise failure

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(ckpt.CheckpointSaveError, match=r"the disk holding .* is full .* MiB free\). The last "
                                                       r"complete checkpoint, c\.pt, is kept\. .*checkpoint_dir"):
        ckpt.save_checkpoint(path, Encoder(4), Decoder(4), config={"latent_dim": 4},
                             epoch=2, history=history, data_key="x")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_a_full_disk_is_reported_on_a_real_tiny_filesystem(tmp_path):
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root); the simulated full disk above still runs")
    try:
        history = {"train_loss": [0.1], "test_loss": [0.1]}
        with pytest.raises(ckpt.CheckpointSaveError, match="is full"):
            ckpt.save_checkpoint(folder / "c.pt", Encoder(4), Decoder(4), config={"latent_dim": 4}, epoch=1,
                                 history=history, data_key="x", snapshots=torch.zeros(30, 8, 1, 28, 28))
        assert list(folder.iterdir()) == []
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_stale_temporary_files_of_killed_saves_are_cleaned(tmp_path):
    history = {"train_loss": [0.1], "test_loss": [0.1]}
    stale, fresh = tmp_path / ".c.pt.0123.tmp", tmp_path / ".c.pt.4567.tmp"
    stale.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y")
    old = time.time() - ckpt.STALE_SECONDS - 5
    os.utime(stale, (old, old))
    ckpt.save_checkpoint(tmp_path / "c.pt", Encoder(4), Decoder(4), config={"latent_dim": 4},
                         epoch=1, history=history, data_key="x")
    assert not stale.exists()  # left by a save killed long ago
    assert fresh.exists()  # may belong to a save in progress elsewhere


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(config=[4, 0.3]), "its config is a list, not a dict"),
    (lambda s: s.update(encoder=torch.zeros(3)), "its encoder is a Tensor, not a dict"),
    (lambda s: s.update(history=None), "its history is a NoneType, not a dict"),
    (lambda s: s.update(optimizer={"lr": 0.001}), "lacks the state and param_groups"),
    (lambda s: s.update(epoch="2"), "its epoch is '2', not a whole number"),
    (lambda s: s["history"].update(train_loss=[0.1] * 34, test_loss=[0.1] * 34) or s.update(epoch=34),
     "its history holds 34 epochs, more than the 30 its settings plan"),
    (lambda s: s.update(format_version="2"), r"has checkpoint format '2' \(a str, not a whole number\)"),
])
def test_hand_made_checkpoints_with_wrong_contents_are_refused_by_name(tmp_path, change, message):
    history = {"train_loss": [0.1, 0.1], "test_loss": [0.1, 0.1]}
    path = ckpt.save_checkpoint(tmp_path / "c.pt", Encoder(4), Decoder(4), config={"latent_dim": 4, "num_epochs": 30},
                                epoch=2, history=history, data_key="x", optimizer=build_models(CONFIG, CPU)[2])
    state = torch.load(path, weights_only=True)
    change(state)
    torch.save(state, path)
    with pytest.raises(ckpt.CheckpointError, match=message):
        ckpt.load_checkpoint(path, Encoder(4), Decoder(4))


def test_fit_reports_progress_with_tqdm(small, capsys):
    encoder, decoder, optimizer = build_models(CONFIG, CPU)
    fit(encoder, decoder, CPU, small.train_loader(128), small.test_loader(128), optimizer, 1, progress=True)
    assert "epoch 1/1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "field, value", [("num_epochs", 0), ("latent_dim", -2), ("batch_size", 1.5), ("lr", 0), ("noise_factor", -1),
                     ("seed", -3)]
)
def test_bad_config_is_refused(field, value):
    with pytest.raises(ValueError, match=field):
        replace(CONFIG, **{field: value})


def test_seed_everything_repeats_random_draws():
    seed_everything(3)
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_get_device_falls_back_to_cpu(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == CPU
    assert "cpu" in capsys.readouterr().out


def test_get_device_prefers_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    assert get_device(verbose=False).type == "cuda"


@pytest.mark.parametrize("field, value", [("noise_factor", "0.3"), ("lr", "0.001"), ("lr", True),
                                          ("noise_factor", None), ("batchnorm", "yes"), ("batchnorm_affine", 1)])
def test_config_of_the_wrong_type_is_refused_at_once(field, value):
    """TrainConfig(noise_factor='0.3') used to pass and fail later inside checkpoint_path."""
    with pytest.raises(ValueError, match=f"{field} must be"):
        replace(CONFIG, **{field: value})


def test_checkpoint_error_never_suggests_weights_only_false(tmp_path):
    """A pickle that needs more than weights_only=True is refused without PyTorch's 'will likely succeed' hint."""
    import fractions

    path = tmp_path / "foreign.pt"
    torch.save({"format_version": 2, "payload": fractions.Fraction(1, 3)}, path)  # not an allowed global
    with pytest.raises(ckpt.CheckpointError) as caught:
        ckpt.read_checkpoint(path)
    message = str(caught.value)
    assert "not a checkpoint of this course" in message and "trust" in message
    for hint in ("weights_only=False", "likely succeed", "can still be loaded"):
        assert hint not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_checkpoints_follow_the_umask(tmp_path):
    """mkstemp made checkpoints 0600, unreadable to the other users of a shared course folder."""
    import os

    old = os.umask(0o022)
    try:
        path = ckpt.save_checkpoint(tmp_path / "c.pt", Encoder(4), Decoder(4), config={"latent_dim": 4},
                                    epoch=1, history={"train_loss": [0.1], "test_loss": [0.1]}, data_key="x")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_checkpoint_of_an_older_format_says_how_to_retrain(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "c.pt", Encoder(4), Decoder(4), config={"latent_dim": 4},
                                epoch=1, history={"train_loss": [0.1], "test_loss": [0.1]}, data_key="x")
    state = torch.load(path, weights_only=True)
    torch.save({**state, "format_version": 1}, path)
    with pytest.raises(ckpt.CheckpointError, match=r"format 1.*retrain=True"):
        ckpt.read_checkpoint(path)


def test_train_or_load_keeps_snapshots_and_eval_mode_training_loss(small, tmp_path):
    from dae_utils.training import SNAPSHOT_IMAGES, denoise, snapshot_inputs

    config = replace(CONFIG, num_epochs=2)
    result = train_or_load(config, small, CPU, checkpoint_dir=tmp_path, progress=False)
    assert result.snapshots.shape == (2, SNAPSHOT_IMAGES, 1, 28, 28)
    # The last snapshot is what the final model makes of the same noisy images.
    final = denoise(result.encoder, result.decoder, snapshot_inputs(small, config), CPU)
    assert torch.allclose(result.snapshots[-1], final, atol=1e-6)
    assert not torch.equal(result.snapshots[0], result.snapshots[1])
    assert len(result.history["train_eval_loss"]) == 2 and all(v > 0 for v in result.history["train_eval_loss"])
    loaded = train_or_load(config, small, CPU, checkpoint_dir=tmp_path, progress=False)
    assert loaded.epochs_trained_now == 0 and torch.equal(loaded.snapshots, result.snapshots)
    assert loaded.history == result.history


def test_train_steps_records_losses_and_batchnorm_statistics(small):
    from dae_utils.batchnorm import train_steps

    config = replace(CONFIG, batch_size=64)
    encoder, _, log = train_steps(config, small, CPU, num_steps=12, progress=False)
    assert len(log.loss) == 12 and log.batch_mean.shape == log.running_mean.shape == (12, 16)
    # The running estimates follow the update rule with momentum 0.1, from mean 0 and variance 1.
    momentum, expected = 0.1, torch.zeros(16)
    for step in range(12):
        expected = (1 - momentum) * expected + momentum * log.batch_mean[step]
    assert torch.allclose(log.running_mean[-1], expected, atol=1e-5)
    assert torch.allclose(encoder.conv[3].running_mean, log.running_mean[-1])
    assert 0 < log.test_loss < 0.3
    # Without batch norm the same input statistics are recorded, and there are no running ones.
    _, _, plain = train_steps(replace(config, batchnorm=False), small, CPU, num_steps=3, progress=False)
    assert plain.running_mean is None and plain.batch_mean.shape == (3, 16)


def test_check_parameters_gives_the_clear_error_early():
    from dae_utils.runtime import check_parameters

    check_parameters(noise_factor=0.3, seed=0, data_source="auto", data_dir=None, retrain=False, lr=1e-3)
    for name, bad, words in [("noise_factor", "0,5", "finite number"), ("noise_factor", -1.0, ">= 0"),
                             ("seed", 1.5, "integer"), ("data_source", "kaggle", "one of"),
                             ("retrain", "false", "True or False"), ("lr", 0, "greater than 0"),
                             ("num_epochs", 0, "positive integer"), ("data_dir", 3, "folder")]:
        with pytest.raises(ValueError, match=words):
            check_parameters(**{name: bad})
    with pytest.raises(ValueError, match="not a parameter"):
        check_parameters(nosie_factor=0.3)


def test_a_shared_checkpoint_folder_is_read_and_never_written(small, tmp_path, monkeypatch, capsys):
    """An instructor trains once into a read-only folder; every student's (or submission's) run loads from it."""
    config = replace(CONFIG, num_epochs=1)
    shared, own = tmp_path / "shared", tmp_path / "own"
    trained = train_or_load(config, small, CPU, checkpoint_dir=shared, progress=False)
    shared.chmod(0o555)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in shared.iterdir())
    monkeypatch.setenv("DAE_SHARED_CHECKPOINTS", str(shared))
    capsys.readouterr()
    loaded = train_or_load(config, small, CPU, checkpoint_dir=own, progress=False)
    assert f"from the shared checkpoints in {shared}" in capsys.readouterr().out
    assert loaded.epochs_trained_now == 0 and loaded.history == trained.history
    assert not own.exists() and sorted((p.name, p.stat().st_mtime_ns) for p in shared.iterdir()) == before
    # Another setting is not in the shared folder: it trains here, into the student's own folder.
    other = train_or_load(replace(config, seed=1), small, CPU, checkpoint_dir=own, progress=False)
    assert other.epochs_trained_now == 1 and len(list(own.glob("*.pt"))) == 1
    # retrain=True trains, whatever the shared folder holds.
    assert train_or_load(config, small, CPU, checkpoint_dir=None, retrain=True, progress=False).epochs_trained_now == 1
    shared.chmod(0o755)


def test_a_shared_checkpoint_setting_that_is_not_a_folder_is_named(small, tmp_path, monkeypatch):
    monkeypatch.setenv("DAE_SHARED_CHECKPOINTS", str(tmp_path / "nowhere"))
    with pytest.raises(ckpt.CheckpointError, match=r"DAE_SHARED_CHECKPOINTS is .*nowhere.*not a folder"):
        train_or_load(replace(CONFIG, num_epochs=1), small, CPU, progress=False)
