"""``latentatlas images encode|embed|interpolate`` end to end with a tiny checkpoint and a tiny data set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentatlas.cli import run

N = 60


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import torch

    from latentatlas.images.network import ConvAutoencoderNet, save_checkpoint

    root = tmp_path_factory.mktemp("latent_cli")
    torch.manual_seed(0)
    model = ConvAutoencoderNet(channels=(2, 2, 2), latent_channels=2)
    ckpt = save_checkpoint(root / "tiny.pt", model)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), N // 3)
    patterns = rng.integers(0, 256, size=(3, 28, 28))
    images = np.clip(patterns[labels] + rng.normal(scale=30, size=(N, 28, 28)), 0, 255).astype(np.uint8)
    data = root / "tiny.npz"
    np.savez(data, images=images, labels=labels, label_names=np.array(["zero", "one", "two"]))
    return {"root": root, "ckpt": ckpt, "data": data, "images": images, "labels": labels}


def _png(path):
    from PIL import Image

    assert path.is_file() and path.stat().st_size > 1000, path
    with Image.open(path) as im:
        assert im.format == "PNG"


def _model(setup):
    from latentatlas.images.network import load_checkpoint

    return load_checkpoint(setup["ckpt"])[0]


def test_encode_writes_codes_labels_and_description(setup):
    from latentatlas.images.latent import encode

    out = setup["root"] / "enc" / "codes.npy"
    assert run(["images", "encode", "--checkpoint", str(setup["ckpt"]), "--data", str(setup["data"]),
                "--out", str(out), "--quiet"]) == 0
    codes = np.load(out)
    assert codes.shape == (N, 18) and codes.dtype == np.float32
    np.testing.assert_allclose(codes, encode(_model(setup), setup["images"]), atol=1e-6)
    np.testing.assert_array_equal(np.load(out.parent / "codes.labels.npy"), setup["labels"])
    meta = json.loads((out.parent / "codes.json").read_text())
    assert meta["n"] == N and meta["dims"] == 18 and meta["label_names"] == ["zero", "one", "two"]


def test_embed_from_codes_several_perplexities(setup, capsys):
    from latentatlas.images.latent import knn_accuracy

    codes = setup["root"] / "enc" / "codes.npy"
    if not codes.is_file():
        assert run(["images", "encode", "--checkpoint", str(setup["ckpt"]), "--data", str(setup["data"]),
                    "--out", str(codes), "--quiet"]) == 0
    out = setup["root"] / "emb"
    rc = run(["images", "embed", "--codes", str(codes), "--method", "pca,tsne", "--perplexity", "5",
              "--perplexity", "8", "--count", "12", "--threads", "1", "--neighbours", "5", "--out", str(out)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "[embed]" in err and "t-SNE (perplexity 8)" in err
    z = np.load(out / "embedding.npz")
    assert {"coords_pca", "coords_tsne", "coords_tsne_p5", "coords_tsne_p8", "labels", "label_names",
            "thumbnails", "codes"} <= set(z.files)
    assert "coords_umap" not in z.files
    for key in ("coords_pca", "coords_tsne_p5", "coords_tsne_p8"):
        assert z[key].shape == (N, 2) and z[key].dtype == np.float32
    np.testing.assert_array_equal(z["coords_tsne"], z["coords_tsne_p5"])
    np.testing.assert_array_equal(z["thumbnails"], setup["images"])
    np.testing.assert_array_equal(z["labels"], setup["labels"])
    assert list(z["label_names"]) == ["zero", "one", "two"]
    assert z["codes"].shape == (N, 18)
    doc = json.loads((out / "run.json").read_text())
    assert doc["kind"] == "images-embed" and doc["artifacts"]["embedding"] == "embedding.npz"
    m = doc["metrics"]
    assert m["knn_accuracy_pca"] == pytest.approx(knn_accuracy(z["coords_pca"], setup["labels"], k=5))
    assert m["knn_accuracy_latent"] == pytest.approx(knn_accuracy(z["codes"], setup["labels"], k=5))
    assert m["knn_accuracy_tsne"] == m["knn_accuracy_tsne_p5"]
    assert {f["file"] for f in doc["figures"]} == {f"{k}_{kind}.png" for k in ("pca", "tsne_p5", "tsne_p8")
                                                   for kind in ("labels", "thumbnails")}
    for f in doc["figures"]:
        _png(out / f["file"])

    # The same run, opened in TensorBoard's projector and by Parquet readers.
    proj, pq_path = setup["root"] / "projector", setup["root"] / "codes.parquet"
    assert run(["images", "export-projector", str(out), "--out", str(proj), "--parquet", str(pq_path)]) == 0
    assert len((proj / "tensors.tsv").read_text().splitlines()) == N
    assert (proj / "sprite.png").is_file() and "sprite" in (proj / "projector_config.pbtxt").read_text()
    import pyarrow.parquet as pq

    assert pq.read_table(pq_path).num_rows == N
    assert run(["images", "export-projector", str(out), "--out", str(out)]) == 2
    # seeded: a second run gives the same coordinates
    out2 = setup["root"] / "emb2"
    assert run(["images", "embed", "--codes", str(codes), "--method", "tsne", "--perplexity", "5", "--count", "0",
                "--threads", "1", "--out", str(out2), "--quiet"]) == 0
    np.testing.assert_array_equal(np.load(out2 / "embedding.npz")["coords_tsne"], z["coords_tsne_p5"])
    assert not list(out2.glob("*thumbnails.png"))


def test_embed_from_checkpoint_with_umap_and_limit(setup, capsys):
    out = setup["root"] / "emb_ckpt"
    rc = run(["images", "embed", "--checkpoint", str(setup["ckpt"]), "--data", str(setup["data"]), "--method",
              "umap", "--method", "pca", "--limit", "40", "--count", "10", "--out", str(out), "--quiet"])
    assert rc == 0
    assert capsys.readouterr().err == ""
    z = np.load(out / "embedding.npz")
    assert z["coords_umap"].shape == (40, 2) and z["coords_pca"].shape == (40, 2)
    np.testing.assert_array_equal(z["thumbnails"], setup["images"][:40])
    doc = json.loads((out / "run.json").read_text())
    assert [r["method"] for r in doc["tables"]["embeddings"]] == ["latent codes", "UMAP", "PCA"]
    _png(out / "umap_thumbnails.png")


def test_embed_default_fashion_mnist(setup):
    from latentatlas.images.io import FASHION_MNIST_DIR

    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip("Fashion-MNIST package not installed")
    out = setup["root"] / "emb_fm"
    assert run(["images", "embed", "--checkpoint", str(setup["ckpt"]), "--method", "pca", "--limit", "200",
                "--count", "50", "--out", str(out), "--quiet"]) == 0
    z = np.load(out / "embedding.npz")
    assert z["labels"].shape == (200,) and "Trouser" in list(z["label_names"])


def test_interpolate_grid_and_endpoints(setup):
    from latentatlas.images.latent import decode, encode

    out = setup["root"] / "interp"
    assert run(["images", "interpolate", "--checkpoint", str(setup["ckpt"]), "--data", str(setup["data"]),
                "--pairs", "0:1, 25:59", "--steps", "5", "--out", str(out), "--quiet"]) == 0
    _png(out / "interpolation.png")
    doc = json.loads((out / "run.json").read_text())
    assert doc["kind"] == "images-interpolate" and doc["figures"][0]["file"] == "interpolation.png"
    assert doc["metrics"] == {"n_pairs": 2, "steps": 5}
    frames = np.load(out / "frames.npz")["frames"]
    assert frames.shape == (2, 5, 28, 28)
    model = _model(setup)
    recon = decode(model, encode(model, setup["images"][[25, 59]]), model.code_shape)
    np.testing.assert_allclose(frames[1, 0], recon[0], atol=1e-6)
    np.testing.assert_allclose(frames[1, -1], recon[1], atol=1e-6)


def _fails(capsys, argv, *needles):
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("latentatlas: error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


def test_errors(setup, capsys, tmp_path):
    ck, data = str(setup["ckpt"]), str(setup["data"])
    out = str(tmp_path / "o")
    codes = tmp_path / "c.npy"
    np.save(codes, np.zeros((10, 4), np.float32))
    bad_labels = tmp_path / "l.npy"
    np.save(bad_labels, np.zeros(9, np.int64))
    # checkpoint
    _fails(capsys, ["images", "encode", "--checkpoint", str(tmp_path / "nope.pt"), "--data", data, "--out",
                    str(tmp_path / "x.npy")], "nope.pt", "no such file")
    _fails(capsys, ["images", "encode", "--data", data, "--out", str(tmp_path / "x.npy")], "--checkpoint")
    not_ckpt = tmp_path / "junk.pt"
    not_ckpt.write_bytes(b"junk")
    _fails(capsys, ["images", "interpolate", "--checkpoint", str(not_ckpt), "--data", data, "--out", out], "junk.pt")
    _fails(capsys, ["images", "encode", "--checkpoint", ck, "--data", data, "--out", str(tmp_path / "x.txt")], ".npy")
    _fails(capsys, ["images", "encode", "--checkpoint", ck, "--data", data], "--out")
    _fails(capsys, ["images", "encode", "--checkpoint", ck, "--data", data, "--data-dir", str(tmp_path),
                    "--out", str(tmp_path / "x.npy")], "either data", "or data_dir")
    _fails(capsys, ["images", "encode", "--checkpoint", ck, "--split", "valid", "--out", str(tmp_path / "x.npy")],
           "split must be", "valid")
    _fails(capsys, ["images", "encode", "--checkpoint", ck, "--data", str(tmp_path / "none.npz"),
                    "--out", str(tmp_path / "x.npy")], "none.npz")
    _fails(capsys, ["images", "encode", "--checkpoint", ck, "--data", data, "--limit", "0",
                    "--out", str(tmp_path / "x.npy")], "limit=0")
    # embed
    _fails(capsys, ["images", "embed", "--codes", str(codes), "--checkpoint", ck, "--out", out], "exactly one")
    _fails(capsys, ["images", "embed", "--out", out], "exactly one")
    _fails(capsys, ["images", "embed", "--codes", str(codes)], "--out")
    _fails(capsys, ["images", "embed", "--codes", str(tmp_path / "missing.npy"), "--out", out], "missing.npy")
    _fails(capsys, ["images", "embed", "--codes", str(codes), "--labels", str(bad_labels), "--data", data,
                    "--out", out], "10 rows", "9")
    _fails(capsys, ["images", "embed", "--codes", str(codes), "--data", data, "--out", out], "10 rows", "60")
    _fails(capsys, ["images", "embed", "--checkpoint", ck, "--data", data, "--method", "pca,tsen", "--out", out],
           "unknown method", "tsen")
    _fails(capsys, ["images", "embed", "--checkpoint", ck, "--data", data, "--method", ",", "--out", out], "method: no method given")
    _fails(capsys, ["images", "embed", "--checkpoint", ck, "--data", data, "--method", "tsne", "--perplexity", "50",
                    "--out", out], "perplexity=50", "too large")
    _fails(capsys, ["images", "embed", "--checkpoint", ck, "--data", data, "--perplexity", "0", "--out", out],
           "perplexity=0.0: must be positive")
    _fails(capsys, ["images", "embed", "--checkpoint", ck, "--data", data, "--count", "-1", "--out", out], "count=-1")
    _fails(capsys, ["images", "embed", "--checkpoint", ck, "--data", data, "--neighbours", "0", "--out", out], "k=0")
    _fails(capsys, ["images", "embed", "--checkpoint", ck, "--data", data, "--neighbours", "60", "--method", "pca",
                    "--out", out], "k=60")
    _fails(capsys, ["images", "embed", "--checkpoint", ck, "--data", data, "--threads", "0", "--out", out], "threads=0")
    _fails(capsys, ["images", "embed", "--checkpoint", ck, "--labels", str(bad_labels), "--out", out], "labels go with codes")
    two_d = tmp_path / "l2.npy"
    np.save(two_d, np.zeros((10, 2), np.int64))
    _fails(capsys, ["images", "embed", "--codes", str(codes), "--labels", str(two_d), "--out", out], "1-D")
    bad_codes = tmp_path / "b.npy"
    bad_codes.write_bytes(b"not numpy")
    _fails(capsys, ["images", "embed", "--codes", str(bad_codes), "--out", out], "b.npy", "cannot read")
    # interpolate
    _fails(capsys, ["images", "interpolate", "--checkpoint", ck, "--data", data, "--pairs", "0:60", "--out", out],
           "index 60", "60 images")
    _fails(capsys, ["images", "interpolate", "--checkpoint", ck, "--data", data, "--pairs", "0-1", "--out", out],
           "'0-1'", "I:J")
    _fails(capsys, ["images", "interpolate", "--checkpoint", ck, "--data", data, "--pairs", "a:b", "--out", out],
           "integers")
    _fails(capsys, ["images", "interpolate", "--checkpoint", ck, "--data", data, "--pairs", ",", "--out", out],
           "no pair")
    _fails(capsys, ["images", "interpolate", "--checkpoint", ck, "--data", data, "--steps", "1", "--out", out],
           "steps must be an integer from 2 to 1000")
    # refused before the checkpoint or any data is read, let alone 10^9 frames allocated
    _fails(capsys, ["images", "interpolate", "--checkpoint", str(tmp_path / "absent.pt"), "--steps", "1000000000",
                    "--out", out], "from 2 to 1000")
    _fails(capsys, ["images", "interpolate", "--checkpoint", ck, "--data", data], "--out")
    # R8: the number of pairs is bounded, in one line, before anything is decoded
    many = ",".join(["0:1"] * 5000)
    _fails(capsys, ["images", "interpolate", "--checkpoint", ck, "--data", data, "--pairs", many, "--out", out],
           "pairs: 5,000 pairs given; at most 100")
    assert not (tmp_path / "o" / "run.json").exists()
    # images of another size and in colour are made what the model takes (28×28 grey), and said so
    small = tmp_path / "small.npz"
    np.savez(small, images=np.zeros((5, 3, 12, 12), np.uint8))
    assert run(["images", "interpolate", "--checkpoint", ck, "--data", str(small), "--out", out]) == 0
    assert "made 28×28 with 1" in capsys.readouterr().err
    assert np.load(tmp_path / "o" / "frames.npz")["frames"].shape == (1, 10, 28, 28)
