"""Every figure of latentatlas; each function returns a matplotlib Figure and draws nothing on screen.

Figures are grouped by capability: :mod:`latentatlas.plots.ratings` and :mod:`latentatlas.plots.images`.
They are :class:`~latentatlas.plots.style.InlineFigure` objects, which a notebook shows as pictures (IPython's
``_repr_png_``) without ``%matplotlib inline``, pyplot or any change to matplotlib's global state.

Result objects with a natural picture show it the same way, through these hooks:

* :func:`latentatlas.plots.style.png_bytes` — PNG bytes of a figure;
* :func:`latentatlas.plots.style.repr_png` — ``repr_png(figure_function, *args)``: PNG bytes, or None when
  there is nothing to draw, for the body of a ``_repr_png_`` method;
* :func:`latentatlas.plots.ratings.history_png` — a recommender ``History``'s curves.
"""
