"""The house style shared by every figure, applied per figure — never to matplotlib's global state.

Figures are made with :func:`figure`/:func:`subplots` (plain ``matplotlib.figure.Figure`` objects, so no
backend is chosen and no pyplot figure is left open) inside :func:`styled`, which applies :data:`STYLE`
with ``matplotlib.rc_context`` only while the figure is built.
"""

from __future__ import annotations

import functools

import matplotlib
import matplotlib.pyplot as plt  # noqa: F401  (kept for modules that still draw through pyplot)
from matplotlib.figure import Figure

PALETTE = {"als": "#1f77b4", "sgd": "#d62728", "bayes": "#2ca02c", "train": "#1f77b4", "validation": "#ff7f0e",
           "test": "#2ca02c"}

STYLE = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "font.size": 10,
    "text.parse_math": False,  # ids and titles come from users' files: "$" is a character, not math
}


def styled(fn):
    """Build the decorated function's figure under :data:`STYLE` (restored afterwards)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return fn(*args, **kwargs)
    return wrapper


def subplots(nrows: int = 1, ncols: int = 1, figsize=(6.4, 4.0), **kwargs):
    """A new :class:`~matplotlib.figure.Figure` and its axes (as ``plt.subplots`` would return them)."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def figure(width: float = 6.4, height: float = 4.0, **kwargs):
    """A new figure and axes in the house style."""
    with matplotlib.rc_context(STYLE):
        return subplots(figsize=(width, height), **kwargs)
