"""Loss curves of autoencoder training: per batch, and per epoch for train and validation (with a VAE's KL
term below)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from latentatlas.plots.style import PALETTE, figure, styled


@styled
def batch_loss_figure(batch_loss: Sequence[float], batches_per_epoch: int | None = None,
                      title: str = "Training loss per batch", ylabel: str = "MSE per pixel"):
    """Every batch's training loss (faint) with a running mean, on a log scale; the x axis in epochs when
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
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return fig


@styled
def epoch_loss_figure(train_loss: Sequence[float], validation_loss: Sequence[float],
                      title: str = "Reconstruction error per epoch", best_epoch: int | None = None,
                      train_kl: Sequence[float] | None = None, validation_kl: Sequence[float] | None = None):
    """Training and validation MSE after every epoch; the kept (best) epoch is marked. With a VAE's KL
    terms (nats per image) a second panel below shows them."""
    train = np.asarray(train_loss, dtype=float)
    valid = np.asarray(validation_loss, dtype=float)
    with_kl = bool(train_kl is not None and len(train_kl) or validation_kl is not None and len(validation_kl))
    if with_kl:
        fig, (ax, kx) = figure(6.4, 6.0, 2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    else:
        fig, ax = figure()
        kx = None
    epochs = np.arange(1, max(train.size, valid.size) + 1)
    if train.size:
        ax.plot(epochs[:train.size], train, "o-", color=PALETTE["train"], label="train")
    if valid.size:
        ax.plot(epochs[:valid.size], valid, "s-", color=PALETTE["test"], label="validation (picks the epoch)")
        best = best_epoch or int(np.argmin(valid)) + 1
        ax.annotate(f"kept {valid[best - 1]:.4f}", (best, valid[best - 1]), textcoords="offset points",
                    xytext=(0, 10), ha="center", color=PALETTE["test"])
    last = kx if kx is not None else ax
    if epochs.size:
        last.set_xticks(epochs if epochs.size <= 20 else epochs[:: max(1, epochs.size // 10)])
    last.set_xlabel("epoch")
    ax.set_ylabel("MSE per pixel")
    ax.set_title(title)
    if train.size or valid.size:
        ax.legend()
    if kx is not None:
        for values, colour, marker, label in ((train_kl, PALETTE["train"], "o-", "train"),
                                               (validation_kl, PALETTE["test"], "s-", "validation")):
            if values is not None and len(values):
                v = np.asarray(values, dtype=float)
                kx.plot(epochs[:v.size], v, marker, color=colour, label=label)
        kx.set_ylabel("KL (nats per image)")
        kx.legend()
    return fig
