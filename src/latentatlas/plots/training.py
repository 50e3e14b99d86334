"""Loss curves of autoencoder training: per batch, and per epoch for train and test."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from latentatlas.plots.style import PALETTE, figure, styled


@styled
def batch_loss_figure(batch_loss: Sequence[float], batches_per_epoch: int | None = None,
                      title: str = "Training loss per batch"):
    """Every batch's training MSE (faint) with a running mean, on a log scale; the x axis in epochs when
    ``batches_per_epoch`` is given."""
    loss = np.asarray(batch_loss, dtype=float)
    fig, ax = figure()
    if loss.size == 0:
        ax.text(0.5, 0.5, "no completed batch", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        return fig
    step = np.arange(1, loss.size + 1, dtype=float)
    x = step / batches_per_epoch if batches_per_epoch else step
    ax.plot(x, loss, color=PALETTE["train"], alpha=0.3, linewidth=0.8, label="batch")
    window = max(1, min(50, loss.size // 20))
    if window > 1:
        smooth = np.convolve(loss, np.ones(window) / window, mode="valid")
        ax.plot(x[window - 1:], smooth, color=PALETTE["train"], linewidth=1.6, label=f"mean of {window} batches")
    if np.all(loss > 0):
        ax.set_yscale("log")
    ax.set_xlabel("epoch" if batches_per_epoch else "batch")
    ax.set_ylabel("MSE per pixel")
    ax.set_title(title)
    ax.legend()
    return fig


@styled
def epoch_loss_figure(train_loss: Sequence[float], test_loss: Sequence[float],
                      title: str = "Reconstruction error per epoch", best_epoch: int | None = None):
    """Training and test MSE after every epoch; the best test epoch is marked."""
    train = np.asarray(train_loss, dtype=float)
    test = np.asarray(test_loss, dtype=float)
    fig, ax = figure()
    epochs = np.arange(1, max(train.size, test.size) + 1)
    if train.size:
        ax.plot(epochs[:train.size], train, "o-", color=PALETTE["train"], label="train")
    if test.size:
        ax.plot(epochs[:test.size], test, "s-", color=PALETTE["test"], label="test")
        best = best_epoch or int(np.argmin(test)) + 1
        ax.annotate(f"best {test[best - 1]:.4f}", (best, test[best - 1]), textcoords="offset points",
                    xytext=(0, 10), ha="center", color=PALETTE["test"])
    if epochs.size:
        ax.set_xticks(epochs if epochs.size <= 20 else epochs[:: max(1, epochs.size // 10)])
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE per pixel")
    ax.set_title(title)
    if train.size or test.size:
        ax.legend()
    return fig
