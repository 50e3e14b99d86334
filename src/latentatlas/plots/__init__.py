"""Every figure of latentatlas; each function returns a matplotlib Figure and draws nothing on screen.

Figures are grouped by capability: :mod:`latentatlas.plots.ratings` and :mod:`latentatlas.plots.images`.
"""
