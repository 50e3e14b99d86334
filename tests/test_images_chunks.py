"""Batches in chunks on the CPU threads (``chunk_size``), the "direct" decoder (``upsample``) and the fused
optimiser: the chunked step against a step written out by hand, the same run on one thread and on two, resume
with chunks, the thread rule, and old checkpoints."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from latentatlas.errors import LatentAtlasError
from latentatlas.images import training
from latentatlas.images.autoencoder import ConvAutoencoder
from latentatlas.images.io import ImageSet
from latentatlas.images.network import ConvAutoencoderNet, load_checkpoint
from latentatlas.images.training import chunk_count, train_autoencoder
from latentatlas.progress import as_progress

TINY = dict(channels=(2, 4, 8), latent_channels=4, log_every=1000, seed=0, schedule="constant", lr=1e-2)


def blobs(n: int, side: int = 16, seed: int = 0, channels: int = 1) -> ImageSet:
    rng = np.random.default_rng(seed)
    images = np.zeros((n, channels, side, side), np.uint8)
    for img in images:
        r, c = rng.integers(0, side - 4, size=2)
        h, w = rng.integers(3, side // 2, size=2)
        img[:, r:r + h, c:c + w] = rng.integers(120, 256, size=(channels, 1, 1))
    return ImageSet(images=images[:, 0] if channels == 1 else images, labels=np.arange(n) % 3, source="blobs")


@pytest.mark.parametrize("variational", [False, True])
def test_a_chunked_step_is_the_size_weighted_sum_of_the_chunks_gradients(variational):
    """One step on 10 images in chunks of at most 4 (4, 3, 3) against the same step written out: each chunk through its
    own copy of the network (its own BatchNorm statistics), gradients of each chunk's loss weighted by its share
    of the images and summed, one optimiser step; the running statistics are the chunks' mean."""
    cfg = ConvAutoencoder(**TINY, batch_size=10, chunk_size=4, optimizer="adamw",
                          model="vae" if variational else "ae").check_params()
    torch.manual_seed(0)
    net = ConvAutoencoderNet(image_shape=(16, 16), channels=(2, 4, 8), latent_channels=4, variational=variational,
                             downsample="early", upsample="direct").train()
    hand = copy.deepcopy(net)
    x = torch.rand(10, 1, 16, 16)
    eps = torch.randn(10, *net.code_shape) if variational else None
    device = torch.device("cpu")
    opt = torch.optim.SGD(net.parameters(), lr=0.5)  # a step linear in the gradient: differences show as they are
    step = training._Step(net, cfg, device, None, None, opt, as_progress(None, "test"))
    assert step.chunks == 3
    loss, mse, kl = step(x, eps)
    step.close()

    params = list(hand.parameters())
    grads = [torch.zeros_like(p) for p in params]
    losses, mses, means = [], [], []
    for a, b in ((0, 3), (3, 6), (6, 10)):
        copy_ = copy.deepcopy(hand)
        for p_copy, p in zip(copy_.parameters(), params):  # the copies' gradients are the originals'
            p_copy.data = p.data
        recon, mu, logvar = copy_.train_forward(x[a:b], None if eps is None else eps[a:b])
        if variational:
            chunk_loss, chunk_mse, _ = training.vae_loss(recon, x[a:b], mu, logvar, cfg.beta)
        else:
            chunk_loss = chunk_mse = F.mse_loss(recon, x[a:b])
        share = (b - a) / 10
        for g, d in zip(grads, torch.autograd.grad(chunk_loss, list(copy_.parameters()))):
            g += share * d
        losses.append(share * chunk_loss.item())
        mses.append(share * chunk_mse.item())
        means.append(copy_.encoder[5].running_mean)
    for p, g in zip(net.parameters(), grads):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-8)
    with torch.no_grad():
        for p, g in zip(params, grads):
            p -= 0.5 * g
    for p, q in zip(net.parameters(), params):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(net.encoder[5].running_mean, torch.stack(means).mean(0))
    assert float(loss) == pytest.approx(sum(losses), rel=1e-5)
    assert float(mse) == pytest.approx(sum(mses), rel=1e-5)
    assert (kl is not None) == variational


def test_chunks_give_the_same_run_on_one_thread_and_on_two_and_resume_exactly(tmp_path):
    train, valid = blobs(40, channels=3), blobs(10, seed=1, channels=3)
    cfg = dict(TINY, epochs=3, batch_size=16, chunk_size=8)
    one = ConvAutoencoder(**cfg, num_threads=1).fit(train, valid)
    two = ConvAutoencoder(**cfg, num_threads=2).fit(train, valid, out_dir=tmp_path / "full")
    assert one.history_.threads == 1 and two.history_.threads == 2
    assert one.history_.batch_loss == two.history_.batch_loss
    assert one.history_.validation_loss == two.history_.validation_loss
    for k, v in one.model_.state_dict().items():
        assert torch.equal(v, two.model_.state_dict()[k]), k

    def ctrl_c(epoch, batch, loss):
        if epoch == 1 and batch == 1:
            raise KeyboardInterrupt

    part = train_autoencoder(train, valid, ConvAutoencoder(**cfg, num_threads=2), out_dir=tmp_path / "part",
                             quiet=True, on_batch=ctrl_c)
    assert part.interrupted and part.epochs_completed == 1
    resumed = train_autoencoder(train, valid, ConvAutoencoder(**cfg, num_threads=2), out_dir=tmp_path / "part",
                                resume=True, quiet=True)
    assert resumed.batch_loss == two.history_.batch_loss
    a = load_checkpoint(tmp_path / "full" / "last.pt")[1]["model_state"]
    b = load_checkpoint(tmp_path / "part" / "last.pt")[1]["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_automatic_batch_size_keeps_100_steps_an_epoch_and_scales_the_learning_rate():
    from latentatlas.images.training import batch_size_for, lr_for

    auto = ConvAutoencoder()
    assert [batch_size_for(auto, n) for n in (60_000, 9_600, 3_600, 1_000, 50)] == [96, 96, 36, 16, 16]
    assert lr_for(auto, 96) == pytest.approx(3e-2) and lr_for(auto, 36) == pytest.approx(3e-2 * 36 / 96)
    fixed = ConvAutoencoder(batch_size=64, lr=1e-2)
    assert batch_size_for(fixed, 100) == 64 and lr_for(fixed, 64) == 1e-2
    assert lr_for(ConvAutoencoder(batch_size=64), 64) == pytest.approx(2e-2)
    lines = []
    ae = ConvAutoencoder(**{**TINY, "lr": None}, epochs=1, num_threads=1, progress=lines.append).fit(blobs(400))
    assert ae.history_.batch_size == 16 and ae.history_.batches_per_epoch == 23        # 360 training images
    assert any("23 batches of 16 (peak learning rate 0.005)" in line for line in lines)
    with pytest.raises(LatentAtlasError, match="batch_size=0: must be a positive integer"):
        ConvAutoencoder(batch_size=0).check_params()
    with pytest.raises(LatentAtlasError, match="lr=-1: must be a finite non-negative number"):
        ConvAutoencoder(lr=-1).check_params()


def test_chunks_only_where_a_batch_holds_more_than_one():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert chunk_count(ConvAutoencoder(batch_size=96, chunk_size=48), cpu) == 2
    assert chunk_count(ConvAutoencoder(batch_size=100, chunk_size=48), cpu) == 3
    assert chunk_count(ConvAutoencoder(batch_size=48, chunk_size=48), cpu) == 1
    assert chunk_count(ConvAutoencoder(batch_size=96, chunk_size=None), cpu) == 1
    assert chunk_count(ConvAutoencoder(batch_size=96, chunk_size=48), cuda) == 1   # a GPU takes the whole batch
    with pytest.raises(LatentAtlasError, match="chunk_size=0: must be a positive integer"):
        ConvAutoencoder(chunk_size=0).check_params()


def test_thread_rule_one_thread_per_chunk_whatever_the_load(monkeypatch):
    monkeypatch.setattr(training, "_cores", lambda: 2)
    for load in (0.0, 1.9, 4.0):
        monkeypatch.setattr(training.os, "getloadavg", lambda load=load: (load, 1.0, 1.0))
        assert training.default_threads(1) == 1 and training.default_threads(2) == 2
        assert training.default_threads(3) == 2                                # no more than the cores
    monkeypatch.setattr(training, "_cores", lambda: 16)
    monkeypatch.setattr(training.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert training.default_threads(1) == 8 and training.default_threads(2) == 8   # chunks × intra-op threads
    monkeypatch.setattr(training, "_cores", lambda: 1)
    assert training.default_threads(2) == 1


@pytest.mark.parametrize("shape,channels,variational", [((28, 28), 1, False), ((30, 17), 3, True),
                                                        ((32, 32), 1, True)])
def test_the_direct_decoder_paints_each_2x2_block_from_one_half_size_position(shape, channels, variational):
    net = ConvAutoencoderNet(image_shape=shape, in_channels=channels, variational=variational, downsample="early",
                             upsample="direct").eval()
    transpose = ConvAutoencoderNet(image_shape=shape, in_channels=channels, variational=variational,
                                   downsample="early").eval()
    assert net.code_shape == transpose.code_shape
    x = torch.rand(2, channels, *shape)
    assert net(x).shape == x.shape
    last = net.decoder[-2]
    assert isinstance(last, torch.nn.ConvTranspose2d) and last.out_channels == channels
    assert (last.kernel_size, last.stride) == ((2, 2), (2, 2))
    # the layer's output pixel (2i + a, 2j + b) depends on its input position (i, j) alone
    h = torch.zeros(1, last.in_channels, 3, 3, requires_grad=True)
    last(h)[0, 0, 3, 2].backward()
    touched = h.grad.abs().sum(1)[0]
    assert touched.nonzero().tolist() == [[1, 1]]


def test_resume_refuses_another_decoder_or_chunking_of_the_interrupted_run(tmp_path):
    train, valid = blobs(32), blobs(8, seed=1)
    cfg = dict(TINY, epochs=1, batch_size=16, num_threads=1)
    ConvAutoencoder(**cfg, upsample="transpose", chunk_size=None).fit(train, valid, out_dir=tmp_path)
    with pytest.raises(LatentAtlasError, match="upsample='direct' differs from the interrupted run's (upsample=)?'transpose'"):
        ConvAutoencoder(**{**cfg, "epochs": 2}, chunk_size=None).fit(train, valid, out_dir=tmp_path, resume=tmp_path)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    del ckpt["config"]["chunk_size"]                        # as a file from before the field
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(LatentAtlasError, match="chunk_size=8 differs from the interrupted run's"):
        ConvAutoencoder(**{**cfg, "epochs": 2}, upsample="transpose", chunk_size=8).fit(
            train, valid, out_dir=tmp_path, resume=tmp_path)
    more = ConvAutoencoder.from_checkpoint(tmp_path / "last.pt", epochs=2).fit(train, valid, out_dir=tmp_path,
                                                                               resume=tmp_path)
    assert more.history_.epochs_completed == 2 and more.chunk_size is None
