"""``latentatlas demo``: every step end to end at the smallest size, then the report it writes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from latentatlas.cli import run
from latentatlas.demo import SIZES, demo_steps

FASHION = Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz")


def test_steps_cover_the_story():
    steps = demo_steps(Path("out"), SIZES["quick"])
    commands = [argv[:2] for _, argv in steps]
    assert commands == [["ratings", "prepare"], ["ratings", "train"], ["ratings", "train"], ["images", "train"],
                        ["images", "embed"], ["images", "interpolate"]]
    solvers = [argv[argv.index("--solver") + 1] for _, argv in steps if "--solver" in argv]
    assert solvers == ["als", "sgd"]
    embed = steps[4][1]
    assert embed[embed.index("--method") + 1] == "pca,tsne"
    # The quick demo is smaller than the full one at every step that costs time.
    q, f = SIZES["quick"], SIZES["full"]
    assert q.ratings <= f.ratings and q.epochs <= f.epochs and q.images < 60_000 and q.embed_images < f.embed_images


def test_out_must_be_a_directory(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    assert run(["demo", "--out", str(target), "--tiny", "--quiet"]) == 2
    assert capsys.readouterr().err.strip() == f"latentatlas: error: --out {target} exists and is not a directory"


@pytest.mark.skipif(not FASHION.exists(), reason="Fashion-MNIST (Debian package dataset-fashion-mnist) not installed")
def test_tiny_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert run(["demo", "--out", str(out), "--tiny"]) == 0
    captured = capsys.readouterr()
    progress = [line for line in captured.err.splitlines() if line.startswith("[demo] step ")]
    assert [re.match(r"\[demo\] step (\d)/7", line).group(1) for line in progress] == list("1234567")
    assert f"report: {out / 'report' / 'report.html'}" in captured.out
    assert f"report: {out / 'report' / 'report.pdf'}" in captured.out

    kinds = {name: json.loads((out / name / "run.json").read_text())["kind"]
             for name in ("ratings", "als", "sgd", "autoencoder", "embedding", "interpolation")}
    assert kinds == {"ratings": "ratings-prepare", "als": "ratings-train", "sgd": "ratings-train",
                     "autoencoder": "images-train", "embedding": "images-embed",
                     "interpolation": "images-interpolate"}
    for name in ("als", "sgd"):
        metrics = json.loads((out / name / "run.json").read_text())["metrics"]
        assert 0.3 < metrics["test_rmse"] < 2.0            # 1–5 stars: a trained model, not garbage

    page = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert page.count("<section id=") == 7                  # six runs and the ALS-vs-SGD comparison
    assert 'data-kind="images" data-points="200"' in page
    assert page.count('data-kind="items"') == 2
    assert (out / "report" / "report.pdf").read_bytes()[:5] == b"%PDF-"
