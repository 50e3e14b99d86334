"""Small, fully known run directories for the report tests, written through the run-folder contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from latentatlas import runs
from latentatlas.plots.style import subplots

LABEL_NAMES = ["square", "cross", "ring"]


def _png(path: Path, title: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    fig, ax = subplots(figsize=(5, 3.2))
    ax.plot(np.cumsum(rng.normal(size=50)), color="#1f77b4")
    ax.set_title(title)
    fig.savefig(path, dpi=80)


def _write_run(d: Path, kind: str, title: str, config: dict, metrics: dict, figures: list[dict],
               artifacts: dict, tables: dict | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(figures):
        _png(d / f["file"], f["title"], seed=i + len(str(d)))
    runs.write_run(d, kind, title, config=config, metrics=metrics, figures=figures, artifacts=artifacts,
                   tables=tables or {}, created="2026-11-25T22:00:00+00:00")
    return d


def thumbnail(label: int, rng: np.random.Generator) -> np.ndarray:
    """A 28×28 picture of a square, a cross or a ring, so neighbours are checkable by eye."""
    img = np.zeros((28, 28), dtype=np.uint8)
    yy, xx = np.mgrid[:28, :28]
    c = 14 + rng.integers(-2, 3, size=2)
    if label == 0:
        img[c[0] - 7:c[0] + 7, c[1] - 7:c[1] + 7] = 220
    elif label == 1:
        img[c[0] - 2:c[0] + 2, 3:25] = 220
        img[3:25, c[1] - 2:c[1] + 2] = 220
    else:
        r = np.hypot(yy - c[0], xx - c[1])
        img[(r > 6) & (r < 10)] = 220
    return img


def embedding_run(d: Path, n: int = 90, d_code: int = 12, seed: int = 0) -> Path:
    """An images-embed run: three well separated clusters of codes, one per label."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    centres = rng.normal(0, 10, (3, d_code))
    codes = (centres[labels] + rng.normal(0, 1, (n, d_code))).astype(np.float32)
    thumbs = np.stack([thumbnail(int(lab), rng) for lab in labels])
    pca = codes[:, :2].astype(np.float32)
    tsne = (codes[:, 2:4] * 2).astype(np.float32)
    d.mkdir(parents=True, exist_ok=True)
    np.savez(d / "embedding.npz", codes=codes, labels=labels, label_names=np.array(LABEL_NAMES),
             thumbnails=thumbs, coords_pca=pca, coords_tsne=tsne)
    return _write_run(d, runs.IMAGES_EMBED, "Embedding of the test codes", {"method": "pca,tsne", "count": n},
                      {"knn_accuracy_latent": 0.97, "knn_accuracy_tsne": 0.95},
                      [{"file": "scatter_tsne.png", "title": "t-SNE of the codes", "caption": "coloured by label"}],
                      {"embedding": "embedding.npz"})


def model_file(path: Path, n_items: int = 40, k: int = 4, seed: int = 0) -> np.ndarray:
    """A saved LatentFactorModel with known item factors (set by hand, not trained); returns them.

    Item ``i`` (id ``100 + i``) was seen by ``i % 5`` of the five users, so the per-item counts are known.
    """
    from latentatlas.ratings.model import History, LatentFactorModel

    rng = np.random.default_rng(seed)
    factors = rng.normal(size=(n_items, k))
    m = LatentFactorModel(k=k)
    m.user_factors_ = rng.normal(size=(5, k)).astype(np.float32)
    m.item_factors_ = factors.astype(np.float32)
    m.user_bias_ = np.zeros(5, np.float32)
    m.item_bias_ = np.zeros(n_items, np.float32)
    m.user_ids_ = np.arange(5)
    m.item_ids_ = np.arange(100, 100 + n_items)
    seen = [[i for i in range(n_items) if i % 5 > u] for u in range(5)]
    m.seen_indptr_ = np.cumsum([0] + [len(s) for s in seen]).astype(np.int64)
    m.seen_items_ = np.array([i for s in seen for i in s], dtype=np.int32)
    m.mu_, m.scale_, m.history_, m.reg_ = 3.0, (1.0, 5.0), History(), 0.05
    m.save(path)
    return factors.astype(np.float32).astype(np.float64)


def train_run(d: Path, solver: str, rmse: float, n_items: int = 40, seed: int = 0) -> Path:
    """A ratings-train run with known metrics, histories (best step 9 of 12) and item factors."""
    d.mkdir(parents=True, exist_ok=True)
    model_file(d / "model.npz", n_items=n_items, seed=seed)
    steps = 12
    train = list(np.linspace(10, 2, steps) * (1.3 if solver == "sgd" else 1.0))
    val = list(np.linspace(11, 4, steps) + np.r_[np.zeros(steps - 3), [0.2, 0.4, 0.6]])
    val_rmse = [v / 10 for v in val]
    (d / "metrics.json").write_text(json.dumps({"steps": list(range(1, steps + 1)), "train_loss": train,
                                                "validation_loss": val, "train_rmse_history": [v / 12 for v in train],
                                                "validation_rmse_history": val_rmse, "best_iteration": 9}))
    recs = [{"user": u, "rank": r + 1, "item": 100 + (u * 7 + r * (3 if solver == "als" else 5)) % n_items,
             "score": round(5 - 0.1 * r, 2)} for u in (1, 2, 3) for r in range(10)]
    return _write_run(d, runs.RATINGS_TRAIN, f"{solver.upper()} model", {"solver": solver, "k": 4, "reg": 0.05},
                      {"test_rmse": rmse, "test_mae": rmse * 0.8, "seconds": 1.5, "best_iteration": 9},
                      [{"file": "loss_curve.png", "title": f"{solver} loss", "caption": "per iteration"}],
                      {"model": "model.npz", "metrics": "metrics.json"}, {"recommendations": recs})


def prepare_run(d: Path) -> Path:
    """A real ``ratings prepare`` run on a small built-in data set (400 users, 303 items, 20,000 ratings)."""
    from latentatlas.cli import run

    assert run(["ratings", "prepare", "--out", str(d), "--builtin-size", "20000", "--quiet"]) == 0
    return d


def interpolate_run(d: Path) -> Path:
    return _write_run(d, runs.IMAGES_INTERPOLATE, "Interpolation", {"steps": 8}, {},
                      [{"file": "interpolation.png", "title": "Interpolation grid", "caption": "0% to 100%"}], {})


def all_runs(root: Path) -> list[Path]:
    return [prepare_run(root / "prep"), train_run(root / "als", "als", 0.91), train_run(root / "sgd", "sgd", 0.95),
            embedding_run(root / "embed"), interpolate_run(root / "interp")]
