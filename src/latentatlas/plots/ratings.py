"""Figures of the recommender: loss curves of training runs, the rating histogram and the ranking metrics."""

from __future__ import annotations

from typing import Mapping

import numpy as np
from matplotlib.ticker import MaxNLocator

from latentatlas.plots.style import PALETTE, repr_png, styled, subplots


def _as_dict(history) -> dict:
    return history if isinstance(history, Mapping) else history.to_dict()


def _sampled(h: Mapping) -> bool:
    """Whether a history is a Gibbs sampler's (``solver="bayes"``): RMSE per sample, no loss, no early stopping."""
    return h.get("solver") == "bayes" or (not h.get("train_loss") and bool(h.get("train_rmse")))


@styled
def loss_curves(histories, metric: str = "loss", titles: list[str] | None = None):
    """Training and validation ``metric`` ("loss": the penalised sum of squares, or "rmse") per
    iteration, one panel per run side by side (e.g. ALS and SGD).

    ``histories`` is a :class:`~latentatlas.ratings.model.History` (or its ``to_dict()``), a list of them,
    or a mapping title → history. A dotted line marks the step whose factors were kept. A validation curve
    is drawn only in the panel of the quantity early stopping watched (``history.criterion``), and is
    labelled so: the penalised validation loss adds the *training* factors' penalty, so its minimum need
    not be where the validation RMSE's is. A Bayesian (Gibbs) history has RMSEs per sample and no loss: its
    panel shows the RMSEs, without a kept step (the model averages the kept samples).
    """
    if metric not in ("loss", "rmse"):
        raise ValueError(f"metric must be 'loss' or 'rmse', got {metric!r}")
    if isinstance(histories, Mapping) and "steps" not in histories:
        titles = list(histories)
        histories = list(histories.values())
    elif not isinstance(histories, (list, tuple)):
        histories = [histories]
    histories = [_as_dict(h) for h in histories]
    titles = titles or [""] * len(histories)
    n = len(histories)
    fig, axes = subplots(1, n, figsize=(5.0 * n, 3.8), squeeze=False)
    for ax, h, title in zip(axes[0], histories, titles):
        steps = np.asarray(h.get("steps") or [])
        criterion = h.get("criterion") or "validation_rmse"
        sampled = _sampled(h)
        shown = "rmse" if sampled and metric == "loss" else metric  # a sampler records no loss
        for part in ("train", "validation"):
            key = f"{part}_{shown}"
            if part == "validation" and key != criterion:
                continue
            values = np.asarray(h.get(key) or [], dtype=np.float64)
            if len(values):
                x = steps[: len(values)] if len(steps) >= len(values) else np.arange(1, len(values) + 1)
                label = f"{'training' if part == 'train' else part} {'RMSE' if shown == 'rmse' else shown}"
                if sampled and part == "validation":
                    label += " (running mean of the kept samples)"
                elif key == criterion:
                    label += " (early-stopping criterion)"
                ax.plot(x, values, marker="o" if len(values) < 30 else None, markersize=3,
                        color=PALETTE[part], label=label)
        if h.get("best_step") and not sampled:
            ax.axvline(h["best_step"], color="grey", linestyle=":", label=f"kept (step {h['best_step']})")
        if shown == "loss":
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("Gibbs sample" if sampled else "iteration")
        ax.set_ylabel("loss (sum of squares + penalty)" if shown == "loss" else "RMSE")
        ax.set_title(title)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False)
    fig.tight_layout()
    return fig


@styled
def rating_histogram(histogram, title: str = "Ratings"):
    """Bars of how often each rating occurs; ``histogram`` is ``Ratings.rating_histogram()`` (label →
    count) or a :class:`~latentatlas.ratings.data.Ratings`."""
    if hasattr(histogram, "rating_histogram"):
        histogram = histogram.rating_histogram()
    labels = list(histogram)
    counts = np.array([int(histogram[k]) for k in labels])
    fig, ax = subplots(figsize=(6.0, 3.6))
    ax.bar(np.arange(len(labels)), counts, color=PALETTE["train"], width=0.8)
    ax.set_xticks(np.arange(len(labels)), labels, rotation=0 if len(labels) <= 10 else 45)
    ax.set_xlabel("rating")
    ax.set_ylabel("count")
    ax.set_title(f"{title} ({counts.sum():,} ratings)")
    fig.tight_layout()
    return fig


def history_png(history, metric: str = "rmse") -> bytes | None:
    """PNG bytes of :func:`loss_curves` for one history, None when it has no steps: the ``_repr_png_`` of
    a recommender's ``History`` (``def _repr_png_(self): return history_png(self)``), so that a notebook
    shows the curves."""
    return repr_png(loss_curves, history, metric)


_SERIES = ("#2ca02c", "#1f77b4", "#7f7f7f", "#ff7f0e", "#9467bd")


@styled
def ranking_bars(rows, metrics=("ndcg@10", "recall@10", "map@10"), title: str = "Top-10 lists on the test part"):
    """Grouped bars of full-ranking metrics, one group per metric and one bar per model (the rows of
    :func:`latentatlas.ratings.metrics.ranking_report` or of a run's ``ranking`` table), each bar labelled."""
    rows = list(rows)
    metrics = [m for m in metrics if rows and m in rows[0]]
    fig, ax = subplots(1, 1, figsize=(6.4, 3.6))
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(metrics))
    for j, row in enumerate(rows):
        values = [float(row[m]) for m in metrics]
        bars = ax.bar(x + (j - (len(rows) - 1) / 2) * width, values, width, color=_SERIES[j % len(_SERIES)],
                      label=str(row.get("model", j))[:60])
        ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, [m.replace("@", " @ ") for m in metrics])
    ax.set_ylabel("higher is better")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right", frameon=False)
    ax.margins(y=0.15)
    fig.tight_layout()
    return fig
