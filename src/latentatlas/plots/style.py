"""The house style shared by every figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only: no screen on servers and CI

import matplotlib.pyplot as plt  # noqa: E402

PALETTE = {"als": "#1f77b4", "sgd": "#d62728", "train": "#1f77b4", "validation": "#ff7f0e", "test": "#2ca02c"}


def figure(width: float = 6.4, height: float = 4.0, **kwargs):
    """A new figure and axes in the house style."""
    fig, ax = plt.subplots(figsize=(width, height), **kwargs)
    return fig, ax


plt.rcParams.update({
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "font.size": 10,
})
