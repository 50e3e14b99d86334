"""The Python API of the image side: ConvAutoencoder as an estimator, read_images, embed, the run workflow,
and no global side effects."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import torch
from sklearn.base import clone

from latentatlas import ConvAutoencoder, LatentAtlasError, embed, read_images, runs
from latentatlas.images import latent, workflow
from latentatlas.images.autoencoder import split_holdout
from latentatlas.images.io import FASHION_MNIST_DIR, ImageSet

TINY = dict(epochs=2, batch_size=16, channels=(2, 4, 8), latent_channels=4, num_threads=1)


def rectangles(n: int, side: int = 16, seed: int = 0) -> np.ndarray:
    """Bright rectangles on black: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, side, side), np.uint8)
    for img in images:
        r, c = rng.integers(0, side - 4, size=2)
        h, w = rng.integers(3, side // 2, size=2)
        img[r:r + h, c:c + w] = rng.integers(120, 256)
    return images


@pytest.fixture(scope="module")
def images():
    return rectangles(80)


@pytest.fixture(scope="module")
def fitted(images):
    return ConvAutoencoder(**TINY).fit(images)


def test_fit_returns_self_with_model_and_history(images, fitted):
    ae = ConvAutoencoder(**TINY)
    assert ae.fit(images) is ae
    assert isinstance(ae.model_, torch.nn.Module) and not ae.model_.training
    h = ae.history_
    # 10% of 80 images held out (seeded): 72 training images in batches of 16 → 5 batches per epoch
    assert h.epochs_completed == 2 and h.batches_per_epoch == 5 and len(h.batch_loss) == 10
    assert h.best_epoch == int(np.argmin(h.test_loss)) + 1 and not h.interrupted
    assert ae.image_shape_ == (16, 16) and ae.code_shape_ == (4, 1, 1) and ae.code_size_ == 4
    # model_ holds the kept (best) epoch: its test error is the best one recorded
    train, test = split_holdout(ImageSet(images), 0.1, 0)  # the split fit made
    assert -ae.score(test.images) == pytest.approx(h.best_test_loss, rel=1e-5)


def test_transform_inverse_transform_shapes_and_dtypes(images, fitted):
    codes = fitted.transform(images[:7])
    assert codes.shape == (7, 4) and codes.dtype == np.float32
    decoded = fitted.inverse_transform(codes)
    assert decoded.shape == (7, 16, 16) and decoded.dtype == np.float32
    assert decoded.min() >= 0.0 and decoded.max() <= 1.0
    # floats in [0, 1], an ImageSet and a torch tensor are the same images as uint8
    np.testing.assert_array_equal(fitted.transform(images[:7] / 255.0), codes)
    np.testing.assert_array_equal(fitted.transform(ImageSet(images[:7])), codes)
    np.testing.assert_array_equal(fitted.transform(torch.from_numpy(images[:7])), codes)
    np.testing.assert_array_equal(fitted.inverse_transform(torch.from_numpy(codes)), decoded)
    # decode(encode(x)) is the network's reconstruction: its error is the one score() measures
    err = np.mean((decoded - images[:7] / 255.0) ** 2)
    assert err == pytest.approx(-fitted.score(images[:7]), rel=1e-5)


def test_same_seed_same_codes_other_seed_other_codes(images, fitted):
    again = ConvAutoencoder(**TINY).fit(images)
    np.testing.assert_array_equal(again.transform(images), fitted.transform(images))
    other = ConvAutoencoder(**{**TINY, "seed": 1}).fit(images)
    assert not np.array_equal(other.transform(images), fitted.transform(images))


def test_save_load_round_trip(tmp_path, images, fitted):
    path = fitted.save(tmp_path / "ae.pt")
    loaded = ConvAutoencoder.load(path)
    np.testing.assert_array_equal(loaded.transform(images), fitted.transform(images))
    assert loaded.get_params() == {**fitted.get_params(), "channels": (2, 4, 8), "num_threads": None}
    assert loaded.history_.test_loss == fitted.history_.test_loss
    # the file holds only tensors and plain values
    assert torch.load(path, weights_only=True)["config"]["latent_channels"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["ae.pt"]


def test_interpolate_ends_decode_the_two_codes(images, fitted):
    frames = fitted.interpolate(images[3], images[9], steps=6)
    assert frames.shape == (6, 16, 16) and frames.dtype == np.float32
    ends = fitted.inverse_transform(fitted.transform(images[[3, 9]]))
    np.testing.assert_allclose(frames[0], ends[0], atol=1e-6)
    np.testing.assert_allclose(frames[-1], ends[1], atol=1e-6)
    with pytest.raises(LatentAtlasError, match="from 2 to 1000"):
        fitted.interpolate(images[3], images[9], steps=100_000)


def test_sklearn_clone_and_params(fitted):
    twin = clone(fitted)
    assert twin.get_params() == fitted.get_params() and not hasattr(twin, "model_")
    assert twin.set_params(epochs=7).epochs == 7
    with pytest.raises(LatentAtlasError, match="not fitted"):
        twin.transform(np.zeros((1, 16, 16), np.uint8))
    ref = ConvAutoencoder.from_preset("reference", epochs=3)
    assert (ref.batch_size, ref.lr, ref.schedule, ref.epochs) == (1024, 1e-3, "exponential", 3)
    assert ref.train_config().preset == "reference" and ConvAutoencoder().train_config().preset == "fast"
    assert ConvAutoencoder(lr=0.05).train_config().preset == "custom"


@pytest.mark.parametrize("params, message", [
    ({"batch_size": 0}, "batch_size=0"), ({"schedule": "cosine"}, "schedule='cosine'"),
    ({"lr": -1.0}, "lr=-1.0"), ({"negative_slope": float("nan")}, "negative_slope"),
    ({"validation_fraction": 1.5}, "validation_fraction=1.5"), ({"model": "gan"}, "model='gan'"),
    ({"beta": -1.0}, "beta=-1.0"),
])
def test_parameters_are_checked_in_fit_not_init(images, params, message):
    ae = ConvAutoencoder(**{**TINY, **params})  # no error here, as in scikit-learn
    with pytest.raises(LatentAtlasError, match=message):
        ae.fit(images)


def test_fit_with_test_images_and_bad_shapes(images):
    ae = ConvAutoencoder(**{**TINY, "epochs": 1}).fit(images[:64], images[64:])
    assert ae.history_.epochs_completed == 1
    with pytest.raises(LatentAtlasError, match="at least 12×12"):
        ConvAutoencoder(**TINY).fit(np.zeros((20, 11, 15), np.uint8))
    with pytest.raises(LatentAtlasError, match="N×H×W"):
        ConvAutoencoder(**TINY).fit(np.zeros((20, 16), np.uint8))


def test_fit_resumes_from_a_checkpoint_like_an_uninterrupted_fit(tmp_path, images):
    params = {**TINY, "schedule": "exponential"}
    straight = ConvAutoencoder(**{**params, "epochs": 3}).fit(images)
    ConvAutoencoder(**{**params, "epochs": 1}).fit(images, out_dir=tmp_path)
    resumed = ConvAutoencoder(**{**params, "epochs": 3}).fit(images, out_dir=tmp_path, resume=tmp_path / "last.pt")
    assert resumed.history_.test_loss == straight.history_.test_loss
    np.testing.assert_array_equal(resumed.transform(images), straight.transform(images))
    assert {p.name for p in tmp_path.iterdir()} == {"last.pt", "best.pt"}


def test_no_global_side_effects_of_fit_and_transform(tmp_path, images, capfd, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    saved = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        ae = ConvAutoencoder(**{**TINY, "num_threads": 1}).fit(images)
        assert torch.get_num_threads() == 2
        ae.transform(images)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(saved)
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # silent by default
    assert list(tmp_path.iterdir()) == []  # no temporary files


def test_progress_callback_gets_the_lines(images):
    lines: list[str] = []
    ConvAutoencoder(**{**TINY, "epochs": 1}, progress=lines.append).fit(images)
    assert lines[0].startswith("[images train] autoencoder: 72 training and 8 validation images 16×16")
    assert lines[-1].startswith("[images train] epoch 1/1: train MSE")


def test_imports_change_no_global_state():
    # matplotlib.get_backend(), rcParams["backend"] and rcParams.items() resolve the backend (importing
    # pyplot) themselves, so the values are read with dict's own methods and _get_backend_or_none().
    code = """
import sys, matplotlib
rc = dict(dict.items(matplotlib.rcParams))
before = matplotlib.rcParams._get_backend_or_none()
import latentatlas.images, latentatlas.images.autoencoder, latentatlas.images.workflow, latentatlas.images.latent
import latentatlas.plots.images, latentatlas.plots.training, latentatlas.plots.style
from latentatlas import ConvAutoencoder, read_images, embed
import numpy as np
from latentatlas.plots.images import label_scatter
label_scatter(np.zeros((3, 2)) + np.arange(3)[:, None], [0, 1, 2]).savefig(__import__("io").BytesIO())
now = dict(dict.items(matplotlib.rcParams))
changed = [k for k in rc if now[k] != rc[k]]
print(matplotlib.rcParams._get_backend_or_none() == before, changed, "typer" in sys.modules,
      "click" in sys.modules, "matplotlib.pyplot" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True).stdout
    # no backend chosen, no rcParams changed, no CLI libraries, and figures made without pyplot
    assert out.split() == ["True", "[]", "False", "False", "False"]


def test_read_images_and_embed_public_names():
    if not (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    test = read_images(split="test", limit=300)
    assert test.images.shape == (300, 28, 28) and test.label_names[test.labels[0]] == "Ankle boot"
    coords = embed(test.images.reshape(300, -1).astype(np.float32) / 255, "pca")
    assert coords.shape == (300, 2) and coords.dtype == np.float32
    assert embed is latent.embed


# ---- the workflow functions the CLI and the demo call ---------------------------------------------------

def _test_part(data):
    """The test images train_run holds out of ``data`` (10 %, seed 0)."""
    return split_holdout(read_images(data), 0.1, 0)[1]


def test_workflow_runs_round_trip_through_the_run_contract(tmp_path, images):
    data = tmp_path / "rects.npz"
    np.savez(data, images=images, labels=np.arange(len(images)) % 4)
    lines: list[str] = []
    trained = workflow.train_run(tmp_path / "train", data=data, progress=lines.append, **TINY)
    assert not trained.interrupted and trained.run.kind == runs.IMAGES_TRAIN
    run = runs.load_run(tmp_path / "train")
    assert run.artifact(runs.CHECKPOINT).name == "best.pt" and run.metrics["best_epoch"] == trained.history.best_epoch
    assert run.metrics_file()["validation_mse"] == trained.history.validation_loss == trained.history.test_loss
    assert run.metrics_file()["test_mse"] == trained.test["mse"] == run.metrics["test_mse"]
    assert trained.test["mse"] == pytest.approx(-trained.estimator.score(_test_part(data)), rel=1e-6)
    np.testing.assert_array_equal(ConvAutoencoder.load(run.artifact(runs.CHECKPOINT)).transform(images),
                                  trained.estimator.transform(images))

    # a training run folder works wherever a checkpoint is asked for
    emb = workflow.embed_run(tmp_path / "emb", checkpoint=tmp_path / "train", data=data, methods="pca",
                             count=10, k=3)
    assert emb.kind == runs.IMAGES_EMBED
    with np.load(emb.artifact(runs.EMBEDDING)) as z:
        np.testing.assert_allclose(z["codes"], trained.estimator.transform(images), atol=1e-6)
        assert z["coords_pca"].shape == (80, 2)
    interp = workflow.interpolate_run(tmp_path / "interp", tmp_path / "train", data=data, pairs=[(0, 1)], steps=4)
    with np.load(tmp_path / "interp" / "frames.npz") as z:
        np.testing.assert_allclose(z["frames"][0], trained.estimator.interpolate(images[0], images[1], 4), atol=1e-6)
    assert interp.metrics == {"n_pairs": 1, "steps": 4}
    enc = workflow.encode_run(tmp_path / "train", tmp_path / "codes.npy", data=data)
    assert enc.n == 80 and enc.dims == 4 and json.loads(enc.meta.read_text())["labels"] == "codes.labels.npy"

    # a second embedding into the same folder replaces it as a whole, leaving no temporary sibling
    workflow.embed_run(tmp_path / "emb", codes=tmp_path / "codes.npy", methods="pca", count=0, k=3)
    assert not list((tmp_path / "emb").glob("*thumbnails.png"))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_train_run_resume_takes_settings_from_the_checkpoint(tmp_path, images):
    data = tmp_path / "rects.npz"
    np.savez(data, images=images)
    first = workflow.train_run(tmp_path / "run", data=data, **{**TINY, "epochs": 1, "schedule": "exponential"})
    assert first.history.epochs_completed == 1
    # only the new epoch count is given; the rest comes from last.pt, and out defaults to its folder
    more = workflow.train_run(data=data, resume=tmp_path / "run", epochs=2)
    assert more.out == tmp_path / "run" and more.history.epochs_completed == 2
    assert more.estimator.get_params()["batch_size"] == 16 and more.estimator.channels == (2, 4, 8)
    straight = workflow.train_run(tmp_path / "straight", data=data, **{**TINY, "schedule": "exponential"})
    assert more.history.test_loss == straight.history.test_loss
    with pytest.raises(LatentAtlasError, match="unknown autoencoder parameter 'epoch'"):
        workflow.train_run(tmp_path / "x", data=data, epoch=3)


def test_a_killed_training_leaves_no_run_json_beside_newer_checkpoints(tmp_path, images, monkeypatch):
    from latentatlas.images import training

    data = tmp_path / "rects.npz"
    np.savez(data, images=images)
    params = {**TINY, "epochs": 1, "schedule": "exponential"}
    workflow.train_run(tmp_path / "run", data=data, **params)
    assert (tmp_path / "run" / "run.json").is_file()
    real = training.run_training

    def one_epoch_then_killed(*args, **kwargs):
        real(*args, **kwargs)  # writes last.pt/best.pt of the new epoch
        raise KeyboardInterrupt("stands for kill -9 before run.json is rewritten")

    monkeypatch.setattr(training, "run_training", one_epoch_then_killed)
    with pytest.raises(KeyboardInterrupt):
        workflow.train_run(data=data, resume=tmp_path / "run", epochs=2)
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["epoch"] == 2
    assert not (tmp_path / "run" / "run.json").exists()
    with pytest.raises(LatentAtlasError, match="missing run.json"):
        runs.load_run(tmp_path / "run")


def test_resume_into_another_folder_leaves_the_first_untouched(tmp_path, images):
    data = tmp_path / "rects.npz"
    np.savez(data, images=images)
    params = {**TINY, "epochs": 1, "schedule": "exponential"}
    workflow.train_run(tmp_path / "a", data=data, **params)
    before = {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()}
    more = workflow.train_run(tmp_path / "b", data=data, resume=tmp_path / "a", epochs=2)
    assert {p.name: p.read_bytes() for p in (tmp_path / "a").iterdir()} == before
    run = runs.load_run(tmp_path / "b")
    best = torch.load(run.artifact(runs.CHECKPOINT), weights_only=True)
    assert best["epoch"] == more.history.best_epoch and run.metrics["epochs_completed"] == 2
    assert run.config["resume"] == str(tmp_path / "a" / "last.pt")
