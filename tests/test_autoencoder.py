"""The autoencoder: shapes, refused sizes, checkpoints, a training step, exact resume, Ctrl-C, the CLI."""

from __future__ import annotations

import json
import os
import shlex
import signal

import numpy as np
import pytest
import torch

from latentatlas.cli import run
from latentatlas.errors import LatentAtlasError
from latentatlas.images import training
from latentatlas.images.network import (ConvAutoencoderNet, images_to_tensor, load_checkpoint, save_checkpoint,
                                         tensor_to_images)
from latentatlas.images.io import ImageSet
from latentatlas.images.training import TrainConfig, train_autoencoder


def blobs(n: int, side: int = 16, seed: int = 0) -> ImageSet:
    """Bright rectangles on a dark background: structure an autoencoder can learn in a few steps."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, side, side), np.uint8)
    for img in images:
        r, c = rng.integers(0, side - 4, size=2)
        h, w = rng.integers(3, side // 2, size=2)
        img[r:r + h, c:c + w] = rng.integers(120, 256)
    return ImageSet(images=images, labels=np.arange(n) % 3, source="blobs")


def tiny_config(**kw) -> TrainConfig:
    base = dict(epochs=2, batch_size=16, channels=(2, 4, 8), latent_channels=4, num_threads=1, log_every=1000)
    return TrainConfig.from_preset("fast", **{**base, **kw})


def test_default_architecture_shapes():
    model = ConvAutoencoderNet()
    x = torch.rand(3, 1, 28, 28)
    z = model.encode(x)
    assert z.shape == (3, 32, 3, 3) and model.code_shape == (32, 3, 3) and model.code_size == 288
    with torch.no_grad():
        y = model.decode(z)
    assert y.shape == (3, 1, 28, 28) and float(y.min()) > 0 and float(y.max()) < 1  # sigmoid output
    flat = z.detach().reshape(3, -1).clone()
    before = flat.clone()
    assert torch.equal(model.decode(flat), model.decode(z.detach()))  # flattened codes decode the same
    assert torch.equal(flat, before)  # decode leaves the caller's codes alone
    assert model(x).shape == x.shape
    widths = [m.out_channels for m in model.encoder if isinstance(m, torch.nn.Conv2d)]
    assert widths == [4, 16, 32, 32]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 1


def test_configured_variant_and_other_sizes():
    model = ConvAutoencoderNet(image_shape=(32, 20), channels=(2, 4, 8), latent_channels=6)
    x = torch.rand(2, 1, 32, 20)
    # 32 → pool 16 → pool 8 → (8-3)//2+1 = 3;  20 → 10 → 5 → 2
    assert model.encode(x).shape == (2, 6, 3, 2) and model.code_size == 36
    assert model(x).shape == (2, 1, 32, 20)


@pytest.mark.parametrize("shape", [(8, 8), (11, 28), (28, 3)])
def test_too_small_sizes_are_refused(shape):
    with pytest.raises(LatentAtlasError, match="at least 12×12 pixels"):
        ConvAutoencoderNet(image_shape=shape)


@pytest.mark.parametrize("shape, code", [((28, 30), (3, 3)), ((27, 36), (3, 4)), ((13, 17), (1, 2))])
def test_sides_that_are_not_multiples_of_4_are_padded_and_cropped(shape, code):
    torch.manual_seed(0)
    model = ConvAutoencoderNet(image_shape=shape, channels=(2, 4, 8), latent_channels=3, in_channels=3).eval()
    x = torch.rand(2, 3, *shape)
    assert model.encode(x).shape == (2, 3, *code) and model(x).shape == (2, 3, *shape)
    # padding repeats the edge: a picture and the same picture with its padded border filled in encode alike
    h, w = -(-shape[0] // 4) * 4, -(-shape[1] // 4) * 4
    padded = torch.nn.functional.pad(x, (0, w - shape[1], 0, h - shape[0]), mode="replicate")
    torch.testing.assert_close(model.encode(x), model.encoder(padded))


def test_wrong_input_shapes_are_refused():
    model = ConvAutoencoderNet()
    with pytest.raises(LatentAtlasError, match="N×1×28×28"):
        model.encode(torch.rand(2, 1, 32, 32))
    with pytest.raises(LatentAtlasError, match="N×32×3×3"):
        model.decode(torch.rand(2, 10))
    with pytest.raises(LatentAtlasError, match="channels"):
        ConvAutoencoderNet(channels=(4, 16))


def test_tensor_conversions_round_trip():
    images = np.array([[[0, 128], [255, 7]]], np.uint8)
    t = images_to_tensor(np.pad(images, ((0, 0), (0, 0), (0, 0))))
    assert t.shape == (1, 1, 2, 2) and t.dtype == torch.float32 and float(t.max()) == 1.0
    assert np.array_equal(tensor_to_images(t), images)


def test_one_training_step_lowers_the_loss():
    torch.manual_seed(0)
    model = ConvAutoencoderNet(image_shape=(16, 16))
    x = images_to_tensor(blobs(32).images)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss0 = torch.nn.functional.mse_loss(model(x), x)
    opt.zero_grad()
    loss0.backward()
    opt.step()
    with torch.no_grad():
        loss1 = torch.nn.functional.mse_loss(model(x), x)
    assert loss1.item() < loss0.item()


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    model = ConvAutoencoderNet(image_shape=(16, 12), channels=(2, 4, 8), latent_channels=3).eval()
    path = save_checkpoint(tmp_path / "m.pt", model, epoch=4, history={"test_loss": [0.5]}, config={"seed": 1})
    loaded, ckpt = load_checkpoint(path)
    x = torch.rand(2, 1, 16, 12)
    assert torch.equal(loaded(x), model(x)) and not loaded.training
    assert ckpt["epoch"] == 4 and ckpt["history"]["test_loss"] == [0.5] and loaded.code_shape == (3, 1, 1)  # 16 → 4 → 1, 12 → 3 → 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left behind
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(LatentAtlasError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(LatentAtlasError, match="not a latentatlas autoencoder checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(LatentAtlasError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


def test_training_lowers_test_loss_and_is_seeded(tmp_path):
    train, test = blobs(64), blobs(16, seed=1)
    cfg = tiny_config(epochs=4, schedule="constant", lr=1e-2, seed=2)  # (seed 0 starts slowly on this network)
    h = train_autoencoder(train, test, cfg, quiet=True)
    init = training.evaluate_mse(training.build_model(cfg, (16, 16)), test.images)
    assert len(h.test_loss) == 4 and len(h.batch_loss) == 4 * 4 and h.batches_per_epoch == 4
    assert all(b < a for a, b in zip([init, *h.test_loss], h.test_loss))
    assert h.test_loss[-1] < 0.7 * init
    again = train_autoencoder(train, test, cfg, quiet=True)
    assert again.batch_loss == h.batch_loss and again.test_loss == h.test_loss
    other = train_autoencoder(train, test, tiny_config(epochs=4, schedule="constant", lr=1e-2, seed=1), quiet=True)
    assert other.batch_loss != h.batch_loss


def _weights(path):
    return load_checkpoint(path)[1]["model_state"]


@pytest.mark.parametrize("schedule", ["onecycle", "exponential"])
def test_interrupt_then_resume_matches_uninterrupted_run(tmp_path, schedule):
    train, test = blobs(48), blobs(16, seed=1)
    cfg = tiny_config(epochs=3, schedule=schedule)
    full = train_autoencoder(train, test, cfg, out_dir=tmp_path / "full", quiet=True)

    def ctrl_c_in_second_epoch(epoch, batch, loss):
        if epoch == 1 and batch == 1:
            raise KeyboardInterrupt

    part = train_autoencoder(train, test, cfg, out_dir=tmp_path / "part", quiet=True, on_batch=ctrl_c_in_second_epoch)
    assert part.interrupted and part.epochs_completed == 1
    assert load_checkpoint(tmp_path / "part" / "last.pt")[1]["epoch"] == 1
    assert (tmp_path / "part" / "best.pt").is_file()
    resumed = train_autoencoder(train, test, cfg, out_dir=tmp_path / "part", resume=True, quiet=True)
    assert not resumed.interrupted
    assert resumed.batch_loss == full.batch_loss and resumed.test_loss == full.test_loss
    assert resumed.train_loss == full.train_loss and resumed.best_epoch == full.best_epoch
    a, b = _weights(tmp_path / "full" / "last.pt"), _weights(tmp_path / "part" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_exponential_schedule_can_be_extended_on_resume(tmp_path):
    train, test = blobs(32), blobs(16, seed=1)
    full = train_autoencoder(train, test, tiny_config(epochs=2, schedule="exponential"), out_dir=tmp_path / "a", quiet=True)
    train_autoencoder(train, test, tiny_config(epochs=1, schedule="exponential"), out_dir=tmp_path / "b", quiet=True)
    more = train_autoencoder(train, test, tiny_config(epochs=2, schedule="exponential"), out_dir=tmp_path / "b",
                             resume=True, quiet=True)
    assert more.test_loss == full.test_loss


def test_real_sigint_stops_after_the_batch_and_keeps_best(tmp_path):
    train, test = blobs(48), blobs(16, seed=1)

    def press_ctrl_c(epoch, batch, loss):
        if epoch == 1 and batch == 0:
            os.kill(os.getpid(), signal.SIGINT)

    h = train_autoencoder(train, test, tiny_config(epochs=3), out_dir=tmp_path, quiet=True, on_batch=press_ctrl_c)
    assert h.interrupted and h.epochs_completed == 1 and len(h.batch_loss) == 3
    model, ckpt = load_checkpoint(tmp_path / "best.pt")
    assert ckpt["epoch"] == 1 and model.code_shape == (4, 1, 1)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_interrupt_in_first_epoch_keeps_nothing_and_resume_refuses(tmp_path):
    def stop(epoch, batch, loss):
        raise KeyboardInterrupt

    h = train_autoencoder(blobs(32), blobs(8), tiny_config(), out_dir=tmp_path, quiet=True, on_batch=stop)
    assert h.interrupted and h.epochs_completed == 0 and not (tmp_path / "last.pt").exists()
    with pytest.raises(LatentAtlasError, match="no checkpoint .*last.pt"):
        train_autoencoder(blobs(32), blobs(8), tiny_config(), out_dir=tmp_path, resume=True, quiet=True)


def test_resume_refuses_changed_settings_or_data(tmp_path):
    train, test = blobs(32), blobs(8, seed=1)
    train_autoencoder(train, test, tiny_config(epochs=1), out_dir=tmp_path, quiet=True)
    with pytest.raises(LatentAtlasError, match="batch_size=8 differs"):
        train_autoencoder(train, test, tiny_config(epochs=1, batch_size=8), out_dir=tmp_path, resume=True, quiet=True)
    with pytest.raises(LatentAtlasError, match="one-cycle schedule"):
        train_autoencoder(train, test, tiny_config(epochs=2), out_dir=tmp_path, resume=True, quiet=True)
    with pytest.raises(LatentAtlasError, match="data differ"):
        train_autoencoder(blobs(32, seed=5), test, tiny_config(epochs=1), out_dir=tmp_path, resume=True, quiet=True)
    with pytest.raises(LatentAtlasError, match="needs out_dir"):
        train_autoencoder(train, test, tiny_config(), resume=True, quiet=True)


@pytest.mark.parametrize("kw, message", [
    ({"batch_size": 0}, "batch_size=0"), ({"schedule": "cosine"}, "schedule='cosine'"),
    ({"lr": -1.0}, "lr=-1.0"), ({"gamma": 1.5}, "gamma=1.5"), ({"epochs": 0}, "epochs=0"),
])
def test_config_validation_names_the_argument(kw, message):
    with pytest.raises(LatentAtlasError, match=message):
        TrainConfig.from_preset("fast", **kw)
    with pytest.raises(LatentAtlasError, match="preset='quick'"):
        TrainConfig.from_preset("quick")


def test_training_refuses_mismatched_sets():
    with pytest.raises(LatentAtlasError, match="same size"):
        train_autoencoder(blobs(8, side=16), blobs(8, side=20), tiny_config(), quiet=True)


def test_reference_preset_values():
    cfg = TrainConfig.from_preset("reference")
    assert (cfg.batch_size, cfg.lr, cfg.weight_decay, cfg.schedule, cfg.gamma) == (1024, 1e-3, 1e-4, "exponential", 0.999)


# ---- command line --------------------------------------------------------------------------------------

@pytest.fixture
def npz_data(tmp_path):
    s = blobs(80)
    path = tmp_path / "blobs.npz"
    np.savez(path, images=s.images, labels=s.labels)
    return path


def cli_args(npz, out, *extra):
    return ["images", "train", "--data", str(npz), "--out", str(out), "--epochs", "2", "--batch-size", "16",
            "--channels", "2,4,8", "--latent-channels", "4", "--threads", "1", "--quiet", *extra]


def test_cli_end_to_end(tmp_path, npz_data, capsys):
    out = tmp_path / "run"
    assert run(cli_args(npz_data, out, "--metrics", str(tmp_path / "m.json"), "--limit", "64")) == 0
    for name in ("best.pt", "last.pt", "metrics.json", "run.json", "loss_batches.png", "loss_epochs.png"):
        assert (out / name).stat().st_size > 0, name
    for png in ("loss_batches.png", "loss_epochs.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    meta = json.loads((out / "run.json").read_text())
    assert meta["kind"] == "images-train" and meta["artifacts"]["checkpoint"] == "best.pt"
    assert {f["file"] for f in meta["figures"]} == {"loss_batches.png", "loss_epochs.png", "reconstructions.png",
                                                    "traversal.png"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["validation_mse"]) == 2 and len(metrics["seconds_per_epoch"]) == 2
    # 10% of 80 held out as the test set (8), 10% of the remaining 72 as validation (7), then --limit 64
    assert (metrics["n_train"], metrics["n_validation"], metrics["n_test"]) == (64, 7, 8)
    assert metrics["best_validation_mse"] == metrics["validation_mse"][metrics["best_epoch"] - 1]
    assert json.loads((tmp_path / "m.json").read_text())["validation_mse"] == metrics["validation_mse"]
    assert meta["metrics"]["test_mse"] == metrics["test_mse"] and isinstance(metrics["test_mse"], float)
    assert "test MSE" in capsys.readouterr().out
    # resuming a finished run changes nothing; a changed option is refused with the option's name
    assert run(cli_args(npz_data, out, "--limit", "64", "--resume", str(out))) == 0
    assert json.loads((out / "metrics.json").read_text())["validation_mse"] == metrics["validation_mse"]
    assert run(cli_args(npz_data, out, "--limit", "64", "--resume", str(out / "last.pt"), "--lr", "0.05")) == 2
    assert "lr=0.05 differs" in capsys.readouterr().err


def test_cli_ctrl_c_exits_130_with_resume_hint(tmp_path, npz_data, capsys, monkeypatch):
    original = training.run_training

    def interrupted_run(*args, **kwargs):
        def stop(epoch, batch, loss):
            if epoch == 1:
                raise KeyboardInterrupt
        return original(*args, on_batch=stop, **kwargs)

    monkeypatch.setattr(training, "run_training", interrupted_run)
    out = tmp_path / "run"
    assert run(cli_args(npz_data, out)) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "epoch 1" in err
    # the printed command is exactly what continues the run
    command = err.split("continue with: ")[1].strip()
    assert command == shlex.join(["latentatlas", "images", "train", "--data", str(npz_data), "--resume", str(out)])
    assert (out / "best.pt").is_file() and json.loads((out / "metrics.json").read_text())["interrupted"] is True
    monkeypatch.setattr(training, "run_training", original)
    assert run(shlex.split(command)[1:] + ["-q"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["validation_mse"]) == 2 and metrics["interrupted"] is False
    uninterrupted = tmp_path / "full"
    assert run(cli_args(npz_data, uninterrupted)) == 0
    assert json.loads((uninterrupted / "metrics.json").read_text())["test_mse"] == metrics["test_mse"]


def test_cli_errors(tmp_path, npz_data, capsys):
    assert run(["images", "train", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "o"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("latentatlas: error:") and "apt-get install dataset-fashion-mnist" in err
    assert run(cli_args(npz_data, tmp_path / "o", "--preset", "turbo")) == 2
    assert "preset='turbo'" in capsys.readouterr().err
    assert run(cli_args(npz_data, tmp_path / "o", "--channels", "4,x")) == 2
    assert "--channels" in capsys.readouterr().err
    assert run(cli_args(npz_data, tmp_path / "o", "--limit", "0")) == 2
    assert run(["images", "train", "--data", str(npz_data), "--data-dir", str(tmp_path), "-q"]) == 2


def test_cli_without_out_writes_a_default_run_folder_and_says_where(tmp_path, npz_data, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [a for a in cli_args(npz_data, "unused") if a not in ("--out", "unused", "--quiet")]
    assert run([*args, "--epochs", "1"]) == 0
    [folder] = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("images-train-")
    captured = capsys.readouterr()
    assert f"writing to runs/{folder.name}" in captured.err and f"run folder runs/{folder.name}" in captured.out
    assert json.loads((folder / "run.json").read_text())["kind"] == "images-train"


# ---- a kill between writing last.pt and best.pt ---------------------------------------------------------

class Killed(BaseException):
    """Stands for kill -9: nothing after it runs, no handler sees it as an error."""


def test_kill_between_last_and_best_checkpoint_is_repaired_on_resume(tmp_path, monkeypatch):
    train, test = blobs(48), blobs(16, seed=1)
    cfg = tiny_config(epochs=3, schedule="constant", lr=1e-2)  # the test loss falls every epoch: each is best
    full = train_autoencoder(train, test, cfg, out_dir=tmp_path / "full", quiet=True)
    assert full.best_epoch == 3

    real_save = training.save_checkpoint

    def save_then_die_before_best(path, **state):
        if path.name == "best.pt" and state["epoch"] == 2:
            raise Killed
        return real_save(path, **state)

    monkeypatch.setattr(training, "save_checkpoint", save_then_die_before_best)
    with pytest.raises(Killed):
        train_autoencoder(train, test, cfg, out_dir=tmp_path / "part", quiet=True)
    monkeypatch.setattr(training, "save_checkpoint", real_save)
    last = load_checkpoint(tmp_path / "part" / "last.pt")[1]
    assert last["epoch"] == 2 and last["history"]["best_epoch"] == 2
    assert load_checkpoint(tmp_path / "part" / "best.pt")[1]["epoch"] == 1  # stale: the state the kill left

    # Resuming for no further epoch already repairs best.pt: it holds the epoch last.pt calls best.
    resumed = training.run_training(train, test, tiny_config(epochs=2, schedule="constant", lr=1e-2),
                                    out_dir=tmp_path / "part", resume=tmp_path / "part")
    best = load_checkpoint(tmp_path / "part" / "best.pt")[1]
    assert best["epoch"] == resumed.history.best_epoch == 2
    assert all(torch.equal(best["model_state"][k], last["model_state"][k]) for k in last["model_state"])
    assert all(torch.equal(resumed.best_state[k], last["model_state"][k]) for k in last["model_state"])

    # And carrying on gives exactly the uninterrupted run, best.pt included.
    more = train_autoencoder(train, test, cfg, out_dir=tmp_path / "part", resume=True, quiet=True)
    assert more.test_loss == full.test_loss and more.best_epoch == 3
    a, b = _weights(tmp_path / "full" / "best.pt"), _weights(tmp_path / "part" / "best.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_a_best_checkpoint_it_cannot_repair(tmp_path):
    train, test = blobs(32), blobs(8, seed=1)
    cfg = tiny_config(epochs=2, schedule="exponential")
    train_autoencoder(train, test, cfg, out_dir=tmp_path, quiet=True)
    last = load_checkpoint(tmp_path / "last.pt")[1]
    # last.pt says epoch 1 was best but holds epoch 2, and best.pt is gone: the best weights are lost.
    last["history"]["best_epoch"] = 1
    torch.save(last, tmp_path / "last.pt")
    (tmp_path / "best.pt").unlink()
    with pytest.raises(LatentAtlasError, match="names epoch 1 as the best, but .*best.pt is missing"):
        train_autoencoder(train, test, tiny_config(epochs=3, schedule="exponential"), out_dir=tmp_path,
                          resume=True, quiet=True)


# ---- damaged and crafted checkpoints: one line naming the file ------------------------------------------

def _state(**changes):
    model = ConvAutoencoderNet(image_shape=(16, 16), channels=(2, 4, 8), latent_channels=4)
    state = {"format": "latentatlas-conv-autoencoder", "version": 1, "model_config": model.config(),
             "model_state": model.state_dict(), "epoch": 1, "history": {}, "config": {}}
    state.update(changes)
    return {k: v for k, v in state.items() if v is not None}


@pytest.mark.parametrize("name, content, message", [
    ("empty.pt", b"", "the file is empty"),
    ("no_config.pt", _state(model_config=None), "no model_config"),
    ("no_weights.pt", _state(model_state=None), "no model_state"),
    ("huge.pt", _state(model_config={"image_shape": [16, 16], "channels": [2, 4, 10**9], "latent_channels": 4}),
     "'channels' must be 3 integers in 1..4096"),
    ("wide.pt", _state(model_config={"image_shape": [16, 16], "channels": [2, 4, 800], "latent_channels": 4}),
     "weights do not fit the stored architecture"),
    ("odd.pt", _state(model_config={"image_shape": [15, 8], "channels": [2, 4, 8], "latent_channels": 4}),
     "'image_shape' must be 2 integers in 12..4096"),
    ("rgba.pt", _state(model_config={"image_shape": [16, 16], "channels": [2, 4, 8], "latent_channels": 4,
                                     "in_channels": 4}), "'in_channels' must be 1 or 3"),
    ("newer.pt", _state(version=99), "version 99 is newer"),
    ("epoch.pt", _state(epoch="x"), "'epoch' must be"),
    ("evil.pt", "pickle", "not a readable checkpoint"),
])
def test_bad_checkpoints_give_one_line_naming_the_file(tmp_path, capsys, npz_data, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "pickle":
        torch.save({"format": "latentatlas-conv-autoencoder", "obj": Killed()}, path)  # needs unpickling
    else:
        torch.save(content, path)
    with pytest.raises(LatentAtlasError, match=message) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert run(["images", "encode", "--checkpoint", str(path), "--data", str(npz_data),
                "--out", str(tmp_path / "c.npy"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("latentatlas: error: ") and name in err


def test_truncated_checkpoint_and_resume_from_weights_only_file(tmp_path, capsys, npz_data):
    out = tmp_path / "run"
    assert run(cli_args(npz_data, out, "--epochs", "1")) == 0
    data = (out / "last.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(LatentAtlasError, match="cut.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "cut.pt")
    # a checkpoint without the training state (ConvAutoencoder.save) cannot be resumed: say so
    from latentatlas import ConvAutoencoder

    ConvAutoencoder.load(out / "best.pt").save(tmp_path / "model.pt")
    assert run(cli_args(npz_data, tmp_path / "again", "--resume", str(tmp_path / "model.pt"))) == 2
    assert "not a training checkpoint" in capsys.readouterr().err
    assert run(cli_args(npz_data, tmp_path / "again", "--resume", str(tmp_path / "absent"))) == 2
    assert "absent: no such checkpoint or run folder" in capsys.readouterr().err


def test_cli_ctrl_c_in_the_first_epoch_keeps_nothing(tmp_path, npz_data, capsys, monkeypatch):
    original = training.run_training

    def at_once(*args, **kwargs):
        def stop(epoch, batch, loss):
            raise KeyboardInterrupt
        return original(*args, on_batch=stop, **kwargs)

    monkeypatch.setattr(training, "run_training", at_once)
    assert run(cli_args(npz_data, tmp_path / "run")) == 130
    err = capsys.readouterr().err
    assert "interrupted; no epoch was completed, nothing to keep" in err and "continue with" not in err
    assert not (tmp_path / "run" / "run.json").exists() and not (tmp_path / "run" / "last.pt").exists()
