"""The house style shared by every figure, applied without touching matplotlib's global state.

Importing this module selects no backend and changes no ``rcParams``: the style is a dict applied with
``matplotlib.rc_context`` while a figure is built (:func:`styled`, :func:`style`), and :func:`subplots`/:func:`figure`
make a plain ``matplotlib.figure.Figure`` that pyplot does not track (it draws to files on any machine,
with or without a display, and never opens a window).

Those figures are :class:`InlineFigure` objects: a notebook (Jupyter, VS Code) shows them as pictures when they are
a cell's value, with no ``%matplotlib inline`` and no backend switch, through IPython's ``_repr_png_``
protocol. Result objects with a natural picture get theirs the same way: their ``_repr_png_`` returns
:func:`png_bytes` of a figure.
"""

from __future__ import annotations

import contextlib
import functools
import io
from typing import Any, Callable, Iterator, TypeVar

import matplotlib
import numpy as np
from matplotlib.figure import Figure

PALETTE = {"als": "#1f77b4", "sgd": "#d62728", "train": "#1f77b4", "validation": "#ff7f0e", "test": "#2ca02c"}

STYLE: dict[str, Any] = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "font.size": 10,
}

F = TypeVar("F", bound=Callable[..., Any])


def png_bytes(fig: Figure, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes, drawn by Agg whatever the backend, with the house margins
    (``bbox_inches="tight"``). For ``_repr_png_`` hooks: ``return png_bytes(some_figure(self))``."""
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=dpi or fig.dpi, bbox_inches="tight")
    return buf.getvalue()


def repr_png(make_figure: Callable[..., Figure], *args: Any, **kwargs: Any) -> bytes | None:
    """PNG bytes of ``make_figure(*args, **kwargs)``, or None when there is nothing to draw (an empty
    history) or drawing fails — IPython then shows the text repr. The body of a result object's hook::

        def _repr_png_(self):
            from latentatlas.plots.style import repr_png
            return repr_png(epoch_loss_figure, self.train_loss, self.test_loss)
    """
    try:
        fig = make_figure(*args, **kwargs)
    except Exception:  # a picture is a courtesy: never turn a repr into a traceback
        return None
    if fig is None or not fig.axes or not any(ax.has_data() or ax.images for ax in fig.axes):
        return None
    return png_bytes(fig)


class InlineFigure(Figure):
    """A ``matplotlib.figure.Figure`` that a notebook displays as a PNG picture when it is a cell's value
    (IPython calls ``_repr_png_``), without ``%matplotlib inline`` and without pyplot."""

    def _repr_png_(self) -> bytes:
        return png_bytes(self)


@contextlib.contextmanager
def style() -> Iterator[None]:
    """The house style for the block only (``matplotlib.rc_context``)."""
    with matplotlib.rc_context(STYLE):
        yield


def styled(fn: F) -> F:
    """Decorate a figure function so that it builds its figure in the house style."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with style():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None, **kwargs: Any):
    """Like ``plt.subplots`` but a plain ``Figure`` (not tracked by pyplot) in the house style.

    ``kwargs`` go to ``Figure.subplots`` (``squeeze``, ``sharex``, ``gridspec_kw`` …). Returns ``(fig, axes)``.
    """
    with style():
        fig = InlineFigure(figsize=figsize, dpi=STYLE["figure.dpi"])
        axes = fig.subplots(nrows, ncols, **kwargs)
        for ax in np.atleast_1d(axes).ravel():
            # Gridlines are made when first drawn, perhaps after the style context is gone: fix their look now.
            ax.grid(STYLE["axes.grid"], alpha=STYLE["grid.alpha"])
    return fig, axes


def figure(width: float = 6.4, height: float = 4.0, nrows: int = 1, ncols: int = 1, **kwargs: Any):
    """:func:`subplots` with the size first: a ``width`` × ``height`` inch figure and its axes."""
    return subplots(nrows, ncols, figsize=(width, height), **kwargs)


def __getattr__(name: str) -> Any:
    # ``plt`` for modules that still draw through pyplot; imported on first use so that importing this
    # module does not load pyplot.
    if name == "plt":
        import matplotlib.pyplot as plt

        return plt
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
