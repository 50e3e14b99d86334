"""The autoencoder on a GPU: CUDA tests run only where a CUDA device is present, MPS ones only on Apple's Metal;
skipped elsewhere. The device choice and the mixed-precision logic are tested on the CPU in
tests/test_images_estimator.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone

from latentatlas.images.autoencoder import ConvAutoencoder
from latentatlas.images.io import ImageSet
from latentatlas.images.training import select_device, train_autoencoder

CUDA = torch.cuda.is_available()
MPS = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
cuda_only = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")
TINY = dict(batch_size=16, channels=(2, 4, 8), latent_channels=4, log_every=1000, seed=0)


def colour_blobs(n: int, side: int = 16, seed: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 3, side, side), np.uint8)
    for img in images:
        r, c = rng.integers(0, side - 4, size=2)
        h, w = rng.integers(3, side // 2, size=2)
        img[:, r:r + h, c:c + w] = rng.integers(60, 256, size=3)[:, None, None]
    return ImageSet(images=images, source="colour blobs")


@cuda_only
def test_auto_picks_cuda():
    assert select_device("auto").type == "cuda"


@cuda_only
@pytest.mark.parametrize("model", ["ae", "vae"])
def test_fit_on_cuda_then_use_on_cpu(tmp_path, model):
    images = colour_blobs(96)
    ae = ConvAutoencoder(epochs=2, model=model, device="cuda", **TINY).fit(images)
    h = ae.history_
    assert h.device.startswith("cuda") and h.threads == 0
    # amp="auto": bfloat16 where the GPU has it, float16 (with a gradient scaler) where it does not
    assert h.precision == ("bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    assert h.validation_loss[-1] < h.validation_loss[0] * 1.5
    codes = ae.transform(images)
    ae.save(tmp_path / "m.pt")
    cpu = ConvAutoencoder.from_checkpoint(tmp_path / "m.pt")            # loads on the CPU
    np.testing.assert_allclose(cpu.transform(images), codes, atol=1e-4)


@cuda_only
@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_every_precision_learns_the_same_thing_on_cuda(amp):
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    train, valid = colour_blobs(128), colour_blobs(32, seed=1)
    ae = ConvAutoencoder(epochs=4, amp=amp, device="cuda", **TINY).fit(train, valid)
    ref = ConvAutoencoder(epochs=4, amp="off", device="cpu", num_threads=1, **TINY).fit(train, valid)
    h = ae.history_
    assert h.precision == {"off": "float32", "bf16": "bfloat16", "fp16": "float16"}[amp]
    assert all(np.isfinite(h.batch_loss)) and h.validation_loss[-1] < h.validation_loss[0]
    # float32 on the GPU is the CPU's run to within kernel noise; half precision learns about as well
    tolerance = 0.02 if amp == "off" else 0.25
    assert abs(h.validation_loss[-1] - ref.history_.validation_loss[-1]) <= tolerance * ref.history_.validation_loss[-1]


@cuda_only
def test_compile_on_cuda_trains_or_falls_back():
    images = colour_blobs(96)
    ae = ConvAutoencoder(epochs=2, compile=True, device="cuda", **TINY).fit(images)
    assert ae.history_.epochs_completed == 2 and np.isfinite(ae.history_.validation_loss).all()
    # compiled or not (no compiler on the machine), the kept weights load without torch.compile's prefixes
    assert not any(k.startswith("_orig_mod") for k in ae.model_.state_dict())


@cuda_only
def test_resume_on_cuda_matches_an_uninterrupted_run(tmp_path):
    train, valid = colour_blobs(64), colour_blobs(16, seed=1)
    cfg = ConvAutoencoder(epochs=3, model="vae", beta=0.5, device="cuda", amp="off", **TINY)
    full = train_autoencoder(train, valid, cfg, out_dir=tmp_path / "full", quiet=True)

    def ctrl_c(epoch, batch, loss):
        if epoch == 1 and batch == 0:
            raise KeyboardInterrupt

    train_autoencoder(train, valid, clone(cfg), out_dir=tmp_path / "part", quiet=True, on_batch=ctrl_c)
    resumed = train_autoencoder(train, valid, clone(cfg), out_dir=tmp_path / "part", resume=True, quiet=True)
    # cuDNN may pick non-deterministic kernels: the same losses to within float noise
    np.testing.assert_allclose(resumed.validation_loss, full.validation_loss, rtol=1e-3)


@cuda_only
def test_fp16_resume_restores_the_gradient_scaler(tmp_path):
    train, valid = colour_blobs(64), colour_blobs(16, seed=1)
    cfg = ConvAutoencoder(epochs=2, amp="fp16", device="cuda", schedule="exponential", **TINY)
    train_autoencoder(train, valid, cfg, out_dir=tmp_path, quiet=True)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert isinstance(ckpt["scaler_state"], dict) and ckpt["scaler_state"]["scale"] > 0
    more = train_autoencoder(train, valid, clone(cfg).set_params(epochs=3), out_dir=tmp_path, resume=True, quiet=True)
    assert more.epochs_completed == 3 and more.precision == "float16"


@pytest.mark.skipif(not MPS, reason="no Apple MPS device on this machine")
def test_fit_on_mps_runs():
    images = colour_blobs(64)
    ae = ConvAutoencoder(epochs=1, device="auto", **TINY).fit(images)
    assert ae.history_.device.startswith("mps") and ae.history_.precision == "float32"
    assert ae.transform(images).shape == (64, 4)
