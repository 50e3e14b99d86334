"""Colour and any-size images, the variational autoencoder, validation/test naming, threads and full disks.

Known answers: pixels of tiny hand-made pictures, the VAE objective computed by hand, exact resume.
"""

from __future__ import annotations

import errno
import io as _io
import json
import math

import numpy as np
from sklearn.base import clone
import pytest
import torch
from PIL import Image

from latentatlas.cli import run
from latentatlas.errors import LatentAtlasError
from latentatlas.images import io, training, workflow
from latentatlas.images.autoencoder import ConvAutoencoder
from latentatlas.images.io import ImageSet
from latentatlas.images.network import ConvAutoencoderNet, read_checkpoint, save_checkpoint
from latentatlas.images.training import train_autoencoder

TINY = dict(epochs=2, batch_size=16, channels=(2, 4, 8), latent_channels=4, num_threads=1)


def _save(path, array, mode=None):
    Image.fromarray(np.asarray(array, np.uint8), mode=mode).save(path)


# ---- readers -------------------------------------------------------------------------------------------

def test_colour_folder_keeps_every_pixel_and_promotes_grey_pictures(tmp_path):
    a = np.zeros((2, 3, 3), np.uint8)            # H×W×RGB, each pixel different
    a[0, 0], a[0, 1], a[0, 2] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    a[1, 0], a[1, 1], a[1, 2] = (10, 20, 30), (200, 100, 50), (1, 2, 3)
    _save(tmp_path / "a.png", a)
    _save(tmp_path / "b.png", [[7, 8, 9], [10, 11, 12]])                      # a grey picture (mode L)
    rgba = np.dstack([a, np.full((2, 3), 128, np.uint8)])
    _save(tmp_path / "c.png", rgba, "RGBA")                                    # alpha is dropped
    s = io.read_images(tmp_path)
    assert s.images.shape == (3, 3, 2, 3) and s.channels == 3 and s.shape == (2, 3)
    np.testing.assert_array_equal(np.moveaxis(s.images[0], 0, -1), a)          # N×C×H×W, RGB order
    np.testing.assert_array_equal(s.images[1], np.repeat(np.array([[[7, 8, 9], [10, 11, 12]]], np.uint8), 3, 0))
    np.testing.assert_array_equal(np.moveaxis(s.images[2], 0, -1), a)
    np.testing.assert_array_equal(s.channels_last()[0], a)
    # grayscale=True: luminance 0.299 R + 0.587 G + 0.114 B, rounded
    g = io.read_images(tmp_path, grayscale=True)
    assert g.images.shape == (3, 2, 3)
    assert g.images[0, 0].tolist() == [76, 150, 29] and g.images[0, 1, 1] == round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    assert g.images[1].tolist() == [[7, 8, 9], [10, 11, 12]]


def test_palette_picture_is_colour_and_rgb_files_of_grey_content_stay_grey(tmp_path):
    p = Image.new("P", (2, 1))
    p.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    p.putpixel((0, 0), 0)
    p.putpixel((1, 0), 1)
    p.save(tmp_path / "p.png")
    s = io.read_images(tmp_path / "p.png")
    assert s.images.shape == (1, 3, 1, 2) and s.images[0, :, 0].T.tolist() == [[255, 0, 0], [0, 0, 255]]
    grey = tmp_path / "grey"
    grey.mkdir()
    _save(grey / "x.png", np.full((2, 2, 3), 40, np.uint8))                    # RGB file, grey pixels
    assert io.read_images(grey).images.shape == (1, 2, 2)


def test_mixed_sizes_are_resized_to_the_most_common_and_image_size_crops_the_centre(tmp_path):
    wide = np.zeros((4, 8), np.uint8)
    wide[:, :] = np.arange(8) * 10                 # columns 0, 10, ..., 70
    _save(tmp_path / "a.png", wide)
    _save(tmp_path / "b.png", np.full((4, 4), 99, np.uint8))
    _save(tmp_path / "c.png", np.full((4, 4), 55, np.uint8))
    s = io.read_images(tmp_path)                   # two of 4×4, one of 4×8: all 4×4
    assert s.images.shape == (3, 4, 4)
    # scale max(4/4, 4/8) = 1: no resampling, the centre 4 columns (2..5) are cut out exactly
    assert s.images[0, 0].tolist() == [20, 30, 40, 50] and (s.images[1] == 99).all()
    tall = io.read_images(tmp_path, image_size=(4, 2))        # 4×4 → centre columns 1..2; 4×8 → 3..4
    assert tall.images.shape == (3, 4, 2) and tall.images[0, 0].tolist() == [30, 40]
    # a flat picture stays flat when scaled down or up
    up = io.read_images(tmp_path, image_size=8)
    assert up.images.shape == (3, 8, 8) and (up.images[1] == 99).all() and (up.images[2] == 55).all()
    down = io.read_images(tmp_path, image_size="2x2")
    assert down.images.shape == (3, 2, 2) and (down.images[1] == 99).all()
    # arrays too (npz), colour channel by channel
    rgb = np.zeros((1, 4, 8, 3), np.uint8)
    rgb[..., 0] = np.arange(8) * 10
    np.savez(tmp_path / "x.npz", images=rgb)
    r = io.read_images(tmp_path / "x.npz", image_size=4)
    assert r.images.shape == (1, 3, 4, 4) and r.images[0, 0, 0].tolist() == [20, 30, 40, 50] and r.images[0, 1].max() == 0


def test_large_jpeg_is_scaled_while_decoding_and_keeps_its_halves(tmp_path):
    photo = np.zeros((300, 400, 3), np.uint8)
    photo[:, :200] = (200, 30, 30)                 # red left half, blue right half
    photo[:, 200:] = (30, 30, 200)
    _save(tmp_path / "big.jpg", photo)
    s = io.read_images(tmp_path / "big.jpg", image_size=20)   # scale 1/15: decoded at 1/8, then resized
    assert s.images.shape == (1, 3, 20, 20)
    left, right = s.images[0, :, :, :8].reshape(3, -1), s.images[0, :, :, 12:].reshape(3, -1)
    assert np.abs(left.mean(1) - [200, 30, 30]).max() < 8 and np.abs(right.mean(1) - [30, 30, 200]).max() < 8


@pytest.mark.parametrize("size", [0, -3, "big", (4,), (4, 5, 6), 10**6, True, 2.5])
def test_bad_image_size_is_one_line_naming_it(tmp_path, size):
    np.savez(tmp_path / "x.npz", images=np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(LatentAtlasError, match="image_size=") as err:
        io.read_images(tmp_path / "x.npz", image_size=size)
    assert "\n" not in str(err.value)


def test_image_set_conversions_and_repr():
    grey = ImageSet(images=np.array([[[0, 255]]], np.uint8), labels=[1], label_names=["a", "b"], source="s")
    colour = grey.with_channels(3)
    assert colour.images.shape == (1, 3, 1, 2) and colour.with_channels(1).images.tolist() == [[[0, 255]]]
    assert repr(grey) == "ImageSet(1 grey image 1×2, 2 classes, source='s')"
    assert "3-channel colour" in repr(colour) and len(repr(colour)) < 120
    # tensors and channels-last arrays are accepted as estimator input
    assert io.as_image_set(np.zeros((2, 5, 6, 3), np.uint8)).images.shape == (2, 3, 5, 6)
    assert io.as_image_set(torch.zeros(2, 3, 5, 6)).images.shape == (2, 3, 5, 6)
    with pytest.raises(LatentAtlasError, match="N×3×H×W"):
        io.as_image_set(np.zeros((2, 2, 5, 6)))


# ---- the network ---------------------------------------------------------------------------------------

def test_colour_and_variational_networks_shapes_and_checkpoints(tmp_path):
    torch.manual_seed(0)
    net = ConvAutoencoderNet(image_shape=(20, 18), channels=(2, 4, 8), latent_channels=3, in_channels=3,
                             variational=True).eval()
    x = torch.rand(2, 3, 20, 18)
    mu, logvar = net.encode_stats(x)
    assert mu.shape == logvar.shape == (2, 3, 2, 2) and torch.equal(net.encode(x), mu)
    assert net(x).shape == (2, 3, 20, 18) and torch.equal(net(x), net.decode(mu))   # eval: from the mean
    path = save_checkpoint(tmp_path / "v.pt", net)
    ckpt = read_checkpoint(path)
    assert ckpt["model_config"]["in_channels"] == 3 and ckpt["model_config"]["variational"] is True
    with pytest.raises(LatentAtlasError, match="N×3×20×18"):
        net.encode(torch.rand(2, 1, 20, 18))


# ---- the VAE objective by hand -------------------------------------------------------------------------

def test_vae_loss_against_a_hand_computation():
    # two "images" of 2 pixels, codes of 2 numbers
    x = torch.tensor([[[[0.0, 1.0]]], [[[0.5, 0.25]]]])
    recon = torch.tensor([[[[0.2, 0.9]]], [[[0.5, 0.5]]]])
    mu = torch.tensor([[[[0.0]], [[1.0]]], [[[-2.0]], [[0.5]]]])
    logvar = torch.tensor([[[[0.0]], [[math.log(4.0)]]], [[[0.0]], [[0.0]]]])
    beta = 0.5
    # cross-entropy, summed over pixels and images
    bce = -(math.log(0.8) + math.log(0.9)                       # x=0 vs 0.2; x=1 vs 0.9
            + (0.5 * math.log(0.5) + 0.5 * math.log(0.5))       # x=0.5 vs 0.5
            + (0.25 * math.log(0.5) + 0.75 * math.log(0.5)))    # x=0.25 vs 0.5
    # KL(N(mu, s²) ‖ N(0, 1)) = ½ (s² + mu² − 1 − ln s²) per number
    kl1 = 0.5 * (1 + 0 - 1 - 0) + 0.5 * (4 + 1 - 1 - math.log(4))
    kl2 = 0.5 * (1 + 4 - 1 - 0) + 0.5 * (1 + 0.25 - 1 - 0)
    objective, mse, kl = training.vae_loss(recon, x, mu, logvar, beta)
    assert float(objective) == pytest.approx((bce + beta * (kl1 + kl2)) / (2 * 2), rel=1e-6)
    assert float(kl) == pytest.approx((kl1 + kl2) / 2, rel=1e-6)
    assert float(mse) == pytest.approx((0.04 + 0.01 + 0 + 0.0625) / 4, rel=1e-6)


def test_evaluate_scores_a_vae_from_its_posterior_means():
    torch.manual_seed(1)
    net = ConvAutoencoderNet(image_shape=(12, 12), channels=(2, 2, 2), latent_channels=2, variational=True).eval()
    images = np.random.default_rng(0).integers(0, 256, size=(5, 12, 12), dtype=np.uint8)
    x = torch.from_numpy(images).float().div(255).unsqueeze(1)
    with torch.no_grad():
        mu, logvar = net.encode_stats(x)
        recon = net.decode(mu)
        bce = torch.nn.functional.binary_cross_entropy(recon, x, reduction="sum")
        kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum()
    s = training.evaluate(net, images, batch_size=2, beta=3.0)
    assert s["mse"] == pytest.approx(float(((recon - x) ** 2).mean()), rel=1e-5)
    assert s["kl"] == pytest.approx(float(kl) / 5, rel=1e-5)
    assert s["objective"] == pytest.approx(float(bce + 3.0 * kl) / x.numel(), rel=1e-5)
    assert np.allclose(s["code_mean"], mu.reshape(5, -1).mean(0).numpy(), atol=1e-6)


# ---- training and resume -------------------------------------------------------------------------------

def blobs(n: int, side: int = 16, seed: int = 0) -> ImageSet:
    """Bright grey rectangles on black."""
    return colour_blobs(n, side, seed).with_channels(1)


def colour_blobs(n: int, side: int = 16, seed: int = 0) -> ImageSet:
    """Coloured rectangles on black."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 3, side, side), np.uint8)
    for img in images:
        r, c = rng.integers(0, side - 4, size=2)
        h, w = rng.integers(3, side // 2, size=2)
        img[:, r:r + h, c:c + w] = rng.integers(60, 256, size=3)[:, None, None]
    return ImageSet(images=images, labels=np.arange(n) % 3, source="colour blobs")


@pytest.mark.parametrize("model, colour", [("vae", False), ("vae", True), ("ae", True)])
def test_interrupt_then_resume_matches_uninterrupted_run(tmp_path, model, colour):
    if colour:
        train, valid = colour_blobs(48, side=14), colour_blobs(16, side=14, seed=1)
    else:
        train, valid = blobs(48), blobs(16, seed=1)
    cfg = ConvAutoencoder(epochs=3, batch_size=16, channels=(2, 4, 8), latent_channels=4,
                            num_threads=1, log_every=1000, model=model, beta=0.5)
    full = train_autoencoder(train, valid, cfg, out_dir=tmp_path / "full", quiet=True)

    def ctrl_c(epoch, batch, loss):
        if epoch == 1 and batch == 1:
            raise KeyboardInterrupt

    part = train_autoencoder(train, valid, cfg, out_dir=tmp_path / "part", quiet=True, on_batch=ctrl_c)
    assert part.interrupted and part.epochs_completed == 1
    resumed = train_autoencoder(train, valid, cfg, out_dir=tmp_path / "part", resume=True, quiet=True)
    assert resumed.batch_loss == full.batch_loss and resumed.validation_loss == full.validation_loss
    assert resumed.train_kl == full.train_kl and resumed.validation_objective == full.validation_objective
    assert resumed.best_epoch == full.best_epoch
    if model == "vae":
        assert len(full.train_kl) == 3 and all(k > 0 for k in full.validation_kl)
        # the best epoch is the one with the lowest validation objective (not MSE)
        assert full.best_epoch == int(np.argmin(full.validation_objective)) + 1
    else:
        assert full.train_kl == [] and full.validation_objective == []
    a = read_checkpoint(tmp_path / "full" / "last.pt")["model_state"]
    b = read_checkpoint(tmp_path / "part" / "last.pt")["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_model_or_beta(tmp_path):
    train, valid = blobs(32), blobs(8, seed=1)
    cfg = ConvAutoencoder(epochs=1, batch_size=16, channels=(2, 4, 8), latent_channels=4,
                            num_threads=1, model="vae", beta=0.5, schedule="constant")
    train_autoencoder(train, valid, cfg, out_dir=tmp_path, quiet=True)
    for change, message in ((dict(model="ae"), "model='ae' differs"), (dict(beta=2.0), "beta=2.0 differs")):
        other = clone(cfg).set_params(epochs=2, **change)
        with pytest.raises(LatentAtlasError, match=message):
            train_autoencoder(train, valid, other, out_dir=tmp_path, resume=True, quiet=True)


def test_old_checkpoints_with_test_names_load_and_resume(tmp_path):
    """Checkpoints written before the validation rename (history test_loss, data n_test, no in_channels)."""
    train, valid = blobs(32), blobs(8, seed=1)
    cfg = ConvAutoencoder(epochs=2, batch_size=16, channels=(2, 4, 8), latent_channels=4,
                            num_threads=1, schedule="exponential")
    full = train_autoencoder(train, valid, cfg, out_dir=tmp_path / "full", quiet=True)
    one = clone(cfg).set_params(epochs=1)
    train_autoencoder(train, valid, one, out_dir=tmp_path / "old", quiet=True)
    for name in ("last.pt", "best.pt"):
        ckpt = torch.load(tmp_path / "old" / name, weights_only=True)
        h = ckpt["history"]
        h["test_loss"] = h.pop("validation_loss")
        for key in ("train_kl", "validation_kl", "validation_objective", "threads", "precision", "compiled"):
            h.pop(key)
        ckpt["data"] = {("n_test" if k == "n_validation" else "test_crc32" if k == "validation_crc32" else k): v
                        for k, v in ckpt["data"].items() if k != "channels"}
        for key in ("model", "beta", "negative_slope", "validation_fraction", "amp", "compile"):
            ckpt["config"].pop(key)
        for key in ("in_channels", "variational"):
            ckpt["model_config"].pop(key)
        ckpt.pop("code_stats")
        torch.save(ckpt, tmp_path / "old" / name)
    old = ConvAutoencoder.load(tmp_path / "old" / "best.pt")
    assert old.history_.validation_loss == full.validation_loss[:1] and old.n_channels_ == 1 and old.model == "ae"
    resumed = train_autoencoder(train, valid, cfg, out_dir=tmp_path / "old", resume=True, quiet=True)
    assert resumed.validation_loss == full.validation_loss and resumed.batch_loss == full.batch_loss


# ---- the estimator: colour, VAE, traversal, sampling ---------------------------------------------------

@pytest.fixture(scope="module")
def colour_vae():
    return ConvAutoencoder(**TINY, model="vae", beta=0.5).fit(colour_blobs(60, side=14))


def test_colour_vae_estimator(colour_vae, tmp_path):
    images = colour_blobs(5, side=14, seed=3)
    ae = colour_vae
    assert ae.n_channels_ == 3 and ae.image_shape_ == (14, 14) and ae.code_shape_ == (4, 1, 1)
    codes = ae.transform(images)
    assert codes.shape == (5, 4)
    assert ae.inverse_transform(codes).shape == (5, 3, 14, 14)
    assert ae.transform(images.channels_last()).tolist() == codes.tolist()   # N×H×W×3 input too
    frames = ae.interpolate(images.images[0], images.images[1], steps=4)
    assert frames.shape == (4, 3, 14, 14)
    np.testing.assert_allclose(frames[0], ae.inverse_transform(codes[:1])[0], atol=1e-6)
    # traversal: with the swept number set to the image's own value the picture is its reconstruction
    dims = ae.traverse_dims(2)
    assert len(dims) == 2 and ae.code_std_[dims[0]] >= ae.code_std_[dims[1]]
    t = ae.traverse(images.images[0], dims=dims, steps=5)
    assert t.shape == (2, 5, 3, 14, 14)
    from latentatlas.images.latent import traverse

    own = traverse(ae.model_, images.images[0], [int(dims[0])], [codes[0, dims[0]]])
    np.testing.assert_allclose(own[0, 0], ae.inverse_transform(codes[:1])[0], atol=1e-6)
    # sampling: seeded, decoded from N(0, I)
    s1, s2 = ae.sample(3, seed=7), ae.sample(3, seed=7)
    assert s1.shape == (3, 3, 14, 14) and np.array_equal(s1, s2) and not np.array_equal(s1, ae.sample(3, seed=8))
    # save and load keep the model kind, channels and statistics
    ae.save(tmp_path / "v.pt")
    again = ConvAutoencoder.load(tmp_path / "v.pt")
    assert again.model == "vae" and again.beta == 0.5 and again.n_channels_ == 3
    np.testing.assert_array_equal(again.code_std_, ae.code_std_)
    np.testing.assert_array_equal(again.transform(images), codes)


def test_plain_autoencoder_cannot_sample_but_traverses():
    ae = ConvAutoencoder(**{**TINY, "epochs": 1}).fit(blobs(40))
    with pytest.raises(LatentAtlasError, match="needs a variational autoencoder"):
        ae.sample(2)
    t = ae.traverse(blobs(1).images[0], steps=3, n_dims=2)
    assert t.shape == (2, 3, 16, 16)
    with pytest.raises(LatentAtlasError, match="out of range"):
        ae.traverse(blobs(1).images[0], dims=[99])


# ---- whole runs: colour folder of mixed sizes → train → embed → explorer / projector --------------------

def test_colour_folder_of_mixed_sizes_end_to_end(tmp_path):
    pics = tmp_path / "pics"
    rng = np.random.default_rng(0)
    for cls in ("red", "blue"):
        (pics / cls).mkdir(parents=True)
        for i in range(24):
            h, w = (20, 20) if i % 3 else (30, 24)                      # mixed sizes
            img = np.zeros((h, w, 3), np.uint8)
            r, c = rng.integers(0, 10, size=2)
            img[r:r + 8, c:c + 8, 0 if cls == "red" else 2] = rng.integers(150, 256)
            _save(pics / cls / f"{i}.png", img)
    trained = workflow.train_run(tmp_path / "train", data=pics, image_size=16, model="vae", beta=0.5, **TINY)
    assert trained.estimator.n_channels_ == 3 and trained.estimator.image_shape_ == (16, 16)
    metrics = trained.run.metrics_file()
    assert metrics["image_channels"] == 3 and metrics["image_shape"] == [16, 16] and metrics["model"] == "vae"
    assert len(metrics["train_kl"]) == 2 and metrics["test_kl"] > 0
    assert metrics["test_psnr_db"] == pytest.approx(10 * math.log10(1 / metrics["test_mse"]))
    figures = {f["file"] for f in trained.run.figures}
    assert {"samples.png", "traversal.png", "reconstructions.png", "loss_epochs.png"} <= figures
    # embed: the folder is read again (mixed sizes → 20×20) and made 16×16 for the model; colour thumbnails
    workflow.embed_run(tmp_path / "emb", checkpoint=tmp_path / "train", data=pics, methods="pca", count=10)
    z = np.load(tmp_path / "emb" / "embedding.npz")
    assert z["thumbnails"].shape == (48, 16, 16, 3) and z["thumbnails"][..., 0].max() > 0
    from latentatlas.report.explorer import image_explorer, sprite_png

    data = image_explorer(tmp_path / "emb" / "embedding.npz")
    png, geo = sprite_png(data.thumbnails)
    sheet = np.asarray(Image.open(_io.BytesIO(png)))
    assert sheet.ndim == 3 and sheet.shape[-1] == 3
    np.testing.assert_array_equal(sheet[:16, :16], z["thumbnails"][data.index[0]])
    from latentatlas.exports import export_embedding_projector

    export_embedding_projector(tmp_path / "emb", tmp_path / "proj")
    assert np.asarray(Image.open(tmp_path / "proj" / "sprite.png")).shape[-1] == 3
    # interpolation in colour
    workflow.interpolate_run(tmp_path / "interp", tmp_path / "train", data=pics, pairs="0:30", steps=4)
    assert np.load(tmp_path / "interp" / "frames.npz")["frames"].shape == (1, 4, 3, 16, 16)


def test_thumbnail_scatter_pastes_colour_thumbnails():
    from latentatlas.plots.images import thumbnail_scatter

    red = np.zeros((1, 3, 8, 8), np.uint8)
    red[:, 0] = 255
    fig = thumbnail_scatter(np.array([[0.0, 0.0]]), red, canvas_px=64)
    canvas = np.asarray(fig.axes[0].images[0].get_array())
    # one point at the origin: its thumbnail sits at the bottom-left corner of the canvas
    np.testing.assert_array_equal(canvas[-8:, :8], np.broadcast_to([1.0, 0.0, 0.0], (8, 8, 3)))
    assert (canvas[:-8] == 1.0).all()


# ---- threads -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cores, load, threads", [(2, 0.0, 1), (2, 5.0, 1), (16, 0.0, 8), (16, 12.3, 3),
                                                  (16, 30.0, 1), (1, 0.0, 1)])
def test_default_threads(monkeypatch, cores, load, threads):
    monkeypatch.setattr(training.os, "sched_getaffinity", lambda pid: set(range(cores)))
    monkeypatch.setattr(training.os, "getloadavg", lambda: (load, load, load))
    assert training.default_threads() == threads


# ---- a full disk (R11) ---------------------------------------------------------------------------------

def _train_args(npz, out):
    return ["images", "train", "--data", str(npz), "--out", str(out), "--epochs", "1", "--batch-size", "16",
            "--channels", "2,4,8", "--latent-channels", "4", "--threads", "1", "--quiet"]


def test_full_disk_while_writing_a_checkpoint_is_one_line(tmp_path, capsys, monkeypatch):
    npz = tmp_path / "b.npz"
    np.savez(npz, images=blobs(40).images)

    def full(*args, **kwargs):  # what torch.save raises on ENOSPC
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 128 vs 0\n"
                           "PytorchStreamWriter failed writing file data/0: file write failed")

    class Stat:
        f_bavail, f_frsize = 0, 4096

    monkeypatch.setattr(torch, "save", full)
    monkeypatch.setattr("latentatlas.images.network.os.statvfs", lambda path: Stat)
    assert run(_train_args(npz, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("latentatlas: error: ") and len(err.splitlines()) == 1
    assert "last.pt: cannot write the checkpoint (no space left on device)" in err


def test_full_disk_while_writing_a_figure_is_one_line(tmp_path, capsys, monkeypatch):
    npz = tmp_path / "b.npz"
    np.savez(npz, images=blobs(40).images)

    def full(fig, path, dpi=120):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("latentatlas.fsutil.save_figure", full)
    assert run(_train_args(npz, tmp_path / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"latentatlas: error: No space left on device: {tmp_path / 'out' / 'loss_batches.png'}"


# ---- the memory-mapped cache of a folder ---------------------------------------------------------------

def test_folder_cache_is_memory_mapped_and_follows_the_files(tmp_path):
    pics = tmp_path / "pics"
    pics.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        _save(pics / f"{i}.png", rng.integers(0, 256, size=(6, 7, 3), dtype=np.uint8))
    cache = tmp_path / "c" / "pics.npy"
    plain = io.read_images(pics)
    first = io.read_images(pics, cache=cache)
    np.testing.assert_array_equal(first.images, plain.images)
    assert cache.is_file() and cache.with_suffix(".json").is_file()
    assert not [p for p in cache.parent.iterdir() if ".tmp" in p.name]
    again = io.read_images(pics, cache=cache)
    assert isinstance(again.images.base, np.memmap) or isinstance(again.images, np.memmap)
    np.testing.assert_array_equal(again.images, plain.images)
    again.images[0] = 0                                  # copy-on-write: the file keeps the pictures
    np.testing.assert_array_equal(io.read_images(pics, cache=cache).images, plain.images)
    # another option or a changed file: decoded again
    assert io.read_images(pics, cache=cache, image_size=4).images.shape == (5, 3, 4, 4)
    _save(pics / "0.png", np.zeros((6, 7, 3), np.uint8))
    assert (io.read_images(pics, cache=cache).images[0] == 0).all()
    # grey pictures are cached grey
    grey = tmp_path / "grey"
    grey.mkdir()
    _save(grey / "a.png", np.full((4, 4, 3), 9, np.uint8))
    assert io.read_images(grey, cache=tmp_path / "g.npy").images.shape == (1, 4, 4)
    assert io.read_images(grey, cache=tmp_path / "g.npy").images.tolist() == [[[9] * 4] * 4]
    # a damaged picture leaves no cache behind; caching something else is refused
    (pics / "bad.png").write_bytes(b"nope")
    with pytest.raises(LatentAtlasError, match="bad.png: cannot read as an image"):
        io.read_images(pics, cache=tmp_path / "d.npy")
    assert not list(tmp_path.glob("*d.npy*"))
    np.savez(tmp_path / "x.npz", images=np.zeros((1, 4, 4), np.uint8))
    with pytest.raises(LatentAtlasError, match="only a folder of pictures is cached"):
        io.read_images(tmp_path / "x.npz", cache=tmp_path / "x.npy")
    with pytest.raises(LatentAtlasError, match="ending in .npy"):
        io.read_images(grey, cache=tmp_path / "g.bin")


def test_history_has_a_short_repr_and_a_picture():
    h = training.History(train_loss=[0.02, 0.01], validation_loss=[0.03, 0.015], best_epoch=2,
                         train_kl=[5.0, 4.0], validation_kl=[5.5, 4.2], validation_objective=[0.5, 0.4])
    assert repr(h) == "History(2 epochs, best validation MSE 0.01500 at epoch 2)"
    assert h._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert training.History()._repr_png_() is None and repr(training.History()) == "History(no completed epoch)"
    assert h.test_loss == h.validation_loss and h.best_test_loss == 0.015   # the old names still read
