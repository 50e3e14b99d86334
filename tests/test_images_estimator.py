"""One estimator: ConvAutoencoder owns its parameters (presets are named sets of them), one from_checkpoint
(files of the earlier layout too), and the device, mixed-precision and torch.compile choices, checked on the
CPU (tests/test_images_device.py runs them on a GPU when there is one)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone

from latentatlas.cli import run
from latentatlas.errors import LatentAtlasError
from latentatlas.images import training, workflow
from latentatlas.images.autoencoder import PRESETS, ConvAutoencoder
from latentatlas.images.io import ImageSet
from latentatlas.images.training import (TrainConfig, autocast, autocast_dtype, needs_grad_scaler, select_device,
                                         should_compile)

TINY = dict(epochs=2, batch_size=16, channels=(2, 4, 8), latent_channels=4, num_threads=1, log_every=1000, seed=0)
#: An images-train run folder written by the code before the estimator owned its parameters (commit 7e68966:
#: TrainConfig's fields in the checkpoints' "config"): a VAE, β 0.5, 2 epochs.
OLD_RUN = Path(__file__).parent / "data" / "images-train-v1-vae"


def blobs(n: int, side: int = 16, seed: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = np.zeros((n, side, side), np.uint8)
    for img in images:
        r, c = rng.integers(0, side - 4, size=2)
        h, w = rng.integers(3, side // 2, size=2)
        img[r:r + h, c:c + w] = rng.integers(120, 256)
    return ImageSet(images=images, labels=np.arange(n) % 3, source="blobs")


def old_run_data(path: Path) -> Path:
    """The colour images the old run was trained on, made again the same way (seed 0)."""
    rng = np.random.default_rng(0)
    images = np.zeros((60, 3, 16, 16), np.uint8)
    labels = np.arange(60) % 3
    for i, img in enumerate(images):
        r, c = rng.integers(0, 10, size=2)
        img[:, r:r + 6, c:c + 6] = np.array([[220, 120, 30], [40, 200, 90], [60, 80, 230]])[labels[i]][:, None, None]
    np.savez(path, images=images, labels=labels)
    return path


# ---- parameters: one definition ------------------------------------------------------------------------

def test_presets_are_named_parameter_sets_of_the_one_definition():
    fast, ref = ConvAutoencoder(), ConvAutoencoder.from_preset("reference", epochs=27)
    assert PRESETS["fast"] == {} and fast.preset == "fast"            # the fast preset is __init__'s defaults
    assert (ref.batch_size, ref.lr, ref.schedule, ref.channels_last, ref.epochs) == (1024, 1e-3, "exponential",
                                                                                    False, 27)
    assert ref.preset == "reference" and ConvAutoencoder(lr=0.05).preset == "custom"
    assert ConvAutoencoder.from_preset("reference", lr=None).lr == 1e-3    # None leaves the preset's value
    # what checkpoints and run.json store: every parameter but progress, and the preset they match
    assert set(fast.settings()) == set(fast.get_params()) - {"progress"} | {"preset"}
    # TrainConfig is gone as a second definition: the old name builds the estimator
    old = TrainConfig.from_preset("reference", epochs=3)
    assert isinstance(old, ConvAutoencoder) and old.get_params() == ConvAutoencoder.from_preset(
        "reference", epochs=3).get_params()


@pytest.mark.parametrize("params, message", [
    ({"amp": "fp8"}, "amp='fp8'"), ({"compile": "maybe"}, "compile='maybe'"), ({"device": "tpu"}, "device='tpu'"),
    ({"channels": (4, 16)}, "channels="), ({"channels_last": "yes"}, "channels_last='yes'"),
    ({"beta": -1.0}, "beta=-1.0"), ({"num_threads": 0}, "num_threads=0"),
])
def test_every_parameter_is_checked_in_one_place(params, message):
    with pytest.raises(LatentAtlasError, match=message):
        ConvAutoencoder(**params).check_params()
    with pytest.raises(LatentAtlasError, match=message):
        ConvAutoencoder(**params).fit(blobs(20))


def test_a_device_this_machine_lacks_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(training, "_mps_available", lambda: False)
    for device, message in (("cuda", "CUDA is not available"), ("cuda:1", "CUDA is not available"),
                            ("mps", "MPS.* not available")):
        with pytest.raises(LatentAtlasError, match=message):
            ConvAutoencoder(device=device).check_params()


# ---- device, mixed precision, compile ------------------------------------------------------------------

@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"),
                                                 (False, False, "cpu")])
def test_auto_device_is_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(training, "_mps_available", lambda: mps)
    assert select_device("auto").type == expected
    assert select_device("cpu").type == "cpu"


def test_autocast_choice():
    bf16, fp16 = torch.bfloat16, torch.float16
    # auto: bf16 on a CUDA GPU that has it, fp16 on an older one, nothing on the CPU or MPS
    assert autocast_dtype("auto", "cuda", bf16_supported=True) is bf16
    assert autocast_dtype("auto", "cuda", bf16_supported=False) is fp16
    assert autocast_dtype("auto", "cpu") is None and autocast_dtype("auto", "mps") is None
    assert autocast_dtype("off", "cuda", bf16_supported=True) is None
    assert autocast_dtype("bf16", "cpu") is bf16 and autocast_dtype("fp16", "cuda") is fp16
    # only float16 on CUDA needs a gradient scaler (bf16 has float32's range)
    assert needs_grad_scaler(fp16, "cuda") and not needs_grad_scaler(bf16, "cuda")
    assert not needs_grad_scaler(None, "cuda") and not needs_grad_scaler(fp16, "cpu")
    assert should_compile(True, "cpu") and should_compile("auto", "cuda:0")
    assert not should_compile("auto", "cpu") and not should_compile(False, "cuda")


@pytest.mark.slow
def test_bf16_autocast_runs_on_the_cpu_and_still_learns():
    from latentatlas.images.network import ConvAutoencoderNet

    net = ConvAutoencoderNet(image_shape=(16, 16), channels=(2, 4, 8), latent_channels=4, variational=True)
    x = torch.rand(4, 1, 16, 16)
    with autocast(torch.device("cpu"), torch.bfloat16):
        recon, mu, logvar = net.train_forward(x, torch.zeros(4, 4, 1, 1))
    assert recon.dtype == torch.bfloat16 and mu.dtype == torch.bfloat16   # autocast took effect
    with autocast(torch.device("cpu"), None):
        assert net.train_forward(x, torch.zeros(4, 4, 1, 1))[0].dtype == torch.float32

    train, valid = blobs(96), blobs(24, seed=1)
    half = ConvAutoencoder(**{**TINY, "epochs": 3}, amp="bf16", device="cpu").fit(train, valid)
    full = ConvAutoencoder(**{**TINY, "epochs": 3}, amp="auto", device="cpu").fit(train, valid)
    assert half.history_.precision == "bfloat16" and full.history_.precision == "float32"
    h = half.history_
    assert np.isfinite(h.batch_loss).all() and h.validation_loss[-1] < h.validation_loss[0]
    assert h.batch_loss != full.history_.batch_loss                        # it really ran in bfloat16 …
    assert h.validation_loss[-1] == pytest.approx(full.history_.validation_loss[-1], rel=0.2)   # … to the same end
    assert next(half.model_.parameters()).dtype == torch.float32          # weights stay float32


def test_a_failing_compile_falls_back_to_the_same_eager_run(monkeypatch):
    train, valid = blobs(48), blobs(16, seed=1)
    eager = ConvAutoencoder(**TINY).fit(train, valid)

    def broken_compile(fn, *args, **kwargs):
        def compiled(*a, **k):
            raise RuntimeError("no C compiler found\nsecond line")
        return compiled

    lines = []
    monkeypatch.setattr(torch, "compile", broken_compile)
    fell_back = ConvAutoencoder(**TINY, compile=True, progress=lines.append).fit(train, valid)
    assert not fell_back.history_.compiled
    assert [line for line in lines if "torch.compile failed" in line] == [
        "[images train] torch.compile failed (RuntimeError: no C compiler found); training without it"]
    assert fell_back.history_.batch_loss == eager.history_.batch_loss  # the failed batch was redone eagerly

    monkeypatch.setattr(torch, "compile", lambda fn, *a, **k: fn)    # a compile that works (here: a no-op)
    compiled = ConvAutoencoder(**TINY, compile=True).fit(train, valid)
    assert compiled.history_.compiled and compiled.history_.batch_loss == eager.history_.batch_loss
    # "auto" compiles on CUDA only
    assert not ConvAutoencoder(**TINY, compile="auto").fit(train, valid).history_.compiled


# ---- one from_checkpoint; old checkpoints and run folders --------------------------------------------------

def test_from_checkpoint_restores_the_parameters_and_takes_overrides(tmp_path):
    ae = ConvAutoencoder(**TINY, amp="off", lr=5e-3).fit(blobs(40))
    ae.save(tmp_path / "m.pt")
    back = ConvAutoencoder.from_checkpoint(tmp_path / "m.pt")
    assert back.get_params() == {**ae.get_params(), "num_threads": None}   # this machine's threads, not the file's
    assert ConvAutoencoder.from_checkpoint(tmp_path / "m.pt", epochs=9).epochs == 9
    np.testing.assert_array_equal(ConvAutoencoder.load(tmp_path / "m.pt").transform(blobs(5)), back.transform(blobs(5)))
    with pytest.raises(LatentAtlasError, match="unknown autoencoder parameter 'epoch'"):
        ConvAutoencoder.from_checkpoint(tmp_path / "m.pt", epoch=3)


@pytest.mark.slow
def test_an_old_run_folder_loads_and_resumes(tmp_path):
    old_config = json.loads((OLD_RUN / "run.json").read_text())["config"]
    assert "amp" not in old_config                                       # it really is of the earlier layout
    ckpt = torch.load(OLD_RUN / "best.pt", weights_only=True)
    assert {"negative_slope", "validation_fraction", "amp"}.isdisjoint(ckpt["config"]) and "preset" in ckpt["config"]

    old = ConvAutoencoder.from_checkpoint(OLD_RUN / "best.pt")
    assert (old.model, old.beta, old.channels, old.latent_channels, old.schedule, old.lr) == (
        "vae", 0.5, (2, 4, 8), 4, "exponential", 1e-2)
    assert old.n_channels_ == 3 and old.code_size_ == 4 and old.history_.epochs_completed == 2
    assert old.downsample == "pool" and old.model_.downsample == "pool"      # the network it was trained with
    assert old.optimizer == "adam"                                            # and the optimizer
    data = old_run_data(tmp_path / "colour.npz")
    codes = workflow.encode_run(OLD_RUN, tmp_path / "codes.npy", data=data)   # the run folder names best.pt
    assert codes.n == 60 and codes.dims == 4

    run_dir = tmp_path / "run"
    shutil.copytree(OLD_RUN, run_dir)
    stored = json.loads((run_dir / "metrics.json").read_text())
    more = workflow.train_run(data=data, resume=run_dir, epochs=3, progress=lambda line: None)
    assert more.history.epochs_completed == 3
    assert more.history.validation_loss[:2] == stored["validation_mse"]   # the old epochs are kept as they were
    assert json.loads((run_dir / "run.json").read_text())["config"]["amp"] == "auto"


# ---- the CLI builds the estimator --------------------------------------------------------------------------

def _tiny_train_args(tmp_path) -> list[str]:
    """``images train`` on 60 small blobs, one epoch of a tiny network, written to ``tmp_path/run``
    (``--out`` last)."""
    data = tmp_path / "blobs.npz"
    np.savez(data, images=blobs(60).images)
    return ["images", "train", "--data", str(data), "--epochs", "1", "--batch-size", "16", "--channels", "2,4,8",
            "--latent-channels", "4", "--threads", "1", "--quiet", "--out", str(tmp_path / "run")]


@pytest.mark.slow
def test_cli_gpu_options_reach_the_estimator(tmp_path, capsys):
    base = _tiny_train_args(tmp_path)
    assert run(base + ["--amp", "fp8"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["latentatlas: error: amp='fp8': expected one of auto, off, bf16, fp16"]
    assert run(base + ["--compile", "maybe"]) == 2
    assert "--compile 'maybe': expected off, on or auto" in capsys.readouterr().err
    assert run(base + ["--amp", "bf16", "--compile", "off"]) == 0
    metrics = json.loads((tmp_path / "run" / "run.json").read_text())
    assert metrics["config"]["amp"] == "bf16" and metrics["config"]["compile"] is False
    assert ConvAutoencoder.from_checkpoint(tmp_path / "run" / "best.pt").history_.precision == "bfloat16"


def test_cli_chunk_and_decoder_options_reach_the_estimator(tmp_path, capsys):
    base = _tiny_train_args(tmp_path)
    assert run(base + ["--chunk-size", "0"]) == 2
    assert capsys.readouterr().err.strip() == ("latentatlas: error: --chunk-size '0': expected a positive number "
                                               "of images or none")
    assert run(base + ["--chunk-size", "none", "--upsample", "transpose"]) == 0
    config = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert (config["chunk_size"], config["upsample"], config["batch_size"]) == (None, "transpose", 16)
    assert run(base[:-1] + [str(tmp_path / "run2"), "--chunk-size", "8"]) == 0
    config = json.loads((tmp_path / "run2" / "run.json").read_text())["config"]
    assert (config["chunk_size"], config["upsample"]) == (8, "direct")


# ---- every pixel reaches the code and back (sides whose pooled size is even) ------------------------------

@pytest.mark.parametrize("side", [16, 32, 48])
@pytest.mark.parametrize("downsample", ["pool", "stride", "early"])
def test_the_last_rows_and_columns_are_decoded_from_the_code(side, downsample):
    from latentatlas.images.network import ConvAutoencoderNet

    torch.manual_seed(0)
    new = ConvAutoencoderNet(image_shape=(side, side), downsample=downsample).eval()
    old = ConvAutoencoderNet(image_shape=(side, side), full_edges=False, downsample=downsample).eval()
    x = torch.rand(1, 1, side, side)
    y = x.clone()
    y[..., -4:, :] = 1 - y[..., -4:, :]                      # change only the last 4 rows
    with torch.no_grad():
        assert not torch.equal(new.encode(x), new.encode(y))
        z1, z2 = torch.randn(1, *new.code_shape), torch.randn(1, *new.code_shape)
        a, b = new.decode(z1), new.decode(z2)
        assert (a[..., -3:, :] - b[..., -3:, :]).abs().min() > 0 and (a[..., -3:] - b[..., -3:]).abs().min() > 0
        a, b = old.decode(z1), old.decode(z2)
        # the old decoder painted the last 3 rows and columns from its biases alone: the same for any code
        torch.testing.assert_close(a[..., -3:, :], b[..., -3:, :])
        torch.testing.assert_close(a[..., -3:], b[..., -3:])
        assert (a[..., :-4, :-4] - b[..., :-4, :-4]).abs().max() > 0
    assert new.code_shape == old.code_shape and new.config()["full_edges"] and not old.config()["full_edges"]
    code = "encoder.9.weight" if downsample == "pool" else "encoder.7.weight"
    assert ConvAutoencoderNet(image_shape=(28, 28), downsample=downsample).state_dict()[code].shape[-2:] == (3, 3)


# ---- the stride-2 encoders (the default network) and the max-pool one of older files ------------------------

@pytest.mark.parametrize("shape, channels, variational", [
    ((28, 28), 1, False), ((13, 17), 3, False), ((27, 36), 1, True), ((32, 20), 3, True), ((12, 12), 1, False)])
def test_stride_and_pool_encoders_give_the_same_code_and_picture_shapes(shape, channels, variational):
    from latentatlas.images.network import ConvAutoencoderNet

    torch.manual_seed(0)
    kw = dict(image_shape=shape, channels=(2, 4, 8), latent_channels=3, in_channels=channels, variational=variational)
    pool = ConvAutoencoderNet(**kw).eval()
    x = torch.rand(2, channels, *shape)
    for downsample, strides in (("stride", [1, 2, 2, 2]), ("early", [2, 2, 1, 2])):
        net = ConvAutoencoderNet(**kw, downsample=downsample).eval()
        with torch.no_grad():
            assert net.encode(x).shape == pool.encode(x).shape == (2, *pool.code_shape)
            assert net(x).shape == pool(x).shape == x.shape
        assert net.code_shape == pool.code_shape
        # the decoder is the same layers: a code means a picture of the same shape in both
        assert {k: v.shape for k, v in net.state_dict().items() if k.startswith("decoder")} == {
            k: v.shape for k, v in pool.state_dict().items() if k.startswith("decoder")}
        assert not any(isinstance(m, torch.nn.MaxPool2d) for m in net.modules())
        assert [m.stride[0] for m in net.encoder if isinstance(m, torch.nn.Conv2d)] == strides


@pytest.mark.parametrize("downsample, layer", [("stride", 2), ("early", 0)])
def test_stride_encoder_halves_by_sampling_every_second_position(downsample, layer):
    """A stride-2 3×3 convolution whose kernel is 1 at its centre and 0 elsewhere keeps the pixels of even rows and
    even columns: the known answer of "halving by the convolution itself"."""
    from latentatlas.images.network import ConvAutoencoderNet

    net = ConvAutoencoderNet(channels=(1, 1, 1), latent_channels=1, downsample=downsample)
    conv = net.encoder[layer]
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
        conv.bias.zero_()
        x = torch.arange(28 * 28, dtype=torch.float32).reshape(1, 1, 28, 28)
        torch.testing.assert_close(conv(x), x[..., ::2, ::2])


@pytest.mark.parametrize("field, old, bad, choices", [("downsample", "pool", "avg", "pool, stride, early"),
                                                      ("upsample", "transpose", "bilinear", "transpose, direct")])
def test_checkpoints_without_a_network_field_are_the_old_network(tmp_path, field, old, bad, choices):
    # files written before the field existed hold the network the old code built, and an estimator restored from
    # one trains as the old code did (whole batches: no chunk_size in its config); a bad value names the field
    from latentatlas.images.network import ConvAutoencoderNet, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    net = ConvAutoencoderNet(image_shape=(16, 16), channels=(2, 4, 8), latent_channels=3, **{field: old}).eval()
    path = save_checkpoint(tmp_path / "old.pt", net, config={"seed": 0, "channels": [2, 4, 8], "batch_size": 16})
    ckpt = torch.load(path, weights_only=True)
    del ckpt["model_config"][field]                         # as every file written before the field
    ckpt["config"].pop(field, None)
    torch.save(ckpt, path)
    loaded, back = load_checkpoint(path)
    assert getattr(loaded, field) == old and back["model_config"][field] == old
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))
    restored = ConvAutoencoder.from_checkpoint(path)
    assert (getattr(restored, field), restored.chunk_size) == (old, None)
    ckpt["model_config"][field] = bad
    torch.save(ckpt, tmp_path / "bad.pt")
    with pytest.raises(LatentAtlasError, match=f"model_config field '{field}' must be one of {choices}"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(LatentAtlasError, match=f"{field}='{bad}': expected one of {choices}"):
        ConvAutoencoder(**{field: bad}).check_params()


def test_defaults_are_the_early_stride_network_and_the_reference_preset_the_pool_one(tmp_path):
    fast, ref = ConvAutoencoder(), ConvAutoencoder.from_preset("reference")
    assert (fast.downsample, fast.upsample, fast.batch_size, fast.chunk_size, fast.lr) == (
        "early", "direct", None, 48, None)                               # automatic: 96 and 3e-2 on large sets
    assert (ref.downsample, ref.upsample, ref.chunk_size) == ("pool", "transpose", None)
    assert ConvAutoencoder(downsample="pool").preset == "custom"
    ae = ConvAutoencoder(**TINY).fit(blobs(40))
    assert ae.model_.downsample == "early"
    ae.save(tmp_path / "m.pt")
    assert ConvAutoencoder.from_checkpoint(tmp_path / "m.pt").model_.downsample == "early"
    stride = ConvAutoencoder(**TINY, downsample="stride").fit(blobs(40))
    stride.save(tmp_path / "s.pt")
    assert ConvAutoencoder.from_checkpoint(tmp_path / "s.pt").model_.downsample == "stride"


def test_resume_keeps_the_network_of_the_interrupted_run(tmp_path):
    train, valid = blobs(40), blobs(10, seed=1)
    ConvAutoencoder(**{**TINY, "epochs": 1}, downsample="pool", schedule="constant").fit(
        train, valid, out_dir=tmp_path)
    changed = "downsample='early' differs from the interrupted run's downsample='pool'"
    with pytest.raises(LatentAtlasError, match=changed):
        ConvAutoencoder(**{**TINY, "epochs": 2}, schedule="constant").fit(train, valid, out_dir=tmp_path,
                                                                         resume=tmp_path)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    del ckpt["model_config"]["downsample"], ckpt["config"]["downsample"]   # as a file from before the field
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(LatentAtlasError, match="downsample='early' differs from the interrupted run's 'pool'"):
        ConvAutoencoder(**{**TINY, "epochs": 2}, schedule="constant").fit(train, valid, out_dir=tmp_path,
                                                                         resume=tmp_path)
    more = ConvAutoencoder.from_checkpoint(tmp_path / "last.pt", epochs=2).fit(train, valid, out_dir=tmp_path,
                                                                               resume=tmp_path)
    assert more.downsample == "pool" and more.model_.downsample == "pool" and more.history_.epochs_completed == 2


def test_the_pool_network_starts_from_the_same_weights_as_before_the_option():
    """Sums of two layers' initial weights for seed 0, computed with the network code of the commit before
    ``downsample`` existed: a seed still gives the reference network the initial weights it gave then."""
    from latentatlas.images.network import ConvAutoencoderNet

    torch.manual_seed(0)
    state = ConvAutoencoderNet().state_dict()
    assert float(state["encoder.9.weight"].double().sum()) == pytest.approx(6.651168657837388, abs=1e-9)
    assert float(state["decoder.7.weight"].double().sum()) == pytest.approx(-0.3816696824505925, abs=1e-9)


def test_a_run_of_few_steps_says_the_network_will_barely_learn():
    train, valid = blobs(40, seed=1), blobs(8, seed=2)
    lines: list[str] = []
    ConvAutoencoder(**{**TINY, "epochs": 2, "batch_size": 64}, progress=lines.append).fit(train, valid)
    warned = [line for line in lines if "optimisation step" in line]
    assert len(warned) == 1 and "only 2 optimisation steps in all (40 training images, batches of 64, 2 epochs)" \
        in warned[0]
    lines.clear()
    ConvAutoencoder(**{**TINY, "epochs": 1, "batch_size": 8}, progress=lines.append).fit(
        blobs(800, seed=1), valid)
    assert not [line for line in lines if "optimisation step" in line]


def test_adamw_by_default_adam_for_the_reference_preset(monkeypatch):
    made = []
    for name in ("Adam", "AdamW"):
        real = getattr(torch.optim, name)
        monkeypatch.setattr(torch.optim, name, lambda *a, _real=real, _name=name, **k: made.append((_name, k))
                            or _real(*a, **k))
    ConvAutoencoder(**TINY).fit(blobs(20))
    ConvAutoencoder.from_preset("reference", **{**TINY, "batch_size": 16}).fit(blobs(20))
    assert made == [("AdamW", {"lr": 5e-3, "weight_decay": 1e-4, "fused": True}),   # 3e-2 × 16 / 96
                    ("Adam", {"lr": 1e-3, "weight_decay": 1e-4, "fused": True})]
    assert ConvAutoencoder.from_preset("reference").preset == "reference" and ConvAutoencoder().preset == "fast"
    with pytest.raises(LatentAtlasError, match="optimizer='sgd': expected one of adamw, adam"):
        ConvAutoencoder(optimizer="sgd").check_params()
