"""Figures the report draws itself from several runs: the ALS-vs-SGD loss pair and the rating histogram."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from latentatlas.plots.style import PALETTE, plt


def loss_curve_pair(histories: Sequence[dict]) -> "plt.Figure":
    """The classic pair: training and validation loss per iteration, one panel per model side by side.

    Each history is a dict with ``title``, ``train`` and ``validation`` (lists of losses) and optionally
    ``steps`` (the iteration of each value) and ``best`` (the iteration of the kept model).
    """
    n = len(histories)
    fig, axes = plt.subplots(1, n, figsize=(5.0 * n, 3.8), squeeze=False)
    for ax, h in zip(axes[0], histories):
        for key, label in (("train", "training"), ("validation", "validation")):
            values = np.asarray(h.get(key) or [], dtype=np.float64)
            if len(values) == 0:
                continue
            steps = np.asarray(h.get("steps") or np.arange(1, len(values) + 1))[: len(values)]
            ax.plot(steps, values, label=f"{label} loss", color=PALETTE[key if key == "train" else "validation"])
        if h.get("best") is not None:
            ax.axvline(h["best"], color="grey", linestyle=":", label="kept model")
        ax.set_title(h.get("title", ""))
        ax.set_xlabel("iteration")
        ax.set_ylabel(h.get("ylabel", "loss"))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(frameon=False)
    fig.tight_layout()
    return fig


def rating_histogram(ratings: np.ndarray, counts: np.ndarray, title: str = "Ratings") -> "plt.Figure":
    """Bars: how many ratings have each value of the scale."""
    ratings = np.asarray(ratings, dtype=np.float64)
    counts = np.asarray(counts, dtype=np.int64)
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    width = 0.8 * (np.min(np.diff(ratings)) if len(ratings) > 1 else 1.0)
    ax.bar(ratings, counts, width=width, color=PALETTE["train"])
    ax.set_xticks(ratings)
    ax.set_xlabel("rating")
    ax.set_ylabel("count")
    total = counts.sum()
    mean = float((ratings * counts).sum() / total) if total else float("nan")
    ax.set_title(f"{title} ({total:,} ratings, mean {mean:.2f})")
    fig.tight_layout()
    return fig
