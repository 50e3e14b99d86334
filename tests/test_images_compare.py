"""The plain autoencoder and the VAE side by side: `images compare` trains both on the same images and the
report compares their test MSE, PSNR and k-NN accuracy of the codes (checked against a brute-force k-NN)."""

from __future__ import annotations

import html
import json

import numpy as np
import pytest

from latentatlas import runs
from latentatlas.cli import run
from latentatlas.images import workflow
from latentatlas.images.autoencoder import ConvAutoencoder
from latentatlas.report.images import autoencoder_comparison, comparison_rows
from latentatlas.report.sections import fmt

pytestmark = pytest.mark.slow
COLOURS = np.array([[220, 120, 30], [40, 200, 90], [60, 80, 230]], np.uint8)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """90 colour pictures 16×16: a square of one of three colours at a random place; the colour is the label."""
    rng = np.random.default_rng(0)
    labels = np.arange(90) % 3
    images = np.zeros((90, 3, 16, 16), np.uint8)
    for img, label in zip(images, labels):
        r, c = rng.integers(0, 10, size=2)
        img[:, r:r + 6, c:c + 6] = COLOURS[label][:, None, None]
    path = tmp_path_factory.mktemp("compare") / "squares.npz"
    np.savez(path, images=images, labels=labels)
    return path


@pytest.fixture(scope="module")
def compared(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare-run") / "both"
    return workflow.compare_run(out, data=data, beta=0.5, epochs=2, batch_size=16, num_threads=1, seed=0,
                                progress=lambda line: None)


def brute_force_knn(codes: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Leave-one-out k-NN label accuracy, majority vote, ties to the smallest label."""
    d = ((codes[:, None, :] - codes[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    hits = 0
    for i in range(len(codes)):
        near = np.argsort(d[i], kind="stable")[:k]
        votes = np.bincount(labels[near], minlength=labels.max() + 1)
        hits += int(np.argmax(votes) == labels[i])
    return hits / len(codes)


def test_compare_trains_both_on_the_same_split_and_reports_them_side_by_side(compared, data):
    ae, vae = compared.ae, compared.vae
    assert ae.estimator.model == "ae" and vae.estimator.model == "vae" and vae.estimator.beta == 0.5
    assert ae.data == vae.data                                   # same images, same split sizes
    _, _, test, _ = workflow.train_data(data=data, seed=0)
    for r in (ae, vae):
        est = ConvAutoencoder.from_checkpoint(r.out)
        k = min(10, len(test) - 1)
        assert r.test["knn_k"] == k
        assert r.test["knn_accuracy"] == pytest.approx(brute_force_knn(est.transform(test), test.labels, k))
        assert r.test["mse"] == pytest.approx(-est.score(test), rel=1e-6)
        assert r.test["psnr_db"] == pytest.approx(10 * np.log10(1 / r.test["mse"]))
        metrics = runs.load_run(r.out).metrics
        assert metrics["test_knn_accuracy"] == r.test["knn_accuracy"]
        assert json.loads((r.out / "metrics.json").read_text())["test_knn_accuracy"] == r.test["knn_accuracy"]

    report = compared.report
    assert report.sections[-1] == "Comparison of the trained autoencoders"
    assert report.pdf.stat().st_size > 0 and report.pdf_pages >= 3
    page = report.html.read_text(encoding="utf-8")
    start = page.index("Test scores side by side")
    table = html.unescape(page[start:start + 4000])
    for r in (ae, vae):
        for value in (r.test["mse"], r.test["psnr_db"], r.test["knn_accuracy"]):
            assert fmt(value) in table
    assert "VAE β=0.5 (vae)" in table and "AE (ae)" in table
    assert "Plain autoencoder and VAE side by side" in page


def test_the_comparison_needs_both_kinds(compared):
    both = runs.load_runs([compared.ae.out, compared.vae.out])
    header, rows = comparison_rows(both)
    assert header[:5] == ["model", "code numbers", "test MSE", "PSNR (dB)", "k-NN accuracy"]
    assert [row[0] for row in rows] == ["AE (ae)", "VAE β=0.5 (vae)"] and rows[0][1] == rows[1][1] == 32
    assert rows[0][5] is None and rows[1][5] == pytest.approx(compared.vae.test["kl"])
    assert autoencoder_comparison(both) is not None
    assert autoencoder_comparison(runs.load_runs([compared.ae.out])) is None                 # one model only
    assert autoencoder_comparison(runs.load_runs([compared.vae.out, compared.vae.out])) is None   # two VAEs


def test_cli_compare(data, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert run(["images", "compare", "--data", str(data), "--out", str(out), "--epochs", "1", "--batch-size", "16",
                "--threads", "1", "--beta", "0.1", "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("autoencoder: test MSE ") and lines[1].startswith("VAE (beta 0.1): test MSE ")
    assert "-NN accuracy" in lines[0] and lines[2] == f"report: {out / 'report' / 'report.html'} and " \
                                                       f"{out / 'report' / 'report.pdf'}"
    assert (out / "ae" / "best.pt").is_file() and (out / "vae" / "best.pt").is_file()
