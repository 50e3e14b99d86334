"""The autoencoder on a GPU (CUDA or Apple MPS): runs only where one is present; skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentatlas.images.autoencoder import ConvAutoencoder
from latentatlas.images.io import ImageSet
from latentatlas.images.training import TrainConfig, train_autoencoder

CUDA = torch.cuda.is_available()
pytestmark = pytest.mark.skipif(not CUDA, reason="no CUDA device on this machine")


def colour_blobs(n: int, side: int = 16, seed: int = 0) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 3, side, side), np.uint8)
    for img in images:
        r, c = rng.integers(0, side - 4, size=2)
        h, w = rng.integers(3, side // 2, size=2)
        img[:, r:r + h, c:c + w] = rng.integers(60, 256, size=3)[:, None, None]
    return ImageSet(images=images, source="colour blobs")


@pytest.mark.parametrize("model", ["ae", "vae"])
def test_fit_on_cuda_then_use_on_cpu(tmp_path, model):
    images = colour_blobs(96)
    ae = ConvAutoencoder(epochs=2, batch_size=16, channels=(2, 4, 8), latent_channels=4, model=model,
                         device="cuda", seed=0).fit(images)
    assert ae.history_.device.startswith("cuda") and ae.history_.threads == 0
    assert ae.history_.validation_loss[-1] < ae.history_.validation_loss[0] * 1.5
    codes = ae.transform(images)
    ae.save(tmp_path / "m.pt")
    cpu = ConvAutoencoder.load(tmp_path / "m.pt")            # loads on the CPU
    np.testing.assert_allclose(cpu.transform(images), codes, atol=1e-4)


def test_resume_on_cuda_matches_an_uninterrupted_run(tmp_path):
    train, valid = colour_blobs(64), colour_blobs(16, seed=1)
    cfg = TrainConfig.from_preset("fast", epochs=3, batch_size=16, channels=(2, 4, 8), latent_channels=4,
                                  model="vae", beta=0.5, device="cuda", log_every=1000)
    full = train_autoencoder(train, valid, cfg, out_dir=tmp_path / "full", quiet=True)

    def ctrl_c(epoch, batch, loss):
        if epoch == 1 and batch == 0:
            raise KeyboardInterrupt

    train_autoencoder(train, valid, cfg, out_dir=tmp_path / "part", quiet=True, on_batch=ctrl_c)
    resumed = train_autoencoder(train, valid, cfg, out_dir=tmp_path / "part", resume=True, quiet=True)
    # cuDNN may pick non-deterministic kernels: the same losses to within float noise
    np.testing.assert_allclose(resumed.validation_loss, full.validation_loss, rtol=1e-3)
