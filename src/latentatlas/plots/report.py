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


def rating_histogram(values: np.ndarray, title: str = "Ratings") -> "plt.Figure":
    """How often each rating value occurs (bars for a discrete scale, a histogram otherwise)."""
    values = np.asarray(values, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    distinct = np.unique(values)
    if len(distinct) <= 20:
        counts = np.array([(values == v).sum() for v in distinct])
        width = 0.8 * (np.min(np.diff(distinct)) if len(distinct) > 1 else 1.0)
        ax.bar(distinct, counts, width=width, color=PALETTE["train"])
        ax.set_xticks(distinct)
    else:
        ax.hist(values, bins=40, color=PALETTE["train"])
    ax.set_xlabel("rating")
    ax.set_ylabel("count")
    ax.set_title(f"{title} ({len(values):,} ratings, mean {values.mean():.2f})" if len(values) else title)
    fig.tight_layout()
    return fig
