"""Latent-space exploration: encoding, 2-D embeddings, k-NN accuracy, interpolation and the figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from latentatlas.errors import LatentAtlasError
from latentatlas.images import latent
from latentatlas.plots import images as plots


class TinyAE(nn.Module):
    """A stand-in with the autoencoder's encode/decode contract: N×1×8×8 ↔ N×2×2×2 codes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.MaxPool2d(4))
        self.dec = nn.Sequential(nn.ConvTranspose2d(2, 1, 4, stride=4), nn.Sigmoid())
        with torch.no_grad():  # non-trivial running statistics, so eval mode differs from train mode
            self.enc[1].running_mean.fill_(0.3)
            self.enc[1].running_var.fill_(2.0)

    def encode(self, x):
        return self.enc(x)

    def decode(self, z):
        return self.dec(z)


@pytest.fixture(scope="module")
def model():
    return TinyAE()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).integers(0, 256, size=(7, 8, 8), dtype=np.uint8)


def _reference_codes(model, images):
    model.eval()
    with torch.no_grad():
        return model.encode(torch.from_numpy(images.astype(np.float32)[:, None] / 255.0)).reshape(len(images), -1).numpy()


def test_encode_shape_eval_mode_and_batching(model, images):
    model.train()
    codes = latent.encode(model, images, batch_size=3)
    assert model.training  # mode restored
    assert codes.dtype == np.float32 and codes.shape == (7, 8)
    np.testing.assert_allclose(codes, _reference_codes(model, images), rtol=1e-6, atol=1e-6)
    model.train()
    # batch size does not change the codes, and eval mode was used (train-mode BatchNorm would differ)
    np.testing.assert_allclose(latent.encode(model, images, batch_size=100), codes, rtol=1e-6, atol=1e-6)
    with torch.no_grad():
        train_mode = model.encode(torch.from_numpy(images.astype(np.float32)[:, None] / 255.0)).reshape(7, -1).numpy()
    assert not np.allclose(train_mode, codes, atol=1e-3)


def test_encode_accepts_imageset_and_floats(model, images):
    from latentatlas.images.io import ImageSet

    a = latent.encode(model, ImageSet(images=images))
    b = latent.encode(model, images.astype(np.float32) / 255.0)
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("bad, match", [
    (np.zeros((3, 8)), "N×H×W"),
    (np.zeros((0, 8, 8), np.uint8), "no images"),
    (np.full((2, 8, 8), 2.0, np.float32), r"\[0, 1\]"),
    (np.full((2, 8, 8), np.nan, np.float32), "NaN"),
    (np.zeros((2, 8, 8), np.int32), "dtype"),
])
def test_encode_rejects_bad_images(model, bad, match):
    with pytest.raises(LatentAtlasError, match=match):
        latent.encode(model, bad)


def test_encode_rejects_bad_batch_size(model, images):
    with pytest.raises(LatentAtlasError, match="batch_size"):
        latent.encode(model, images, batch_size=0)


def test_encode_with_real_autoencoder_wrong_size():
    from latentatlas.images.network import ConvAutoencoderNet

    ae = ConvAutoencoderNet(channels=(2, 2, 2), latent_channels=2)
    assert latent.encode(ae, np.zeros((2, 28, 28), np.uint8)).shape == (2, 2 * 3 * 3)
    with pytest.raises(LatentAtlasError, match="28"):
        latent.encode(ae, np.zeros((2, 8, 8), np.uint8))


def test_interpolation_endpoints_and_midpoint(model, images):
    a, b = images[0], images[1]
    frames = latent.interpolate(model, a, b, steps=5)
    assert frames.shape == (5, 8, 8) and frames.dtype == np.float32
    codes = latent.encode(model, images[:2])
    recon = latent.decode(model, codes, (2, 2, 2))
    # the ends are the reconstructions of a and b exactly; the middle decodes the mean code
    np.testing.assert_array_equal(frames[0], recon[0])
    np.testing.assert_array_equal(frames[-1], recon[1])
    mid = latent.decode(model, ((codes[0] + codes[1]) / 2)[None], (2, 2, 2))[0]
    np.testing.assert_allclose(frames[2], mid, rtol=0, atol=1e-7)
    # equidistant: frame i decodes (1 - i/4)·a + (i/4)·b
    quarter = latent.decode(model, (0.75 * codes[0] + 0.25 * codes[1])[None], (2, 2, 2))[0]
    np.testing.assert_allclose(frames[1], quarter, atol=1e-6)
    assert not np.allclose(frames[0], frames[-1])


def test_interpolation_same_image_is_constant(model, images):
    frames = latent.interpolate(model, images[3], images[3], steps=3)
    np.testing.assert_allclose(frames, np.broadcast_to(frames[0], frames.shape), atol=1e-6)


@pytest.mark.parametrize("kw, match", [
    (dict(steps=1), "steps"),
    (dict(steps=2.5), "steps"),
    (dict(steps=1001), "from 2 to 1000"),
    (dict(steps=10**9), "from 2 to 1000"),  # refused before anything is allocated (this took 12 GB)
    (dict(image_b=np.zeros((6, 6), np.uint8)), "differ in size"),
    (dict(image_a=np.zeros((2, 8, 8), np.uint8)), "single H×W"),
])
def test_interpolation_errors(model, images, kw, match):
    args = {"image_a": images[0], "image_b": images[1], "steps": 4}
    args.update(kw)
    with pytest.raises(LatentAtlasError, match=match):
        latent.interpolate(model, **args)


def _brute_knn_accuracy(points, labels, k):
    d = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    correct = 0
    for i in range(len(points)):
        nb = np.argsort(d[i], kind="stable")[:k]
        counts = np.bincount(labels[nb], minlength=labels.max() + 1)
        correct += counts.argmax() == labels[i]
    return correct / len(points)


def test_knn_accuracy_hand_checked():
    # Two tight clusters on a line; the point at 2.6 sits nearer cluster B but carries label A.
    pts = np.array([[0.0], [0.1], [0.2], [2.6], [3.0], [3.1], [3.2]], dtype=np.float32)
    y = np.array([0, 0, 0, 0, 1, 1, 1])
    # k=1: every point's nearest other point shares its label except 2.6 (nearest 3.0, label 1) and
    # 3.0 (nearest 3.1, label 1: correct). So 6/7.
    assert latent.knn_accuracy(pts, y, k=1) == pytest.approx(6 / 7)
    # k=3: 2.6 → {3.0, 3.1, 3.2} all label 1 → wrong; 3.0 → {3.1, 3.2, 2.6} → 1 wins → right; the rest right.
    assert latent.knn_accuracy(pts, y, k=3) == pytest.approx(6 / 7)
    # k=6 (everyone else): 4 zeros vs 3 ones; a 0-point sees 3 zeros + 3 ones → tie → smallest label 0 →
    # right; a 1-point sees 4 zeros + 2 ones → wrong. So 4/7.
    assert latent.knn_accuracy(pts, y, k=6) == pytest.approx(4 / 7)


def test_knn_accuracy_matches_brute_force_and_sampling():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(300, 5)).astype(np.float32)
    y = rng.integers(0, 4, size=300)
    pts += y[:, None] * 0.8  # some structure so the accuracy is not at chance
    for k in (1, 5, 10):
        assert latent.knn_accuracy(pts, y, k=k) == pytest.approx(_brute_knn_accuracy(pts, y, k))
    # A sample of queries scores exactly those queries of the leave-one-out rule.
    d = ((pts[:, None] - pts[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    q = np.sort(np.random.default_rng(9).choice(300, size=50, replace=False))
    expected = np.mean([np.bincount(y[np.argsort(d[i], kind="stable")[:5]], minlength=4).argmax() == y[i] for i in q])
    assert latent.knn_accuracy(pts, y, k=5, sample=50, seed=9) == pytest.approx(expected)
    # string labels work the same as their integer codes
    names = np.array(["a", "b", "c", "d"])[y]
    assert latent.knn_accuracy(pts, names, k=5) == latent.knn_accuracy(pts, y, k=5)


def test_knn_accuracy_duplicates_leave_self_out():
    pts = np.zeros((4, 2), np.float32)  # all identical: neighbours are the other three
    y = np.array([0, 1, 1, 1])
    # point 0 sees three 1s → wrong; each 1 sees {0, 1, 1} → right
    assert latent.knn_accuracy(pts, y, k=3) == pytest.approx(3 / 4)
    assert latent.knn_accuracy(pts, y, k=3, sample=2, seed=0) in (0.5, 1.0)


@pytest.mark.parametrize("kw, match", [
    (dict(points=np.zeros(5)), "2-D"),
    (dict(labels=np.zeros(4)), "one label per point"),
    (dict(k=0), "k must"),
    (dict(k=5), "needs more than"),
    (dict(points=np.full((5, 2), np.nan)), "NaN"),
    (dict(sample=0), "sample"),
    (dict(seed=-1), "seed"),
])
def test_knn_accuracy_errors(kw, match):
    args = {"points": np.random.default_rng(0).normal(size=(5, 2)), "labels": np.array([0, 1, 0, 1, 0]), "k": 2}
    args.update(kw)
    with pytest.raises(LatentAtlasError, match=match):
        latent.knn_accuracy(**args)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=8.0, size=(3, 20))
    y = np.repeat(np.arange(3), 40)
    return (centres[y] + rng.normal(size=(120, 20))).astype(np.float32), y


@pytest.mark.parametrize("method", ["pca", "tsne", "umap"])
def test_embed_shapes_seeded_and_separates_blobs(blobs, method):
    x, y = blobs
    kw = {"perplexity": 10, "n_jobs": 1} if method == "tsne" else {}
    a = latent.embed(x, method, seed=1, **kw)
    b = latent.embed(x, method, seed=1, **kw)
    assert a.shape == (120, 2) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    # three well separated blobs stay separated in 2-D
    assert latent.knn_accuracy(a, y, k=5) == 1.0


def test_embed_pca_is_the_principal_plane(blobs):
    x, _ = blobs
    coords = latent.embed(x, "pca")
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    ref = centred @ vt[:2].T
    # equal up to the sign of each axis
    for j in range(2):
        sign = np.sign(coords[:, j] @ ref[:, j])
        np.testing.assert_allclose(coords[:, j] * sign, ref[:, j], rtol=1e-3, atol=1e-3)


def test_embed_tsne_seed_changes_layout_and_large_settings(blobs):
    x, _ = blobs
    a = latent.embed(x, "tsne", seed=1, perplexity=10, n_jobs=1, initialization="random")
    b = latent.embed(x, "tsne", seed=2, perplexity=10, n_jobs=1, initialization="random")
    assert not np.allclose(a, b)


def test_reduce_pca_keeps_narrow_codes(blobs):
    x, _ = blobs
    assert latent.reduce_pca(x, 50) is not None and latent.reduce_pca(x, 50).shape == (120, 20)
    assert latent.reduce_pca(x, 5).shape == (120, 5)


@pytest.mark.parametrize("args, kw, match", [
    ((np.zeros((10, 3)), "tsen"), {}, "method must be one of"),
    ((np.zeros(10),), {}, "2-D"),
    ((np.zeros((2, 3)),), {}, "at least 3 points"),
    ((np.full((10, 3), np.inf),), {}, "NaN or infinity"),
    ((np.zeros((10, 3)), "tsne"), {"perplexity": 5}, "too large"),
    ((np.zeros((10, 3)), "tsne"), {"perplexity": -1}, "positive"),
    ((np.zeros((10, 3)), "tsne"), {"perplexity": "x"}, "number"),
    ((np.zeros((10, 3)), "tsne"), {"perplexity": 1, "bogus": 1}, "unknown t-SNE option"),
    ((np.zeros((20, 3)), "umap"), {"bogus": 1}, "unknown UMAP option"),
    ((np.zeros((10, 3)), "umap"), {"n_neighbors": 15}, "n_neighbors"),
    ((np.zeros((10, 3)), "pca"), {"bogus": 1}, "no extra options"),
    ((np.zeros((10, 1)), "pca"), {}, "at least 2 dimensions"),
    ((np.zeros((10, 3)), "pca"), {"seed": -2}, "seed"),
    ((np.zeros((10, 3)), "tsne"), {"pca_dims": 1}, "pca_dims"),
    ((np.zeros((10, 3)), "tsne"), {"n_jobs": 0}, "n_jobs"),
])
def test_embed_errors(args, kw, match):
    with pytest.raises(LatentAtlasError, match=match):
        latent.embed(*args, **kw)


def test_embed_reports_progress_and_prints_nothing(blobs, capfd):
    x, _ = blobs
    lines: list[str] = []
    latent.embed(x, "tsne", perplexity=10, n_jobs=1, progress=lines.append)
    iterations = [line for line in lines if ": iteration " in line]
    # 125 exaggerated + 250 normal steps, reported every 25 across both phases
    assert [line.split("iteration ")[1].split(",")[0] for line in iterations] == [f"{i}/375" for i in range(25, 376, 25)]
    assert lines[0] == "[embed] t-SNE of 120 codes ..." and "done in" in lines[-1]
    lines.clear()
    latent.embed(x, "umap", progress=lines.append)
    assert lines[0] == "[embed] UMAP of 120 codes ..." and lines[-1].startswith("[embed] UMAP of 120 codes: done in")
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_sample_indices():
    a = latent.sample_indices(100, 10, seed=4)
    assert len(a) == 10 and len(set(a)) == 10 and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, latent.sample_indices(100, 10, seed=4))
    assert not np.array_equal(a, latent.sample_indices(100, 10, seed=5))
    np.testing.assert_array_equal(latent.sample_indices(5, 10), np.arange(5))
    with pytest.raises(LatentAtlasError, match="count"):
        latent.sample_indices(5, -1)


def _png_ok(path):
    from PIL import Image

    assert path.stat().st_size > 1000
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100
        arr = np.asarray(im.convert("L"))
    assert arr.std() > 1.0  # not a blank canvas
    return arr


def test_plots_written(tmp_path, blobs):
    from latentatlas.fsutil import save_figure

    x, y = blobs
    coords = latent.embed(x, "pca")
    thumbs = np.random.default_rng(0).integers(0, 256, size=(120, 8, 8), dtype=np.uint8)
    save_figure(plots.label_scatter(coords, y, ["a", "b", "c"], title="t"), tmp_path / "s.png")
    save_figure(plots.thumbnail_scatter(coords, thumbs, y, ["a", "b", "c"], canvas_px=300), tmp_path / "t.png")
    save_figure(plots.thumbnail_scatter(coords, thumbs, canvas_px=300, thumb_px=12), tmp_path / "t2.png")
    frames = np.random.default_rng(0).random((4, 8, 8)).astype(np.float32)
    fig = plots.interpolation_grid([(thumbs[0], thumbs[1], frames), (thumbs[2], thumbs[3], frames)],
                                   names=[("a", "b"), ("c", "d")])
    titles = [ax.get_title() for ax in fig.axes[:6]]
    assert titles == ["a", "0%", "33.3%", "66.7%", "100%", "b"]
    save_figure(fig, tmp_path / "i.png")
    save_figure(plots.image_grid(thumbs[:7], titles=list("abcdefg"), ncols=3), tmp_path / "g.png")
    for name in ("s", "t", "t2", "i", "g"):
        _png_ok(tmp_path / f"{name}.png")


def test_thumbnail_scatter_places_images():
    # One bright thumbnail at the lower-left corner and one at the upper right: the canvas shows ink there.
    coords = np.array([[0.0, 0.0], [1.0, 1.0]])
    thumbs = np.full((2, 4, 4), 255, np.uint8)
    fig = plots.thumbnail_scatter(coords, thumbs, canvas_px=64)
    canvas = fig.axes[0].images[0].get_array()
    assert canvas.shape == (64, 64, 3)
    assert np.all(canvas[-4:, :4] == 0.0) and np.all(canvas[:4, -4:] == 0.0)  # black ink, no labels
    assert np.all(canvas[20:40, 20:40] == 1.0)  # nothing in between


@pytest.mark.parametrize("call, match", [
    (lambda: plots.label_scatter(np.zeros((3, 3)), [0, 1, 2]), r"\(n, 2\)"),
    (lambda: plots.label_scatter(np.zeros((3, 2)), [0, 1]), "one entry per point"),
    (lambda: plots.label_scatter(np.zeros((3, 2)), None), "needs labels"),
    (lambda: plots.thumbnail_scatter(np.zeros((3, 2)), np.zeros((2, 4, 4))), "thumbnails"),
    (lambda: plots.thumbnail_scatter(np.zeros((3, 2)), np.zeros((3, 4, 4)), canvas_px=10), "canvas_px"),
    (lambda: plots.thumbnail_scatter(np.full((3, 2), np.nan), np.zeros((3, 4, 4))), "NaN"),
    (lambda: plots.interpolation_grid([]), "at least one pair"),
    (lambda: plots.interpolation_grid([(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((3, 4, 4))),
                                       (np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((2, 4, 4)))]), "same number"),
    (lambda: plots.image_grid(np.zeros((0, 4, 4))), "non-empty"),
    (lambda: plots.image_grid(np.zeros((2, 4, 4)), titles=["a"]), "titles"),
])
def test_plot_errors(call, match):
    with pytest.raises(LatentAtlasError, match=match):
        call()
